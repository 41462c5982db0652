"""Cached sign-wise features of the frozen stage-1 visual encoder (beyond the paper).

Stage 2 freezes the visual encoder, so its output for a video (evaluation transforms: uniform
temporal sampling, centre crop) never changes. ``fairseq-slt-cache-features`` computes it once per
split; stage 2 then trains and decodes on the cache (``feature_cache`` in ``config.yaml``) and
skips video decoding and the ResNet. ``meta.json`` records a fingerprint of the visual encoder's
weights, which the task checks against the model, so a cache from another stage-1 checkpoint is
an error rather than a silent wrong result.
"""

import hashlib
import json
import os
from typing import Dict, List, Tuple

import numpy as np
import torch

META = "meta.json"


def visual_fingerprint(state_dict: Dict[str, torch.Tensor]) -> str:
    """sha256 of a visual encoder's weights and BatchNorm statistics."""
    h = hashlib.sha256()
    for key in sorted(state_dict):
        h.update(key.encode())
        h.update(state_dict[key].detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def cache_paths(cache_dir: str, split: str) -> Tuple[str, str]:
    return os.path.join(cache_dir, f"{split}.feats.npy"), os.path.join(cache_dir, f"{split}.lengths.npy")


def write_split(cache_dir: str, split: str, features: List[np.ndarray]) -> None:
    feats_path, lengths_path = cache_paths(cache_dir, split)
    lengths = np.array([f.shape[0] for f in features], dtype=np.int64)
    for path, array in ((feats_path, np.concatenate(features, axis=0)), (lengths_path, lengths)):
        tmp = path + ".tmp.npy"
        np.save(tmp, array)
        os.replace(tmp, path)


def write_meta(cache_dir: str, meta: Dict) -> None:
    with open(os.path.join(cache_dir, META), "w", encoding="utf-8") as f:
        json.dump(meta, f, indent=2)


def read_meta(cache_dir: str) -> Dict:
    path = os.path.join(cache_dir, META)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"feature cache {cache_dir} has no {META}: build it with fairseq-slt-cache-features")
    with open(path, encoding="utf-8") as f:
        return json.load(f)


class FeatureCache:
    """Memory-mapped features of one split: ``get(i)`` is a ``T' x C`` float32 tensor."""

    def __init__(self, cache_dir: str, split: str, n_samples: int):
        feats_path, lengths_path = cache_paths(cache_dir, split)
        for path in (feats_path, lengths_path):
            if not os.path.isfile(path):
                raise FileNotFoundError(f"feature cache lacks {path}: run fairseq-slt-cache-features for split {split}")
        read_meta(cache_dir)  # a cache without meta.json (no fingerprint) is refused
        self.features = np.load(feats_path, mmap_mode="r")
        self.lengths = np.load(lengths_path)
        if len(self.lengths) != n_samples:
            raise ValueError(
                f"feature cache {feats_path} holds {len(self.lengths)} videos but the manifest has "
                f"{n_samples}: rebuild the cache after changing the manifest"
            )
        self.offsets = np.concatenate([[0], np.cumsum(self.lengths)[:-1]])

    def get(self, index: int) -> torch.Tensor:
        start = int(self.offsets[index])
        return torch.from_numpy(np.array(self.features[start : start + int(self.lengths[index])]))
