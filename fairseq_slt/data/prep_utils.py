"""The one path from source rows to a data root, shared by ``fairseq-slt-prep`` and the dataset
prep scripts in ``examples/<dataset>/`` (whose shared command line is that of ``fairseq-slt-prep``).

A reader (a release's own format, or a user's table: :mod:`fairseq_slt.data.prep_table`) turns
its input into :class:`SourceRow` objects, one list per split, and calls
:func:`prepare_data_root`. That probes every video once (however its path is spelled: frame count,
fps; frame folders by their png/jpg files, each checked for a cut-off end), checks every row, drops
the unusable ones with a reason per row (``dropped_<split>.tsv``, :func:`write_dropped`) and calls
:func:`write_data_root`, which writes the manifests, the stage-1 sentencepiece model and
dictionary, ``config.yaml`` and, given an mBART directory, the trimmed mBART and
``config_stage2.yaml``. Every file is written atomically, and what an earlier run derived from its
text and this run does not rewrite is removed (:func:`remove_stale_stage2`), so re-running is safe.
"""

import logging
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

from tqdm import tqdm

from .manifest_utils import (
    MBART_SPM,
    MBART_VOCAB,
    derive_config_yaml,
    gen_config_yaml,
    gen_vocab,
    parse_time_range,
    write_manifest,
)
from .source_checks import frame_folder_problem, video_stream_problem
from .video_io import VideoReadError, list_frame_files, probe_timing
from .video_utils import nominal_length, time_range_to_frames

logger = logging.getLogger(__name__)

# start/end are rounded to this many decimals, as the manifest stores them, so the dataset
# computes the same frame range as the prep did
TIME_DECIMALS = 3
# what write_data_root derives from the training text with an mBART directory
STAGE2_CONFIG, TRIMMED_MBART = "config_stage2.yaml", "mbart.trimmed"


@dataclass
class SourceRow:
    """One sentence as a release or a table gives it, before it is checked.

    ``video`` is relative to the video root (or absolute): a video file, or a folder of png/jpg
    frames. ``start``/``end`` are seconds as written in the source (a sentence cut out of a longer
    video by reference), ``None`` for a whole video. ``where`` (e.g. ``table.tsv row 5``) names
    the source row in messages.
    """

    id: str
    video: str
    text: str
    signer: Optional[str] = None
    start: Optional[str] = None
    end: Optional[str] = None
    where: str = ""


@dataclass(frozen=True)
class Probe:
    """What probing a video source found: its frame count and fps (``None`` for a frame folder)
    and, at a variable frame rate, its frames' slots (:func:`~.video_utils.frame_slots`), or the
    reason it cannot be used."""

    n_frames: int = 0
    fps: Optional[float] = None
    problem: Optional[str] = None
    slots: Optional[Tuple[int, ...]] = None


def require(path: str, what: str) -> str:
    """``path`` must exist: otherwise say which expected file of the release is missing."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"expected {what} at {path}: is the dataset root the release's top folder?")
    return path


def _first_line(error: Exception) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]


def source_path(root: str, video: str) -> str:
    """The real path of ``video`` under ``root``: ``videos/a.mp4``, ``./videos/a.mp4``,
    ``videos//a.mp4`` and a symlink to it are one video."""
    return os.path.realpath(os.path.join(root, video))


def probe_source(path: str, shown: str, check_frames: bool = True) -> Probe:
    """Probe the video file or frame folder ``path`` (``shown`` is how messages name it).

    A missing path with a file extension is a missing video, one without is a missing frame
    folder. With ``check_frames``, every frame of a folder is checked for a cut-off end
    (:func:`~fairseq_slt.data.source_checks.frame_folder_problem`: a few bytes per file)."""
    if os.path.isdir(path):
        try:
            files = list_frame_files(path)
        except VideoReadError as e:  # two files of one frame number
            return Probe(problem=str(e))
        if not files:
            return Probe(problem=f"frame folder missing or empty: {shown}")
        problem = frame_folder_problem(files) if check_frames else None
        return Probe(problem=f"frame folder {shown}: {problem}") if problem else Probe(len(files))
    if not os.path.exists(path):
        if os.path.splitext(shown)[1]:
            return Probe(problem=f"video {shown} missing")
        return Probe(problem=f"frame folder missing or empty: {shown}")
    try:
        timing = probe_timing(path)
    except Exception as e:  # decord and PyAV raise their own errors
        return Probe(problem=f"video {shown} unreadable: {video_stream_problem(path) or _first_line(e)}")
    fps, n = timing.fps, timing.n_frames
    if n < 1 or not fps > 0:
        return Probe(problem=f"video {shown} has no frames (fps {fps:g}, {n} frames)")
    return Probe(n, fps, slots=None if timing.slots is None else tuple(timing.slots.tolist()))


def probe_sources(sources: Dict[str, str], workers: int = 1, desc: str = "probing videos",
                  check_frames: bool = True) -> Dict[str, Probe]:
    """:func:`probe_source` for every ``{path: shown}``, with a progress bar; ``workers`` > 1
    probes in a thread pool (decoding runs outside the GIL)."""
    items = list(sources.items())
    bar = dict(total=len(items), desc=desc, unit="video", mininterval=1.0)

    def one(item: Tuple[str, str]) -> Probe:
        return probe_source(item[0], item[1], check_frames)

    if workers <= 1:
        probes = [one(item) for item in tqdm(items, **bar)]
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            probes = list(tqdm(pool.map(one, items), **bar))
    return {path: probe for (path, _), probe in zip(items, probes)}


def normalize_text(text: Optional[str], lowercase: bool = False) -> str:
    """Whitespace runs (tabs, newlines included) become one space; optionally lowercased."""
    text = " ".join((text or "").split())
    return text.lower() if lowercase else text


def check_row(row: SourceRow, probe: Probe, text_field: str = "text", lowercase: bool = False,
              with_signer: bool = False, with_times: bool = False) -> Tuple[Optional[dict], Optional[str]]:
    """``(manifest row, None)`` for a usable row, ``(None, reason)`` for one to drop.

    Checks, in order: start/end, the video (missing, unreadable, empty), the time range against
    the video, then the text (``text_field`` names its column in the reason). ``with_signer`` /
    ``with_times`` add the ``signer`` / ``start``, ``end`` columns (empty where a row has none),
    so every row of a manifest has the same columns.
    """
    try:
        start, end = parse_time_range(row.start, row.end, TIME_DECIMALS)
    except ValueError as e:
        return None, f"bad start/end: {e}"
    if probe.problem:
        return None, probe.problem
    n_frames = probe.n_frames
    if start is not None:
        if probe.fps is None:
            return None, f"bad start/end: {row.video} is a frame folder; time ranges need a video file"
        length = nominal_length(probe.n_frames, probe.slots)
        if time_range_to_frames(start, end, probe.fps).stop > length:
            return None, f"end {end:.2f} s is past the end of {row.video} ({length / probe.fps:.2f} s)"
        frames = time_range_to_frames(start, end, probe.fps, probe.slots)
        if len(frames) == 0:
            return None, f"empty time range [{start:.3f}, {end:.3f}) s at {probe.fps:g} fps"
        n_frames = len(frames)
    text = normalize_text(row.text, lowercase)
    if not text:
        return None, f"empty {text_field}"
    out = {"id": row.id, "video": row.video, "n_frames": n_frames, "tgt_text": text}
    if with_signer:
        out["signer"] = row.signer or ""
    if with_times:
        out["start"] = "" if start is None else f"{start:.{TIME_DECIMALS}f}"
        out["end"] = "" if end is None else f"{end:.{TIME_DECIMALS}f}"
    return out, None


def line_break_field(row: SourceRow) -> Optional[str]:
    """The first of the row's id, video and signer that holds a line break or tab (which a
    manifest cannot hold; a text's are made spaces), or ``None``."""
    for name in ("id", "video", "signer"):
        if any(ch in (getattr(row, name) or "") for ch in "\t\n\r"):
            return name
    return None


def check_splits(splits: Dict[str, List[SourceRow]], probes: Dict[str, Probe], video_root: str,
                 text_field: str = "text", lowercase: bool = False
                 ) -> Tuple[Dict[str, List[dict]], Dict[str, List[Tuple[str, str]]]]:
    """Manifest rows and dropped ``(id, reason)`` per split. An id seen before, in this split or
    an earlier one, is dropped as a duplicate; so is a row without an id or a video, or whose id,
    video or signer holds a line break. ``probes`` are keyed by :func:`source_path`."""
    rows = [r for split_rows in splits.values() for r in split_rows]
    with_signer = any(r.signer is not None for r in rows)
    with_times = any((r.start or "").strip() or (r.end or "").strip() for r in rows)
    seen: Dict[str, str] = {}
    kept: Dict[str, List[dict]] = {}
    dropped: Dict[str, List[Tuple[str, str]]] = {}
    for split, split_rows in splits.items():
        kept[split], dropped[split] = [], []
        for r in split_rows:
            if not r.id.strip():
                dropped[split].append((r.id, f"empty id ({r.where or 'no row number'})"))
                continue
            field = line_break_field(r)
            if field is not None:
                dropped[split].append((r.id, f"{field} {getattr(r, field)!r} holds a line break or tab "
                                             f"({r.where or 'no row number'}); fix it in the table"))
                continue
            if r.id in seen:
                dropped[split].append((r.id, f"duplicate id (first at {seen[r.id]})"))
                continue
            seen[r.id] = r.where or split
            if not r.video.strip():
                dropped[split].append((r.id, "no video given"))
                continue
            probe = probes[source_path(video_root, r.video)]
            row, reason = check_row(r, probe, text_field, lowercase, with_signer, with_times)
            if row is None:
                dropped[split].append((r.id, reason))
            else:
                kept[split].append(row)
    return kept, dropped


def write_dropped(out_dir: str, split: str, dropped: List[Tuple[str, str]]) -> Optional[str]:
    """List the rows a prep script dropped (id and reason) in ``<out>/dropped_<split>.tsv``."""
    path = os.path.join(out_dir, f"dropped_{split}.tsv")
    if not dropped:
        if os.path.exists(path):
            os.remove(path)
        return None
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write("id\treason\n")
        for sid, reason in dropped:
            f.write(f"{' '.join(str(sid).split())}\t{' '.join(str(reason).split())}\n")
    os.replace(tmp, path)
    logger.warning(f"{split}: dropped {len(dropped)} rows, listed in {path}")
    return path


def remove_stale_stage2(out_dir: str, rewritten: bool = False) -> List[str]:
    """Remove ``config_stage2.yaml`` and the trimmed mBART (``mbart.trimmed/``) an earlier run
    left in ``out_dir``: they were derived from that run's text, and with this run's manifests
    its new words would be ``<unk>``. Each is named in a warning (an info line where this run
    writes them again, ``rewritten``); a ``mbart.trimmed`` holding files a trim does not write is
    refused (a :class:`ValueError` naming them). Returns the paths removed."""
    stale = [os.path.join(out_dir, name) for name in (STAGE2_CONFIG, TRIMMED_MBART)]
    trimmed = stale[1]
    if os.path.isdir(trimmed) and not os.path.islink(trimmed):
        own = {"model.pt", MBART_VOCAB, MBART_SPM}
        other = sorted(n for n in os.listdir(trimmed) if n not in own and not n.endswith(".tmp"))
        if other:
            raise ValueError(f"{trimmed} (the trimmed mBART of an earlier run, derived from its text) holds "
                             f"files a trim does not write: {', '.join(other[:5])}; move them out or remove "
                             "the folder, then run again")
    removed = []
    for path in stale:
        if not os.path.lexists(path):
            continue
        if rewritten:
            logger.info(f"replacing {path} of an earlier run")
        else:
            logger.warning(f"removing {path}, left by an earlier run: it was derived from that run's text "
                           "(this run trims no mBART)")
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.remove(path)
        removed.append(path)
    return removed


def write_data_root(
    out_dir: str,
    splits: Dict[str, List[dict]],
    video_root: str,
    vocab_size: int,
    spm_type: str = "unigram",
    mbart_dir: Optional[str] = None,
    **config,
) -> None:
    """Manifests, stage-1 vocabulary, ``config.yaml``; with ``mbart_dir`` also the trimmed mBART
    (``<out>/mbart.trimmed``) and ``config_stage2.yaml`` that uses its tokenizer and dictionary.
    Those two of an earlier run are removed first (:func:`remove_stale_stage2`)."""
    os.makedirs(out_dir, exist_ok=True)
    remove_stale_stage2(out_dir, rewritten=bool(mbart_dir))
    for split, rows in splits.items():
        if not rows:
            raise ValueError(f"{split}: no usable rows (dropped rows and their reasons are in "
                             f"{os.path.join(out_dir, f'dropped_{split}.tsv')})")
        write_manifest(os.path.join(out_dir, f"{split}.tsv"), rows)
        logger.info(f"{split}: {len(rows)} rows -> {os.path.join(out_dir, split + '.tsv')}")
    train_text = [r["tgt_text"] for r in splits["train"]]
    gen_vocab(train_text, out_dir, vocab_size=vocab_size, model_type=spm_type)
    gen_config_yaml(out_dir, video_root=video_root, **config)
    if mbart_dir:
        from ..mbart.trim import trim

        trimmed = os.path.join(out_dir, TRIMMED_MBART)
        trim(mbart_dir, train_text, trimmed)
        # inside the data root, so written as mbart.trimmed/dict.txt, mbart.trimmed/sentence.bpe.model
        derive_config_yaml(out_dir, "config.yaml", STAGE2_CONFIG, mbart_dir=trimmed)


def prepare_data_root(
    out_dir: str,
    splits: Dict[str, List[SourceRow]],
    video_root: str,
    vocab_size: int,
    spm_type: str = "unigram",
    mbart_dir: Optional[str] = None,
    text_field: str = "text",
    lowercase: bool = False,
    workers: int = 1,
    dropped: Optional[Dict[str, List[Tuple[str, str]]]] = None,
    name: str = "videos",
    check_frames: bool = True,
    **config,
) -> Dict[str, List[dict]]:
    """Probe, check and write: the whole data root from source rows.

    Args:
        out_dir: data root to write.
        splits: source rows per split (``train`` first; every split must keep a row).
        video_root: the folder ``SourceRow.video`` is relative to, as ``config.yaml`` writes it:
            absolute, or relative to ``out_dir``.
        vocab_size, spm_type: the stage-1 sentencepiece model (``char``: one piece per character).
        mbart_dir: mBART directory (mbart.cc25 layout) to trim for stage 2.
        text_field: the source's name of the text, for the reason ``empty <text_field>``.
        lowercase: lowercase the targets.
        workers: threads that probe the videos.
        dropped: rows the reader already dropped, ``(id, reason)`` per split; listed first.
        name: the corpus, for the progress bar.
        check_frames: check every frame of every frame folder for a cut-off end (a few bytes
            per file; a folder with a bad frame is dropped with the reason).
        config: video settings of ``config.yaml`` (``resize``, ``crop``, ``keep_ratio``,
            ``max_frames``, ``augment``).

    Returns the manifest rows written, per split.
    """
    if mbart_dir:
        from ..mbart import check_mbart_dir

        check_mbart_dir(mbart_dir)  # before the probing, not after it
    remove_stale_stage2(out_dir, rewritten=bool(mbart_dir))  # likewise
    root = video_root if os.path.isabs(video_root) else os.path.join(out_dir, video_root)
    sources: Dict[str, str] = {}
    for rows in splits.values():
        for r in rows:
            if r.video.strip():
                sources.setdefault(source_path(root, r.video), r.video)
    probes = probe_sources(sources, workers, desc=f"{name}: probing videos", check_frames=check_frames)
    kept, new_dropped = check_splits(splits, probes, root, text_field, lowercase)
    os.makedirs(out_dir, exist_ok=True)
    for split in splits:
        earlier = list((dropped or {}).get(split, []))
        reasons = earlier + new_dropped[split]
        logger.info(f"{split}: kept {len(kept[split])} of {len(splits[split]) + len(earlier)} rows, "
                    f"dropped {len(reasons)}")
        write_dropped(out_dir, split, reasons)
    write_data_root(out_dir, kept, video_root=video_root, vocab_size=vocab_size, spm_type=spm_type,
                    mbart_dir=mbart_dir, **config)
    return kept
