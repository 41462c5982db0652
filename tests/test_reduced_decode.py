"""Reduced-size decoding (``read_frames(..., min_size=...)``): JPEG frames at DCT scale, video
frames scaled inside PyAV's RGB conversion after a seek, and the optional torchcodec backend.

Tolerance, on the final ``crop`` x ``crop`` model input in grey levels (0-255), reduced path vs
the full-size decode + the same transform, on photo-like content (textured background, a
hard-edged hand, sensor noise):

* JPEG at DCT scale: mean absolute difference < 2, max < 48 (the DCT scale's filter differs from
  torchvision's antialiased bilinear at hard edges; measured mean 1.0, max 41 on 512 px frames);
* video, shorter-side resize (swscale bilinear): mean < 2, max < 40 (measured on 1280 x 720:
  mean 1.2, max 16);
* video, [h, w] squash: mean < 2.5, max < 64 (measured: 1280 x 720 -> 256 x 256 mean 2.25, max
  45; 320 x 180 -> 160 x 128 mean 2.1, max 52; anisotropic shrinking is where swscale's and
  torchvision's filters differ most).

A wrong frame is far outside it (max > 100, checked below).
"""

import os

import numpy as np
import pytest
import torch
from PIL import Image

from fairseq_slt.data.transforms import IMAGENET_STD, build_video_transform
from fairseq_slt.data.video_io import (
    VideoReadError,
    VideoSource,
    _pyav_frames,
    read_frames,
    scaled_size,
    torchcodec_unusable,
)

STD_255 = torch.tensor(IMAGENET_STD).mul(255).view(3, 1, 1)


def photo_like(rng, n, height, width):
    """``n x height x width x 3`` uint8: smooth texture, a moving hard-edged 'hand', noise."""
    y, x = np.mgrid[:height, :width].astype(np.float32)
    base = np.stack([
        128 + 60 * np.sin(x / (7 + 5 * c) + c) * np.cos(y / (11 + 3 * c)) for c in range(3)
    ], -1)
    out = []
    for t in range(n):
        frame = base.copy()
        cy, cx = height * (0.3 + 0.4 * t / max(1, n - 1)), width * (0.7 - 0.4 * t / max(1, n - 1))
        hand = ((y - cy) / (height / 8)) ** 2 + ((x - cx) / (width / 10)) ** 2 <= 1
        frame[hand] = (205, 160, 135)
        frame += rng.normal(0, 4, frame.shape)
        out.append(np.clip(frame, 0, 255).astype(np.uint8))
    return np.stack(out)


def grey_levels(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """|a - b| of two normalised model inputs, in grey levels."""
    return ((a - b) * STD_255).abs()


@pytest.fixture(scope="module")
def jpeg_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("jpg512")
    frames = photo_like(np.random.default_rng(0), 6, 512, 512)
    for i, f in enumerate(frames):
        Image.fromarray(f).save(folder / f"{i + 1:06d}.jpg", quality=90)
    return str(folder)


@pytest.fixture(scope="module")
def mp4_720(tmp_path_factory):
    """24 frames of 320 x 180 (How2Sign's 16:9, small), H.264 with B frames, keyframe every 8."""
    import av

    path = str(tmp_path_factory.mktemp("mp4") / "v.mp4")
    frames = photo_like(np.random.default_rng(1), 24, 180, 320)
    with av.open(path, "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.height, stream.width, stream.pix_fmt = 180, 320, "yuv420p"
        stream.options = {"crf": "18", "preset": "fast", "g": "8", "bf": "3"}
        for f in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")))
        container.mux(stream.encode())
    return path


# --- sizes --------------------------------------------------------------------------------------


def test_scaled_size_matches_torchvision_and_never_upscales():
    assert scaled_size(1280, 720, [256]) == (455, 256)  # torchvision: int(256 * 1280 / 720)
    assert scaled_size(210, 260, [256]) is None  # PHOENIX: shorter side 210 < 256, no scaling
    assert scaled_size(512, 512, [256, 256]) == (256, 256)
    assert scaled_size(1280, 720, [256, 256]) == (256, 256)
    assert scaled_size(200, 720, [256, 256]) is None  # one side would grow
    assert scaled_size(1280, 720, None) is None
    assert build_video_transform(256, 224, train=False).min_size == [256]
    assert build_video_transform((256, 300), 224, train=True).min_size == [256, 300]


# --- JPEG frames: DCT-domain scaling ------------------------------------------------------------


@pytest.mark.parametrize("resize", [256, (256, 256), 224])
def test_jpeg_draft_same_pixels_as_full_decode(jpeg_folder, resize):
    transform = build_video_transform(resize, 224, train=False)
    src, idx = VideoSource(jpeg_folder), [0, 2, 5]
    reduced = read_frames(src, idx, 6, min_size=transform.min_size)
    full = read_frames(src, idx, 6)
    assert full.shape == (3, 512, 512, 3)
    assert reduced.shape == (3, 256, 256, 3)  # 1/2 scale: the smallest with both sides >= 256
    diff = grey_levels(transform(reduced), transform(full))
    assert diff.mean() < 2.0 and diff.max() < 48
    # a wrong frame (the hand elsewhere) is far outside the tolerance: the check can fail
    other = grey_levels(transform(read_frames(src, [5, 0, 2], 6, min_size=transform.min_size)), transform(full))
    assert other.max() > 100


def test_jpeg_draft_picks_quarter_scale_and_keeps_min_size(jpeg_folder):
    frames = read_frames(VideoSource(jpeg_folder), [0], 6, min_size=[128])
    assert frames.shape == (1, 128, 128, 3)  # 1/4 scale
    frames = read_frames(VideoSource(jpeg_folder), [0], 6, min_size=[129])
    assert frames.shape == (1, 256, 256, 3)  # 1/4 would be 128 < 129: 1/2 scale
    frames = read_frames(VideoSource(jpeg_folder), [0], 6, min_size=[200, 100])
    assert frames.shape == (1, 256, 256, 3)  # height >= 200 needs 1/2


def test_png_frames_ignore_min_size(tmp_path):
    frames = photo_like(np.random.default_rng(2), 2, 64, 48)
    for i, f in enumerate(frames):
        Image.fromarray(f).save(tmp_path / f"images{i + 1:04d}.png")
    out = read_frames(VideoSource(str(tmp_path)), [0, 1], 2, min_size=[16])
    assert out.shape == (2, 64, 48, 3) and np.array_equal(out.numpy(), frames)


def test_mixed_jpeg_and_png_of_one_size_fall_back_to_full_size(tmp_path):
    frames = photo_like(np.random.default_rng(3), 2, 64, 64)
    Image.fromarray(frames[0]).save(tmp_path / "f1.jpg", quality=95)
    Image.fromarray(frames[1]).save(tmp_path / "f2.png")
    out = read_frames(VideoSource(str(tmp_path)), [0, 1], 2, min_size=[32])
    assert out.shape == (2, 64, 64, 3)
    assert np.array_equal(out[1].numpy(), frames[1])


def test_jpeg_frames_of_different_stored_sizes_still_raise(tmp_path):
    rng = np.random.default_rng(4)
    Image.fromarray(photo_like(rng, 1, 64, 64)[0]).save(tmp_path / "f1.jpg")
    Image.fromarray(photo_like(rng, 1, 128, 128)[0]).save(tmp_path / "f2.jpg")
    with pytest.raises(VideoReadError, match="mixes frame sizes"):
        read_frames(VideoSource(str(tmp_path)), [0, 1], 2, min_size=[64])


# --- video: seek, skipped non-reference frames, scaled conversion -------------------------------


def test_pyav_skipping_unused_frames_gives_the_same_pixels(mp4_720):
    idx = [9, 13, 17, 21]  # not at a keyframe: decoding starts at the one before (frame 8)
    kept = _pyav_frames(mp4_720, idx, None, skip_unused=False)
    skipped = _pyav_frames(mp4_720, idx, None, skip_unused=True)
    assert kept.shape == (4, 180, 320, 3) and np.array_equal(kept, skipped)
    # the seek lands on the right frames: the same as decoding every frame from the start
    every = _pyav_frames(mp4_720, list(range(24)), None, skip_unused=False)
    assert np.array_equal(every[idx], kept)


@pytest.mark.parametrize("resize", [128, (128, 160)])
def test_scaled_video_same_pixels_as_full_decode(mp4_720, resize):
    transform = build_video_transform(resize, 112, train=False)
    src = VideoSource(mp4_720, 0.2, 0.96)  # frames [5, 24) of the file
    idx = [0, 4, 8, 12, 18]
    reduced = read_frames(src, idx, 19, min_size=transform.min_size)
    full = read_frames(src, idx, 19)  # decord at full size
    assert full.shape == (5, 180, 320, 3)
    assert reduced.shape[1:3] == ((128, 227) if resize == 128 else (128, 160))
    diff = grey_levels(transform(reduced), transform(full))
    if resize == 128:
        assert diff.mean() < 2.0 and diff.max() < 40
    else:  # anisotropic squash: swscale's and torchvision's filters differ more (measured mean 2.1, max 52)
        assert diff.mean() < 2.5 and diff.max() < 64
    other = grey_levels(transform(read_frames(src, [18, 12, 8, 4, 0], 19, min_size=transform.min_size)), transform(full))
    assert other.max() > 100


def test_video_time_range_and_count_still_checked(mp4_720):
    with pytest.raises(VideoReadError, match="n_frames=20"):
        read_frames(VideoSource(mp4_720), [0], 20, min_size=[64])
    with pytest.raises(VideoReadError, match="ends past the end"):
        read_frames(VideoSource(mp4_720, 0.5, 2.0), [0], 37, min_size=[64])
    with pytest.raises(ValueError, match="video backend"):
        read_frames(VideoSource(mp4_720), [0], 24, backend="opencv")


def test_forced_backends_decode_the_same_frames(mp4_720):
    src, idx = VideoSource(mp4_720), [0, 11, 23]
    by_decord = read_frames(src, idx, 24, backend="decord").numpy().astype(int)
    by_pyav = read_frames(src, idx, 24, backend="pyav").numpy().astype(int)
    assert by_decord.shape == by_pyav.shape == (3, 180, 320, 3)
    assert np.abs(by_decord - by_pyav).mean() < 1.0 and np.abs(by_decord - by_pyav).max() <= 8


@pytest.mark.skipif(torchcodec_unusable() is not None, reason="torchcodec (and FFmpeg's shared libraries) not installed")
def test_torchcodec_backend_same_pixels(mp4_720):
    transform = build_video_transform(128, 112, train=False)
    src, idx = VideoSource(mp4_720, 0.2, 0.96), [0, 4, 8, 12, 18]
    full = read_frames(src, idx, 19, backend="decord")
    by_tc = read_frames(src, idx, 19, backend="torchcodec")
    assert by_tc.shape == full.shape
    assert np.abs(by_tc.numpy().astype(int) - full.numpy().astype(int)).mean() < 1.0
    reduced = read_frames(src, idx, 19, min_size=transform.min_size, backend="torchcodec")
    assert reduced.shape == (5, 128, 227, 3)
    diff = grey_levels(transform(reduced), transform(full))
    assert diff.mean() < 2.0 and diff.max() < 40


def test_torchcodec_unusable_says_why(monkeypatch, mp4_720):
    import sys
    from types import SimpleNamespace

    monkeypatch.setitem(sys.modules, "torchcodec", None)  # not installed: the import fails
    assert torchcodec_unusable().startswith("ModuleNotFoundError: ")
    monkeypatch.setitem(sys.modules, "torchcodec", SimpleNamespace(ffmpeg_major_version=None))  # >= 0.17, no FFmpeg
    assert torchcodec_unusable() == "FFmpeg's shared libraries are not installed (torchcodec.ffmpeg_major_version is None)"
    with pytest.raises(VideoReadError, match="video backend torchcodec is not usable here: FFmpeg's shared libraries"):
        read_frames(VideoSource(mp4_720), [0], 24, backend="torchcodec")
    monkeypatch.setitem(sys.modules, "torchcodec", SimpleNamespace(ffmpeg_major_version=7))
    assert torchcodec_unusable() is None
    monkeypatch.setitem(sys.modules, "torchcodec", SimpleNamespace())  # before 0.17: importing loaded FFmpeg
    assert torchcodec_unusable() is None
