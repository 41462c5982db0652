"""Wrapper of a data root's ``config.yaml`` (modelled on fairseq's ``S2TDataConfig``).

Example::

    video_root: videos                 # relative to the data root, or absolute
    vocab_filename: dict.txt
    bpe_tokenizer: {bpe: sentencepiece, sentencepiece_model: spm.model}
    video: {resize: 256, crop: 224, keep_ratio: 0.25, max_frames: 300}   # or resize: [256, 256]
    augment: {rotate: 30, scale: 0.2, translate: 10, p: 0.5}
    feature_cache: features_stage2     # optional, stage 2 only

The file is strict: it is checked when opened (:func:`check_data_config`), and an unknown key or
section (a typo such as ``keep_ration`` or ``vidoe:``), a value of the wrong type or out of range,
a duplicate key, malformed YAML, an empty file or a top level that is not a mapping is a
:class:`DataConfigError` naming the file, the line where known, the key and the fix.
"""

import difflib
import json
import math
import numbers
import os
import re
from pathlib import Path
from typing import Any, Callable, Dict, List, NoReturn, Optional, Tuple, Union

import yaml

from ..paper import paper_value

# The keys SignDataConfig reads, by section ("" is the top level), and their defaults.
PATH_KEYS = ("video_root", "vocab_filename", "feature_cache", "frame_store")
SECTIONS = ("bpe_tokenizer", "video", "augment")
# fairseq's sentencepiece BPE (fairseq/data/encoders/sentencepiece_bpe.py::SentencepieceConfig) and
# a Hugging Face model folder's tokenizer (fairseq_slt/hf/bpe.py)
SENTENCEPIECE, HF_TOKENIZER = "sentencepiece", "hf_tokenizer"
BPE_KEYS = ("bpe", "sentencepiece_model", "sentencepiece_enable_sampling", "sentencepiece_alpha",
            "hf_tokenizer_dir")
# the paper's values (fairseq_slt.paper), except resize: a config without it resizes the shorter
# side to 256 and keeps the aspect ratio (the paper's code squashes the whole frame to [256, 256])
VIDEO_DEFAULTS = {"resize": 256, **{k: paper_value(k.upper()) for k in ("crop", "keep_ratio", "max_frames")}}
AUGMENT_DEFAULTS = {k: paper_value(f"AUGMENT_{k.upper()}") for k in ("rotate", "scale", "translate", "p")}
KNOWN_KEYS: Dict[str, Tuple[str, ...]] = {
    "": PATH_KEYS[:2] + SECTIONS + PATH_KEYS[2:],
    "bpe_tokenizer": BPE_KEYS,
    "video": tuple(VIDEO_DEFAULTS),
    "augment": tuple(AUGMENT_DEFAULTS),
}
SEE_DOCS = "see docs/usage.md 'Data root'"
# fail(key, message) raises a DataConfigError naming the file and the line of key
Fail = Callable[[str, str], NoReturn]


class DataConfigError(ValueError):
    """A data config (``config.yaml``) that cannot be used as written; the message names the file,
    the key (``section.key``) and the fix."""


# --- reading -----------------------------------------------------------------------------------


def key_lines(text: str) -> Dict[str, List[int]]:
    """1-based line numbers of every key of ``text``'s top-level mapping and of its sections'
    mappings, as ``{"video": [3], "video.crop": [5], ...}`` (a duplicate key has several)."""
    lines: Dict[str, List[int]] = {}
    root = yaml.compose(text, Loader=yaml.SafeLoader)

    def walk(node: yaml.Node, prefix: str) -> None:
        for key, value in node.value:
            name = prefix + str(key.value)
            lines.setdefault(name, []).append(key.start_mark.line + 1)
            if not prefix and isinstance(value, yaml.MappingNode):
                walk(value, name + ".")

    if isinstance(root, yaml.MappingNode):
        walk(root, "")
    return lines


def load_config_yaml(path: str) -> Tuple[Dict[str, Any], Dict[str, List[int]]]:
    """Parse ``path`` into its top-level mapping and :func:`key_lines`; malformed YAML, an empty
    file, a top level that is not a mapping and a duplicate key are a :class:`DataConfigError`."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except UnicodeDecodeError as e:
        raise DataConfigError(f"{path}: not valid UTF-8 ({e.reason} at byte {e.start}); save it as UTF-8") from e
    try:
        config = yaml.safe_load(text)
        lines = key_lines(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
        where = f", line {mark.line + 1} column {mark.column + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise DataConfigError(
            f"{path}{where}: malformed YAML ({problem}); fix the syntax there (indent with spaces, "
            f"one 'key: value' per line or '{{key: value, ...}}'; {SEE_DOCS})"
        ) from None
    if config is None:
        raise DataConfigError(
            f"{path}: the data config is empty; write its keys (at least vocab_filename and video; "
            f"the data preparation writes a complete one; {SEE_DOCS})"
        )
    if not isinstance(config, dict):
        raise DataConfigError(
            f"{path}: the top level must be a mapping of keys (video_root: ..., video: {{...}}), "
            f"not a {yaml_type(config)}; {SEE_DOCS}"
        )
    for name, at in lines.items():
        if len(at) > 1:
            raise DataConfigError(
                f"{path}, line {at[-1]}: duplicate key {name} (also on line {at[0]}); YAML would "
                "silently keep the last one: keep a single one"
            )
    return config, lines


# --- checking ----------------------------------------------------------------------------------


def yaml_type(value: Any) -> str:
    """The YAML name of ``value``'s type, for messages."""
    if isinstance(value, dict):
        return "mapping"
    if isinstance(value, list):
        return "list"
    if isinstance(value, str):
        return "string"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    return "number" if isinstance(value, numbers.Number) else type(value).__name__


def show(value: Any) -> str:
    """``value`` as YAML-ish text (``null``, ``true``, ``"abc"``, ``0.5``) for messages."""
    return json.dumps(value, default=str)


def is_number(value: Any) -> bool:
    """A finite int or float (YAML ``true``, ``.nan`` and ``.inf`` are not)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def is_int(value: Any) -> bool:
    """An int (YAML ``true`` is not)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def suggest(key: str, section: str) -> str:
    """``"; did you mean video.keep_ratio?"`` for the closest known key (difflib), looking in the
    other sections too (``max_frame`` at the top level -> ``video.max_frames``)."""
    candidates = [(section, k) for k in KNOWN_KEYS[section]]
    candidates += [(other, k) for other, keys in KNOWN_KEYS.items() if other != section for k in keys]
    names = [k for _, k in candidates]
    close = difflib.get_close_matches(key, names, n=1, cutoff=0.6)
    if not close:
        return ""
    where = next(sec for sec, k in candidates if k == close[0])  # the key's own section first
    if where == section:
        return f"; did you mean {dotted(section, close[0])}?"
    home = f"it belongs under {where}:" if where else "a top-level key"
    return f"; did you mean {dotted(where, close[0])} ({home})?"


def dotted(section: str, key: str) -> str:
    """``video.crop`` for a key of a section, ``video_root`` for a top-level key."""
    return f"{section}.{key}" if section else key


def check_keys(config: Dict[str, Any], section: str, fail: Fail) -> None:
    """Every key of ``config`` (the top level or ``section``) must be known."""
    for key in config:
        if str(key) not in KNOWN_KEYS[section]:
            name = dotted(section, str(key))
            known = ", ".join(KNOWN_KEYS[section])
            kind = "section" if not section and isinstance(config[key], dict) else "key"
            fail(name, f"unknown {kind} {name}{suggest(str(key), section)} "
                       f"(known {'top-level keys' if not section else 'keys of ' + section}: {known})")


def check_path(config: Dict[str, Any], key: str, fail: Fail, optional: bool, section: str = "") -> None:
    """``key`` of ``section``, when given, is a non-empty path string (``null`` only where
    ``optional``)."""
    if key not in config or (optional and config[key] is None):
        return
    value, name = config[key], dotted(section, key)
    if not isinstance(value, str) or not value:
        hint = "; quote it" if isinstance(value, (numbers.Number, bool)) else ""
        null = " or null" if optional else ""
        fail(name, f"{name}: {show(value)} is not a path; give a non-empty string{null} (relative to "
                   f"the data root, or absolute){hint}")


def check_section(config: Dict[str, Any], section: str, fail: Fail) -> Dict[str, Any]:
    """The mapping of ``section`` (``{}`` where absent or ``null``), its keys checked."""
    value = config.get(section)
    if value is None:
        return {}
    if not isinstance(value, dict):
        fail(section, f"{section} must be a mapping ({section}: {{key: value, ...}}, or one key per "
                      f"indented line), not a {yaml_type(value)} ({show(value)})")
    check_keys(value, section, fail)
    return value


def check_bpe(bpe: Dict[str, Any], fail: Fail) -> None:
    """``bpe_tokenizer``: fairseq's sentencepiece BPE and its model, or a Hugging Face model
    folder's tokenizer (``bpe: hf_tokenizer``, ``hf_tokenizer_dir``)."""
    if not bpe:
        return
    if bpe.get("bpe") == HF_TOKENIZER:
        if "hf_tokenizer_dir" not in bpe:
            fail("bpe_tokenizer", "bpe_tokenizer has no hf_tokenizer_dir; give the Hugging Face model "
                                  "folder whose tokenizer the targets use (fairseq-slt-data-config --llm-dir)")
        check_path(bpe, "hf_tokenizer_dir", fail, optional=False, section="bpe_tokenizer")
        return
    if bpe.get("bpe") != SENTENCEPIECE:
        fail("bpe_tokenizer.bpe", f"bpe_tokenizer.bpe: {show(bpe.get('bpe'))} is not supported; give "
                                  "'bpe: sentencepiece' (a sentencepiece model) or 'bpe: hf_tokenizer' (a "
                                  "Hugging Face model folder's tokenizer)")
    if "sentencepiece_model" not in bpe:
        fail("bpe_tokenizer", "bpe_tokenizer has no sentencepiece_model; give the path of the "
                              "sentencepiece model (e.g. spm.model, relative to the data root)")
    check_path(bpe, "sentencepiece_model", fail, optional=False, section="bpe_tokenizer")
    sampling = bpe.get("sentencepiece_enable_sampling", False)
    if not isinstance(sampling, bool):
        fail("bpe_tokenizer.sentencepiece_enable_sampling",
             f"bpe_tokenizer.sentencepiece_enable_sampling: {show(sampling)} is not a boolean; give true or false")
    alpha = bpe.get("sentencepiece_alpha")
    if alpha is not None and not is_number(alpha):
        fail("bpe_tokenizer.sentencepiece_alpha",
             f"bpe_tokenizer.sentencepiece_alpha: {show(alpha)} is not a number; give a number or null")


RESIZE_FORMS = ("an integer > 0 (the shorter side, aspect ratio kept; default 256) or a [height, width] "
                "pair of them (the whole frame squashed to it, GFSLT-VLP: [256, 256])")


def check_resize(value: Any, fail: Fail) -> None:
    """``video.resize``: a positive integer (the shorter side) or a ``[height, width]`` list of
    two positive integers (the whole frame)."""
    if isinstance(value, (list, tuple)):
        if len(value) != 2:
            n = f"{len(value)} size{'' if len(value) == 1 else 's'}"
            fail("video.resize", f"video.resize: {show(value)} has {n}; give a [height, "
                                 f"width] pair, or one integer for the shorter side ({RESIZE_FORMS})")
        if not all(is_int(side) and side > 0 for side in value):
            fail("video.resize", f"video.resize: {show(value)} is out of range; both sides of the pair are "
                                 f"sizes in pixels, integers > 0 ({RESIZE_FORMS})")
        return
    if not is_int(value) or value <= 0:
        pair = re.fullmatch(r"\s*(\d+)\s*[xX*,]\s*(\d+)\s*", value) if isinstance(value, str) else None
        hint = f"; write the pair as [{pair.group(1)}, {pair.group(2)}]" if pair else ""
        fail("video.resize", f"video.resize: {show(value)} is out of range; give a size in pixels, "
                             f"{RESIZE_FORMS}{hint}")


def check_video(video: Dict[str, Any], fail: Fail) -> None:
    """``video``: resize is a positive integer or a [height, width] pair of them, crop a positive
    integer no larger than resize (than both of its sides), keep_ratio in (0, 1] and max_frames an
    integer >= 1 (defaults fill in what is absent)."""
    check_resize(video.get("resize", VIDEO_DEFAULTS["resize"]), fail)
    crop = video.get("crop", VIDEO_DEFAULTS["crop"])
    if not is_int(crop) or crop <= 0:
        fail("video.crop", f"video.crop: {show(crop)} is out of range; give a size in pixels, "
                           f"an integer > 0 (default {VIDEO_DEFAULTS['crop']})")
    resize = video.get("resize", VIDEO_DEFAULTS["resize"])
    default = {k: "" if k in video else ", the default" for k in ("crop", "resize")}
    if isinstance(resize, (list, tuple)):
        if crop > min(resize):
            side = "height" if resize[0] < resize[1] else "width" if resize[1] < resize[0] else "sides"
            fail("video.crop", f"video.crop ({crop}{default['crop']}) is larger than the {side} of "
                               f"video.resize {show(list(resize))} ({min(resize)}); give crop <= both sides "
                               "of resize (the crop is cut from the resized frame)")
    elif crop > resize:
        fail("video.crop", f"video.crop ({crop}{default['crop']}) is larger than video.resize ({resize}"
                           f"{default['resize']}); give crop <= resize (the crop is cut from the resized frame)")
    ratio = video.get("keep_ratio", VIDEO_DEFAULTS["keep_ratio"])
    if not is_number(ratio) or not 0 < ratio <= 1:
        fail("video.keep_ratio", f"video.keep_ratio: {show(ratio)} is out of range; give the fraction of "
                                 "frames kept, a number in (0, 1] (paper: 0.25)")
    cap = video.get("max_frames", VIDEO_DEFAULTS["max_frames"])
    if not is_int(cap) or cap < 1:
        fail("video.max_frames", f"video.max_frames: {show(cap)} is out of range; give a cap in frames, an "
                                 "integer >= 1 (e.g. 300): longer videos are sampled down to it (there is no "
                                 "'no cap' value: fairseq would skip every video longer than "
                                 "--max-source-positions)")


def check_augment(augment: Dict[str, Any], fail: Fail) -> None:
    """``augment``: magnitudes are numbers >= 0, ``p`` a probability in [0, 1]."""
    for key, value in augment.items():
        if key == "p":
            if not is_number(value) or not 0 <= value <= 1:
                fail("augment.p", f"augment.p: {show(value)} is out of range; give a probability, a "
                                  "number in [0, 1]")
        elif not is_number(value) or value < 0:
            fail(f"augment.{key}", f"augment.{key}: {show(value)} is out of range; give a number >= 0 "
                                   "(0 turns it off)")


def check_data_config(config: Dict[str, Any], path: str, lines: Optional[Dict[str, List[int]]] = None) -> None:
    """Raise a :class:`DataConfigError` for the first unknown key or section, value of the wrong
    type or out of range in ``config`` (the top-level mapping of ``path``). ``lines`` (from
    :func:`key_lines`) adds the line of the key to the message."""
    lines = lines or {}

    def fail(key: str, message: str) -> NoReturn:
        at = lines.get(key) or lines.get(key.split(".")[0])
        where = f", line {at[0]}" if at else ""
        raise DataConfigError(f"{path}{where}: {message}")

    check_keys(config, "", fail)
    check_path(config, "video_root", fail, optional=False)
    check_path(config, "vocab_filename", fail, optional=False)
    check_path(config, "feature_cache", fail, optional=True)
    check_path(config, "frame_store", fail, optional=True)
    sections = {name: check_section(config, name, fail) for name in SECTIONS}
    check_bpe(sections["bpe_tokenizer"], fail)
    check_video(sections["video"], fail)
    check_augment(sections["augment"], fail)


# --- the config --------------------------------------------------------------------------------


class SignDataConfig:
    """Read-only view of ``config.yaml``; every key has a documented default and range, and the
    whole file is checked when it is opened (:func:`check_data_config`)."""

    def __init__(self, yaml_path: str):
        self.yaml_path = Path(yaml_path)
        self.root = self.yaml_path.parent
        if not self.yaml_path.is_file():
            raise FileNotFoundError(
                f"data config not found: {self.yaml_path} (the data root must hold config.yaml, "
                "see docs/usage.md, 'Data root')"
            )
        config, lines = load_config_yaml(str(self.yaml_path))
        check_data_config(config, str(self.yaml_path), lines)
        self.config: Dict[str, Any] = config

    def _path(self, value: Optional[str]) -> Optional[str]:
        if value is None:
            return None
        return value if os.path.isabs(value) else str(self.root / value)

    def _section(self, name: str) -> Dict[str, Any]:
        return self.config.get(name) or {}

    @property
    def video_root(self) -> str:
        """``video_root``: folder the manifests' ``video`` paths are relative to; relative to the
        data root, or absolute (default: ``.``, the data root)."""
        return self._path(self.config.get("video_root", "."))

    @property
    def vocab_filename(self) -> str:
        """``vocab_filename``: target dictionary (fairseq ``dict.txt`` format), relative to the data
        root or absolute (default: ``dict.txt``)."""
        return self._path(self.config.get("vocab_filename", "dict.txt"))

    @property
    def bpe_tokenizer(self) -> Optional[Dict[str, Any]]:
        """``bpe_tokenizer``: fairseq BPE config passed to ``build_bpe``, e.g. ``{bpe: sentencepiece,
        sentencepiece_model: spm.model}`` (default: none). Keys: ``bpe`` (``sentencepiece``),
        ``sentencepiece_model`` (required; relative to the data root or absolute), and fairseq's
        optional ``sentencepiece_enable_sampling`` (boolean), ``sentencepiece_alpha`` (number); or
        ``bpe: hf_tokenizer`` with ``hf_tokenizer_dir``, a Hugging Face model folder whose tokenizer
        is also the target dictionary (``vocab_filename`` is then not read; ``--arch slt_hf``)."""
        bpe = dict(self.config.get("bpe_tokenizer") or {})
        if not bpe:
            return None
        for key in ("sentencepiece_model", "hf_tokenizer_dir"):
            if key in bpe:
                bpe[key] = self._path(bpe[key])
        return bpe

    @property
    def hf_tokenizer_dir(self) -> Optional[str]:
        """The Hugging Face model folder of ``bpe: hf_tokenizer`` (None with a sentencepiece model)."""
        bpe = self.bpe_tokenizer or {}
        return bpe.get("hf_tokenizer_dir") if bpe.get("bpe") == HF_TOKENIZER else None

    @property
    def resize(self) -> Union[int, Tuple[int, int]]:
        """``video.resize``: how a frame is resized before cropping, one of

        * an integer (``resize: 256``, the default): the shorter side is resized to it, keeping
          the aspect ratio, so the crop cuts the longer side (on PHOENIX14T's 210 x 260 frames,
          about 30% of the height);
        * a ``[height, width]`` pair (``resize: [256, 256]``): the whole frame is resized to it,
          its aspect ratio squashed, as GFSLT-VLP (the paper's code base) does.

        Every size is an integer > 0 and >= crop. Returned as an ``int`` or a ``(height, width)``
        tuple (see :func:`fairseq_slt.data.transforms.build_video_transform`)."""
        value = self._section("video").get("resize", VIDEO_DEFAULTS["resize"])
        if isinstance(value, (list, tuple)):
            return int(value[0]), int(value[1])
        return int(value)

    @property
    def crop(self) -> int:
        """``video.crop``: side of the square crop fed to the backbone, an integer in (0, resize]
        (no larger than either side of a [height, width] resize; default 224, paper/GFSLT)."""
        return int(self._section("video").get("crop", VIDEO_DEFAULTS["crop"]))

    @property
    def keep_ratio(self) -> float:
        """``video.keep_ratio``: fraction of frames kept by temporal down-sampling, in (0, 1]
        (default 0.25, paper)."""
        return float(self._section("video").get("keep_ratio", VIDEO_DEFAULTS["keep_ratio"]))

    @property
    def max_frames(self) -> int:
        """``video.max_frames``: cap on frames fed to the model per video after down-sampling, an
        integer >= 1 and at most the task's ``--max-source-positions`` (default 300). Longer videos
        are sampled over their whole length down to this many frames."""
        return int(self._section("video").get("max_frames", VIDEO_DEFAULTS["max_frames"]))

    @property
    def augment(self) -> Dict[str, float]:
        """``augment``: training augmentation, each applied with probability ``augment.p`` in
        [0, 1]: ``rotate`` (degrees), ``scale`` (+-fraction), ``translate`` (pixels), each a number
        >= 0, 0 turning it off (defaults 30, 0.2, 10, p 0.5, GFSLT)."""
        aug = dict(AUGMENT_DEFAULTS)
        aug.update({k: float(v) for k, v in self._section("augment").items()})
        return aug

    @property
    def feature_cache(self) -> Optional[str]:
        """``feature_cache``: folder of cached sign-wise features (``fairseq-slt-cache-features``);
        when set, stage 2 trains and decodes on them instead of decoding videos. Relative to the
        data root or absolute (default: none)."""
        return self._path(self.config.get("feature_cache"))

    @property
    def frame_store(self) -> Optional[str]:
        """``frame_store``: folder of prepared frames (``fairseq-slt-frame-store``): every frame of every
        sentence at ``video.resize``, read instead of decoding the videos. Relative to the data root
        or absolute (default: none)."""
        return self._path(self.config.get("frame_store"))
