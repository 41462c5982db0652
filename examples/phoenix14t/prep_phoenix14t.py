#!/usr/bin/env python3
"""Prepare RWTH-PHOENIX-Weather 2014 T (release v3) for the ``sign_translation`` task.

    python examples/phoenix14t/prep_phoenix14t.py --root PHOENIX-2014-T-release-v3/PHOENIX-2014-T \
        --out data/phoenix14t [--mbart-dir mbart.cc25]

Reads the release as it is: the '|'-separated ``annotations/manual/PHOENIX-2014-T.<split>.corpus.csv``
(header ``name|video|start|end|speaker|orth|translation``) and the frame folders
``features/fullFrame-210x260px/<split>/<name>/images0001.png ...``. The csv's ``video`` column
(``<name>/1/*.png``) does not match the folders on disk, so videos are found by ``name``. The target
is the ``translation`` column (lowercased, tokenized German). The rows go through the same code as
``fairseq-slt-prep`` (:func:`fairseq_slt.data.prep_utils.prepare_data_root`): rows whose folder is
missing or empty, or whose translation is empty, are dropped and listed in ``dropped_<split>.tsv``.
"""

import csv
import logging
import os
import sys
from typing import List

from fairseq_slt.cli.prep import run_prep
from fairseq_slt.data.prep_utils import SourceRow, prepare_data_root, require

logger = logging.getLogger("prep_phoenix14t")

SPLITS = ("train", "dev", "test")
COLUMNS = ["name", "video", "start", "end", "speaker", "orth", "translation"]
FRAMES = os.path.join("features", "fullFrame-210x260px")


def corpus_csv(root: str, split: str) -> str:
    return os.path.join(root, "annotations", "manual", f"PHOENIX-2014-T.{split}.corpus.csv")


def read_corpus(path: str):
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f, delimiter="|", quoting=csv.QUOTE_NONE)
        missing = [c for c in ("name", "speaker", "translation") if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path}: missing column(s) {missing}; expected header {'|'.join(COLUMNS)}")
        return [dict(r, _line=reader.line_num) for r in reader]


def read_split(root: str, split: str) -> List[SourceRow]:
    """The split's rows; the video is the frame folder found by ``name``."""
    path = require(corpus_csv(root, split), f"the {split} corpus file")
    return [
        SourceRow(id=r["name"], video=os.path.join(FRAMES, split, r["name"]), text=r["translation"] or "",
                  signer=r["speaker"] or "", where=f"{path} row {r['_line']}")
        for r in read_corpus(path)
    ]


def process(args) -> None:
    require(os.path.join(args.root, "annotations", "manual"), "the annotations/manual folder")
    require(os.path.join(args.root, FRAMES), f"the {FRAMES} folder")
    splits = {split: read_split(args.root, split) for split in SPLITS}
    prepare_data_root(
        args.out, splits, video_root=os.path.abspath(args.root), vocab_size=args.vocab_size,
        spm_type=args.spm_type or "unigram", mbart_dir=args.mbart_dir, text_field="translation", workers=args.workers,
        name="PHOENIX-2014-T", **args.video_config,
    )


def main(argv=None) -> None:
    run_prep(process, __doc__, "the release's PHOENIX-2014-T folder", 3000, argv)


if __name__ == "__main__":
    sys.exit(main())
