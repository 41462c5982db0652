"""A prepared frame store: every frame of every sentence, decoded once and stored at the size
the model's pipeline first resizes to, as JPEG in shard files with an index.

Decoding a 1280 x 720 H.264 video (How2Sign) costs far more than the model's use of the frame,
which the transform shrinks to 256 px at once. The store does that decoding once: for each
sentence (a video file, a ``[start, end)`` range of one, or a frame folder) it keeps all its
frames, already resized to the data config's ``resize`` and encoded as JPEG, so that any subset of
them (the 25% sampling differs every epoch) is read by a seek and a small JPEG decode.

Layout of a store folder::

    meta.json                    # format, the video settings it was written with, quality
    shard-00000.bin              # concatenated JPEG frames of a group of sentences
    shard-00000.idx.json         # {sentence key: [[offset, length], ...]} per frame, in order

A shard and its index are renamed into place when the shard is complete, so an interrupted
writer leaves no half shard behind and a rerun continues with the sentences not yet stored. The
sentence key is the video's path relative to ``video_root`` plus the time range, so the store
serves every split and survives re-splitting. The data config names it (``frame_store:``) and the
dataset reads it through the same ``video`` column; a store written with another ``resize`` than
the data config's is refused.
"""

import io
import json
import logging
import os
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from .video_io import VideoReadError, VideoSource

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

FORMAT = "jpeg-shards-1"
META = "meta.json"
DEFAULT_QUALITY = 95


class FrameStoreError(ValueError):
    """A frame store that cannot be used with this data config (other settings, not a store)."""


def sentence_key(source: VideoSource, video_root: str) -> str:
    """``videos/a.mp4`` or ``videos/a.mp4|12.34|15.6``: the video relative to ``video_root``
    (its real path, so ``./a.mp4`` and ``a.mp4`` are one video) and the time range."""
    rel = os.path.relpath(os.path.realpath(source.path), os.path.realpath(video_root))
    if source.start is None:
        return rel
    return f"{rel}|{source.start!r}|{source.end!r}"


def store_settings(resize, quality: int = DEFAULT_QUALITY) -> Dict:
    """What a store's frames depend on: the data config's ``resize`` and the JPEG quality."""
    return {"format": FORMAT, "resize": list(resize) if isinstance(resize, (list, tuple)) else resize,
            "quality": quality}


def check_settings(store_dir: str, meta: Dict, resize) -> None:
    """Refuse a store whose frames were written for another ``resize`` than the data config's."""
    if meta.get("format") != FORMAT:
        raise FrameStoreError(f"{store_dir}: not a frame store of this version (format {meta.get('format')!r}, "
                              f"expected {FORMAT}); write it again with fairseq-slt-frame-store")
    want = store_settings(resize)["resize"]
    if meta.get("resize") != want:
        raise FrameStoreError(
            f"{store_dir} holds frames resized to {meta.get('resize')} (video.resize when it was written), but "
            f"the data config's video.resize is {want}: the model would get other pixels than its config "
            "says; write a store for this config (fairseq-slt-frame-store DATA --out NEW_FOLDER) or set "
            "video.resize back"
        )


def read_meta(store_dir: str) -> Dict:
    path = os.path.join(store_dir, META)
    if not os.path.isfile(path):
        raise FrameStoreError(f"{store_dir}: not a frame store (no {META}); write it with fairseq-slt-frame-store")
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def shard_names(store_dir: str) -> List[str]:
    """The complete shards (those with an index), in order."""
    return sorted(n[: -len(".idx.json")] for n in os.listdir(store_dir) if n.endswith(".idx.json"))


def load_index(store_dir: str) -> Dict[str, Tuple[str, np.ndarray]]:
    """``{sentence key: (shard name, n x 2 int64 [offset, length])}`` of every complete shard."""
    index = {}
    for shard in shard_names(store_dir):
        with open(os.path.join(store_dir, shard + ".idx.json"), encoding="utf-8") as f:
            for key, spans in json.load(f).items():
                index[key] = (shard, np.asarray(spans, dtype=np.int64).reshape(-1, 2))
    return index


def decode_jpegs(blobs: List[bytes]) -> "torch.Tensor":
    """``T x H x W x 3`` uint8 (a channels-last view of ``T x 3 x H x W``, the layout the transform
    works in) of stored frames, decoded by torchvision's libjpeg-turbo straight into tensors."""
    import torch
    from torchvision.io import ImageReadMode, decode_jpeg

    data = [torch.frombuffer(bytearray(b), dtype=torch.uint8) for b in blobs]
    frames = decode_jpeg(data, mode=ImageReadMode.RGB)  # T x [3 x H x W]
    return torch.stack(frames).permute(0, 2, 3, 1)  # T x H x W x 3


def encode_jpeg(frame: np.ndarray, quality: int) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(frame).save(buf, format="JPEG", quality=quality, subsampling=0 if quality >= 90 else 2)
    return buf.getvalue()


class FrameStore:
    """Reads a frame store (see the module docstring); checks it against the data config's ``resize``.

    File handles are opened lazily in the reading process (a DataLoader worker opens its own)."""

    def __init__(self, store_dir: str, video_root: str, resize):
        self.dir, self.video_root = store_dir, video_root
        self.meta = read_meta(store_dir)
        check_settings(store_dir, self.meta, resize)
        self.index = load_index(store_dir)
        self._fds: Dict[Tuple[int, str], int] = {}

    def __len__(self) -> int:
        return len(self.index)

    def n_frames(self, source: VideoSource) -> Optional[int]:
        entry = self.index.get(sentence_key(source, self.video_root))
        return None if entry is None else len(entry[1])

    def _fd(self, shard: str) -> int:
        key = (os.getpid(), shard)
        if key not in self._fds:
            self._fds[key] = os.open(os.path.join(self.dir, shard + ".bin"), os.O_RDONLY)
        return self._fds[key]

    def read(self, source: VideoSource, indices: Sequence[int], expected_n_frames: int) -> "torch.Tensor":
        """The frames ``indices`` of the sentence as ``T x H x W x 3`` uint8 (already resized)."""
        key = sentence_key(source, self.video_root)
        entry = self.index.get(key)
        if entry is None:
            raise VideoReadError(f"{source.path} ({key}) is not in the frame store {self.dir}: write the store "
                                 "again with fairseq-slt-frame-store (it adds what is missing)")
        shard, spans = entry
        if len(spans) != expected_n_frames:
            raise VideoReadError(f"the frame store {self.dir} holds {len(spans)} frames of {key}, the manifest "
                                 f"says n_frames={expected_n_frames}: write the store again for this manifest")
        fd = self._fd(shard)
        return decode_jpegs([os.pread(fd, int(spans[i, 1]), int(spans[i, 0])) for i in indices])


# --- writing -----------------------------------------------------------------------------------


@dataclass
class Sentence:
    key: str
    source: VideoSource
    n_frames: int


def _write_shard(args) -> Tuple[str, int, int, List[Tuple[str, str]]]:
    """Write one shard: ``(shard name, frames, bytes, [(key, why) of sentences that failed])``."""
    store_dir, shard, sentences, size, quality = args
    from .video_io import read_frames

    tmp = os.path.join(store_dir, shard + ".bin.tmp")
    spans: Dict[str, List[List[int]]] = {}
    failed, n_frames, offset = [], 0, 0
    with open(tmp, "wb") as f:
        for s in sentences:
            try:
                frames = read_frames(s.source, range(s.n_frames), s.n_frames, min_size=size).numpy()
            except VideoReadError as e:
                failed.append((s.key, str(e)))
                continue
            frames = resize_frames(frames, size)
            rows = []
            for frame in frames:
                data = encode_jpeg(frame, quality)
                f.write(data)
                rows.append([offset, len(data)])
                offset += len(data)
            spans[s.key] = rows
            n_frames += len(rows)
    os.replace(tmp, os.path.join(store_dir, shard + ".bin"))
    idx_tmp = os.path.join(store_dir, shard + ".idx.json.tmp")
    with open(idx_tmp, "w", encoding="utf-8") as f:
        json.dump(spans, f)
    os.replace(idx_tmp, os.path.join(store_dir, shard + ".idx.json"))
    return shard, n_frames, offset, failed


def resize_frames(frames: np.ndarray, size: Sequence[int]) -> np.ndarray:
    """``T x H x W x 3`` uint8 at the transform's resize (the transform's own resize, so the model's
    pixels differ from the direct path's by the JPEG coding alone)."""
    import torch
    import torchvision.transforms.v2.functional as F

    x = torch.from_numpy(frames).permute(0, 3, 1, 2)  # T x 3 x H x W
    x = F.resize(x, list(size), antialias=True)
    return x.permute(0, 2, 3, 1).contiguous().numpy()


def write_frame_store(sentences: Iterable[Sentence], store_dir: str, resize, size: Sequence[int],
                      quality: int = DEFAULT_QUALITY, workers: int = 1, shard_sentences: int = 64) -> Dict:
    """Write (or complete) a frame store of ``sentences``; returns a report (frames, bytes, GB per
    1,000 frames, seconds, sentences that failed). ``size`` is the transform's resize output
    (``build_video_transform(...).min_size``)."""
    os.makedirs(store_dir, exist_ok=True)
    settings = store_settings(resize, quality)
    meta_path = os.path.join(store_dir, META)
    if os.path.isfile(meta_path):
        meta = read_meta(store_dir)
        check_settings(store_dir, meta, resize)
        if meta.get("quality") != quality:
            raise FrameStoreError(f"{store_dir} was written with JPEG quality {meta.get('quality')}, not {quality}: "
                                  "give the same --quality to complete it, or write a new store")
    else:
        with open(meta_path + ".tmp", "w", encoding="utf-8") as f:
            json.dump(settings, f, indent=1)
        os.replace(meta_path + ".tmp", meta_path)
    for name in os.listdir(store_dir):  # a shard an interrupted run left half written
        if name.endswith(".tmp"):
            os.remove(os.path.join(store_dir, name))
    done = set(load_index(store_dir))
    todo, seen = [], set(done)
    for s in sentences:
        if s.key not in seen:
            seen.add(s.key)
            todo.append(s)
    first = len(shard_names(store_dir))
    jobs = [(store_dir, f"shard-{first + k:05d}", todo[i:i + shard_sentences], list(size), quality)
            for k, i in enumerate(range(0, len(todo), shard_sentences))]
    total = sum(s.n_frames for s in todo)
    logger.info(f"frame store {store_dir}: {len(done)} sentences already stored, {len(todo)} to write "
                f"({total} frames, {len(jobs)} shards, {workers} workers)")
    report = {"sentences": len(todo), "frames": 0, "bytes": 0, "failed": [], "seconds": 0.0}
    t0 = time.perf_counter()
    for shard, n, nbytes, failed in _map(_write_shard, jobs, workers):
        report["frames"] += n
        report["bytes"] += nbytes
        report["failed"] += failed
        elapsed = time.perf_counter() - t0
        rate = report["frames"] / max(elapsed, 1e-9)
        left = (total - report["frames"]) / max(rate, 1e-9)
        logger.info(f"{shard}: {report['frames']}/{total} frames, {rate:.0f} frames/s, about {left:.0f} s left")
    report["seconds"] = time.perf_counter() - t0
    report["gb_per_1000_frames"] = report["bytes"] / 1e9 / max(report["frames"], 1) * 1000
    for key, why in report["failed"]:
        logger.warning(f"not stored: {key}: {why}")
    return report


def _map(fn, jobs, workers: int):
    if workers <= 1:
        yield from map(fn, jobs)
        return
    import multiprocessing as mp

    with mp.get_context("spawn").Pool(workers) as pool:
        yield from pool.imap_unordered(fn, jobs)
