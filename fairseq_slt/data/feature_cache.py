"""Cached sign-wise features of the frozen stage-1 visual encoder (beyond the paper).

Stage 2 freezes the visual encoder, so its output for a video (evaluation transforms: uniform
temporal sampling, centre crop) never changes. ``fairseq-slt-cache-features`` computes it once per
split; stage 2 then trains and decodes on the cache (``feature_cache`` in ``config.yaml``) and
skips video decoding and the ResNet.

A cache folder holds, per split, ``<split>.feats.npy`` (all videos' ``T' x C`` features,
concatenated; float32, or float16 with ``--dtype float16``), ``<split>.lengths.npy`` (``T'`` of each
video, int64) and ``<split>.ids.txt`` (the manifest's ids in manifest order, one per line), and one
``meta.json``: the stage-1 checkpoint, fingerprints of the visual encoder's weights (as float32 and
as fairseq's ``--fp16`` / ``--bf16`` cast them), the feature width, the video settings
(``resize``, ``crop``, ``keep_ratio``, ``max_frames``, ``norm_mean``, ``norm_std``;
:mod:`.video_settings`) and the splits it holds. The task checks the fingerprint against the model
and the video settings against its data config, so a cache from another stage-1 checkpoint or made
with other settings is an error rather than a silent wrong result; :class:`FeatureCache` checks a
split's files against ``meta.json`` and the manifest when it opens them.

Every file is written to a temporary name and renamed into place, and ``meta.json`` is the commit
record: a split is listed there only once all of its files are written, so an interrupted run
leaves a split that is refused, never one that mixes two runs.

Training views. The paper trains with random temporal sampling and spatial augmentation
(Sec. 4.2), which one evaluation view per video leaves out. ``--train-views K`` stores K views of a
training split, ``<split>.view<v>.feats.npy`` / ``<split>.view<v>.lengths.npy`` for v = 0..K-1,
computed under the training transforms: view v is what live training draws in epoch v + 1 (the
dataset's ``(seed, epoch, index)`` draws), and stage 2 reads view ``(epoch - 1) mod K`` in epoch
``epoch``. ``meta.json``'s ``split_views`` records, per split, the number of views, the transforms
(``train`` or ``eval``), the seed and augmentation of training views, the storage dtype and the
autocast precision; every split it lists has an entry there.

``meta.json``'s ``format_version`` is :data:`FORMAT_VERSION`; a cache of any other format (or of
none) is refused with the command that rebuilds it.

Streamed, resumable writes. :class:`SplitWriter` preallocates each view's ``.npy`` under a
``.partial`` name, sized from the lengths known before any video is read, and writes each batch's
rows in place (``os.pwrite``: file pages, not process memory, so peak memory does not grow with the
split); ``<split>.progress.json`` records how many videos of each view are on disk and what they were
computed with. Rerunning the same command continues from there; another encoder, transforms, views,
dtype or precision restarts the split.
"""

import hashlib
import json
import logging
import os
import re
import time
from typing import BinaryIO, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from .feature_cache_options import DTYPE_CHOICES

logger = logging.getLogger(__name__)

META = "meta.json"
# the one format this fairseq-slt writes and reads
FORMAT_VERSION = 3
FEATURE_DTYPE = np.float32  # what readers return, whatever the storage dtype
STORAGE_DTYPES = dict(zip(DTYPE_CHOICES, (np.float32, np.float16)))
PARTIAL_SUFFIX = ".partial"
PROGRESS_INTERVAL_S = 10.0  # how often a streamed split records its progress (and at each view's end)
FINGERPRINT_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
# meta.json entries that must agree for a new run to keep the splits an earlier run wrote
IDENTITY_KEYS = (
    "format_version", "visual_fingerprint", "feature_dim", "temporal_module", "temporal_dim",
    "resize", "crop", "keep_ratio", "max_frames", "norm_mean", "norm_std",
)


class FeatureCacheError(ValueError):
    """A feature cache is corrupt, incomplete or does not match the manifest; the message names
    the file and the command that rebuilds it."""


def visual_fingerprint(state_dict: Dict[str, torch.Tensor], dtype: Optional[torch.dtype] = None) -> str:
    """sha256 of a visual encoder's weights and BatchNorm statistics; with ``dtype``, of its
    floating-point tensors cast to it first (what ``model.half()`` / ``model.bfloat16()`` give)."""
    h = hashlib.sha256()
    for key in sorted(state_dict):
        tensor = state_dict[key].detach()
        if dtype is not None and tensor.is_floating_point():
            tensor = tensor.to(dtype)
        h.update(key.encode())
        h.update(tensor.cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def visual_fingerprints(state_dict: Dict[str, torch.Tensor]) -> Dict[str, str]:
    """The fingerprint of float32 weights and of those weights cast to float16 and bfloat16."""
    return {name: visual_fingerprint(state_dict, dtype) for name, dtype in FINGERPRINT_DTYPES.items()}


def weights_dtype(state_dict: Dict[str, torch.Tensor]) -> str:
    """Name of the one floating-point dtype of the weights (float32 when they mix dtypes)."""
    dtypes = {t.dtype for t in state_dict.values() if t.is_floating_point()}
    names = [name for name, dtype in FINGERPRINT_DTYPES.items() if {dtype} == dtypes]
    return names[0] if names else "float32"


def fingerprint_matches(meta: Dict, cache_dir: str, state_dict: Dict[str, torch.Tensor]) -> bool:
    """Whether ``state_dict`` (float32, or cast to float16 / bfloat16 by fairseq) holds the weights
    the cache was computed with."""
    dtype = weights_dtype(state_dict)
    stored = meta.get("visual_fingerprints") or {}
    if dtype not in stored:
        raise FeatureCacheError(
            f"feature cache {cache_dir} stores no fingerprint of {dtype} weights in {META}: "
            f"{rebuild_command(cache_dir, meta)}"
        )
    return stored[dtype] == visual_fingerprint(state_dict, FINGERPRINT_DTYPES[dtype])


def cache_paths(cache_dir: str, split: str, view: Optional[int] = None) -> Tuple[str, str]:
    """``<split>.feats.npy`` and ``<split>.lengths.npy`` of a cache folder; with ``view``, those of
    a training view, ``<split>.view<v>.feats.npy`` and ``<split>.view<v>.lengths.npy``."""
    name = split if view is None else f"{split}.view{view}"
    return os.path.join(cache_dir, f"{name}.feats.npy"), os.path.join(cache_dir, f"{name}.lengths.npy")


def progress_path(cache_dir: str, split: str) -> str:
    """``<split>.progress.json``: how far an unfinished streamed split got (:class:`SplitWriter`)."""
    return os.path.join(cache_dir, f"{split}.progress.json")


def eval_record(dtype: str = "float32") -> Dict:
    """``split_views`` entry of a split cached as one evaluation view."""
    return {"views": 1, "transforms": "eval", "dtype": dtype}


def split_record(meta: Dict, split: str, cache_dir: str, fix: str) -> Dict:
    """How ``split`` is stored: its ``split_views`` entry, ``{"views", "transforms", "dtype", ...}``;
    a split without one is refused, naming ``meta.json`` and ``fix``."""
    record = (meta.get("split_views") or {}).get(split)
    if not isinstance(record, dict):
        raise FeatureCacheError(
            f"{os.path.join(cache_dir, META)} has no split_views entry of split {split} (how its features "
            f"are stored): {fix}"
        )
    return dict(record)


def view_files(cache_dir: str, split: str, record: Dict) -> List[Tuple[str, str]]:
    """Features and lengths file of each view of a split stored as ``record`` says:
    ``<split>.feats.npy`` / ``<split>.lengths.npy`` for an evaluation view, ``<split>.view<v>.*``
    for training views."""
    if record.get("transforms") == "train":
        return [cache_paths(cache_dir, split, v) for v in range(int(record["views"]))]
    return [cache_paths(cache_dir, split)]


def ids_path(cache_dir: str, split: str) -> str:
    return os.path.join(cache_dir, f"{split}.ids.txt")


def rebuild_command(cache_dir: str, meta: Optional[Dict] = None, split: Optional[str] = None) -> str:
    """The command that rebuilds a cache (from the stage-1 checkpoint its ``meta.json`` names)."""
    stage1 = (meta or {}).get("stage1_checkpoint") or "STAGE1/checkpoint_best.pt"
    splits = f" --splits {split}" if split else ""
    return (
        f"rebuild the cache with fairseq-slt-cache-features DATA --stage1-checkpoint {stage1} "
        f"--out {cache_dir}{splits}"
    )


def atomic_write(path: str, write: Callable[[BinaryIO], None]) -> int:
    """Write ``path`` through ``write(file)`` into ``<path>.tmp``, flushed to disk, then rename it
    into place; returns the bytes written. An error leaves ``path`` as it was."""
    tmp = f"{path}.tmp"
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
            size = f.tell()
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return size


def write_split(cache_dir: str, split: str, ids: Sequence[str], features: List[np.ndarray]) -> int:
    """Write one split's features, lengths and ids, each atomically; returns the bytes written.

    The split becomes usable once ``meta.json`` lists it (:func:`write_meta`, afterwards)."""
    if len(ids) != len(features):
        raise ValueError(f"split {split}: {len(ids)} ids but {len(features)} feature arrays")
    if not features:
        raise ValueError(f"split {split} has no videos: nothing to cache")
    bad = [i for i, sid in enumerate(ids) if "\n" in sid or "\r" in sid]
    if bad:
        raise ValueError(
            f"split {split}: id {ids[bad[0]]!r} holds a line break; fix the manifest's id column"
        )
    widths = {f.shape[1] if f.ndim == 2 else None for f in features}
    if len(widths) != 1 or None in widths:
        raise ValueError(
            f"split {split}: features must all be T' x C arrays of one width, got {sorted(map(str, widths))}"
        )
    lengths = np.array([f.shape[0] for f in features], dtype=np.int64)
    empty = np.flatnonzero(lengths < 1)
    if len(empty):
        raise ValueError(f"split {split}: video {ids[empty[0]]} has no sign-wise features (length 0)")
    feats = np.concatenate(features, axis=0).astype(FEATURE_DTYPE, copy=False)
    feats_path, lengths_path = cache_paths(cache_dir, split)
    text = "".join(f"{sid}\n" for sid in ids).encode("utf-8")
    written = atomic_write(feats_path, lambda f: np.save(f, feats, allow_pickle=False))
    written += atomic_write(lengths_path, lambda f: np.save(f, lengths, allow_pickle=False))
    written += atomic_write(ids_path(cache_dir, split), lambda f: f.write(text))
    return written


def write_meta(cache_dir: str, meta: Dict) -> int:
    """Write ``meta.json`` atomically; returns the bytes written."""
    text = (json.dumps(meta, indent=2) + "\n").encode("utf-8")
    return atomic_write(os.path.join(cache_dir, META), lambda f: f.write(text))


def check_format(meta: Dict, cache_dir: str, fix: str) -> None:
    """Refuse a ``meta.json`` of another format than :data:`FORMAT_VERSION` (or of none)."""
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        found = f"format {version!r}" if "format_version" in meta else "no format_version"
        newer = isinstance(version, int) and not isinstance(version, bool) and version > FORMAT_VERSION
        raise FeatureCacheError(
            f"feature cache {cache_dir} has {found} in {META}, which this fairseq-slt does not read (it reads "
            f"format {FORMAT_VERSION}): {'update fairseq-slt, or ' if newer else ''}{fix}"
        )


def read_meta(cache_dir: str, split: Optional[str] = None) -> Dict:
    """A cache's ``meta.json``, checked to be one of :data:`FORMAT_VERSION`; ``split``: the one
    split the rebuild command in an error names."""
    path = os.path.join(cache_dir, META)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"feature cache {cache_dir} has no {META}: build it with fairseq-slt-cache-features"
        )
    try:
        with open(path, encoding="utf-8") as f:
            meta = json.load(f)
    except ValueError as e:  # JSONDecodeError, UnicodeDecodeError
        raise FeatureCacheError(f"{path} is not valid JSON ({e}): {rebuild_command(cache_dir)}") from e
    if not isinstance(meta, dict) or "visual_fingerprint" not in meta:
        raise FeatureCacheError(
            f"{path} is not the {META} of a feature cache (no visual_fingerprint): "
            f"{rebuild_command(cache_dir)}"
        )
    check_format(meta, cache_dir, rebuild_command(cache_dir, meta, split))
    return meta


def kept_splits(cache_dir: str, meta: Dict, rewritten: Sequence[str]) -> List[str]:
    """Splits of an existing cache in ``cache_dir`` that a run writing ``rewritten`` with ``meta``
    keeps: those it does not rewrite (and whose ``split_views`` entry it holds), if the earlier run had
    the same encoder and transforms. A ``meta.json`` of another format keeps none, with a warning."""
    try:
        old = read_meta(cache_dir)
    except FileNotFoundError:
        return []
    except FeatureCacheError as e:
        if os.path.isfile(os.path.join(cache_dir, META)):
            logger.warning(f"feature cache {cache_dir}: dropping the splits its {META} lists: {e}")
        return []
    records = old.get("split_views") or {}
    others = [s for s in old.get("splits", []) if s not in rewritten and s in records]
    if others and any(old.get(k) != meta.get(k) for k in IDENTITY_KEYS):
        logger.warning(
            f"feature cache {cache_dir}: dropping splits {', '.join(others)} from {META}: they were "
            f"computed from {old.get('stage1_checkpoint')} or with other transforms; cache them again "
            "with --splits to use them"
        )
        return []
    return others


def load_array(path: str, fix: str, mmap: bool = False) -> np.ndarray:
    """``np.load`` whose errors on a truncated or corrupt file name the file and the fix."""
    try:
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise FeatureCacheError(f"{path} is truncated or corrupt ({e}): {fix}") from e


def read_ids(path: str, fix: str) -> List[str]:
    try:
        with open(path, encoding="utf-8", newline="") as f:
            text = f.read()
    except UnicodeDecodeError as e:
        raise FeatureCacheError(f"{path} is not UTF-8 text ({e}): {fix}") from e
    if text and not text.endswith("\n"):
        raise FeatureCacheError(f"{path} is truncated (no line break at its end): {fix}")
    return text.split("\n")[:-1]


def check_ids(cached: Sequence[str], ids: Sequence[str], path: str, manifest: str, fix: str) -> None:
    """The cache's videos are the manifest's, in its order (features are looked up by position)."""
    if len(cached) != len(ids):
        raise FeatureCacheError(
            f"feature cache {path} holds {len(cached)} videos but {manifest} has {len(ids)}: the "
            f"manifest changed after the cache was written; {fix}"
        )
    for i, (a, b) in enumerate(zip(cached, ids)):
        if a != b:
            order = " (the same ids in another order)" if sorted(cached) == sorted(ids) else ""
            raise FeatureCacheError(
                f"feature cache {path} line {i + 1} is id {a} but video {i + 1} of {manifest} is id "
                f"{b}{order}: the manifest changed after the cache was written; {fix}"
            )


def check_lengths(lengths: np.ndarray, path: str, ids: Sequence[str], fix: str) -> None:
    if lengths.ndim != 1 or lengths.dtype.kind not in "iu":
        raise FeatureCacheError(
            f"{path} holds a {lengths.ndim}-d {lengths.dtype} array, not one integer length per video: {fix}"
        )
    if len(lengths) != len(ids):
        raise FeatureCacheError(f"{path} holds {len(lengths)} lengths for {len(ids)} videos: {fix}")
    bad = np.flatnonzero(lengths < 1)
    if len(bad):
        i = int(bad[0])
        raise FeatureCacheError(
            f"{path}: video {i + 1} (id {ids[i]}) has length {int(lengths[i])}; every video needs "
            f">= 1 feature vector ({len(bad)} of {len(lengths)} have fewer): {fix}"
        )


def check_features(
    feats: np.ndarray, path: str, meta: Dict, lengths: np.ndarray, lengths_path: str, fix: str,
    dtype: str = "float32",
) -> None:
    if feats.ndim != 2:
        raise FeatureCacheError(f"{path} holds a {feats.ndim}-d array, not rows of features: {fix}")
    if feats.dtype != np.dtype(STORAGE_DTYPES.get(dtype, FEATURE_DTYPE)):
        raise FeatureCacheError(f"{path} holds {feats.dtype} features, not {dtype}: {fix}")
    if feats.shape[1] != meta.get("feature_dim"):
        raise FeatureCacheError(
            f"{path} holds features of width {feats.shape[1]} but {META} says feature_dim="
            f"{meta.get('feature_dim')} (the visual encoder's): {fix}"
        )
    total = int(lengths.sum())
    if total != feats.shape[0]:
        raise FeatureCacheError(
            f"{lengths_path} adds up to {total} feature rows but {path} holds {feats.shape[0]}: "
            f"the files are from different runs or damaged; {fix}"
        )


def check_record(record: Dict, path: str, split: str, fix: str) -> None:
    """A ``split_views`` entry: a view count >= 1, known transforms and dtype, one eval view."""
    views, transforms, dtype = record.get("views"), record.get("transforms"), record.get("dtype")
    if not isinstance(views, int) or isinstance(views, bool) or views < 1:
        raise FeatureCacheError(f"{path}: split_views.{split}.views is {views!r}, not a count >= 1: {fix}")
    if transforms not in ("train", "eval") or (transforms == "eval" and views != 1):
        raise FeatureCacheError(
            f"{path}: split_views.{split} says {views} view(s) of transforms {transforms!r}; a split is "
            f"one 'eval' view or K 'train' views: {fix}"
        )
    if dtype not in STORAGE_DTYPES:
        raise FeatureCacheError(
            f"{path}: split_views.{split}.dtype is {dtype!r}, not one of {', '.join(STORAGE_DTYPES)}: {fix}"
        )


class FeatureCache:
    """Memory-mapped features of one split: ``get(i, view)`` is a ``T' x C`` float32 tensor.

    A split holds one evaluation view or ``n_views`` training views (``transforms == "train"``;
    view v is what live training draws in epoch v + 1, see the module docstring). Opening a split
    checks, against ``meta.json`` and the manifest's ``ids``: the cache format and that
    ``meta.json`` lists the split and how it is stored (``split_views``), that the files of every view exist and load, the dtypes, the
    feature width, every length >= 1, that the lengths add up to the rows of the features, and
    that the cached ids are the manifest's in its order. Each failure names the file and the fix.
    """

    def __init__(self, cache_dir: str, split: str, ids: Sequence[str], manifest: Optional[str] = None):
        meta = read_meta(cache_dir, split)  # refuses a cache without meta.json or of another format
        self.meta = meta
        manifest = manifest or f"the manifest of split {split}"
        fix = rebuild_command(cache_dir, meta, split)
        if split not in meta.get("splits", []):
            raise FeatureCacheError(
                f"feature cache {cache_dir} holds no features of split {split} ({META} lists "
                f"{', '.join(meta.get('splits', [])) or 'none'}: the split was never cached, a later run "
                f"used another stage-1 checkpoint, or a run was interrupted): {fix}"
            )
        self.record = split_record(meta, split, cache_dir, fix)
        check_record(self.record, os.path.join(cache_dir, META), split, fix)
        files = view_files(cache_dir, split, self.record)
        id_file = ids_path(cache_dir, split)
        for path in [id_file] + [p for pair in files for p in pair]:
            if not os.path.isfile(path):
                raise FileNotFoundError(f"feature cache lacks {path}: {fix}")
        check_ids(read_ids(id_file, fix), ids, id_file, manifest, fix)
        self.views = []  # (features, lengths, offsets) of each view
        for feats_path, lengths_path in files:
            lengths = load_array(lengths_path, fix)
            check_lengths(lengths, lengths_path, ids, fix)
            features = load_array(feats_path, fix, mmap=True)
            check_features(features, feats_path, meta, lengths, lengths_path, fix, self.record["dtype"])
            self.views.append((features, lengths, np.concatenate([[0], np.cumsum(lengths)[:-1]])))
        self.features, self.lengths, self.offsets = self.views[0]

    @property
    def n_views(self) -> int:
        return len(self.views)

    @property
    def transforms(self) -> str:
        """``train`` (augmented views) or ``eval`` (one evaluation view)."""
        return self.record["transforms"]

    def __len__(self) -> int:
        return len(self.lengths)

    def get(self, index: int, view: int = 0) -> torch.Tensor:
        features, lengths, offsets = self.views[view]
        start = int(offsets[index])
        rows = features[start : start + int(lengths[index])]
        return torch.from_numpy(np.array(rows, dtype=FEATURE_DTYPE))  # float16 storage read as float32


def stale_files(cache_dir: str, split: str, record: Dict) -> List[str]:
    """Feature and lengths files of ``split`` in another layout than ``record``'s (an earlier run's
    evaluation view or extra training views), which a finished split removes."""
    keep = {os.path.basename(p) for pair in view_files(cache_dir, split, record) for p in pair}
    pattern = re.compile(rf"{re.escape(split)}(\.view\d+)?\.(feats|lengths)\.npy")
    return [os.path.join(cache_dir, n) for n in sorted(os.listdir(cache_dir)) if pattern.fullmatch(n) and n not in keep]


class SplitWriter:
    """Streams one split's views to disk, resumably (see the module docstring).

    ``lengths[v]`` are the ``T'`` of every video in view v, known before any video is read (the
    sampled frame counts through the temporal module's length arithmetic), so each view's file is
    preallocated and ``write(view, start, features)`` puts rows in place; memory does not grow with
    the number of videos. ``identity`` is everything the features depend on: a rerun whose
    identity matches continues at ``done[view]``, any other restarts the split.
    """

    def __init__(self, cache_dir: str, split: str, ids: Sequence[str], lengths: Sequence[np.ndarray],
                 feature_dim: int, record: Dict, identity: Dict):
        if not ids:
            raise ValueError(f"split {split} has no videos: nothing to cache")
        bad = [i for i, sid in enumerate(ids) if "\n" in sid or "\r" in sid]
        if bad:
            raise ValueError(f"split {split}: id {ids[bad[0]]!r} holds a line break; fix the manifest's id column")
        self.cache_dir, self.split, self.ids, self.record = cache_dir, split, list(ids), record
        self.lengths = [np.asarray(n, dtype=np.int64) for n in lengths]
        self.offsets = [np.concatenate([[0], np.cumsum(n)]) for n in self.lengths]
        self.dtype = np.dtype(STORAGE_DTYPES[record["dtype"]])
        self.row_bytes = feature_dim * self.dtype.itemsize
        self.files = view_files(cache_dir, split, record)
        assert len(self.files) == len(self.lengths), (len(self.files), len(self.lengths))
        ids_hash = hashlib.sha256("".join(f"{sid}\n" for sid in self.ids).encode("utf-8")).hexdigest()
        self.identity = json.loads(json.dumps(dict(identity, record=record, ids_sha256=ids_hash)))
        self.done = self._resume_or_start(feature_dim)
        self._fds = [os.open(self._partial(v), os.O_RDWR) for v in range(len(self.files))]
        # the data follows the header: preallocated files are exactly header + rows long
        self._offsets0 = [
            os.path.getsize(self._partial(v)) - int(n.sum()) * self.row_bytes for v, n in enumerate(self.lengths)
        ]
        self._last_progress = time.monotonic()

    def _partial(self, view: int) -> str:
        return self.files[view][0] + PARTIAL_SUFFIX

    def _resume_or_start(self, feature_dim: int) -> List[int]:
        path = progress_path(self.cache_dir, self.split)
        try:
            with open(path, encoding="utf-8") as f:
                progress = json.load(f)
        except (OSError, ValueError):
            progress = None
        shapes = [(int(n.sum()), feature_dim) for n in self.lengths]
        if progress is not None:
            done = progress.get("done")
            same = progress.get("identity") == self.identity
            ok = same and isinstance(done, list) and len(done) == len(shapes) and all(
                isinstance(d, int) and 0 <= d <= len(self.ids) for d in done
            ) and all(self._partial_ok(v, shape) for v, shape in enumerate(shapes))
            if ok:
                logger.info(
                    f"{self.split}: resuming an interrupted run ({', '.join(map(str, done))} of "
                    f"{len(self.ids)} videos done per view, {path})"
                )
                return done
            logger.warning(
                f"{self.split}: {path} is from a run with another encoder, transforms, views, dtype, "
                "precision or manifest (or its files are damaged): restarting the split"
            )
        partial = re.compile(rf"{re.escape(self.split)}(\.view\d+)?\.feats\.npy{re.escape(PARTIAL_SUFFIX)}")
        for name in os.listdir(self.cache_dir):  # an earlier run's partial views (another K)
            if partial.fullmatch(name):
                os.remove(os.path.join(self.cache_dir, name))
        for v, shape in enumerate(shapes):  # preallocated (sparse) files of the right size
            mm = np.lib.format.open_memmap(self._partial(v), mode="w+", dtype=self.dtype, shape=shape)
            del mm
        done = [0] * len(shapes)
        self._write_progress(done)
        return done

    def _partial_ok(self, view: int, shape: Tuple[int, int]) -> bool:
        try:
            mm = np.load(self._partial(view), mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError, EOFError):
            return False
        ok = mm.shape == shape and mm.dtype == self.dtype
        del mm
        return ok

    def _write_progress(self, done: List[int]) -> None:
        text = (json.dumps({"identity": self.identity, "done": done}, indent=2) + "\n").encode("utf-8")
        atomic_write(progress_path(self.cache_dir, self.split), lambda f: f.write(text))

    def write(self, view: int, start: int, features: Sequence[np.ndarray]) -> None:
        """Write the features of videos ``start, start + 1, ...`` of ``view`` (the next ones)."""
        if start != self.done[view]:
            raise ValueError(f"{self.split} view {view}: writing video {start} but {self.done[view]} are done")
        for i, feats in enumerate(features):
            index = start + i
            if feats.shape != (int(self.lengths[view][index]), self.row_bytes // self.dtype.itemsize):
                raise ValueError(
                    f"{self.split} view {view}: video {index + 1} (id {self.ids[index]}) has features of "
                    f"shape {tuple(feats.shape)} but {int(self.lengths[view][index])} x "
                    f"{self.row_bytes // self.dtype.itemsize} were expected from its sampled frames"
                )
        rows = np.ascontiguousarray(np.concatenate(features, axis=0), dtype=self.dtype)
        offset = self._offsets0[view] + int(self.offsets[view][start]) * self.row_bytes
        data = rows.tobytes()
        while data:  # pwrite may write less than asked
            n = os.pwrite(self._fds[view], data, offset)
            data, offset = data[n:], offset + n
        self.done[view] += len(features)
        if self.done[view] == len(self.ids) or time.monotonic() - self._last_progress >= PROGRESS_INTERVAL_S:
            self.save_progress()

    def save_progress(self) -> None:
        """Flush the features written so far to disk, then record them as done."""
        for fd in self._fds:
            os.fsync(fd)
        self._write_progress(list(self.done))
        self._last_progress = time.monotonic()

    def close(self) -> None:
        for fd in self._fds:
            os.close(fd)
        self._fds = []

    def finish(self) -> int:
        """Rename the complete views into place, write lengths and ids; returns the bytes written.
        The split becomes usable once ``meta.json`` lists it (:func:`write_meta`, afterwards)."""
        if any(d != len(self.ids) for d in self.done):
            raise ValueError(f"{self.split}: {self.done} of {len(self.ids)} videos done per view")
        self.save_progress()
        self.close()
        written = 0
        for v, (feats_path, lengths_path) in enumerate(self.files):
            written += os.path.getsize(self._partial(v))
            os.replace(self._partial(v), feats_path)
            written += atomic_write(lengths_path, lambda f, v=v: np.save(f, self.lengths[v], allow_pickle=False))
        text = "".join(f"{sid}\n" for sid in self.ids).encode("utf-8")
        written += atomic_write(ids_path(self.cache_dir, self.split), lambda f: f.write(text))
        os.remove(progress_path(self.cache_dir, self.split))
        for path in stale_files(self.cache_dir, self.split, self.record):
            os.remove(path)
        return written
