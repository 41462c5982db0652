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
:func:`fairseq_slt.data.prep_table.prepare_from_tables`; see docs/own_dataset.md. The dataset
prep scripts in ``examples/<dataset>/`` share its video options through :func:`run_prep`.
"""

import argparse
import os
import sys
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

from ..data.prep_table import SPLIT_BY, TableError, prepare_from_tables
from ..logging_utils import setup_logging
from ..paper import paper_value


def parse_resize(value: str) -> Union[int, Tuple[int, int]]:
    """``--resize``: ``256`` (shorter side) or ``256,256`` (height, width)."""
    try:
        sizes = tuple(int(v) for v in value.split(","))
    except ValueError:
        sizes = ()
    if len(sizes) not in (1, 2) or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"expected N or H,W (positive integers), got {value!r}")
    return sizes[0] if len(sizes) == 1 else sizes


def add_video_args(p: argparse.ArgumentParser) -> None:
    """The video settings of ``config.yaml`` as prep options, with the paper's defaults
    (:mod:`fairseq_slt.paper`)."""
    g = p.add_argument_group("video settings of config.yaml")
    resize, crop = paper_value("RESIZE"), paper_value("CROP")
    g.add_argument("--resize", type=parse_resize, default=resize, metavar="N|H,W",
                   help=f"H,W: the whole frame resized to height x width (default {resize[0]},{resize[1]}: "
                   "GFSLT-VLP, the paper's code); N: the shorter side before cropping, aspect ratio kept")
    g.add_argument("--crop", type=int, default=crop, help="square crop, random in training, centre in "
                   f"evaluation (default {crop})")
    g.add_argument("--keep-ratio", type=float, default=paper_value("KEEP_RATIO"),
                   help=f"fraction of the frames fed to the model (default {paper_value('KEEP_RATIO'):g})")
    g.add_argument("--max-frames", type=int, default=paper_value("MAX_FRAMES"),
                   help=f"cap on frames fed to the model per video (>= 1; default {paper_value('MAX_FRAMES')})")
    g.add_argument("--rotate", type=float, default=paper_value("AUGMENT_ROTATE"),
                   help=f"training augmentation: rotation in degrees (default {paper_value('AUGMENT_ROTATE'):g})")
    g.add_argument("--scale", type=float, default=paper_value("AUGMENT_SCALE"),
                   help=f"training augmentation: scale, +-fraction (default {paper_value('AUGMENT_SCALE'):g})")
    g.add_argument("--translate", type=float, default=paper_value("AUGMENT_TRANSLATE"),
                   help=f"training augmentation: shift in pixels (default {paper_value('AUGMENT_TRANSLATE'):g})")


def check_video_args(args: argparse.Namespace, p: argparse.ArgumentParser) -> None:
    """Refuse video settings that ``config.yaml`` would refuse, before any work."""
    if args.crop < 1 or args.max_frames < 1:
        p.error("--crop and --max-frames must be positive")
    smallest = min(args.resize) if isinstance(args.resize, tuple) else args.resize
    if args.crop > smallest:
        p.error(f"--crop ({args.crop}) must not exceed --resize ({args.resize})")
    if not 0 < args.keep_ratio <= 1:
        p.error(f"--keep-ratio must be in (0, 1], got {args.keep_ratio}")


def video_config(args: argparse.Namespace) -> Dict:
    """The ``config.yaml`` video and augmentation settings of the prep options."""
    return dict(
        resize=args.resize, crop=args.crop, keep_ratio=args.keep_ratio, max_frames=args.max_frames,
        augment={"rotate": args.rotate, "scale": args.scale, "translate": args.translate,
                 "p": paper_value("AUGMENT_P")},
    )


def run_prep(process: Callable, description: str, root_help: str, vocab_size: int,
             argv: Optional[Sequence[str]] = None) -> None:
    """The command line every prep script shares: ``--root --out [--vocab-size] [--mbart-dir]
    [--workers]`` and the video settings (:func:`add_video_args`); ``args.video_config`` holds
    the latter for ``config.yaml``."""
    setup_logging()
    p = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--root", required=True, help=root_help)
    p.add_argument("--out", required=True, help="data root to write (re-running overwrites it safely)")
    p.add_argument("--vocab-size", type=int, default=vocab_size, help="stage-1 sentencepiece vocabulary (soft limit)")
    p.add_argument("--mbart-dir", help="mBART directory (mbart.cc25 layout) to trim for stage 2")
    p.add_argument("--workers", type=int, default=1, help="threads that probe the videos")
    p.add_argument("--spm-type", choices=("unigram", "bpe", "char", "word"),
                   help="stage-1 sentencepiece model type (default: the dataset's; a small corpus "
                   "may need bpe: the log says so)")
    add_video_args(p)
    args = p.parse_args(argv)
    check_video_args(args, p)
    args.video_config = video_config(args)
    process(args)


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
