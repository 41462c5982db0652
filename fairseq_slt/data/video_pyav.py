"""Reading video files with PyAV: frames found by their packets' timestamps, only the wanted ones
decoded, turned as the display matrix says.

Frame ``k`` is the ``k``-th frame in presentation order, as decord and torchcodec count, at any
frame rate: the packets' timestamps are scanned (no decoding) and sorted. A time range scans only
its own packets, from the keyframe before it (:func:`~.video_utils.time_range_to_frames` gives
the rule). The wanted frames are then decoded from the keyframe before the first of them.
"""

import functools
import math
import os
from typing import Callable, Dict, Optional, Sequence, Tuple

import numpy as np

from .video_utils import (
    VideoReadError,
    VideoTiming,
    checked_time_range,
    constant_rate_slots,
    display_turns,
    frame_slots,
    scaled_size,
    turned,
)


def _packet_pts(packet) -> Optional[int]:
    """The presentation timestamp of a packet's frame (its decoding timestamp where it has none);
    ``None`` for the demuxer's empty flush packet and for packets whose frame the decoder drops."""
    if not packet.size or packet.is_discard:
        return None
    return packet.pts if packet.pts is not None else packet.dts


def _all_pts(container, stream) -> np.ndarray:
    """Timestamps of every frame of ``stream``, in presentation order (call it right after opening)."""
    pts = [p for p in map(_packet_pts, container.demux(stream)) if p is not None]
    return np.sort(np.asarray(pts, dtype=np.int64))


def _first_pts(container, stream, path: str) -> int:
    """Timestamp of the first frame in presentation order, from the first packets (call it right
    after opening): no frame decoded at or after a timestamp is shown before it."""
    first = None
    for packet in container.demux(stream):
        pts = _packet_pts(packet)
        if pts is None:
            continue
        first = pts if first is None else min(first, pts)
        if packet.dts is None or packet.dts >= first:
            break
    if first is None:
        raise VideoReadError(f"{path} holds no video frames")
    return first


def _average_fps(stream, path: str) -> float:
    if not stream.average_rate:
        raise VideoReadError(f"the video stream of {path} gives no frame rate")
    return float(stream.average_rate)


def _range_pts(
    container, stream, path: str, first: int, start: float, end: Optional[float]
) -> Tuple[np.ndarray, bool]:
    """Timestamps of the frames of ``[start, end)`` seconds (``end=None``: to the end of the video)
    in presentation order, and whether the video ends before the range does; ``first`` is the
    video's first frame. Only the range's packets are read, from the keyframe before it."""
    fps, tb = _average_fps(stream, path), float(stream.time_base)
    lo = int(round(start * fps))
    hi = None if end is None else int(round(end * fps))
    target = first + int(math.floor((lo - 0.5) / fps / tb)) - 1 if lo > 0 else first  # below slot lo
    for attempt in range(2):  # a seek that lands past the range's first frame: scan from the start
        container.seek(target if attempt == 0 else first, stream=stream, backward=True, any_frame=False)
        pts, landed, ended = [], None, True
        for packet in container.demux(stream):
            p = _packet_pts(packet)
            if p is None:
                continue
            landed = p if landed is None else landed
            pts.append(p)
            if hi is not None and packet.dts is not None and frame_slots([packet.dts], first, tb, fps)[0] >= hi:
                ended = False  # every later frame is shown at or after this one is decoded
                break
        if landed is None or landed <= target:
            break
    pts = np.asarray(pts, dtype=np.int64)
    slots = frame_slots(pts, first, tb, fps)
    inside = slots >= lo if hi is None else (slots >= lo) & (slots < hi)
    past = ended and hi is not None and (len(slots) == 0 or hi > int(slots.max()) + 1)
    return np.sort(pts[inside]), past


def _source_pts(
    container, stream, path: str, start: Optional[float], end: Optional[float]
) -> Tuple[np.ndarray, int]:
    """Timestamps of the frames of a video file or of its time range, in presentation order, and
    that of the video's first frame; a bad range is the :class:`VideoReadError` of
    :func:`~.video_utils.checked_time_range` (call it right after opening)."""
    if start is None:
        pts = _all_pts(container, stream)
        if len(pts) == 0:
            raise VideoReadError(f"{path} holds no video frames")
        return pts, int(pts[0])
    first = _first_pts(container, stream, path)
    pts, past = _range_pts(container, stream, path, first, start, end)
    if (past or len(pts) == 0) and end is not None:
        timing = pyav_timing(path)  # the whole video, for the same message as the other backends
        checked_time_range(path, start, end, timing.fps, timing.n_frames, timing.slots)
    if len(pts) == 0:
        raise VideoReadError(f"no frame of {path} is at or after {start} s")
    return pts, first


def _frame_turns(frame, path: str) -> int:
    from av.sidedata.sidedata import Type

    data = frame.side_data.get(Type.DISPLAYMATRIX)
    try:
        return display_turns(None if data is None else np.frombuffer(bytes(data), dtype=np.int32))
    except ValueError as e:
        raise VideoReadError(
            f"{path}: {e}; only turns by multiples of 90 degrees are applied: re-encode it as it is "
            "shown (ffmpeg -i in.mp4 out.mp4 applies the matrix)"
        ) from e


@functools.lru_cache(maxsize=1)
def _one_thread() -> dict:
    """``threads=1`` for PyAV's RGB conversion where it takes the option (PyAV >= 17, which scales
    with slice threads by default and keeps one converter per thread): a DataLoader worker forked
    from another thread frees that converter and would wait forever for slice threads it does not
    have. The pixels are the same."""
    import av

    return {"threads": 1} if int(av.__version__.split(".")[0]) >= 17 else {}


def _converter(frame, ctx, min_size: Optional[Sequence[int]], path: str) -> Callable:
    """RGB conversion of the frames of a stream, scaled for ``min_size`` as they are shown (the
    display matrix of ``frame``, the first one converted, turns them), then turned."""
    turns = _frame_turns(frame, path)
    size = None
    if ctx.width and ctx.height:
        shown = (ctx.height, ctx.width) if turns % 2 else (ctx.width, ctx.height)
        size = scaled_size(*shown, min_size)
        if size is not None and turns % 2:
            size = size[::-1]  # as stored

    options = _one_thread()

    def convert(f) -> np.ndarray:
        if size is None:
            return turned(f.to_ndarray(format="rgb24", **options), turns)
        rgb = f.to_ndarray(width=size[0], height=size[1], format="rgb24", interpolation="BILINEAR", **options)
        return turned(rgb, turns)

    return convert


def _decode(
    container, stream, targets: Sequence[int], origin: int, min_size, skip_unused: bool, path: str
) -> np.ndarray:
    """The frames with timestamps ``targets``, decoded from the keyframe before the first of them
    (from ``origin``, the first frame, where that seek lands past it)."""
    wanted = sorted(set(int(t) for t in targets))
    want = set(wanted)
    ctx = stream.codec_context
    ctx.thread_count = 1  # one decoding thread, as decord's (a DataLoader worker is one core)
    found: Dict[int, np.ndarray] = {}
    convert = None
    for attempt in range(2):
        container.seek(wanted[0] if attempt == 0 else origin, stream=stream, backward=True, any_frame=False)
        ctx.flush_buffers()
        landed, done = None, False
        for packet in container.demux(stream):
            if skip_unused:  # a frame no one wants is not decoded if no other frame references it
                unused = packet.pts is not None and packet.pts not in want
                ctx.skip_frame = "NONREF" if unused else "DEFAULT"
            for frame in ctx.decode(packet):
                pts = frame.pts if frame.pts is not None else frame.dts
                if pts is None:
                    continue
                landed = pts if landed is None else landed
                if pts in found or pts not in want:
                    done = pts > wanted[-1]
                    if done:
                        break
                    continue
                convert = convert or _converter(frame, ctx, min_size, path)
                found[pts] = convert(frame)
            if done or len(found) == len(wanted):
                break
        ctx.skip_frame = "DEFAULT"
        if len(found) == len(wanted) or landed is None or landed <= wanted[0]:
            break
    missing = [t for t in wanted if t not in found]
    if missing:
        raise VideoReadError(
            f"cannot decode {len(missing)} of the frames wanted from {path} (timestamps {missing[:5]}): "
            "the decoder returned none for them"
        )
    return np.stack([found[int(t)] for t in targets])


def pyav_frames(
    path: str,
    indices: Sequence[int],
    start: Optional[float] = None,
    min_size: Optional[Sequence[int]] = None,
    skip_unused: bool = True,
    end: Optional[float] = None,
    count: Optional[Callable[[int], None]] = None,
) -> np.ndarray:
    """Decode frames ``indices`` of a video file, or of its time range ``[start, end)`` seconds
    (``end=None``: from ``start`` on), with PyAV, as ``T x H x W x 3`` uint8, turned as the display
    matrix shows them. ``count`` is called with the number of frames of the file or range before
    anything is decoded (the caller checks it against the manifest).

    Decoding starts at the keyframe before the first wanted frame (a seek); with ``skip_unused``,
    frames that are not wanted and that no other frame references (H.264's non-reference B
    frames) are not decoded: the wanted frames are the same pixels either way. Wanted frames are
    converted to RGB and, with ``min_size``, scaled (swscale bilinear, area-averaging when
    shrinking) in one pass. Also the fallback where decord fails: decord 0.6 cannot copy frames
    whose width is not a multiple of its row alignment (e.g. 48 or 210 px wide), nor frames its
    display matrix turns by 90 degrees.
    """
    import av

    try:
        with av.open(path) as container:
            stream = container.streams.video[0]
            pts, first = _source_pts(container, stream, path, start, end)
            if count is not None:
                count(len(pts))
            if max(indices) >= len(pts):
                raise VideoReadError(f"cannot decode frame {max(indices)} of {path}: it holds {len(pts)} frames")
            targets = [int(pts[int(i)]) for i in indices]
            return _decode(container, stream, targets, first, min_size, skip_unused, path)
    except VideoReadError:
        raise
    except Exception as e:
        raise VideoReadError(f"cannot decode video {path}: {e}") from e


def pyav_timing(path: str) -> VideoTiming:
    """Frame rate, frame count and frame slots of a video file, from all its packets' timestamps."""
    import av

    try:
        with av.open(path) as container:
            stream = container.streams.video[0]
            pts = _all_pts(container, stream)
            if len(pts) == 0:
                raise VideoReadError(f"{path} holds no video frames")
            fps = _average_fps(stream, path)
            slots = frame_slots(pts, int(pts[0]), float(stream.time_base), fps)
            return VideoTiming(fps, len(pts), constant_rate_slots(slots))
    except VideoReadError:
        raise
    except Exception as e:
        raise VideoReadError(f"cannot decode video {path}: {e}") from e


def pyav_header(path: str) -> Optional[Tuple[float, int, int, int]]:
    """``(fps, n_frames, width, height)`` from the container's header, ``None`` where it does not
    give the frame count."""
    import av

    try:
        with av.open(path) as container:
            stream = container.streams.video[0]
            ctx = stream.codec_context
            if not stream.frames or not stream.average_rate:
                return None
            return float(stream.average_rate), int(stream.frames), ctx.width, ctx.height
    except Exception as e:
        raise VideoReadError(f"cannot decode video {path}: {e}") from e


def pyav_display(path: str) -> Tuple[int, int, int]:
    """``(turns, width, height)``: the counter-clockwise quarter turns the display matrix asks for
    (:func:`~.video_utils.display_turns`) and the stored frame size, from the first frame; read
    once per file (and modification)."""
    stat = os.stat(path)
    return _display(path, stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=256)
def _display(path: str, size: int, mtime_ns: int) -> Tuple[int, int, int]:
    import av

    try:
        with av.open(path) as container:
            stream = container.streams.video[0]
            stream.codec_context.thread_count = 1
            frame = next(container.decode(stream))
            return _frame_turns(frame, path), frame.width, frame.height
    except VideoReadError:
        raise
    except Exception as e:
        raise VideoReadError(f"cannot decode video {path}: {e}") from e
