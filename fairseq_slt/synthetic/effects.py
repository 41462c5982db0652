"""Harder, more realistic video for the synthetic corpora (``fairseq-slt-synth --hard`` or
``--effects NAME,...``): pure numpy functions, each drawing its randomness from the generator
it is given.

======================  =====================================================================
effect                  what it does
======================  =====================================================================
``texture``             textured background (low-frequency colour blotches and a grating)
                        instead of the plain vertical gradient; a new one for every video
``lighting``            illumination drifting over time (gain 1 +- 0.1..0.25), a colour cast
                        and a horizontal light gradient
``noise``               sensor noise of standard deviation 8 instead of 3 (grey levels)
``jitter``              camera shake: the whole frame moves by up to 5% of its side, smoothly
``coarticulation``      signs flow into each other: eased transitions of random length
                        without the closed-fist pose between signs, the hand shape changing
                        half-way
``speed``               variable speed: each sign 0.6-1.5x its signer's duration, a time
                        warp within the sign, 0.8-1.2x its movement's size and short holds
``bare-hands``          skin-coloured hands (no coloured gloves), the same on both hands
======================  =====================================================================

``--hard`` turns on all of them.
"""

from typing import Iterable, Sequence, Tuple

import numpy as np

EFFECTS = ("texture", "lighting", "noise", "jitter", "coarticulation", "speed", "bare-hands")
NOISE_STD = {False: 3.0, True: 8.0}  # sensor noise without / with the "noise" effect
JITTER = 0.05  # camera shake, as a fraction of the frame side


def check_effects(effects: Iterable[str]) -> frozenset:
    """The set of effect names; an unknown name is a ``ValueError`` listing the known ones."""
    effects = frozenset(effects)
    unknown = sorted(effects - set(EFFECTS))
    if unknown:
        raise ValueError(f"unknown video effect(s) {', '.join(unknown)}; known: {', '.join(EFFECTS)}")
    return effects


def parse_effects(text: str, hard: bool = False) -> frozenset:
    """``--effects texture,noise`` (and ``--hard``: all) as a set of effect names."""
    names = [e.strip() for e in (text or "").split(",") if e.strip()]
    return check_effects(EFFECTS if hard else names)


def upsample(grid: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear interpolation of ``h x w x C`` values onto ``height x width`` (corners aligned)."""
    h, w = grid.shape[:2]
    ys, xs = np.linspace(0, h - 1, height), np.linspace(0, w - 1, width)
    y0, x0 = np.minimum(ys.astype(int), h - 2), np.minimum(xs.astype(int), w - 2)
    fy, fx = (ys - y0)[:, None, None], (xs - x0)[None, :, None]
    top = grid[y0][:, x0] * (1 - fx) + grid[y0][:, x0 + 1] * fx
    bottom = grid[y0 + 1][:, x0] * (1 - fx) + grid[y0 + 1][:, x0 + 1] * fx
    return top * (1 - fy) + bottom * fy


def textured_background(yy: np.ndarray, xx: np.ndarray, colour: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``H x W x 3`` float32 background around ``colour``: blotches plus an oriented grating."""
    h, w = yy.shape
    blotches = upsample(rng.uniform(-1, 1, (5, 5, 3)), h, w)
    angle, freq, phase = rng.uniform(0, np.pi), rng.uniform(3, 9), rng.uniform(0, 2 * np.pi)
    grating = np.sin(2 * np.pi * freq * (np.cos(angle) * xx + np.sin(angle) * yy) + phase)
    bg = colour * (1 + 0.3 * blotches) + rng.uniform(10, 30) * grating[..., None]
    return np.clip(bg, 0, 255).astype(np.float32)


def lighting(n_frames: int, yy: np.ndarray, xx: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Per-frame, per-pixel, per-channel gain ``T x H x W x 3`` (float32)."""
    t = np.arange(n_frames)
    amplitude, period, phase = rng.uniform(0.1, 0.25), rng.uniform(40, 150), rng.uniform(0, 2 * np.pi)
    gain = 1 + amplitude * np.sin(2 * np.pi * t / period + phase)  # T
    cast = rng.uniform(0.85, 1.15, 3)
    gradient = 1 + rng.uniform(-0.3, 0.3) * (xx - 0.5)  # H x W
    return (gain[:, None, None, None] * gradient[None, ..., None] * cast).astype(np.float32)


def camera_path(n_frames: int, margin: int, rng: np.random.Generator) -> Sequence[Tuple[int, int]]:
    """Integer ``(dy, dx)`` offsets in ``[-margin, margin]``: a smoothed random walk."""
    if margin == 0:
        return [(0, 0)] * n_frames
    steps = rng.normal(0, 0.35 * margin, (n_frames, 2))
    walk = np.zeros((n_frames, 2))
    for i in range(1, n_frames):  # pulled back to the centre, so it stays in the margin
        walk[i] = 0.8 * walk[i - 1] + steps[i]
    walk = np.clip(np.round(walk), -margin, margin).astype(int)
    return [(int(dy), int(dx)) for dy, dx in walk]


def jitter_margin(size: int, on: bool) -> int:
    """Pixels drawn around the frame so that the camera can move (0 without ``jitter``)."""
    return int(np.ceil(JITTER * size)) if on else 0
