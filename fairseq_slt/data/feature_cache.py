"""Cached sign-wise features of the frozen stage-1 visual encoder (beyond the paper).

Stage 2 freezes the visual encoder, so its output for a video (evaluation transforms: uniform
temporal sampling, centre crop) never changes. ``fairseq-slt-cache-features`` computes it once per
split; stage 2 then trains and decodes on the cache (``feature_cache`` in ``config.yaml``) and
skips video decoding and the ResNet.

A cache folder holds, per split, ``<split>.feats.npy`` (all videos' ``T' x C`` float32 features,
concatenated), ``<split>.lengths.npy`` (``T'`` of each video, int64) and ``<split>.ids.txt`` (the
manifest's ids in manifest order, one per line), and one ``meta.json``: the stage-1 checkpoint,
fingerprints of the visual encoder's weights (as float32 and as fairseq's ``--fp16`` / ``--bf16``
cast them), the feature width, the transforms and the splits it holds. The task checks the
fingerprint against the model, so a cache from another stage-1 checkpoint is an error rather than
a silent wrong result; :class:`FeatureCache` checks a split's files against ``meta.json`` and the
manifest when it opens them.

Every file is written to a temporary name and renamed into place, and ``meta.json`` is the commit
record: a split is listed there only once all of its files are written, so an interrupted run
leaves a split that is refused, never one that mixes two runs.
"""

import hashlib
import json
import logging
import os
from typing import BinaryIO, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

logger = logging.getLogger(__name__)

META = "meta.json"
# 2: <split>.ids.txt, feature_dim, per-dtype fingerprints; 1 (no format_version): no ids
FORMAT_VERSION = 2
FEATURE_DTYPE = np.float32
FINGERPRINT_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
# meta.json entries that must agree for a new run to keep the splits an earlier run wrote
IDENTITY_KEYS = (
    "format_version", "visual_fingerprint", "feature_dim", "temporal_module", "temporal_dim",
    "resize", "crop", "keep_ratio", "max_frames",
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
    stored = meta.get("visual_fingerprints") or {"float32": meta.get("visual_fingerprint")}
    if dtype not in stored:
        raise FeatureCacheError(
            f"feature cache {cache_dir} stores no fingerprint of {dtype} weights ({META} predates "
            f"them): {rebuild_command(cache_dir, meta)}"
        )
    return stored[dtype] == visual_fingerprint(state_dict, FINGERPRINT_DTYPES[dtype])


def cache_paths(cache_dir: str, split: str) -> Tuple[str, str]:
    """``<split>.feats.npy`` and ``<split>.lengths.npy`` of a cache folder."""
    return os.path.join(cache_dir, f"{split}.feats.npy"), os.path.join(cache_dir, f"{split}.lengths.npy")


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


def read_meta(cache_dir: str) -> Dict:
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
    return meta


def kept_splits(cache_dir: str, meta: Dict, rewritten: Sequence[str]) -> List[str]:
    """Splits of an existing cache in ``cache_dir`` that a run writing ``rewritten`` with ``meta``
    keeps: those it does not rewrite, if the earlier run had the same encoder and transforms."""
    try:
        old = read_meta(cache_dir)
    except (FileNotFoundError, FeatureCacheError):
        return []
    others = [s for s in old.get("splits", []) if s not in rewritten]
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
    feats: np.ndarray, path: str, meta: Dict, lengths: np.ndarray, lengths_path: str, fix: str
) -> None:
    if feats.ndim != 2:
        raise FeatureCacheError(f"{path} holds a {feats.ndim}-d array, not rows of features: {fix}")
    if feats.dtype != FEATURE_DTYPE:
        raise FeatureCacheError(f"{path} holds {feats.dtype} features, not {np.dtype(FEATURE_DTYPE)}: {fix}")
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


class FeatureCache:
    """Memory-mapped features of one split: ``get(i)`` is a ``T' x C`` float32 tensor.

    Opening a split checks, against ``meta.json`` and the manifest's ``ids``: the cache format and
    that ``meta.json`` lists the split, that its files exist and load, the dtypes, the feature
    width, every length >= 1, that the lengths add up to the rows of the features, and that the
    cached ids are the manifest's in its order. Each failure names the file and the fix.
    """

    def __init__(self, cache_dir: str, split: str, ids: Sequence[str], manifest: Optional[str] = None):
        meta = read_meta(cache_dir)  # a cache without meta.json (no fingerprint) is refused
        manifest = manifest or f"the manifest of split {split}"
        fix = rebuild_command(cache_dir, meta, split)
        if meta.get("format_version", 1) < FORMAT_VERSION:
            raise FeatureCacheError(
                f"feature cache {cache_dir} was written by an older fairseq-slt-cache-features without "
                f"the videos' ids ({split}.ids.txt), so it cannot be checked against {manifest}: {fix}"
            )
        if split not in meta.get("splits", []):
            raise FeatureCacheError(
                f"feature cache {cache_dir} holds no features of split {split} ({META} lists "
                f"{', '.join(meta.get('splits', [])) or 'none'}: the split was never cached, a later run "
                f"used another stage-1 checkpoint, or a run was interrupted): {fix}"
            )
        feats_path, lengths_path = cache_paths(cache_dir, split)
        id_file = ids_path(cache_dir, split)
        for path in (feats_path, lengths_path, id_file):
            if not os.path.isfile(path):
                raise FileNotFoundError(f"feature cache lacks {path}: {fix}")
        check_ids(read_ids(id_file, fix), ids, id_file, manifest, fix)
        self.lengths = load_array(lengths_path, fix)
        check_lengths(self.lengths, lengths_path, ids, fix)
        self.features = load_array(feats_path, fix, mmap=True)
        check_features(self.features, feats_path, meta, self.lengths, lengths_path, fix)
        self.offsets = np.concatenate([[0], np.cumsum(self.lengths)[:-1]])

    def __len__(self) -> int:
        return len(self.lengths)

    def get(self, index: int) -> torch.Tensor:
        start = int(self.offsets[index])
        return torch.from_numpy(np.array(self.features[start : start + int(self.lengths[index])]))
