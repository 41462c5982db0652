"""A data root from a table of your own (``fairseq-slt-prep``).

The table is TSV or CSV (told by the extension, ``.tsv``/``.tab`` or ``.csv``, else by the first
line) with a header row: the columns ``id``, ``video`` and ``text``, and optionally ``split``
(``train``/``dev``/``test``; ``val``, ``valid`` and ``validation`` are read as ``dev``), ``signer``
and ``start``/``end`` (seconds; a sentence cut out of a longer video by reference). ``video`` is
relative to the video root: a video file (mp4, avi, ...) or a folder of png/jpg frames. There may
instead be one table per split. A table without a ``split`` column is split here, deterministically
for a seed (:func:`split_groups`): by row, by video (its real path: however the table spells it),
or by signer (no signer in two splits).

The rows then take the path every prep script takes,
:func:`fairseq_slt.data.prep_utils.prepare_data_root`.
"""

import csv
import hashlib
import logging
import os
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence, Tuple

from .manifest_utils import ManifestError, data_root_path, read_tsv_lines
from .prep_utils import SourceRow, prepare_data_root, source_path

logger = logging.getLogger(__name__)

REQUIRED_COLUMNS = ("id", "video", "text")
OPTIONAL_COLUMNS = ("split", "signer", "start", "end")
SPLITS = ("train", "dev", "test")
SPLIT_NAMES = {"train": "train", "dev": "dev", "val": "dev", "valid": "dev", "validation": "dev", "test": "test"}
SPLIT_BY = ("row", "video", "signer")


class TableError(ValueError):
    """A table cannot be read as a whole; the message names the file, the row and what to do."""


def detect_delimiter(path: str, first_line: str) -> str:
    """Tab for ``.tsv``/``.tab``, comma for ``.csv``; otherwise what the header line holds."""
    ext = os.path.splitext(path)[1].lower()
    if ext in (".tsv", ".tab"):
        return "\t"
    if ext == ".csv":
        return ","
    if "\t" in first_line:
        return "\t"
    if "," in first_line:
        return ","
    raise TableError(f"{path}: cannot tell TSV from CSV (the header has neither tabs nor commas); "
                     "name the file .tsv or .csv")


def read_table(path: str, split: Optional[str] = None) -> List[Tuple[Optional[str], SourceRow]]:
    """``(split, row)`` for every data row of ``path``, in order.

    ``split`` is the split of a per-split table: a ``split`` column that says otherwise is an
    error. Without it, the split is the ``split`` column's (``None`` when there is none). TSV is
    read as manifests are (:func:`~fairseq_slt.data.manifest_utils.read_tsv_lines`: no quoting, a
    ``"`` is text); CSV with standard quoting (quote a text that holds a comma). Blank rows are
    skipped.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"table not found: {path}")
    try:
        with open(path, "rb") as f:  # the header's tabs or commas, whatever its encoding
            delimiter = detect_delimiter(path, f.readline().decode("utf-8", errors="replace"))
        if delimiter == "\t":  # the manifests' reader: no quoting
            lines = read_tsv_lines(path, "table")
        else:
            with open(path, encoding="utf-8-sig", newline="") as f:
                reader = csv.reader(f, delimiter=delimiter, quoting=csv.QUOTE_MINIMAL)
                lines = [(reader.line_num, fields) for fields in reader]
    except ManifestError as e:
        raise TableError(str(e)) from None
    except UnicodeDecodeError as e:
        raise TableError(f"{path}: not valid UTF-8 ({e}); save the table as UTF-8") from e
    except csv.Error as e:
        raise TableError(f"{path}: {e}; check the quoting of that row") from e
    header = [h.strip().lower() for h in (lines[0][1] if lines else [])]
    columns = _check_header(path, header)
    hint = "a field holds a tab" if delimiter == "\t" else "quote a text that holds a comma"
    out = [_parse_row(f"{path} row {number}", fields, columns, len(header), split, hint)
           for number, fields in lines[1:] if any(x.strip() for x in fields)]
    if not out:
        raise TableError(f"{path}: the table has a header but no rows")
    return out


def _check_header(path: str, header: List[str]) -> Dict[str, int]:
    """Column name -> position; the required columns must be there, each name once."""
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise TableError(
            f"{path}: missing column(s) {', '.join(missing)} (header: {', '.join(header) or 'empty'}); "
            f"a table needs a header row with {', '.join(REQUIRED_COLUMNS)} "
            f"(optional: {', '.join(OPTIONAL_COLUMNS)})"
        )
    twice = sorted({h for h in header if h and header.count(h) > 1})
    if twice:
        raise TableError(f"{path}: column(s) {', '.join(twice)} appear more than once in the header")
    unknown = [h for h in header if h not in REQUIRED_COLUMNS + OPTIONAL_COLUMNS]
    if unknown:
        logger.info(f"{path}: ignoring column(s) {', '.join(unknown)}")
    return {h: i for i, h in enumerate(header) if h in REQUIRED_COLUMNS + OPTIONAL_COLUMNS}


def _parse_row(where: str, fields: List[str], columns: Dict[str, int], n_columns: int,
               split: Optional[str], hint: str) -> Tuple[Optional[str], SourceRow]:
    if len(fields) > n_columns:
        raise TableError(f"{where}: {len(fields)} fields but the header has {n_columns}; {hint}")
    missing = [c for c in REQUIRED_COLUMNS if columns[c] >= len(fields)]
    if missing:
        raise TableError(f"{where}: no {', '.join(missing)} field ({len(fields)} fields, the header has "
                         f"{n_columns}); fill the row in or remove it")

    def get(name: str) -> Optional[str]:
        if name not in columns:
            return None
        i = columns[name]
        return fields[i].strip() if i < len(fields) else ""  # trailing optional fields may be left out

    row_split = get("split")
    if row_split is not None:
        if row_split.lower() not in SPLIT_NAMES:
            raise TableError(f"{where}: split {row_split!r} is not one of train, dev, test (val, valid and "
                             "validation are read as dev); fix it, or drop the split column to split by fraction")
        row_split = SPLIT_NAMES[row_split.lower()]
        if split is not None and row_split != split:
            raise TableError(f"{where}: the split column says {row_split} but the table was given as the "
                             f"{split} split; fix the column or remove it")
    row = SourceRow(id=get("id"), video=get("video"), text=get("text"), signer=get("signer"),
                    start=get("start"), end=get("end"), where=where)
    return split or row_split, row


def _rank(seed: int, key: str) -> int:
    """A fixed pseudo-random position of ``key`` for ``seed``, independent of the table's order."""
    return int.from_bytes(hashlib.sha256(f"{seed}\0{key}".encode("utf-8")).digest()[:8], "big")


def split_groups(sizes: Dict[str, int], dev_fraction: float, test_fraction: float, seed: int,
                 unit: str = "row") -> Dict[str, str]:
    """Assign each group (a row id, a video or a signer, with its number of rows) to a split.

    Groups are taken in an order fixed by ``seed`` (a hash of seed and group, so adding rows to a
    table moves few of the others): test, then dev take groups while that brings their number of
    rows closer to ``fraction x all rows`` (at least one group each when the fraction is > 0);
    the rest is train. The same seed and table always give the same split.
    """
    order = sorted(sizes, key=lambda k: (_rank(seed, k), k))
    total = sum(sizes.values())
    assignment, i = {}, 0
    for split, fraction in (("test", test_fraction), ("dev", dev_fraction)):
        if fraction <= 0:
            continue
        target, taken = fraction * total, 0
        while i < len(order) and (taken == 0 or abs(taken + sizes[order[i]] - target) < abs(taken - target)):
            assignment[order[i]] = split
            taken += sizes[order[i]]
            i += 1
        if taken == 0:
            raise TableError(f"{len(sizes)} {unit}(s) are too few for --dev-fraction {dev_fraction} and "
                             f"--test-fraction {test_fraction}: none is left for {split}")
    if i == len(order):
        raise TableError(f"{len(sizes)} {unit}(s) are too few for --dev-fraction {dev_fraction} and "
                         f"--test-fraction {test_fraction}: none is left for train")
    for key in order[i:]:
        assignment[key] = "train"
    return assignment


def assign_splits(rows: Sequence[SourceRow], dev_fraction: float, test_fraction: float, seed: int,
                  split_by: str = "row", video_root: str = "") -> Dict[str, List[SourceRow]]:
    """Rows of a table without a split column, split by row id, video or signer (see
    :func:`split_groups`); rows keep their table order within a split. A video is its real path
    under ``video_root`` (:func:`~fairseq_slt.data.prep_utils.source_path`), so ``videos/a.mp4``,
    ``./videos/a.mp4`` and a symlink to it are one video."""
    if split_by not in SPLIT_BY:
        raise ValueError(f"split_by must be one of {', '.join(SPLIT_BY)}, not {split_by!r}")
    if split_by == "signer":
        for r in rows:
            if r.signer is None:
                raise TableError(f"{r.where}: --split-by signer needs a signer column in the table")
            if not r.signer:
                raise TableError(f"{r.where}: no signer; --split-by signer needs one on every row")
    key = {"row": lambda r: r.id, "video": lambda r: source_path(video_root, r.video),
           "signer": lambda r: r.signer}[split_by]
    sizes: Dict[str, int] = OrderedDict()
    for r in rows:
        sizes[key(r)] = sizes.get(key(r), 0) + 1
    assignment = split_groups(sizes, dev_fraction, test_fraction, seed, unit=split_by)
    splits = {s: [r for r in rows if assignment[key(r)] == s] for s in SPLITS}
    counts = ", ".join(f"{s} {len(v)} rows / {len({key(r) for r in v})} {split_by}s" for s, v in splits.items())
    logger.info(f"split by {split_by} (seed {seed}): {counts}")
    return {s: v for s, v in splits.items() if v}


def read_splits(tables: Dict[Optional[str], str], dev_fraction: Optional[float] = None,
                test_fraction: Optional[float] = None, seed: int = 1,
                split_by: Optional[str] = None, video_root: str = "") -> Dict[str, List[SourceRow]]:
    """Source rows per split from ``{None: table}`` (one table) or ``{split: table}`` (one per split).

    One table with a ``split`` column is split by it; one without is split by
    :func:`assign_splits` (fractions default to 0.1 each; videos are resolved under
    ``video_root``). Fractions and ``split_by`` given for a table that is already split are an
    error, and so is a result without train or dev rows.
    """
    split_given = dev_fraction is not None or test_fraction is not None or split_by is not None
    if None in tables:
        pairs = read_table(tables[None])
        if pairs[0][0] is not None:  # a split column (read_table checked every row's value)
            if split_given:
                raise TableError(f"{tables[None]}: the table has a split column, so --dev-fraction, "
                                 "--test-fraction and --split-by do not apply; drop them or the column")
            splits = {s: [r for t, r in pairs if t == s] for s in SPLITS}
        else:
            splits = assign_splits([r for _, r in pairs], 0.1 if dev_fraction is None else dev_fraction,
                                   0.1 if test_fraction is None else test_fraction, seed, split_by or "row",
                                   video_root)
    else:
        if split_given:
            raise TableError("tables are given per split, so --dev-fraction, --test-fraction and --split-by "
                             "do not apply; drop them")
        splits = {s: [r for _, r in read_table(tables[s], s)] for s in SPLITS if s in tables}
    splits = {s: rows for s, rows in splits.items() if rows}
    for needed in ("train", "dev"):
        if needed not in splits:
            raise TableError(f"no {needed} rows in {', '.join(tables.values())}: fairseq-train needs train "
                             "and dev (its --valid-subset)")
    if "test" not in splits:
        logger.warning("no test rows: no test.tsv is written")
    return splits


def remove_stale_splits(out_dir: str, splits: Sequence[str]) -> None:
    """Remove ``<split>.tsv`` / ``dropped_<split>.tsv`` of a split this run does not write, so a
    data root never mixes manifests of two runs."""
    for split in SPLITS:
        if split in splits:
            continue
        for name in (f"{split}.tsv", f"dropped_{split}.tsv"):
            path = os.path.join(out_dir, name)
            if os.path.isfile(path):
                logger.warning(f"removing {path}, left by an earlier run: this run has no {split} rows")
                os.remove(path)


def prepare_from_tables(
    tables: Dict[Optional[str], str],
    out_dir: str,
    video_root: str,
    vocab_size: int = 3000,
    char_level: bool = False,
    lowercase: bool = False,
    dev_fraction: Optional[float] = None,
    test_fraction: Optional[float] = None,
    seed: int = 1,
    split_by: Optional[str] = None,
    workers: int = 1,
    mbart_dir: Optional[str] = None,
    spm_type: Optional[str] = None,
    check_frames: bool = True,
    **config,
) -> Dict[str, List[dict]]:
    """The data root ``out_dir`` from one table (``{None: path}``) or one per split
    (``{"train": path, "dev": path, "test": path}``), with videos under ``video_root`` (relative
    to the working directory, or absolute).

    ``char_level``: one sentencepiece piece per character (Chinese, Japanese); ``spm_type``
    another sentencepiece model type (default unigram, char with ``char_level``). ``check_frames``:
    check every frame of the frame folders for a cut-off end. ``config``: the
    video settings of ``config.yaml``. See :func:`read_splits` for the splits and
    :func:`fairseq_slt.data.prep_utils.prepare_data_root` for the rest. Returns the manifest rows
    written, per split.
    """
    if not os.path.isdir(video_root):
        raise FileNotFoundError(f"video root not found: {video_root} (--video-root: the folder the "
                                "table's video paths are relative to)")
    splits = read_splits(tables, dev_fraction, test_fraction, seed, split_by, video_root)
    os.makedirs(out_dir, exist_ok=True)
    remove_stale_splits(out_dir, list(splits))
    return prepare_data_root(
        out_dir, splits, video_root=data_root_path(out_dir, video_root), vocab_size=vocab_size,
        spm_type=spm_type or ("char" if char_level else "unigram"), mbart_dir=mbart_dir, text_field="text",
        lowercase=lowercase, workers=workers, name=os.path.basename(next(iter(tables.values()))),
        check_frames=check_frames, **config,
    )
