"""Writing a data root: TSV manifests, sentencepiece model + dictionary, ``config.yaml``, and the
data configs derived from it (``config_stage2.yaml``: stage 2's tokenizer and vocabulary, feature
cache).

Used by the synthetic corpus generator, the dataset prep scripts (as fairseq's
``examples/speech_to_text/data_utils.py`` is by its prep scripts) and ``fairseq-slt-data-config``.
"""

import codecs
import logging
import math
import os
import re
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import yaml

from .data_cfg import AUGMENT_DEFAULTS, VIDEO_DEFAULTS, check_data_config
from .vocab import train_sentencepiece, write_fairseq_dict

logger = logging.getLogger(__name__)

MANIFEST_COLUMNS = ["id", "video", "n_frames", "tgt_text"]
# the files of an mBART directory (mbart.cc25 layout) that a data config points at
MBART_VOCAB = "dict.txt"
MBART_SPM = "sentence.bpe.model"
# a time in seconds as a manifest, a table or an input list writes it: ASCII digits with an
# optional decimal point (float() also takes inf, nan, 1_0, 1e3, signs and non-ASCII digits)
PLAIN_SECONDS = re.compile(r"[0-9]+(?:\.[0-9]*)?|\.[0-9]+")


class ManifestError(ValueError):
    """A manifest is malformed; the message names the file, row and what to do."""


def is_train_split(split: str) -> bool:
    """Whether ``split`` is read as training data (training transforms, training views of the
    feature cache): the one rule of split names, ``train`` and every name starting with it
    (``train``, ``train_small``, ...)."""
    return split.startswith("train")


def write_manifest(path: str, rows: List[Dict[str, object]], columns: Optional[List[str]] = None) -> None:
    """Write a plain tab-separated manifest (UTF-8, ``\\n`` line ends, nothing quoted or escaped),
    atomically. Values must not contain tabs or line breaks; any other text is written as is, so
    :func:`read_manifest` gives it back byte for byte (quotes, backslashes, ``#``, any script)."""
    columns = columns or MANIFEST_COLUMNS + [c for c in rows[0] if c not in MANIFEST_COLUMNS]
    for row in rows:
        for c in columns:
            if any(ch in str(row.get(c, "")) for ch in "\t\n\r"):
                raise ValueError(f"row {row.get('id')}: column {c} holds a tab or line break")
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8", newline="") as f:
        f.write("\t".join(columns) + "\n")
        for row in rows:
            f.write("\t".join(str(row.get(c, "")) for c in columns) + "\n")
    os.replace(tmp, path)


def read_manifest(path: str) -> Tuple[List[str], List[Dict[str, Any]]]:
    """The header and rows of a plain tab-separated manifest; each row maps the header's columns
    to its fields and ``_row`` to its line number (the header is line 1).

    Fields are split on tabs and nothing is unescaped (the inverse of :func:`write_manifest`). A
    UTF-8 byte-order mark and ``\\r\\n`` line ends are accepted; a line that is not UTF-8, a blank
    line, a row with another number of fields than the header or a repeated column name is a
    :class:`ManifestError` naming the file and line.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"manifest not found: {path}")
    lines = read_tsv_lines(path)
    if not lines:
        raise ManifestError(f"{path}: the manifest is empty; it needs a header line")
    header = lines[0][1]
    repeated = sorted({c for c in header if header.count(c) > 1})
    if repeated:
        raise ManifestError(f"{path}: the header repeats column(s) {', '.join(repeated)}")
    rows = []
    for i, fields in lines[1:]:
        if not "".join(fields).strip():
            raise ManifestError(f"{path}: row {i} is blank; remove the empty line")
        if len(fields) != len(header):
            raise ManifestError(
                f"{path} row {i} (id {fields[0]}): {len(fields)} tab-separated fields but the header "
                f"has {len(header)} ({', '.join(header)}); a value may hold a tab, or a field is missing"
            )
        row: Dict[str, Any] = dict(zip(header, fields))
        row["_row"] = i
        rows.append(row)
    return header, rows


def read_tsv_lines(path: str, what: str = "manifest") -> List[Tuple[int, List[str]]]:
    """``(line number, fields)`` of every line of a plain tab-separated file, the header (line 1)
    included: the one row reader of manifests and ``fairseq-slt-prep``'s TSV tables.

    UTF-8, with or without a byte-order mark; ``\n`` or ``\r\n`` line ends; fields split on
    tabs, nothing unquoted or unescaped (the inverse of :func:`write_manifest`). A line that is not
    UTF-8 is a :class:`ManifestError` naming the file and line (``what`` names the file's kind in
    the fix). What a row must hold is the caller's rule.
    """
    with open(path, "rb") as f:
        data = f.read()
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return [(i, _decode_line(path, i, raw, what).split("\t")) for i, raw in enumerate(lines, start=1)]


def read_split_manifest(path: str, required: Sequence[str] = tuple(MANIFEST_COLUMNS)) -> List[Dict[str, Any]]:
    """The rows of a split's manifest (:func:`read_manifest`), each with its line number under
    ``_row``; the ``required`` columns must be there and there must be a row."""
    header, rows = read_manifest(path)
    missing = [c for c in required if c not in header]
    if missing:
        raise ManifestError(
            f"{path}: missing required column(s) {', '.join(missing)} (header: "
            f"{', '.join(header) or 'empty'}); a manifest needs the tab-separated "
            f"columns {', '.join(required)}"
        )
    if not rows:
        raise ManifestError(f"{path}: the manifest has no rows")
    return rows


def _decode_line(path: str, line_number: int, raw: bytes, what: str = "manifest") -> str:
    raw = raw[:-1] if raw.endswith(b"\r") else raw
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ManifestError(
            f"{path}: row {line_number} is not valid UTF-8 (byte {e.start + 1} of the line: "
            f"{raw[e.start:e.start + 4]!r}); re-encode the {what} as UTF-8"
        ) from e


def is_plain_seconds(value: str) -> bool:
    """Whether ``value`` (surrounding spaces aside) is a time in seconds as :data:`PLAIN_SECONDS`
    writes it."""
    return PLAIN_SECONDS.fullmatch(value.strip()) is not None


def parse_seconds(value: str, name: str = "time") -> float:
    """One time in seconds (``12``, ``12.5``, ``.5``); anything else is a :class:`ValueError`
    naming ``name`` and the value."""
    if not is_plain_seconds(value):
        raise ValueError(f"{name} {value!r} is not a number of seconds (digits with an optional decimal "
                         "point, e.g. 12.5)")
    return float(value)


def parse_time_range(start: Optional[str], end: Optional[str],
                     decimals: Optional[int] = None) -> Tuple[Optional[float], Optional[float]]:
    """``(start, end)`` seconds of a ``[start, end)`` time range given as text, ``(None, None)``
    when both are empty; with ``decimals``, rounded to that many (as a manifest stores them).

    The one parser of time ranges: manifests, ``fairseq-slt-prep`` tables and
    ``fairseq-slt-translate`` input lists. A :class:`ValueError` whose message says what is wrong
    (without the row, which the caller adds): only one of the two, a value that is not plain
    digits (``inf``, ``nan``, ``1_0``, ``1e3``), a negative start, an end not after the start.
    """
    start, end = (start or "").strip(), (end or "").strip()
    if not start and not end:
        return None, None
    if not start or not end:
        raise ValueError("give both start and end, or neither")
    for name, value in (("start", start), ("end", end)):
        if value.startswith("-") and is_plain_seconds(value[1:]):
            raise ValueError(f"{name} {value} is negative; times count from 0 s at the video's start")
    if not (is_plain_seconds(start) and is_plain_seconds(end)):
        kind = "finite numbers" if any(_is_non_finite(v) for v in (start, end)) else "numbers"
        raise ValueError(f"start {start!r} / end {end!r} must be {kind} of seconds (digits with an optional "
                         "decimal point, e.g. 12.5)")
    t0, t1 = float(start), float(end)
    if decimals is not None:
        t0, t1 = round(t0, decimals), round(t1, decimals)
    if t1 <= t0:
        raise ValueError(f"end {t1} <= start {t0}; the range is [start, end) seconds")
    return t0, t1


def _is_non_finite(value: str) -> bool:
    try:
        return not math.isfinite(float(value))
    except ValueError:
        return False


def gen_vocab(texts: Iterable[str], out_dir: str, vocab_size: int, model_type: str = "unigram",
              prefix: str = "spm") -> None:
    """Train a sentencepiece model on ``texts`` and write ``<prefix>.model`` and ``dict.txt``
    (S2T's ``gen_vocab``; see :mod:`fairseq_slt.data.vocab`)."""
    spm_model = train_sentencepiece(texts, os.path.join(out_dir, prefix), vocab_size, model_type)
    write_fairseq_dict(spm_model, os.path.join(out_dir, "dict.txt"))


def gen_config_yaml(out_dir: str, video_root: str, resize: Union[int, Sequence[int]] = VIDEO_DEFAULTS["resize"],
                    crop: int = VIDEO_DEFAULTS["crop"], keep_ratio: float = VIDEO_DEFAULTS["keep_ratio"],
                    max_frames: int = VIDEO_DEFAULTS["max_frames"], augment: Optional[Dict[str, float]] = None,
                    spm_model: str = "spm.model", vocab: str = "dict.txt") -> None:
    """Write ``config.yaml`` (see :class:`fairseq_slt.data.SignDataConfig` for the keys); the
    defaults: crop 224, 25% of the frames, at most 300 of them (the paper's) and resize 256.
    ``resize`` is an integer (the shorter side, aspect ratio kept) or a ``(height, width)`` pair
    (the whole frame squashed to it, as the paper's code base GFSLT-VLP does with ``(256, 256)``),
    written as a YAML list; a bad value is a
    :class:`~fairseq_slt.data.data_cfg.DataConfigError` and nothing is written."""
    if isinstance(resize, (list, tuple)):
        resize = list(resize)  # YAML [height, width] (safe_dump cannot write a tuple)
    config = {
        "video_root": video_root,
        "vocab_filename": vocab,
        "bpe_tokenizer": {"bpe": "sentencepiece", "sentencepiece_model": spm_model},
        "video": {"resize": resize, "crop": crop, "keep_ratio": keep_ratio, "max_frames": max_frames},
        "augment": augment or dict(AUGMENT_DEFAULTS),
    }
    write_yaml(os.path.join(out_dir, "config.yaml"), config)


def data_root_path(data_root: str, path: str) -> str:
    """``path`` (absolute, or relative to the working directory) as a data config writes it:
    relative to ``data_root`` when it lies inside it, otherwise absolute.
    :class:`~fairseq_slt.data.SignDataConfig` resolves either form to ``path``."""
    root, target = os.path.abspath(data_root), os.path.abspath(path)
    if os.path.commonpath([root, target]) == root:
        return os.path.relpath(target, root)
    return target


def point_at_mbart(config: Dict[str, Any], data_root: str, mbart_dir: str) -> Dict[str, Any]:
    """A copy of ``config`` whose target vocabulary and sentencepiece model are those of
    ``mbart_dir`` (absolute, or relative to the working directory). Other keys of
    ``bpe_tokenizer`` are kept; keys keep their order."""
    for name in (MBART_VOCAB, MBART_SPM):
        if not os.path.isfile(os.path.join(mbart_dir, name)):
            raise FileNotFoundError(f"mBART directory {mbart_dir} lacks {name}")
    config = dict(config)
    config["vocab_filename"] = data_root_path(data_root, os.path.join(mbart_dir, MBART_VOCAB))
    bpe = dict(config.get("bpe_tokenizer") or {})
    bpe["bpe"] = "sentencepiece"
    bpe["sentencepiece_model"] = data_root_path(data_root, os.path.join(mbart_dir, MBART_SPM))
    config["bpe_tokenizer"] = bpe
    return config


def point_at_llm(config: Dict[str, Any], data_root: str, llm_dir: str) -> Dict[str, Any]:
    """A copy of ``config`` whose targets are tokenized by the Hugging Face model folder
    ``llm_dir`` (absolute, or relative to the working directory); keys keep their order."""
    if not os.path.isfile(os.path.join(llm_dir, "config.json")):
        raise FileNotFoundError(f"{llm_dir} is not a Hugging Face model folder (no config.json)")
    config = {k: v for k, v in config.items() if k != "vocab_filename"}
    config["bpe_tokenizer"] = {"bpe": "hf_tokenizer", "hf_tokenizer_dir": data_root_path(data_root, llm_dir)}
    return config


def write_yaml(path: str, config: Dict[str, Any]) -> None:
    """Write the data config ``config`` to ``path`` atomically (a temporary file, then
    ``os.replace``), in the order of its keys; it is checked first, as reading it would be, so a
    bad value is refused where it is written (:class:`~fairseq_slt.data.data_cfg.DataConfigError`)."""
    check_data_config(config, path)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        yaml.safe_dump(config, f, sort_keys=False)
    os.replace(tmp, path)


def derive_config_yaml(data_root: str, src: str, out: str, mbart_dir: Optional[str] = None,
                       feature_cache: Optional[str] = None, drop_feature_cache: bool = False,
                       llm_dir: Optional[str] = None, frame_store: Optional[str] = None) -> str:
    """Write the data config ``<data_root>/<out>``, derived from ``<data_root>/<src>``.

    Args:
        data_root: the data root (the folder of the manifests and of ``src``).
        src: data config to start from, e.g. ``config.yaml`` (relative to ``data_root``).
        out: data config to write, e.g. ``config_stage2.yaml`` (relative to ``data_root``; may be
            ``src`` itself).
        mbart_dir: an mBART directory (mbart.cc25 layout; absolute, or relative to the working
            directory): ``vocab_filename`` and ``bpe_tokenizer.sentencepiece_model`` are pointed
            at its ``dict.txt`` and ``sentence.bpe.model``, relative to the data root when the
            directory is inside it and absolute otherwise.
        feature_cache: set ``feature_cache`` (a folder of ``fairseq-slt-cache-features``,
            written as given: relative to the data root, or absolute).
        drop_feature_cache: remove ``feature_cache`` (a model that reads the videos).
        frame_store: set ``frame_store`` (a folder of ``fairseq-slt-frame-store``, as given).
        llm_dir: a Hugging Face model folder (``--arch slt_hf``): ``bpe_tokenizer`` becomes
            ``{bpe: hf_tokenizer, hf_tokenizer_dir: ...}`` (relative to the data root when inside
            it) and ``vocab_filename`` is removed (the tokenizer is the target dictionary).

    Every other key is copied unchanged and keeps its place (a new ``feature_cache`` comes last).
    Returns the path written.
    """
    if feature_cache is not None and drop_feature_cache:
        raise ValueError("feature_cache and drop_feature_cache exclude each other")
    src_path, out_path = os.path.join(data_root, src), os.path.join(data_root, out)
    with open(src_path, encoding="utf-8") as f:
        config = yaml.safe_load(f) or {}
    if not isinstance(config, dict):
        raise ValueError(f"{src_path}: expected a mapping of keys, got {type(config).__name__}")
    if mbart_dir is not None and llm_dir is not None:
        raise ValueError("mbart_dir and llm_dir exclude each other")
    if mbart_dir is not None:
        config = point_at_mbart(config, data_root, mbart_dir)
    if llm_dir is not None:
        config = point_at_llm(config, data_root, llm_dir)
    if feature_cache is not None:
        config["feature_cache"] = feature_cache
    elif drop_feature_cache:
        config.pop("feature_cache", None)
    if frame_store is not None:
        config["frame_store"] = frame_store
    write_yaml(out_path, config)
    logger.info(f"{src_path} -> {out_path} (vocabulary {config.get('vocab_filename')}, "
                f"feature cache {config.get('feature_cache')})")
    return out_path
