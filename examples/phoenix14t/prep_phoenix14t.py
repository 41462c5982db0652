#!/usr/bin/env python3
"""Prepare RWTH-PHOENIX-Weather 2014 T (release v3) for the ``sign_translation`` task.

    python examples/phoenix14t/prep_phoenix14t.py --root PHOENIX-2014-T-release-v3/PHOENIX-2014-T \
        --out data/phoenix14t [--mbart-dir mbart.cc25]

Reads the release as it is: the '|'-separated ``annotations/manual/PHOENIX-2014-T.<split>.corpus.csv``
(header ``name|video|start|end|speaker|orth|translation``) and the frame folders
``features/fullFrame-210x260px/<split>/<name>/images0001.png ...``. The csv's ``video`` column
(``<name>/1/*.png``) does not match the folders on disk, so videos are found by ``name``. The target
is the ``translation`` column (lowercased, tokenized German). Rows whose folder is missing or empty
are dropped and listed in ``dropped_<split>.tsv``.
"""

import csv
import logging
import os
import sys

from fairseq_slt.data.prep_utils import count_folder_frames, require, run_prep, write_data_root, write_dropped

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
        return list(reader)


def process_split(root: str, split: str, out: str):
    rows = read_corpus(require(corpus_csv(root, split), f"the {split} corpus file"))
    folders = [os.path.join(root, FRAMES, split, r["name"]) for r in rows]
    counts = count_folder_frames(folders, desc=f"PHOENIX-2014-T {split}: frames")
    kept, dropped = [], []
    for r, folder in zip(rows, folders):
        text = r["translation"].strip()
        if counts[folder] == 0:
            dropped.append((r["name"], "frame folder missing or empty"))
        elif not text:
            dropped.append((r["name"], "empty translation"))
        else:
            kept.append({
                "id": r["name"],
                "video": os.path.join(FRAMES, split, r["name"]),
                "n_frames": counts[folder],
                "tgt_text": text,
                "signer": r["speaker"],
            })
    write_dropped(out, split, dropped)
    return kept


def process(args) -> None:
    require(os.path.join(args.root, "annotations", "manual"), "the annotations/manual folder")
    require(os.path.join(args.root, FRAMES), f"the {FRAMES} folder")
    os.makedirs(args.out, exist_ok=True)
    splits = {split: process_split(args.root, split, args.out) for split in SPLITS}
    write_data_root(
        args.out, splits, video_root=os.path.abspath(args.root), vocab_size=args.vocab_size,
        spm_type="unigram", mbart_dir=args.mbart_dir,
    )


def main(argv=None) -> None:
    run_prep(process, __doc__, "the release's PHOENIX-2014-T folder", 3000, argv)


if __name__ == "__main__":
    sys.exit(main())
