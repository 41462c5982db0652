"""A complete data root from a folder of videos and a table (your own sign language corpus).

    fairseq-slt-prep corpus.tsv --video-root videos --out data/mycorpus
    fairseq-slt-prep --train train.csv --dev dev.csv --test test.csv --video-root videos --out data/mycorpus
    fairseq-slt-prep corpus.tsv --video-root videos --out data/mycorpus --split-by signer --char-level

The table is TSV or CSV (by its extension, else its header line) with the columns id, video,
text and optionally split (train/dev/test), signer, start, end (seconds: a sentence cut out of a
longer video, by reference). video is relative to --video-root: a video file (mp4, avi, ...) or a
folder of png/jpg frames. Without a split column the table is split here, deterministically for
--seed (--dev-fraction, --test-fraction; --split-by signer keeps every signer in one split).

Writes <out>/{train,dev,test}.tsv with the probed n_frames, spm.model + dict.txt, config.yaml
with the video settings below, dropped_<split>.tsv (each dropped row and why: missing or
unreadable video or one without a video stream, empty frame folder, a frame folder with a cut-off
frame or two files of one frame number, bad or out-of-range start/end, empty text, duplicate id,
an id, video or signer holding a line break) and, with --mbart-dir, the trimmed mBART
(mbart.trimmed/) and config_stage2.yaml; a run without --mbart-dir removes those two of an earlier
run (derived from its text). A thin command line over
:func:`fairseq_slt.data.prep_table.prepare_from_tables`; see docs/own_dataset.md.
"""

import argparse
import os
import sys
from typing import Dict, List, Optional

from ..data.prep_table import SPLIT_BY, TableError, prepare_from_tables
from ..data.prep_utils import add_video_args, check_video_args, video_config
from ..logging_utils import setup_logging


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("table", nargs="?", help="one table of all rows (TSV or CSV)")
    for split in ("train", "dev", "test"):
        p.add_argument(f"--{split}", metavar="TABLE",
                       help=f"a table of the {split} rows only, instead of one table")
    p.add_argument("--video-root", help="folder the table's video paths are relative to (default: the "
                   "table's folder)")
    p.add_argument("--out", required=True, help="data root to write (re-running overwrites it safely)")
    g = p.add_argument_group("text")
    g.add_argument("--char-level", action="store_true", help="one vocabulary piece per character (Chinese, "
                   "Japanese); score with fairseq-slt-score --char-level")
    g.add_argument("--lowercase", action="store_true", help="lowercase the targets")
    g.add_argument("--spm-type", choices=("unigram", "bpe", "char", "word"),
                   help="sentencepiece model type (default unigram; char with --char-level); a small "
                   "corpus may need bpe: the log says so")
    g.add_argument("--vocab-size", type=int, default=3000,
                   help="stage-1 sentencepiece vocabulary (soft limit; default 3000)")
    g = p.add_argument_group("splits of a table without a split column")
    g.add_argument("--dev-fraction", type=float, help="fraction of the rows for dev (default 0.1)")
    g.add_argument("--test-fraction", type=float, help="fraction of the rows for test (default 0.1)")
    g.add_argument("--split-by", choices=SPLIT_BY, help="what is kept whole in one split (default: row; "
                   "signer: no signer in two splits; video: all sentences of a video together)")
    g.add_argument("--seed", type=int, default=1,
                   help="the same seed and table give the same split (default 1)")
    add_video_args(p)
    p.add_argument("--workers", type=int, default=1, help="threads that probe the videos (default 1)")
    p.add_argument("--skip-frame-check", action="store_true",
                   help="do not check every frame of the frame folders for a cut-off end (the check "
                   "reads a few bytes per file; for corpora of millions of frames already checked)")
    p.add_argument("--mbart-dir", help="mBART directory (mbart.cc25 layout) to trim for stage 2")
    return p


def tables_of(args: argparse.Namespace, p: argparse.ArgumentParser) -> Dict[Optional[str], str]:
    """``{None: table}`` or ``{split: table}`` from the command line."""
    per_split = {s: getattr(args, s) for s in ("train", "dev", "test") if getattr(args, s)}
    if args.table and per_split:
        p.error("give one table, or --train/--dev/--test, not both")
    if args.table:
        return {None: args.table}
    if not per_split:
        p.error("give a table, or --train and --dev (and --test)")
    if "train" not in per_split or "dev" not in per_split:
        p.error("per-split tables need at least --train and --dev")
    return per_split


def check_args(args: argparse.Namespace, p: argparse.ArgumentParser) -> None:
    """Option values a data root cannot be made with, as usage errors."""
    for name in ("dev_fraction", "test_fraction"):
        value = getattr(args, name)
        if value is not None and not 0 <= value < 1:
            p.error(f"--{name.replace('_', '-')} must be in [0, 1), got {value}")
    dev = 0.1 if args.dev_fraction is None else args.dev_fraction
    test = 0.1 if args.test_fraction is None else args.test_fraction
    if dev + test >= 1:
        p.error("--dev-fraction and --test-fraction leave no rows for train")
    if args.vocab_size < 1 or args.workers < 1:
        p.error("--vocab-size and --workers must be positive")
    check_video_args(args, p)


def cli_main(argv: Optional[List[str]] = None) -> None:
    setup_logging()
    p = get_parser()
    args = p.parse_args(argv)
    tables = tables_of(args, p)
    check_args(args, p)
    video_root = args.video_root or os.path.dirname(os.path.abspath(next(iter(tables.values()))))
    try:
        prepare_from_tables(
            tables, args.out, video_root, vocab_size=args.vocab_size, char_level=args.char_level,
            spm_type=args.spm_type,
            lowercase=args.lowercase, dev_fraction=args.dev_fraction, test_fraction=args.test_fraction,
            seed=args.seed, split_by=args.split_by, workers=args.workers, mbart_dir=args.mbart_dir,
            check_frames=not args.skip_frame_check, **video_config(args),
        )
    except (TableError, FileNotFoundError, ValueError) as e:
        sys.exit(f"fairseq-slt-prep: error: {e}")


if __name__ == "__main__":
    cli_main()
