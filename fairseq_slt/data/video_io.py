"""Reading sign videos: video files and frame folders, only the frames that are sampled.

Two kinds of video source are supported (see docs/usage.md, "Data root"):

* a file decord can read (mp4, avi, ...), optionally restricted to a ``[start, end)`` time range
  in seconds (How2Sign sentences are cut out of the full videos by reference);
* a folder of png/jpg frames (PHOENIX-2014-T and CSL-Daily ship frames), sorted numerically.

Only the frames that are actually sampled are decoded.
"""

import os
import re
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp")


class VideoReadError(RuntimeError):
    """A video source is missing, empty or cannot be decoded."""


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


def list_frame_files(folder: str) -> List[str]:
    """Image files of a frame folder, sorted numerically (``images2`` before ``images10``)."""
    names = [n for n in os.listdir(folder) if n.lower().endswith(IMAGE_EXTENSIONS)]
    return [os.path.join(folder, n) for n in sorted(names, key=_natural_key)]


def time_range_to_frames(start: float, end: float, fps: float) -> range:
    """Frame indices of the half-open time range ``[start, end)`` at ``fps``."""
    first = int(round(start * fps))
    last = int(round(end * fps))
    return range(first, max(first, last))


def checked_time_range(path: str, start: float, end: float, fps: float, n_total: int) -> range:
    """Frames of ``[start, end)`` seconds of a source of ``n_total`` frames at ``fps``; a range that
    is empty or ends past the source's last frame is a :class:`VideoReadError`."""
    frames = time_range_to_frames(start, end, fps)
    if len(frames) == 0 or frames.stop > n_total:
        where = "is empty" if len(frames) == 0 else f"ends past the end of {path} ({n_total} frames)"
        raise VideoReadError(
            f"time range [{start}, {end}) s at {fps:g} fps is frames [{frames.start}, {frames.stop}) "
            f"and {where}"
        )
    return frames


def _decord_reader(path: str):
    import decord  # imported lazily: workers import it once, on first use

    try:
        return decord.VideoReader(path, ctx=decord.cpu(0), num_threads=1)
    except Exception as e:  # decord raises its own DECORDError / RuntimeError
        raise VideoReadError(f"cannot decode video {path}: {e}") from e


def _pyav_frames(path: str, indices: Sequence[int], start: Optional[float]) -> np.ndarray:
    """Decode frames ``indices`` (counted from ``start`` seconds) with PyAV.

    Used where decord fails: decord 0.6 cannot copy frames whose width is not a multiple of its
    row alignment (e.g. 48 or 210 px wide), a common size for cropped sign language videos.
    """
    import av

    wanted = sorted(set(int(i) for i in indices))
    found = {}
    try:
        with av.open(path) as container:
            stream = container.streams.video[0]
            fps = float(stream.average_rate)
            t0 = start or 0.0
            if t0 > 0:
                container.seek(int(t0 / stream.time_base), stream=stream, backward=True, any_frame=False)
            for frame in container.decode(stream):
                i = int(round((frame.time - t0) * fps))
                if i in found or i < 0:
                    continue
                if i > wanted[-1]:
                    break
                if i in wanted:
                    found[i] = frame.to_ndarray(format="rgb24")
    except Exception as e:
        raise VideoReadError(f"cannot decode video {path}: {e}") from e
    missing = [i for i in wanted if i not in found]
    if missing:
        raise VideoReadError(f"cannot decode frames {missing[:5]} of {path}: the video ends early")
    return np.stack([found[int(i)] for i in indices])


def _decode(vr, path: str, absolute: Sequence[int], relative: Sequence[int], start) -> np.ndarray:
    try:
        batch = vr.get_batch(list(absolute)).asnumpy()
        if batch.ndim == 4 and batch.shape[-1] == 3:
            return batch
    except Exception as e:
        if "DECORDArrayCopyFromTo" not in str(e):  # decord's row-alignment bug: use PyAV
            raise VideoReadError(f"cannot decode frames of {path}: {e}") from e
    return _pyav_frames(path, relative, start)


def read_frames(source: VideoSource, indices: Sequence[int], expected_n_frames: int) -> torch.Tensor:
    """Decode the frames ``indices`` (relative to the source's first frame) as ``T x H x W x 3`` uint8.

    ``expected_n_frames`` is the manifest's ``n_frames``; a source that holds a different number of
    frames raises :class:`VideoReadError`, since sampling on a wrong count would silently cut or
    stretch the sentence.
    """
    if not os.path.exists(source.path):
        raise VideoReadError(f"video not found: {source.path}")
    if source.is_frame_folder:
        files = list_frame_files(source.path)
        if not files:
            raise VideoReadError(f"frame folder has no png/jpg frames: {source.path}")
        _check_count(source, len(files), expected_n_frames)
        return torch.from_numpy(_read_images(source.path, [files[i] for i in indices]))
    vr = _decord_reader(source.path)
    n_total = len(vr)
    offset = 0
    if source.start is not None:
        frames = checked_time_range(source.path, source.start, source.end, vr.get_avg_fps(), n_total)
        offset, n_total = frames.start, len(frames)
    _check_count(source, n_total, expected_n_frames)
    absolute = [offset + int(i) for i in indices]
    return torch.from_numpy(_decode(vr, source.path, absolute, indices, source.start))


def _check_count(source: VideoSource, found: int, expected: int) -> None:
    if found != expected:
        raise VideoReadError(
            f"{source.path} holds {found} frames but the manifest says n_frames={expected}; "
            "re-run the data preparation for this split"
        )


def _read_image(path: str) -> np.ndarray:
    """One frame as ``H x W x 3`` uint8 (one copy out of PIL; no convert() copy for RGB frames)."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            im.load()
            return np.asarray(im if im.mode == "RGB" else im.convert("RGB"))
    except Exception as e:
        raise VideoReadError(f"cannot read frame {path}: {e}") from e


def _read_images(folder: str, files: Sequence[str]) -> np.ndarray:
    """Frames ``files`` of a frame folder as ``T x H x W x 3`` uint8, decoded into one buffer."""
    first = _read_image(files[0])
    out = np.empty((len(files),) + first.shape, dtype=np.uint8)  # T x H x W x 3
    out[0] = first
    for t in range(1, len(files)):
        frame = _read_image(files[t])
        if frame.shape != first.shape:
            sizes = sorted({first.shape[1::-1], frame.shape[1::-1]})
            raise VideoReadError(
                f"frame folder {folder} mixes frame sizes {sizes} (width x height); resize its "
                "frames to one size"
            )
        out[t] = frame
    return out


def probe_video(path: str) -> Tuple[float, int]:
    """``(fps, n_frames)`` of a video file (decord, with PyAV where decord cannot open it)."""
    try:
        import decord

        vr = decord.VideoReader(path, num_threads=1)
        return float(vr.get_avg_fps()), len(vr)
    except Exception:
        import av

        with av.open(path) as container:
            stream = container.streams.video[0]
            n = stream.frames or sum(1 for _ in container.decode(stream))
            return float(stream.average_rate), int(n)
