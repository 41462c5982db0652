#!/usr/bin/env python3
"""Prepare How2Sign for the ``sign_translation`` task.

    python examples/how2sign/prep_how2sign.py --root How2Sign --out data/how2sign [--mbart-dir mbart.cc25]

Reads the release as it is: the TAB-separated ``how2sign_realigned_{train,val,test}.csv`` (header
``VIDEO_ID VIDEO_NAME SENTENCE_ID SENTENCE_NAME START_REALIGNED END_REALIGNED SENTENCE``) and the
FULL videos ``video_level/<split>/rgb_front/raw_videos/<VIDEO_NAME>.mp4``. The released pre-cut
clips are known to be misaligned, so each sentence is cut out of its full video BY REFERENCE: the
manifest keeps the realigned ``start``/``end`` (seconds) and nothing is re-encoded. Rows whose
video is missing, or whose end lies past the end of the video, are dropped, counted and listed in
``dropped_<split>.tsv``. The ``val`` split is written as ``dev``. Targets are cased English.
"""

import csv
import logging
import os
import sys

from tqdm import tqdm

from fairseq_slt.data.prep_utils import require, run_prep, write_data_root, write_dropped
from fairseq_slt.data.video_io import probe_video, time_range_to_frames

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
        return list(reader)


def process_split(root: str, split: str, out: str):
    rows = read_csv(require(os.path.join(root, f"how2sign_realigned_{split}.csv"), f"the {split} csv"))
    probes = {}
    for name in tqdm(sorted({r["VIDEO_NAME"] for r in rows}), desc=f"How2Sign {split}: probing videos", unit="video"):
        path = video_path(root, split, name)
        try:
            probes[name] = probe_video(path) if os.path.isfile(path) else None
        except Exception as e:  # unreadable: its rows are dropped and listed
            logger.warning(f"cannot read {path}: {e}")
            probes[name] = None
    kept, dropped = [], []
    for r in rows:
        sid, name = r["SENTENCE_NAME"], r["VIDEO_NAME"]
        probe = probes[name]
        try:
            # rounded as the manifest stores them, so the dataset finds the same frame range
            start, end = round(float(r["START_REALIGNED"]), 3), round(float(r["END_REALIGNED"]), 3)
        except ValueError:
            dropped.append((sid, "start/end are not numbers"))
            continue
        if probe is None:
            dropped.append((sid, f"video {name}.mp4 missing or unreadable"))
            continue
        fps, n_total = probe
        frames = time_range_to_frames(start, end, fps)
        if frames.stop > n_total:
            dropped.append((sid, f"end {end:.2f} s is past the end of {name}.mp4 ({n_total / fps:.2f} s)"))
        elif len(frames) == 0:
            dropped.append((sid, "empty time range"))
        elif not r["SENTENCE"].strip():
            dropped.append((sid, "empty sentence"))
        else:
            kept.append({
                "id": sid,
                "video": os.path.relpath(video_path(root, split, name), root),
                "n_frames": len(frames),
                "tgt_text": " ".join(r["SENTENCE"].split()),
                "start": f"{start:.3f}",
                "end": f"{end:.3f}",
            })
    write_dropped(out, SPLITS[split], dropped)
    logger.info(f"{split}: kept {len(kept)} of {len(rows)} sentences, dropped {len(dropped)}")
    return kept


def process(args) -> None:
    require(os.path.join(args.root, "video_level"), "the video_level folder")
    os.makedirs(args.out, exist_ok=True)
    splits = {SPLITS[s]: process_split(args.root, s, args.out) for s in SPLITS}
    write_data_root(
        args.out, splits, video_root=os.path.abspath(args.root), vocab_size=args.vocab_size,
        spm_type="unigram", mbart_dir=args.mbart_dir,
    )


def main(argv=None) -> None:
    run_prep(process, __doc__, "the How2Sign release folder", 8000, argv)


if __name__ == "__main__":
    sys.exit(main())
