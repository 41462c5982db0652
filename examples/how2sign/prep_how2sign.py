#!/usr/bin/env python3
"""Prepare How2Sign for the ``sign_translation`` task.

    python examples/how2sign/prep_how2sign.py --root How2Sign --out data/how2sign [--mbart-dir mbart.cc25]

Reads the release as it is: the TAB-separated ``how2sign_realigned_{train,val,test}.csv`` (header
``VIDEO_ID VIDEO_NAME SENTENCE_ID SENTENCE_NAME START_REALIGNED END_REALIGNED SENTENCE``) and the
FULL videos ``video_level/<split>/rgb_front/raw_videos/<VIDEO_NAME>.mp4``. The released pre-cut
clips are known to be misaligned, so each sentence is cut out of its full video BY REFERENCE: the
manifest keeps the realigned ``start``/``end`` (seconds) and nothing is re-encoded. The rows go
through the same code as ``fairseq-slt-prep`` (:func:`fairseq_slt.data.prep_utils.prepare_data_root`):
every video is probed once, and rows whose video is missing or unreadable, whose time range is
empty or ends past the end of the video, or whose sentence is empty are dropped, counted and listed
in ``dropped_<split>.tsv``. The ``val`` split is written as ``dev``. Targets are cased English.
"""

import csv
import logging
import os
import sys
from typing import List, Tuple

from fairseq_slt.cli.prep import run_prep
from fairseq_slt.data.prep_utils import SourceRow, prepare_data_root, require

logger = logging.getLogger("prep_how2sign")

SPLITS = {"train": "train", "val": "dev", "test": "test"}
COLUMNS = ["VIDEO_ID", "VIDEO_NAME", "SENTENCE_ID", "SENTENCE_NAME", "START_REALIGNED", "END_REALIGNED", "SENTENCE"]


def video_path(root: str, split: str, name: str) -> str:
    return os.path.join(root, "video_level", split, "rgb_front", "raw_videos", f"{name}.mp4")


def read_csv(path: str):
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path}: missing column(s) {missing}; expected the TAB-separated header {' '.join(COLUMNS)}")
        return [dict(r, _line=reader.line_num) for r in reader]


def read_split(root: str, split: str) -> Tuple[List[SourceRow], List[Tuple[str, str]]]:
    """The split's sentences, each cut out of its full video by the realigned times, and the rows
    without times (a How2Sign sentence is never a whole video), dropped."""
    path = require(os.path.join(root, f"how2sign_realigned_{split}.csv"), f"the {split} csv")
    rows, dropped = [], []
    for r in read_csv(path):
        start, end = (r["START_REALIGNED"] or "").strip(), (r["END_REALIGNED"] or "").strip()
        if not start or not end:
            dropped.append((r["SENTENCE_NAME"], "start/end are not numbers (empty)"))
            continue
        rows.append(SourceRow(
            id=r["SENTENCE_NAME"], video=os.path.relpath(video_path(root, split, r["VIDEO_NAME"]), root),
            text=r["SENTENCE"] or "", start=start, end=end, where=f"{path} row {r['_line']}",
        ))
    return rows, dropped


def process(args) -> None:
    require(os.path.join(args.root, "video_level"), "the video_level folder")
    read = {SPLITS[s]: read_split(args.root, s) for s in SPLITS}
    prepare_data_root(
        args.out, {s: rows for s, (rows, _) in read.items()}, video_root=os.path.abspath(args.root),
        vocab_size=args.vocab_size, spm_type=args.spm_type or "unigram", mbart_dir=args.mbart_dir, text_field="sentence",
        workers=args.workers, dropped={s: d for s, (_, d) in read.items()}, name="How2Sign",
        **args.video_config,
    )


def main(argv=None) -> None:
    run_prep(process, __doc__, "the How2Sign release folder", 8000, argv)


if __name__ == "__main__":
    sys.exit(main())
