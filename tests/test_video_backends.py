"""Every video backend returns the same frames: at a variable frame rate (frame k is the k-th frame
shown; a time range holds the frames whose timestamps fall in it) and with a display matrix (frames
are shown turned as it says).

The videos are written with PyAV: each frame a solid colour of its own (so every returned frame
is identified) and a white block in the stored frame's top-left corner (so its orientation is).
"""

import math
from fractions import Fraction

import numpy as np
import pytest
import torch

from fairseq_slt.data.prep_utils import SourceRow, check_row, probe_source
from fairseq_slt.data.transforms import build_video_transform
from fairseq_slt.data.video_io import VideoReadError, VideoSource, probe_timing, read_frames, torchcodec_unusable
from fairseq_slt.data.video_utils import display_turns, frame_slots, nominal_length, time_range_to_frames
from fairseq_slt.inference import VideoInput, frame_range

N = 20
WIDTH, HEIGHT = 64, 48
# frame timestamps with gaps (a phone dropping frames, a screen recording), in two time bases
GAPS_25 = [0, 1, 2, 5, 6, 10, 11, 12, 13, 20, 21, 22, 30, 31, 32, 33, 34, 35, 40, 41]
GAPS_MS = [0, 40, 80, 200, 240, 400, 433, 466, 500, 800, 840, 880, 1200, 1240, 1280, 1320, 1360, 1400, 1600, 1640]

BACKENDS = {  # name: read_frames arguments
    "decord": dict(backend="decord"),
    "pyav": dict(backend="pyav"),
    "auto, scaled (PyAV)": dict(min_size=[32]),
    "auto, full size": dict(),
}
if torchcodec_unusable() is None:
    BACKENDS["torchcodec"] = dict(backend="torchcodec")


def colour(i: int) -> np.ndarray:
    return np.array([(i * 37) % 256, (i * 91) % 256, (i * 53 + 40) % 256], dtype=np.uint8)


def frame_image(i: int) -> np.ndarray:
    img = np.empty((HEIGHT, WIDTH, 3), dtype=np.uint8)
    img[:] = colour(i)
    img[:8, :8] = 255  # the stored frame's top-left corner
    return img


def write_video(path, pts, time_base=Fraction(1, 25), bf=2, rotate=None, hflip=False):
    """H.264 in mp4 (B frames, a keyframe every 6 frames), frame ``i`` at ``pts[i]``; ``rotate``:
    the display matrix's counter-clockwise turn in degrees."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.codec_context.time_base = time_base
        stream.options = {"crf": "10", "bf": str(bf), "g": "6", "preset": "veryfast"}
        if rotate is not None or hflip:
            stream.set_display_rotation(rotate or 0, hflip=hflip)
        for i, p in enumerate(pts):
            frame = av.VideoFrame.from_ndarray(frame_image(i), format="rgb24")
            frame.pts, frame.time_base = p, time_base
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return str(path)


def identify(frames: torch.Tensor) -> list:
    """Which frame each of ``T x H x W x 3`` frames is, by the colour at its centre."""
    out = []
    for f in frames.numpy().astype(float):
        h, w = f.shape[:2]
        centre = f[h // 2 - 4:h // 2 + 4, w // 2 - 4:w // 2 + 4].reshape(-1, 3).mean(0)
        out.append(min(range(N), key=lambda i: np.abs(colour(i) - centre).sum()))
    return out


def corner(frame: torch.Tensor) -> str:
    """Where the white block of the stored frame's top-left corner is shown."""
    ys, xs = np.nonzero(frame.numpy().astype(int).sum(-1) > 700)
    h, w = frame.shape[:2]
    return ("top" if ys.mean() < h / 2 else "bottom") + "-" + ("left" if xs.mean() < w / 2 else "right")


def stored_frames(path) -> np.ndarray:
    """Every frame as stored (PyAV, no display matrix applied)."""
    import av

    with av.open(path) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


@pytest.fixture(scope="module")
def vfr_videos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("vfr")
    return {
        "1/25": (write_video(folder / "gaps_25.mp4", GAPS_25), [p / 25 for p in GAPS_25]),
        "1/1000": (write_video(folder / "gaps_ms.mp4", GAPS_MS, Fraction(1, 1000)), [p / 1000 for p in GAPS_MS]),
        "no B frames": (write_video(folder / "gaps_25_p.mp4", GAPS_25, bf=0), [p / 25 for p in GAPS_25]),
    }


@pytest.fixture(scope="module")
def rotated_videos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("rotated")
    return {deg: write_video(folder / f"rot{deg}.mp4", range(6), rotate=deg) for deg in (0, 90, -90, 180)}


def average_fps(path) -> float:
    import av

    with av.open(path) as container:
        return float(container.streams.video[0].average_rate)


def frames_by_timestamp(times, start, end, fps) -> list:
    """The definition: frames whose timestamp, in frames of the average rate, rounds into the range."""
    lo, hi = round(start * fps), round(end * fps)
    return [k for k, t in enumerate(times) if lo <= round(t * fps) < hi]


def read_all(source, n, **kwargs) -> list:
    return identify(read_frames(source, list(range(n)), n, **kwargs))


# --- the definitions ----------------------------------------------------------------------------


def test_constant_rate_slots_give_the_nominal_frames_bit_for_bit():
    """Frames at k / fps: slots 0, 1, 2, ... give round(start * fps) .. round(end * fps) - 1, ties
    (0.3 s * 25 = 7.5 -> 8, 0.5 s * 25 = 12.5 -> 12) included."""
    rng = np.random.default_rng(0)
    times = [(0.3, 0.5), (0.41, 0.43), (0.02, 0.06), (1.0, 2.0), (0.5, 0.5)]
    times += [tuple(sorted(rng.uniform(0, 3.9, 2).round(rng.integers(1, 4)))) for _ in range(300)]
    for fps in (25.0, 30000 / 1001, 24.0, 50.0):
        slots = np.arange(int(4 * fps) + 2)
        for start, end in times:
            assert time_range_to_frames(start, end, fps, slots) == time_range_to_frames(start, end, fps)
    assert time_range_to_frames(0.3, 0.5, 25.0) == range(8, 12)


def test_variable_rate_slots_follow_the_timestamps():
    pts = np.array(GAPS_25)
    slots = frame_slots(pts, 0, 1 / 25, 25.0)
    assert slots.tolist() == GAPS_25  # at the nominal rate a frame's slot is its timestamp
    # [0.2, 0.92) s: pts 5 to 22, the frames shown from 0.2 s to 0.88 s
    assert time_range_to_frames(0.2, 0.92, 25.0, slots) == range(3, 12)
    assert nominal_length(N, slots) == 42


def test_display_turns_of_ffmpeg_display_matrices():
    one = 1 << 16
    assert display_turns(None) == 0
    assert display_turns([one, 0, 0, 0, one, 0, 0, 0, 1 << 30]) == 0
    assert display_turns([0, -one, 0, one, 0, 0, 0, 0, 1 << 30]) == 1  # 90 degrees counter-clockwise
    assert display_turns([0, one, 0, -one, 0, 0, 0, 0, 1 << 30]) == 3  # 90 degrees clockwise (a phone)
    assert display_turns([-one, 0, 0, 0, -one, 0, 0, 0, 1 << 30]) == 2
    with pytest.raises(ValueError, match="mirrors the frame"):
        display_turns([-one, 0, 0, 0, one, 0, 0, 0, 1 << 30])
    c = int(one * math.cos(math.pi / 4))
    with pytest.raises(ValueError, match="turns the frame by 45.0 degrees"):
        display_turns([c, -c, 0, c, c, 0, 0, 0, 1 << 30])


# --- variable frame rate ------------------------------------------------------------------------


@pytest.mark.parametrize("video", ["1/25", "1/1000", "no B frames"])
def test_variable_frame_rate_every_backend_reads_frame_k_as_the_kth_frame(vfr_videos, video):
    path, _ = vfr_videos[video]
    assert probe_timing(path).n_frames == N
    for name, kwargs in BACKENDS.items():
        assert read_all(VideoSource(path), N, **kwargs) == list(range(N)), name
        assert identify(read_frames(VideoSource(path), [15, 3, 9, 0, 19], N, **kwargs)) == [15, 3, 9, 0, 19], name
    full = {
        name: read_frames(VideoSource(path), list(range(N)), N, **kwargs)
        for name, kwargs in BACKENDS.items() if "scaled" not in name
    }
    for name, frames in full.items():  # the same pixels, up to the decoders' RGB conversions
        assert (frames.int() - full["pyav"].int()).abs().max() <= 8, name


@pytest.mark.parametrize("video", ["1/25", "1/1000", "no B frames"])
def test_variable_frame_rate_time_ranges_select_frames_by_timestamp_in_every_backend(vfr_videos, video):
    path, times = vfr_videos[video]
    fps = average_fps(path)  # about 12.5: 20 frames in 1.6 s
    cases = [(0.2, 0.9), (0.0, 0.5), (0.4, 1.3), (0.81, 1.7), (1.25, 1.66)]
    for start, end in cases:
        want = frames_by_timestamp(times, start, end, fps)
        assert want, (start, end)
        source = VideoSource(path, start, end)
        for name, kwargs in BACKENDS.items():
            assert read_all(source, len(want), **kwargs) == want, (name, start, end)
        # the data preparation and fairseq-slt-translate count the same frames
        row = SourceRow("a", "v.mp4", "text", None, str(start), str(end))
        row, reason = check_row(row, probe_source(path, "v.mp4"))
        assert reason is None and row["n_frames"] == len(want)
        assert frame_range(VideoInput(path, start, end), 25.0)[3] == len(want)
    if video == "1/25":  # 0.2 s to 0.84 s: at the average 13.2 fps, 0.9 s and 0.88 s both round to frame 12
        assert frames_by_timestamp(times, 0.2, 0.9, fps) == list(range(3, 11))


def test_variable_frame_rate_range_checks_name_the_video(vfr_videos):
    path, times = vfr_videos["1/25"]
    n = len(frames_by_timestamp(times, 0.2, 0.9, average_fps(path)))
    for name, kwargs in BACKENDS.items():
        with pytest.raises(VideoReadError, match=f"holds {n} frames but the manifest says n_frames={n + 1}"):
            read_frames(VideoSource(path, 0.2, 0.9), [0], n + 1, **kwargs)
        past = r"ends past the end of .*gaps_25.mp4 \(20 frames\) at a variable frame rate"
        with pytest.raises(VideoReadError, match=past):
            read_frames(VideoSource(path, 1.0, 2.5), [0], 10, **kwargs)
        with pytest.raises(VideoReadError, match=r"is frames \[\d+, \d+\) and is empty"):  # between pts 22 and 30
            read_frames(VideoSource(path, 0.98, 1.08), [0], 1, **kwargs)
    row = SourceRow("a", "v.mp4", "text", None, "1.0", "2.5")
    assert check_row(row, probe_source(path, "v.mp4"))[1] == "end 2.50 s is past the end of v.mp4 (1.75 s)"


def test_constant_rate_time_ranges_start_at_the_rounded_frame_in_every_backend(tmp_path):
    """At 25 fps, [0.3, 0.62) is frames 8 .. 15 (0.3 * 25 = 7.5 rounds to 8), [0.41, 0.5) frames 10 .. 11."""
    path = write_video(tmp_path / "cfr.mp4", range(N))
    for (start, end), want in {(0.3, 0.62): list(range(8, 16)), (0.41, 0.5): [10, 11]}.items():
        for name, kwargs in BACKENDS.items():
            assert read_all(VideoSource(path, start, end), len(want), **kwargs) == want, name
    assert probe_timing(path).slots is None  # a constant frame rate keeps no per-frame slots


# --- display matrix -----------------------------------------------------------------------------


TURNED = [(0, 0, "top-left"), (90, 1, "bottom-left"), (-90, 3, "top-right"), (180, 2, "bottom-right")]


@pytest.mark.parametrize("degrees, turns, shown_corner", TURNED)
def test_display_matrix_is_applied_by_every_backend(rotated_videos, degrees, turns, shown_corner):
    path = rotated_videos[degrees]
    want = np.rot90(stored_frames(path)[[0, 3, 5]], turns, axes=(1, 2))  # counter-clockwise quarter turns
    shown = (HEIGHT, WIDTH) if turns % 2 == 0 else (WIDTH, HEIGHT)
    for name, kwargs in BACKENDS.items():
        frames = read_frames(VideoSource(path), [0, 3, 5], 6, **kwargs)
        assert identify(frames) == [0, 3, 5], name
        assert corner(frames[0]) == shown_corner, name
        if "scaled" in name:  # shorter side 32, as shown
            assert frames.shape[1:3] == ((32, 42) if turns % 2 == 0 else (42, 32))
        else:
            assert frames.shape[1:3] == shown, name
            assert np.abs(frames.numpy().astype(int) - want).max() <= 8, name


@pytest.mark.parametrize("resize", [32, (40, 30)])
def test_scaled_decode_of_a_turned_video_matches_the_full_size_path(rotated_videos, resize):
    """A phone's portrait video (stored landscape, turned 90 degrees clockwise): scaled inside
    PyAV's conversion as shown, the same model input as the full-size decode + transform."""
    transform = build_video_transform(resize, 28, train=False)
    src = VideoSource(rotated_videos[-90])
    reduced = read_frames(src, [0, 3, 5], 6, min_size=transform.min_size)
    full = read_frames(src, [0, 3, 5], 6, backend="decord")
    assert full.shape[1:3] == (WIDTH, HEIGHT)
    assert reduced.shape[1:3] == ((42, 32) if resize == 32 else (40, 30))
    assert (transform(reduced) - transform(full)).abs().mean() < 0.05


def test_mirroring_display_matrix_is_refused_in_every_backend(tmp_path):
    path = write_video(tmp_path / "mirrored.mp4", range(6), rotate=0, hflip=True)
    for name, kwargs in BACKENDS.items():
        refused = r"mirrored.mp4: its display matrix mirrors the frame; only turns by multiples of 90 degrees"
        with pytest.raises(VideoReadError, match=refused):
            read_frames(VideoSource(path), [0, 3], 6, **kwargs)


# --- decoding in one process, workers forked from another thread --------------------------------


def _exit_at_once():
    pass


def test_pyav_conversion_leaves_no_thread_for_a_forked_worker_to_wait_for(tmp_path):
    """fairseq forks DataLoader workers from its batch-reading thread; each worker frees the PyAV
    converters of the parent's other threads. A converter with slice threads (PyAV >= 17's
    default) would leave the worker waiting forever for threads it does not have."""
    import multiprocessing
    import threading

    path = write_video(tmp_path / "v.mp4", range(6))
    read_frames(VideoSource(path), [0, 3], 6, backend="pyav")  # a converter on this thread
    exitcodes = []

    def fork_a_worker():
        worker = multiprocessing.get_context("fork").Process(target=_exit_at_once)
        worker.start()
        worker.join(30)
        exitcodes.append(worker.exitcode)
        if worker.is_alive():
            worker.kill()

    thread = threading.Thread(target=fork_a_worker)
    thread.start()
    thread.join()
    assert exitcodes == [0]
