"""Pure helpers for reading sign videos and for the length arithmetic of the visual encoder.

Two kinds of video source are supported (see README, "Data"):

* a file decord can read (mp4, avi, ...), optionally restricted to a ``[start, end)`` time range
  in seconds (How2Sign sentences are cut out of the full videos by reference);
* a folder of png/jpg frames (PHOENIX-2014-T and CSL-Daily ship frames), sorted numerically.

Only the frames that are actually sampled are decoded.
"""

import contextlib
import math
import mmap
import os
import re
import sys
import threading
from dataclasses import dataclass
from typing import List, Optional, Sequence

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
        frames = time_range_to_frames(source.start, source.end, vr.get_avg_fps())
        if frames.stop > n_total:
            raise VideoReadError(
                f"time range [{source.start}, {source.end}) s ends at frame {frames.stop} past the "
                f"end of {source.path} ({n_total} frames)"
            )
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


HUGEPAGE_MIN_BYTES = 4 << 20
_HUGEPAGE = 2 << 20


class _FrameBufferPool:
    """Large anonymous memory mappings, advised ``MADV_HUGEPAGE`` and recycled.

    A mapping is handed out as the buffer of one tensor (``torch.frombuffer``), whose storage keeps
    a reference to it; it is free again once that reference is gone, i.e. once no tensor uses its
    memory, so it can be reused without a page fault or the kernel zeroing it. At most
    ``max_maps`` mappings of ``max_bytes`` in all are kept (per process: each DataLoader worker has
    its own pool); beyond that, fresh mappings are made and unmapped with their tensor.
    """

    def __init__(self, max_maps: int = 12, max_bytes: int = 1 << 30):
        self.max_maps, self.max_bytes = max_maps, max_bytes
        self.maps: List[mmap.mmap] = []
        self.lock = threading.Lock()

    def _is_free(self, i: int) -> bool:
        return sys.getrefcount(self.maps[i]) <= 2  # the list's reference and the argument's

    def take(self, nbytes: int) -> mmap.mmap:
        size = -(-nbytes // _HUGEPAGE) * _HUGEPAGE
        with self.lock:
            free = [i for i in range(len(self.maps)) if self._is_free(i)]
            fits = [i for i in free if size <= len(self.maps[i]) <= 2 * size]
            if fits:
                return self.maps[min(fits, key=lambda i: len(self.maps[i]))]
            m = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
            with contextlib.suppress(OSError):  # THP disabled in this kernel: plain pages
                m.madvise(mmap.MADV_HUGEPAGE)
            for i in sorted(free, reverse=True):  # drop unused mappings to make room
                if size > self.max_bytes or len(self.maps) < self.max_maps and self._bytes() + size <= self.max_bytes:
                    break
                del self.maps[i]
            if len(self.maps) < self.max_maps and self._bytes() + size <= self.max_bytes:
                self.maps.append(m)
            return m

    def _bytes(self) -> int:
        return sum(len(m) for m in self.maps)


_POOL = _FrameBufferPool()


def empty_frames(shape: Sequence[int], dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``torch.empty(shape, dtype=dtype)`` (contiguous), from recycled huge pages where large.

    A video's frames or a batch of them is tens to hundreds of MB, allocated afresh per video and
    per batch. glibc serves such sizes with a new ``mmap`` each time, whose first write then takes
    one page fault per 4 KiB and the kernel zeroes every page: measured on the development machine
    that was a quarter of the loader's time (``benchmarks/loader.py``). Tensors of at least
    ``HUGEPAGE_MIN_BYTES`` instead take a pooled mapping (see :class:`_FrameBufferPool`).
    """
    shape = tuple(int(n) for n in shape)
    numel = math.prod(shape)
    nbytes = numel * dtype.itemsize
    if nbytes < HUGEPAGE_MIN_BYTES or not hasattr(mmap, "MADV_HUGEPAGE"):
        return torch.empty(shape, dtype=dtype)
    return torch.frombuffer(_POOL.take(nbytes), dtype=dtype, count=numel).view(shape)


def num_sampled_frames(n_frames: int, keep_ratio: float, max_frames: int) -> int:
    """Frames fed to the model for a video of ``n_frames``: ``ceil(n * keep_ratio)``, at least 1,
    at most ``max_frames`` (over-long videos are capped instead of running out of memory)."""
    n = max(1, int(math.ceil(n_frames * keep_ratio - 1e-9)))
    return min(n, max_frames) if max_frames > 0 else n


def sample_indices(
    n_frames: int, keep_ratio: float, max_frames: int, train: bool, rng: Optional[np.random.Generator] = None
) -> np.ndarray:
    """Temporal down-sampling (paper: keep 25% of the frames).

    Training draws a sorted random subset of the frames; evaluation takes the frame in the middle
    of each of ``k`` equal segments, so it is deterministic. Returns sorted int64 indices.
    """
    k = num_sampled_frames(n_frames, keep_ratio, max_frames)
    if k >= n_frames:
        return np.arange(n_frames, dtype=np.int64)
    if train:
        rng = rng if rng is not None else np.random.default_rng()
        return np.sort(rng.choice(n_frames, size=k, replace=False)).astype(np.int64)
    return np.floor((np.arange(k) + 0.5) * n_frames / k).astype(np.int64)


def parse_temporal_spec(spec: str) -> List[tuple]:
    """Parse a local temporal module spec such as ``"K5"`` or ``"K5,P2,K5,P2"`` (GFSLT-VLP's
    notation): ``K<k>`` is a Conv1d of kernel k with 'same' padding + BatchNorm + ReLU, ``P<k>``
    a max-pool of kernel and stride k."""
    layers = []
    for tok in spec.replace(" ", "").split(","):
        m = re.fullmatch(r"([KP])(\d+)", tok)
        if m is None or int(m.group(2)) < 1:
            raise ValueError(f"bad temporal module spec {spec!r}: expected items like K5 or P2, got {tok!r}")
        layers.append((m.group(1), int(m.group(2))))
    return layers


def tconv_out_lengths(lengths: torch.Tensor, spec: str) -> torch.Tensor:
    """Output lengths of the local temporal module for input ``lengths``.

    'Same'-padded convolutions keep the length (an even kernel loses one step); a pool of size k
    floors the length by k and keeps at least one step.
    """
    out = lengths.clone()
    for kind, k in parse_temporal_spec(spec):
        if kind == "K":
            out = out + 2 * ((k - 1) // 2) - (k - 1)
        else:
            out = torch.div(out, k, rounding_mode="floor")
        out = out.clamp(min=1)
    return out


def lengths_to_padding_mask(lengths: torch.Tensor, max_len: Optional[int] = None) -> torch.Tensor:
    """``B`` lengths -> ``B x T`` bool mask, True at padded positions (fairseq's convention)."""
    max_len = int(lengths.max()) if max_len is None else max_len
    return torch.arange(max_len, device=lengths.device)[None, :] >= lengths[:, None]
