"""Reading sign videos: video files and frame folders, only the frames that are sampled.

Two kinds of video source are supported (see docs/usage.md, "Data root"):

* a file decord can read (mp4, avi, ...), optionally restricted to a ``[start, end)`` time range
  in seconds (How2Sign sentences are cut out of the full videos by reference);
* a folder of png/jpg frames (PHOENIX-2014-T and CSL-Daily ship frames), sorted numerically.

Only the frames that are actually sampled are decoded, and, where the caller says how large the
transform needs them (``min_size``, see :func:`read_frames`), no larger than that:

* JPEG frames (CSL-Daily's 512 x 512) are decoded at 1/2, 1/4 or 1/8 scale in the DCT domain
  (Pillow's ``Image.draft``), the smallest scale whose frame still is at least ``min_size``;
* video frames (How2Sign's 1280 x 720 H.264) are decoded with PyAV from the keyframe before the
  first sampled frame, frames that are neither sampled nor referenced by other frames are not
  decoded at all, and the sampled ones are converted to RGB and scaled to the transform's size in
  one swscale pass.

The transform then resizes from the smaller frame (or not at all where it already has the size).
Backends for video files (``backend``): ``"auto"`` (the above; decord at full size), ``"decord"``,
``"pyav"`` and ``"torchcodec"`` (optional, not installed by default: ``pip install torchcodec``,
which needs FFmpeg's shared libraries, e.g. ``apt-get install libavcodec59 libavformat59
libavutil57 libswscale6``).

Every backend returns the same frames, as :mod:`~.video_utils` defines them (docs/usage.md,
"Frames of a video"): frame ``k`` is the ``k``-th frame in presentation order, also at a variable
frame rate; a time range holds the frames whose timestamps fall in it, rounded to the video's
average frame rate; frames are turned as the stream's display matrix says.
"""

import functools
import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, List, Optional, Sequence, Tuple

import numpy as np

from .video_pyav import pyav_display, pyav_frames, pyav_header, pyav_timing
from .video_utils import (  # noqa: F401 (re-exported: the data package's names for them)
    VideoReadError,
    VideoTiming,
    checked_time_range,
    constant_rate_slots,
    scaled_size,
    time_range_to_frames,
    turned,
)

if TYPE_CHECKING:
    import torch

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp")
VIDEO_BACKENDS = ("auto", "decord", "pyav", "torchcodec")

_pyav_frames = pyav_frames  # also importable under this module's private name


@dataclass(frozen=True)
class VideoSource:
    """Where the frames of one sample live.

    ``start``/``end`` (seconds) restrict a video file to a sentence; they are ``None`` for a whole
    video or a frame folder.
    """

    path: str
    start: Optional[float] = None
    end: Optional[float] = None

    @property
    def is_frame_folder(self) -> bool:
        return os.path.isdir(self.path)


def _natural_key(name: str):
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name)]


def is_frame_file(name: str) -> bool:
    """Whether a file of a frame folder is a frame: a png/jpg/bmp name that is not hidden (macOS's
    AppleDouble ``._*`` companions and other dot files are not frames)."""
    return name.lower().endswith(IMAGE_EXTENSIONS) and not name.startswith(".")


def list_frame_files(folder: str) -> List[str]:
    """Image files of a frame folder, sorted numerically (``images2`` before ``images10``). Two
    files of one frame number (``1.png`` and ``01.png``, ``5.png`` and ``5.jpg``) are a
    :class:`VideoReadError` naming the folder: their order would be a guess."""
    keys = {}
    for n in sorted(n for n in os.listdir(folder) if is_frame_file(n)):
        key = tuple(_natural_key(os.path.splitext(n)[0]))
        if key in keys:
            raise VideoReadError(f"frame folder {folder} has two files of one frame: {keys[key]} and {n}; "
                                 "keep one of them")
        keys[key] = n
    return [os.path.join(folder, keys[k]) for k in sorted(keys)]


def _decord_reader(path: str):
    import decord  # imported lazily: workers import it once, on first use

    try:
        return decord.VideoReader(path, ctx=decord.cpu(0), num_threads=1)
    except Exception as e:  # decord raises its own DECORDError / RuntimeError
        raise VideoReadError(f"cannot decode video {path}: {e}") from e


def _jpeg_draft_request(min_size: Optional[Sequence[int]]) -> Optional[Tuple[int, int]]:
    """The ``(width, height)`` to ask ``Image.draft`` for: it picks the largest DCT scale
    (1/2, 1/4, 1/8) whose frame still is at least that large on both sides."""
    if not min_size:
        return None
    if len(min_size) == 2:
        return int(min_size[1]), int(min_size[0])
    return int(min_size[0]), int(min_size[0])  # both sides >= s: the shorter one is


def torchcodec_unusable() -> Optional[str]:
    """Why torchcodec cannot decode video here, or ``None`` when it can. torchcodec >= 0.17 imports
    without FFmpeg's shared libraries (its image decoders do not need them) and fails only at the
    first video call; then ``torchcodec.ffmpeg_major_version`` is ``None``."""
    try:
        import torchcodec
    except Exception as e:  # not installed, or (before 0.17) FFmpeg's libraries are missing
        return f"{type(e).__name__}: {e}"
    if getattr(torchcodec, "ffmpeg_major_version", 0) is None:
        return "FFmpeg's shared libraries are not installed (torchcodec.ffmpeg_major_version is None)"
    return None


def _torchcodec_frames(
    path: str, absolute: Sequence[int], min_size: Optional[Sequence[int]], display: Tuple[int, int, int]
) -> np.ndarray:
    """Frames ``absolute`` with torchcodec (``pip install torchcodec``; FFmpeg's shared libraries),
    scaled by its own antialiased bilinear resize where ``min_size`` shrinks them, and shown as
    the display matrix says (``display``: :func:`~.video_pyav.pyav_display`). torchcodec >= 0.11
    turns the frames itself, before its resize (its metadata has ``rotation``); before, they are
    turned here."""
    from torchcodec.decoders import VideoDecoder  # read_frames checked torchcodec_unusable()
    from torchcodec.transforms import Resize

    turns, width, height = display
    shown = (height, width) if turns % 2 else (width, height)
    try:
        meta = VideoDecoder(path, seek_mode="exact", num_ffmpeg_threads=1).metadata
        turns_itself = hasattr(meta, "rotation")
        size = scaled_size(*shown, min_size)
        stored = size if size is None or turns_itself or turns % 2 == 0 else size[::-1]
        transforms = [Resize((stored[1], stored[0]))] if stored else None
        decoder = VideoDecoder(
            path, seek_mode="exact", num_ffmpeg_threads=1, dimension_order="NHWC", transforms=transforms
        )
        frames = decoder.get_frames_at([int(i) for i in absolute]).data.numpy()
    except Exception as e:
        raise VideoReadError(f"cannot decode frames of {path} with torchcodec: {e}") from e
    frames = frames if turns_itself else np.ascontiguousarray(turned(frames, turns))
    want = size or shown
    if frames.shape[1:3] != (want[1], want[0]):
        raise VideoReadError(
            f"torchcodec returned {frames.shape[2]} x {frames.shape[1]} frames of {path}, not the "
            f"{want[0]} x {want[1]} its display matrix shows; read it with backend pyav"
        )
    return frames


def _torchcodec_count(path: str) -> int:
    from torchcodec.decoders import VideoDecoder

    return int(VideoDecoder(path, seek_mode="exact", num_ffmpeg_threads=1).metadata.num_frames)


def _decord_frames(vr, source: "VideoSource", absolute: Sequence[int], relative: Sequence[int]) -> np.ndarray:
    try:
        batch = vr.get_batch(list(absolute)).asnumpy()
        if batch.ndim == 4 and batch.shape[-1] == 3:
            return batch
    except Exception as e:
        if "DECORDArrayCopyFromTo" not in str(e):  # decord's row-alignment bug: use PyAV
            raise VideoReadError(f"cannot decode frames of {source.path}: {e}") from e
    return pyav_frames(source.path, relative, source.start, end=source.end)


def read_frames(
    source: VideoSource,
    indices: Sequence[int],
    expected_n_frames: int,
    min_size: Optional[Sequence[int]] = None,
    backend: str = "auto",
) -> "torch.Tensor":
    """Decode the frames ``indices`` (relative to the source's first frame) as ``T x H x W x 3`` uint8.

    ``expected_n_frames`` is the manifest's ``n_frames``; a source that holds a different number of
    frames raises :class:`VideoReadError`, since sampling on a wrong count would silently cut or
    stretch the sentence.

    ``min_size`` is how large the transform needs the frames: the ``size`` of its resize
    (:func:`~.transforms.resize_size`, ``build_video_transform(...).min_size``), ``[s]`` for a
    shorter side ``s`` or ``[h, w]`` for a whole-frame resize. With it, frames may come back
    smaller than stored but never smaller than that: JPEG frames at the smallest DCT scale whose
    frame still is large enough, video frames at exactly the resize's output size. ``None``
    decodes at full size. The pixels after the transform differ from the full-size path's by
    about one grey level on average (tested in ``tests/test_reduced_decode.py``).

    ``backend`` (video files only): ``"auto"`` uses PyAV where frames are scaled down (seek,
    skipped non-reference frames, scaling inside the RGB conversion) and decord otherwise (with
    PyAV where decord fails, and for videos whose display matrix turns them); ``"decord"``,
    ``"pyav"`` or ``"torchcodec"`` force one. All of them give the same frames for the same
    indices and time range, shown as the display matrix says (:mod:`~.video_utils`).
    """
    import torch  # imported here: listing and probing videos (fairseq-slt-prep) need no torch

    if backend not in VIDEO_BACKENDS:
        raise ValueError(f"video backend {backend!r} is not one of {', '.join(VIDEO_BACKENDS)}")
    if not os.path.exists(source.path):
        raise VideoReadError(f"video not found: {source.path}")
    if source.is_frame_folder:
        files = list_frame_files(source.path)
        if not files:
            raise VideoReadError(f"frame folder has no png/jpg frames: {source.path}")
        _check_count(source, len(files), expected_n_frames)
        return torch.from_numpy(_read_images(source.path, [files[i] for i in indices], min_size))
    if backend == "torchcodec":
        why = torchcodec_unusable()
        if why:
            raise VideoReadError(f"video backend torchcodec is not usable here: {why}")
        try:
            n_total = _torchcodec_count(source.path)
        except Exception as e:
            raise VideoReadError(f"cannot open {source.path} with torchcodec: {e}") from e
        offset = _checked_range(source, n_total, expected_n_frames)
        absolute = [offset + int(i) for i in indices]
        display = pyav_display(source.path)
        return torch.from_numpy(_torchcodec_frames(source.path, absolute, min_size, display))
    header = pyav_header(source.path) if backend == "auto" else None
    scaled = header is not None and scaled_size(header[2], header[3], min_size) is not None
    if backend == "pyav" or scaled or pyav_display(source.path)[0]:  # decord 0.6 cannot turn by 90 degrees
        count = functools.partial(_check_count, source, expected=expected_n_frames)
        frames = pyav_frames(source.path, indices, source.start, min_size, end=source.end, count=count)
        return torch.from_numpy(frames)
    vr = _decord_reader(source.path)
    offset = _checked_range(source, len(vr), expected_n_frames)
    absolute = [offset + int(i) for i in indices]
    return torch.from_numpy(_decord_frames(vr, source, absolute, indices))


def _checked_range(source: VideoSource, n_total: int, expected: int) -> int:
    """The first frame of the source's time range (0 without one), whose frames are found by their
    timestamps (:func:`probe_timing`); a bad range, or a frame count other than the manifest's
    ``expected``, is a :class:`VideoReadError`."""
    offset = 0
    if source.start is not None:
        timing = probe_timing(source.path)
        frames = checked_time_range(source.path, source.start, source.end, timing.fps, timing.n_frames, timing.slots)
        offset, n_total = frames.start, len(frames)
    _check_count(source, n_total, expected)
    return offset


def _check_count(source: VideoSource, found: int, expected: int) -> None:
    if found != expected:
        raise VideoReadError(
            f"{source.path} holds {found} frames but the manifest says n_frames={expected}; "
            "re-run the data preparation for this split"
        )


def _read_image(path: str, draft: Optional[Tuple[int, int]] = None) -> Tuple[np.ndarray, Tuple[int, int]]:
    """One frame as ``H x W x 3`` uint8 (one copy out of PIL; no convert() copy for RGB frames),
    and its stored ``(width, height)``. ``draft`` (JPEG only; other formats ignore it): decode at
    the smallest DCT scale whose frame is at least that ``(width, height)``."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            stored = im.size
            if draft is not None and im.format == "JPEG":
                im.draft("RGB", draft)
            im.load()
            return np.asarray(im if im.mode == "RGB" else im.convert("RGB")), stored
    except Exception as e:
        raise VideoReadError(f"cannot read frame {path}: {e}") from e


def _read_images(folder: str, files: Sequence[str], min_size: Optional[Sequence[int]] = None) -> np.ndarray:
    """Frames ``files`` of a frame folder as ``T x H x W x 3`` uint8, decoded into one buffer;
    JPEG frames at reduced scale where ``min_size`` allows it (see :func:`read_frames`)."""
    draft = _jpeg_draft_request(min_size)
    first, stored = _read_image(files[0], draft)
    out = np.empty((len(files),) + first.shape, dtype=np.uint8)  # T x H x W x 3
    out[0] = first
    for t in range(1, len(files)):
        frame, size = _read_image(files[t], draft)
        if size != stored:
            sizes = sorted({stored, size})
            raise VideoReadError(
                f"frame folder {folder} mixes frame sizes {sizes} (width x height); resize its "
                "frames to one size"
            )
        if frame.shape != first.shape:  # same stored size, one reduced and one not (jpg + png)
            return _read_images(folder, files, None)
        out[t] = frame
    return out


def probe_timing(path: str) -> VideoTiming:
    """Frame rate, frame count and (at a variable frame rate) frame slots of a video file, from its
    packets' timestamps (PyAV; decord's where PyAV cannot open it); read once per file (and
    modification)."""
    stat = os.stat(path)
    return _probe_timing(path, stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=256)
def _probe_timing(path: str, size: int, mtime_ns: int) -> VideoTiming:
    try:
        return pyav_timing(path)
    except VideoReadError as e:
        try:
            return _decord_timing(path)
        except Exception:
            raise e


def _decord_timing(path: str) -> VideoTiming:
    import decord

    vr = decord.VideoReader(path, num_threads=1)
    fps, times = float(vr.get_avg_fps()), vr.get_frame_timestamp(range(len(vr)))[:, 0]
    slots = np.rint((times - times.min()) * fps).astype(np.int64)
    return VideoTiming(fps, len(vr), constant_rate_slots(slots))


def probe_video(path: str) -> Tuple[float, int]:
    """``(fps, n_frames)`` of a video file (:func:`probe_timing`)."""
    timing = probe_timing(path)
    return timing.fps, timing.n_frames
