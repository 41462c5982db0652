"""A procedural "sign language" for the demo corpus and the tests.

A signer figure (background, torso, head, arms and gloved hands; coloured gloves, as in early
sign language recognition corpora, keep the demo learnable on a CPU in minutes) performs one
distinct motion per gloss:
each gloss has its own hand shape, place of articulation, movement path and number of hands.
The signer's appearance (colours, size, position) and signing speed vary with the signer id.
Everything is drawn with numpy and is deterministic given a seed.
"""

from dataclasses import dataclass
from typing import Dict, List, Sequence, Tuple

import numpy as np

SHAPES = ("fist", "flat", "point", "spread")
PATHS = ("hold", "horizontal", "vertical", "circle", "diagonal", "tap")


@dataclass(frozen=True)
class Sign:
    """One gloss: hand shape, place (x, y in [0, 1] of the frame, right hand), path, hands."""

    shape: str
    place: Tuple[float, float]
    path: str
    two_hands: bool


# 15 glosses, each a distinct combination of place, path, shape and hands
SIGNS: Dict[str, Sign] = {
    "TODAY": Sign("flat", (0.62, 0.72), "vertical", True),
    "TOMORROW": Sign("point", (0.62, 0.28), "diagonal", False),
    "WEEKEND": Sign("spread", (0.70, 0.62), "circle", True),
    "NORTH": Sign("point", (0.72, 0.18), "vertical", False),
    "SOUTH": Sign("point", (0.70, 0.85), "vertical", False),
    "EAST": Sign("flat", (0.82, 0.50), "horizontal", False),
    "WEST": Sign("flat", (0.35, 0.50), "horizontal", False),
    "RAIN": Sign("spread", (0.68, 0.35), "tap", True),
    "SUN": Sign("spread", (0.75, 0.20), "circle", False),
    "SNOW": Sign("fist", (0.66, 0.45), "diagonal", True),
    "WIND": Sign("flat", (0.72, 0.40), "horizontal", True),
    "FOG": Sign("fist", (0.58, 0.30), "circle", False),
    "STRONG": Sign("fist", (0.70, 0.60), "tap", True),
    "WEAK": Sign("flat", (0.60, 0.62), "hold", False),
    "NOT": Sign("point", (0.62, 0.50), "horizontal", False),
}

REST = (0.68, 0.95)  # hands down, at the bottom of the frame


@dataclass(frozen=True)
class SignerStyle:
    background: np.ndarray  # 3 floats in [0, 255]
    shirt: np.ndarray
    skin: np.ndarray
    offset: Tuple[float, float]  # shift of the whole figure
    scale: float
    frames_per_sign: int
    transition_frames: int


def signer_style(signer: int, seed: int) -> SignerStyle:
    """Appearance and speed of a signer, drawn deterministically from ``(seed, signer)``."""
    rng = np.random.default_rng([seed, 7919, signer])
    background = rng.uniform(60, 200, 3)
    shirt = rng.uniform(0, 255, 3)
    while np.abs(shirt - background).sum() < 150:  # keep the torso visible
        shirt = rng.uniform(0, 255, 3)
    skin = np.array([225, 180, 150]) * rng.uniform(0.55, 1.05)
    return SignerStyle(
        background=background,
        shirt=shirt,
        skin=np.clip(skin, 0, 255),
        offset=(float(rng.uniform(-0.05, 0.05)), float(rng.uniform(-0.03, 0.03))),
        scale=float(rng.uniform(0.92, 1.08)),
        frames_per_sign=int(rng.integers(11, 16)),
        transition_frames=int(rng.integers(3, 6)),
    )


def _path_offset(path: str, t: np.ndarray) -> np.ndarray:
    """Offset (dx, dy) of the hand along a gloss's path at phases ``t`` in [0, 1]."""
    a = 0.09
    if path == "hold":
        d = np.zeros((len(t), 2))
    elif path == "horizontal":
        d = np.stack([a * np.sin(2 * np.pi * t), 0 * t], 1)
    elif path == "vertical":
        d = np.stack([0 * t, a * np.sin(2 * np.pi * t)], 1)
    elif path == "circle":
        d = np.stack([a * np.cos(2 * np.pi * t), a * np.sin(2 * np.pi * t)], 1)
    elif path == "diagonal":
        d = np.stack([a * (2 * t - 1), -a * (2 * t - 1)], 1)
    elif path == "tap":
        d = np.stack([0 * t, a * np.abs(np.sin(4 * np.pi * t))], 1)
    else:
        raise ValueError(f"unknown path {path}")
    return d


def _plan(glosses: Sequence[str], style: SignerStyle, rng: np.random.Generator) -> List[tuple]:
    """Per-frame (right hand, left hand or None, right shape, left shape) of a gloss sequence."""
    frames = []
    prev_r, prev_l = np.array(REST), np.array([1 - REST[0], REST[1]])
    rest_len = int(rng.integers(3, 7))
    frames += [(prev_r, prev_l, "fist", "fist")] * rest_len
    for g in glosses:
        sign = SIGNS[g]
        n = max(4, style.frames_per_sign + int(rng.integers(-2, 3)))
        jitter = rng.normal(0, 0.012, 2)
        path = np.array(sign.place) + jitter + _path_offset(sign.path, np.linspace(0, 1, n))
        left = np.stack([1 - path[:, 0], path[:, 1]], 1) if sign.two_hands else None
        left_start = left[0] if left is not None else np.array([1 - REST[0], REST[1]])
        for k in range(1, style.transition_frames + 1):  # move to the sign's start
            w = k / (style.transition_frames + 1)
            frames.append(((1 - w) * prev_r + w * path[0], (1 - w) * prev_l + w * left_start, "fist", "fist"))
        for i in range(n):
            lpos = left[i] if left is not None else left_start
            frames.append((path[i], lpos, sign.shape, sign.shape if sign.two_hands else "fist"))
        prev_r, prev_l = path[-1], left_start if left is None else left[-1]
    frames += [(np.array(REST), np.array([1 - REST[0], REST[1]]), "fist", "fist")] * rest_len
    return frames


def _hand_mask(yy: np.ndarray, xx: np.ndarray, cx: float, cy: float, shape: str, r: float) -> np.ndarray:
    dx, dy = xx - cx, yy - cy
    if shape == "fist":
        return dx**2 + dy**2 <= r**2
    if shape == "flat":
        return (np.abs(dx) <= 1.6 * r) & (np.abs(dy) <= 0.55 * r)
    if shape == "point":
        return ((np.abs(dx) <= 0.35 * r) & (dy <= 0) & (dy >= -2.2 * r)) | (dx**2 + dy**2 <= (0.7 * r) ** 2)
    if shape == "spread":
        return ((np.abs(dx) <= 1.5 * r) & (np.abs(dy) <= 0.3 * r)) | ((np.abs(dy) <= 1.5 * r) & (np.abs(dx) <= 0.3 * r))
    raise ValueError(f"unknown hand shape {shape}")


def _segment_mask(yy, xx, p0, p1, width) -> np.ndarray:
    p0, p1 = np.asarray(p0, float), np.asarray(p1, float)
    d = p1 - p0
    t = np.clip(((xx - p0[0]) * d[0] + (yy - p0[1]) * d[1]) / max(float(d @ d), 1e-9), 0, 1)
    return (xx - p0[0] - t * d[0]) ** 2 + (yy - p0[1] - t * d[1]) ** 2 <= width**2


def render_sentence(
    glosses: Sequence[str], signer: int, size: int, seed: int, rng: np.random.Generator
) -> np.ndarray:
    """Render a gloss sequence signed by ``signer`` as ``T x size x size x 3`` uint8 frames."""
    style = signer_style(signer, seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    ox, oy = style.offset
    s = style.scale

    def place(p):  # figure coordinates -> frame coordinates
        return (0.5 + (p[0] - 0.5) * s + ox, 0.5 + (p[1] - 0.5) * s + oy)

    base = np.empty((size, size, 3), np.float32)
    base[:] = style.background * (0.85 + 0.3 * yy[..., None])  # vertical gradient
    torso = (np.abs(xx - place((0.5, 0))[0]) <= 0.24 * s) & (yy >= place((0, 0.58))[1])
    base[torso] = style.shirt
    hx, hy = place((0.5, 0.3))
    base[(xx - hx) ** 2 + (yy - hy) ** 2 <= (0.11 * s) ** 2] = style.skin
    shoulders = [place((0.66, 0.62)), place((0.34, 0.62))]
    arm_color = style.shirt * 0.75
    gloves = (np.array([250.0, 250.0, 40.0]), np.array([40.0, 230.0, 250.0]))  # right, left
    out = []
    for right, left, rshape, lshape in _plan(glosses, style, rng):
        frame = base.copy()
        hands = ((shoulders[0], right, rshape, gloves[0]), (shoulders[1], left, lshape, gloves[1]))
        for shoulder, pos, shape, glove in hands:
            p = place(pos)
            frame[_segment_mask(yy, xx, shoulder, p, 0.035 * s)] = arm_color
            frame[_hand_mask(yy, xx, p[0], p[1], shape, 0.075 * s)] = glove
        out.append(frame)
    video = np.stack(out)
    video += rng.normal(0, 3.0, video.shape).astype(np.float32)  # a little sensor noise
    return np.clip(video, 0, 255).astype(np.uint8)
