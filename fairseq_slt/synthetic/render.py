"""A procedural "sign language" for the demo corpus and the tests.

A signer figure (background, torso, head, arms and gloved hands; coloured gloves, as in early
sign language recognition corpora, keep the demo learnable on a CPU in minutes) performs one
distinct motion per gloss:
each gloss has its own hand shape, place of articulation, movement path and number of hands.
The signer's appearance (colours, size, position) and signing speed vary with the signer id.
Everything is drawn with numpy and is deterministic given a seed.

:data:`SIGNS` are the demo grammar's 15 signs; the open grammar's combinatorial inventory is
:mod:`.signs`. ``effects`` (:mod:`.effects`) make the video harder: textured background,
lighting, noise, camera shake, co-articulation, variable speed, bare hands. Without effects
the video is drawn from the generator exactly as the demo corpus always was (only the pixels
in a shape's bounding box are tested, which changes the speed, not the result).
"""

from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from .effects import NOISE_STD, camera_path, check_effects, jitter_margin, lighting, textured_background

SHAPES = ("fist", "flat", "point", "spread")
PATHS = ("hold", "horizontal", "vertical", "circle", "diagonal", "tap")
# the open grammar's inventory (:mod:`.signs`) uses these too
MORE_SHAPES = ("vee", "ring", "thumb", "edge")
MORE_PATHS = ("antidiagonal", "zigzag")


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
    elif path == "antidiagonal":
        d = np.stack([a * (2 * t - 1), a * (2 * t - 1)], 1)
    elif path == "zigzag":
        d = np.stack([a * (2 * t - 1), 0.6 * a * np.sin(6 * np.pi * t)], 1)
    else:
        raise ValueError(f"unknown path {path}")
    return d


def _plan(
    glosses: Sequence[str],
    style: SignerStyle,
    rng: np.random.Generator,
    signs: Optional[Dict[str, Sign]] = None,
    fx: Optional[np.random.Generator] = None,
    effects: frozenset = frozenset(),
) -> List[tuple]:
    """Per-frame (right hand, left hand, right shape, left shape) of a gloss sequence.

    Without ``coarticulation`` / ``speed`` in ``effects`` this draws only from ``rng``, as the
    demo corpus always has; their extra randomness comes from ``fx``."""
    signs = SIGNS if signs is None else signs
    coarticulation, speed = "coarticulation" in effects, "speed" in effects
    frames = []
    rest_l = np.array([1 - REST[0], REST[1]])
    prev_r, prev_l = np.array(REST), rest_l
    prev_shapes = ("fist", "fist")
    rest_len = int(rng.integers(3, 7))
    frames += [(prev_r, prev_l, "fist", "fist")] * rest_len
    for g in glosses:
        sign = signs[g]
        n = max(4, style.frames_per_sign + int(rng.integers(-2, 3)))
        jitter = rng.normal(0, 0.012, 2)
        if speed:
            n = max(4, int(round(n * fx.uniform(0.6, 1.5))))
            offset = fx.uniform(0.8, 1.2) * _path_offset(sign.path, np.linspace(0, 1, n) ** fx.uniform(0.6, 1.6))
        else:
            offset = _path_offset(sign.path, np.linspace(0, 1, n))
        path = np.array(sign.place) + jitter + offset
        left = np.stack([1 - path[:, 0], path[:, 1]], 1) if sign.two_hands else None
        left_start = left[0] if left is not None else rest_l
        shapes = (sign.shape, sign.shape if sign.two_hands else "fist")
        n_move = int(fx.integers(2, 7)) if coarticulation else style.transition_frames
        for k in range(1, n_move + 1):  # move to the sign's start
            if coarticulation:  # eased, the hand shape changing half-way
                w = 0.5 - 0.5 * np.cos(np.pi * k / (n_move + 1))
                frames.append(((1 - w) * prev_r + w * path[0], (1 - w) * prev_l + w * left_start,
                               *(prev_shapes if w < 0.5 else shapes)))
            else:
                w = k / (n_move + 1)
                frames.append(((1 - w) * prev_r + w * path[0], (1 - w) * prev_l + w * left_start, "fist", "fist"))
        for i in range(n):
            lpos = left[i] if left is not None else left_start
            frames.append((path[i], lpos, sign.shape, sign.shape if sign.two_hands else "fist"))
        if speed:  # a short hold at the sign's end
            frames += [frames[-1]] * int(fx.integers(0, 4))
        prev_r, prev_l = path[-1], left_start if left is None else left[-1]
        prev_shapes = shapes
    frames += [(np.array(REST), rest_l, "fist", "fist")] * rest_len
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
    if shape == "vee":  # two fingers spread upwards from a small palm
        fingers = (dy <= 0) & (dy >= -2.0 * r) & (np.abs(np.abs(dx) + 0.5 * dy) <= 0.3 * r)
        return fingers | (dx**2 + dy**2 <= (0.65 * r) ** 2)
    if shape == "ring":  # thumb and finger closed into an O
        d2 = dx**2 + dy**2
        return (d2 <= (1.15 * r) ** 2) & (d2 >= (0.6 * r) ** 2)
    if shape == "thumb":  # fist with the thumb out sideways
        return (dx**2 + dy**2 <= (0.8 * r) ** 2) | ((dx >= 0) & (dx <= 1.9 * r) & (np.abs(dy + 0.35 * r) <= 0.3 * r))
    if shape == "edge":  # flat hand seen from the side
        return (np.abs(dx) <= 0.45 * r) & (np.abs(dy) <= 1.6 * r)
    raise ValueError(f"unknown hand shape {shape}")


def _segment_mask(yy, xx, p0, p1, width) -> np.ndarray:
    p0, p1 = np.asarray(p0, float), np.asarray(p1, float)
    d = p1 - p0
    t = np.clip(((xx - p0[0]) * d[0] + (yy - p0[1]) * d[1]) / max(float(d @ d), 1e-9), 0, 1)
    return (xx - p0[0] - t * d[0]) ** 2 + (yy - p0[1] - t * d[1]) ** 2 <= width**2


def _box(x0: float, x1: float, y0: float, y1: float, size: int, margin: int, shape: Tuple[int, int]):
    """Row and column slices of the canvas pixels whose coordinates may lie in the box."""
    rows = slice(max(0, int(np.floor(y0 * size)) + margin - 1), min(shape[0], int(np.ceil(y1 * size)) + margin + 2))
    cols = slice(max(0, int(np.floor(x0 * size)) + margin - 1), min(shape[1], int(np.ceil(x1 * size)) + margin + 2))
    return rows, cols


def _paint_arm(frame, yy, xx, p0, p1, width, colour, size, margin) -> None:
    """Paint the segment ``p0``-``p1`` (only the pixels of its bounding box are tested)."""
    (x0, x1), (y0, y1) = sorted((p0[0], p1[0])), sorted((p0[1], p1[1]))
    box = _box(x0 - width, x1 + width, y0 - width, y1 + width, size, margin, yy.shape)
    region = frame[box]
    region[_segment_mask(yy[box], xx[box], p0, p1, width)] = colour


def _paint_hand(frame, yy, xx, cx, cy, shape, r, colour, size, margin) -> None:
    """Paint a hand shape centred at ``(cx, cy)`` (every shape lies within 2.5 r of its centre)."""
    e = 2.5 * r
    box = _box(cx - e, cx + e, cy - e, cy + e, size, margin, yy.shape)
    region = frame[box]
    region[_hand_mask(yy[box], xx[box], cx, cy, shape, r)] = colour


def render_sentence(
    glosses: Sequence[str],
    signer: int,
    size: int,
    seed: int,
    rng: np.random.Generator,
    signs: Optional[Dict[str, Sign]] = None,
    effects: Iterable[str] = (),
) -> np.ndarray:
    """Render a gloss sequence signed by ``signer`` as ``T x size x size x 3`` uint8 frames.

    ``signs``: the sign of each gloss (default: the demo's :data:`SIGNS`); ``effects``: names
    from :data:`~fairseq_slt.synthetic.effects.EFFECTS` (none: the demo corpus's video, drawn
    from ``rng`` exactly as it always was)."""
    effects = check_effects(effects)
    fx = np.random.default_rng(rng.integers(2**63)) if effects else None
    style = signer_style(signer, seed)
    margin = jitter_margin(size, "jitter" in effects)
    yy, xx = np.mgrid[-margin:size + margin, -margin:size + margin].astype(np.float32) / size
    ox, oy = style.offset
    s = style.scale

    def place(p):  # figure coordinates -> frame coordinates
        return (0.5 + (p[0] - 0.5) * s + ox, 0.5 + (p[1] - 0.5) * s + oy)

    base = np.empty(yy.shape + (3,), np.float32)
    if "texture" in effects:
        base[:] = textured_background(yy, xx, style.background, fx) * (0.85 + 0.3 * yy[..., None])
    else:
        base[:] = style.background * (0.85 + 0.3 * yy[..., None])  # vertical gradient
    torso = (np.abs(xx - place((0.5, 0))[0]) <= 0.24 * s) & (yy >= place((0, 0.58))[1])
    base[torso] = style.shirt
    hx, hy = place((0.5, 0.3))
    base[(xx - hx) ** 2 + (yy - hy) ** 2 <= (0.11 * s) ** 2] = style.skin
    shoulders = [place((0.66, 0.62)), place((0.34, 0.62))]
    arm_color = style.shirt * 0.75
    if "bare-hands" in effects:
        hand = np.clip(style.skin * 1.12 + 8, 0, 255)
        gloves = (hand, hand)
    else:
        gloves = (np.array([250.0, 250.0, 40.0]), np.array([40.0, 230.0, 250.0]))  # right, left
    plan = _plan(glosses, style, rng, signs, fx, effects)
    camera = camera_path(len(plan), margin, fx) if margin else None
    out = []
    for t, (right, left, rshape, lshape) in enumerate(plan):
        frame = base.copy()
        hands = ((shoulders[0], right, rshape, gloves[0]), (shoulders[1], left, lshape, gloves[1]))
        for shoulder, pos, shape, glove in hands:
            p = place(pos)
            _paint_arm(frame, yy, xx, shoulder, p, 0.035 * s, arm_color, size, margin)
            _paint_hand(frame, yy, xx, p[0], p[1], shape, 0.075 * s, glove, size, margin)
        if camera is not None:
            dy, dx = camera[t]
            frame = frame[margin + dy:margin + dy + size, margin + dx:margin + dx + size]
        out.append(frame)
    video = np.stack(out)
    if "lighting" in effects:
        inner = (slice(margin, margin + size), slice(margin, margin + size))
        video *= lighting(len(video), yy[inner], xx[inner], fx)
    noise = NOISE_STD["noise" in effects]
    video += rng.normal(0, noise, video.shape).astype(np.float32)  # sensor noise
    return np.clip(video, 0, 255).astype(np.uint8)
