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
"""

import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Dict, List, Optional, Sequence, Tuple

import numpy as np

if TYPE_CHECKING:
    import torch

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp")
VIDEO_BACKENDS = ("auto", "decord", "pyav", "torchcodec")


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


def _jpeg_draft_request(min_size: Optional[Sequence[int]]) -> Optional[Tuple[int, int]]:
    """The ``(width, height)`` to ask ``Image.draft`` for: it picks the largest DCT scale
    (1/2, 1/4, 1/8) whose frame still is at least that large on both sides."""
    if not min_size:
        return None
    if len(min_size) == 2:
        return int(min_size[1]), int(min_size[0])
    return int(min_size[0]), int(min_size[0])  # both sides >= s: the shorter one is


def _pyav_frames(
    path: str,
    indices: Sequence[int],
    start: Optional[float],
    min_size: Optional[Sequence[int]] = None,
    skip_unused: bool = True,
) -> np.ndarray:
    """Decode frames ``indices`` (counted from the frame at ``start`` seconds, as decord's frame
    index ``round(start * fps)``) with PyAV, as ``T x H x W x 3`` uint8.

    Decoding starts at the keyframe before the first wanted frame (a seek); with ``skip_unused``,
    frames that are not wanted and that no other frame references (H.264's non-reference B
    frames) are not decoded: the wanted frames are the same pixels either way. Wanted frames are
    converted to RGB and, with ``min_size``, scaled (swscale bilinear, area-averaging when
    shrinking) in one pass. Also the fallback where decord fails: decord 0.6 cannot copy frames
    whose width is not a multiple of its row alignment (e.g. 48 or 210 px wide).
    """
    import av

    try:
        with av.open(path) as container:
            stream = container.streams.video[0]
            fps = float(stream.average_rate)
            offset = int(round(start * fps)) if start else 0
            absolute = [offset + int(i) for i in indices]
            return _pyav_decode(container, stream, fps, absolute, min_size, skip_unused, path)
    except VideoReadError:
        raise
    except Exception as e:
        raise VideoReadError(f"cannot decode video {path}: {e}") from e


def _pyav_decode(container, stream, fps, absolute, min_size, skip_unused, path) -> np.ndarray:
    from av.video.reformatter import VideoReformatter

    wanted = sorted(set(absolute))
    ctx = stream.codec_context
    ctx.thread_count = 1  # one decoding thread, as decord's (a DataLoader worker is one core)
    tb = float(stream.time_base)
    t_first = stream.start_time if stream.start_time is not None else 0

    def index(pts):  # absolute frame index of a pts, as decord counts frames
        return int(round((pts - t_first) * tb * fps))

    want = set(wanted)
    found: Dict[int, np.ndarray] = {}
    # our own scaler, one thread, freed with this call: PyAV's default keeps one per thread with
    # swscale's worker threads, and a process forked later (a DataLoader worker) hangs freeing it
    reformatter = VideoReformatter()
    size = scaled_size(ctx.width, ctx.height, min_size) if ctx.width and ctx.height else None
    for attempt in range(2):  # a seek that lands past the first wanted frame: decode from 0
        if attempt == 0 and wanted[0] > 0:
            target = t_first + int(wanted[0] / fps / tb)
            container.seek(target, stream=stream, backward=True, any_frame=False)
        elif attempt == 1:
            container.seek(t_first, stream=stream, backward=True, any_frame=False)
        ctx.flush_buffers()
        first_seen, done = None, False
        for packet in container.demux(stream):
            if skip_unused:  # a frame no one wants is not decoded if no other frame references it
                unused = packet.pts is not None and index(packet.pts) not in want
                ctx.skip_frame = "NONREF" if unused else "DEFAULT"
            for frame in ctx.decode(packet):
                if frame.pts is None:
                    continue
                i = index(frame.pts)
                first_seen = i if first_seen is None else first_seen
                if i in found or i not in want:
                    done = i > wanted[-1]
                    if done:
                        break
                    continue
                if size is None:
                    found[i] = frame.to_ndarray(format="rgb24")
                else:
                    found[i] = reformatter.reformat(
                        frame, width=size[0], height=size[1], format="rgb24", interpolation="BILINEAR", threads=1
                    ).to_ndarray()
            if done or len(found) == len(wanted):
                break
        ctx.skip_frame = "DEFAULT"
        if len(found) == len(wanted) or attempt == 1 or first_seen is None or first_seen <= wanted[0]:
            break
    missing = [i for i in wanted if i not in found]
    if missing:
        raise VideoReadError(f"cannot decode frames {missing[:5]} of {path}: the video ends early")
    return np.stack([found[int(i)] for i in absolute])


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


def _torchcodec_frames(path: str, absolute: Sequence[int], min_size: Optional[Sequence[int]]) -> np.ndarray:
    """Frames ``absolute`` with torchcodec (``pip install torchcodec``; FFmpeg's shared libraries),
    scaled by its own antialiased bilinear resize where ``min_size`` shrinks them."""
    from torchcodec.decoders import VideoDecoder  # read_frames checked torchcodec_unusable()
    from torchcodec.transforms import Resize

    try:
        meta = VideoDecoder(path, seek_mode="exact", num_ffmpeg_threads=1).metadata
        size = scaled_size(meta.width, meta.height, min_size)
        transforms = [Resize((size[1], size[0]))] if size else None
        decoder = VideoDecoder(
            path, seek_mode="exact", num_ffmpeg_threads=1, dimension_order="NHWC", transforms=transforms
        )
        return decoder.get_frames_at([int(i) for i in absolute]).data.numpy()
    except Exception as e:
        raise VideoReadError(f"cannot decode frames of {path} with torchcodec: {e}") from e


def _torchcodec_info(path: str) -> Tuple[float, int]:
    from torchcodec.decoders import VideoDecoder

    meta = VideoDecoder(path, seek_mode="exact", num_ffmpeg_threads=1).metadata
    return float(meta.average_fps), int(meta.num_frames)


def _decode(vr, path: str, absolute: Sequence[int], relative: Sequence[int], start) -> np.ndarray:
    try:
        batch = vr.get_batch(list(absolute)).asnumpy()
        if batch.ndim == 4 and batch.shape[-1] == 3:
            return batch
    except Exception as e:
        if "DECORDArrayCopyFromTo" not in str(e):  # decord's row-alignment bug: use PyAV
            raise VideoReadError(f"cannot decode frames of {path}: {e}") from e
    return _pyav_frames(path, relative, start)


def _pyav_info(path: str) -> Optional[Tuple[float, int, int, int]]:
    """``(fps, n_frames, width, height)`` from the container's header, ``None`` where it does not
    give the frame count (then decord counts the frames)."""
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
    PyAV where decord fails); ``"decord"``, ``"pyav"`` or ``"torchcodec"`` force one.
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
            fps, n_total = _torchcodec_info(source.path)
        except Exception as e:
            raise VideoReadError(f"cannot open {source.path} with torchcodec: {e}") from e
        offset, _ = _checked_range(source, fps, n_total, expected_n_frames)
        absolute = [offset + int(i) for i in indices]
        return torch.from_numpy(_torchcodec_frames(source.path, absolute, min_size))
    info = _pyav_info(source.path) if backend in ("auto", "pyav") else None
    if info is not None and (backend == "pyav" or scaled_size(info[2], info[3], min_size) is not None):
        _checked_range(source, info[0], info[1], expected_n_frames)
        return torch.from_numpy(_pyav_frames(source.path, indices, source.start, min_size))
    if backend == "pyav":  # no frame count in the header: decord counts, PyAV decodes
        fps, n_total = probe_video(source.path)
        _checked_range(source, fps, n_total, expected_n_frames)
        return torch.from_numpy(_pyav_frames(source.path, indices, source.start, min_size))
    vr = _decord_reader(source.path)
    offset, _ = _checked_range(source, vr.get_avg_fps(), len(vr), expected_n_frames)
    absolute = [offset + int(i) for i in indices]
    return torch.from_numpy(_decode(vr, source.path, absolute, indices, source.start))


def _checked_range(source: VideoSource, fps: float, n_total: int, expected: int) -> Tuple[int, int]:
    """``(offset, n_frames)`` of the source's time range (the whole video without one); a bad
    range, or a frame count other than the manifest's ``expected``, is a :class:`VideoReadError`."""
    offset = 0
    if source.start is not None:
        frames = checked_time_range(source.path, source.start, source.end, fps, n_total)
        offset, n_total = frames.start, len(frames)
    _check_count(source, n_total, expected)
    return offset, n_total
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
