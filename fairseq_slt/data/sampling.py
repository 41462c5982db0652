"""Temporal sampling of a video's frames (paper: 25% of the frames)."""

import math
from typing import Optional

import numpy as np

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
