"""What a frame of a video file is, whichever backend decodes it: pure functions shared by the
backends (:mod:`~.video_io`, :mod:`~.video_pyav`) and the data preparation.

* Frame ``k`` is the ``k``-th frame in presentation order (decord's and torchcodec's index, a
  frame folder's ``k``-th file), also at a variable frame rate.
* A time range ``[start, end)`` holds the frames whose timestamp ``t`` (seconds from the first
  frame) has ``round(start * fps) <= round(t * fps) < round(end * fps)``, ``fps`` being the
  video's average frame rate (:func:`time_range_to_frames`).
* Frames are shown as the stream's display matrix says, turned by multiples of 90 degrees
  (:func:`display_turns`).
"""

import math
from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import numpy as np


class VideoReadError(RuntimeError):
    """A video source is missing, empty or cannot be decoded."""


def time_range_to_frames(start: float, end: float, fps: float, slots: Optional[Sequence[int]] = None) -> range:
    """Frame indices of the half-open time range ``[start, end)`` at ``fps``.

    ``slots`` (a variable frame rate, :func:`frame_slots`): each frame's timestamp in frames of
    ``fps``, rounded; the range is then the frames whose slot lies in ``[round(start * fps),
    round(end * fps))``. Without it frame ``k`` is at ``k / fps``, which gives the same range as
    slots ``0, 1, 2, ...``.
    """
    first = int(round(start * fps))
    last = int(round(end * fps))
    if slots is not None:
        first, last = int(np.searchsorted(slots, first)), int(np.searchsorted(slots, last))
    return range(first, max(first, last))


def frame_slots(pts: Sequence[int], first_pts: int, time_base: float, fps: float) -> np.ndarray:
    """Each frame's timestamp in frames of the average rate ``fps``, rounded: ``round((pts -
    first_pts) * time_base * fps)``. Every caller rounds with this one expression, so a scan of a
    whole video and a scan of one of its time ranges place each frame alike."""
    return np.rint((np.asarray(pts, dtype=np.int64) - first_pts) * time_base * fps).astype(np.int64)


def constant_rate_slots(slots: np.ndarray) -> Optional[np.ndarray]:
    """``slots``, or ``None`` where frame ``k``'s slot is ``k`` (a constant frame rate)."""
    return None if np.array_equal(slots, np.arange(len(slots))) else slots


def nominal_length(n_frames: int, slots: Optional[Sequence[int]] = None) -> int:
    """How many frames of its average rate a video lasts: ``n_frames``, or at a variable frame
    rate one past its last frame's slot."""
    return n_frames if slots is None else int(slots[-1]) + 1


@dataclass(frozen=True, eq=False)
class VideoTiming:
    """Average frame rate and frame count of a video file, and each frame's slot
    (:func:`frame_slots`) where the frames are not at ``k / fps`` (``None`` otherwise)."""

    fps: float
    n_frames: int
    slots: Optional[np.ndarray] = None


def checked_time_range(
    path: str, start: float, end: float, fps: float, n_total: int, slots: Optional[Sequence[int]] = None
) -> range:
    """Frames of ``[start, end)`` seconds of a source of ``n_total`` frames at ``fps`` (``slots``:
    see :func:`time_range_to_frames`); a range that is empty or ends past the source's last frame
    is a :class:`VideoReadError`."""
    nominal = time_range_to_frames(start, end, fps)
    frames = time_range_to_frames(start, end, fps, slots)
    if len(frames) == 0 or nominal.stop > nominal_length(n_total, slots):
        where = "is empty" if len(frames) == 0 else f"ends past the end of {path} ({n_total} frames)"
        if slots is not None:
            where += f" at a variable frame rate, {nominal_length(n_total, slots) / fps:.3f} s long"
        raise VideoReadError(
            f"time range [{start}, {end}) s at {fps:g} fps is frames [{nominal.start}, {nominal.stop}) "
            f"and {where}"
        )
    return frames


def scaled_size(width: int, height: int, min_size: Optional[Sequence[int]]) -> Optional[Tuple[int, int]]:
    """``(width, height)`` a ``width x height`` frame is scaled down to for ``min_size``, or
    ``None`` where it is not scaled (no ``min_size``, or the frame is not larger than it).

    ``min_size`` is the ``size`` of the transform's resize (:func:`~.transforms.resize_size`):
    ``[s]``, the shorter side becomes ``s`` (aspect ratio kept, the longer side rounded down as
    torchvision does, so the transform's own resize is then a no-op), or ``[h, w]``, the frame
    becomes ``w x h``. Frames are never scaled up: that stays the transform's job.
    """
    if not min_size:
        return None
    if len(min_size) == 2:
        h, w = int(min_size[0]), int(min_size[1])
        return (w, h) if w <= width and h <= height and (w, h) != (width, height) else None
    short = int(min_size[0])
    if short >= min(width, height):
        return None
    if width <= height:
        return short, int(short * height / width)
    return int(short * width / height), short


def display_turns(matrix: Optional[Sequence[int]]) -> int:
    """Counter-clockwise quarter turns (0-3) that show a frame as its display matrix says.

    ``matrix``: FFmpeg's 3 x 3 display matrix (16.16 fixed point, row-major; ``None``: no
    rotation). The angle is FFmpeg's ``av_display_rotation_get``; a matrix that mirrors the frame,
    or turns it by an angle that is not a multiple of 90 degrees, is a :class:`ValueError`.
    """
    if matrix is None:
        return 0
    a, b, c, d = (int(matrix[i]) for i in (0, 1, 3, 4))
    if a * d - b * c == 0:  # degenerate: FFmpeg reads no rotation from it either
        return 0
    if a * d - b * c < 0:
        raise ValueError("its display matrix mirrors the frame")
    angle = -math.degrees(math.atan2(b, a))
    turns = round(angle / 90)
    if abs(angle - 90 * turns) > 1.0:
        raise ValueError(f"its display matrix turns the frame by {angle:.1f} degrees")
    return turns % 4


def turned(frames: np.ndarray, turns: int) -> np.ndarray:
    """``... x H x W x C`` frames turned counter-clockwise by ``turns`` quarter turns (a view)."""
    return np.rot90(frames, turns, axes=(-3, -2)) if turns else frames
