#!/usr/bin/env python3
"""Prepare CSL-Daily for the ``sign_translation`` task.

    python examples/csl_daily/prep_csl_daily.py --root CSL-Daily --out data/csl_daily [--mbart-dir mbart.cc25]

Reads the release as it is: ``sentence_label/csl2020ct_v2.pkl`` (a pickled dict whose ``info`` is a
list of dicts with ``name``, ``label_char``, ``signer``, ...), ``sentence_label/split_1.txt``
('|'-separated ``name|split``) and the frames ``sentence/frames_512x512/<name>/*.jpg``. The target
is the characters of ``label_char`` joined without spaces; the stage-1 vocabulary is one piece per
character, and scoring is character level (``fairseq-slt-score --char-level``). Rows whose folder
is missing or empty are dropped and listed in ``dropped_<split>.tsv``.
"""

import logging
import os
import pickle
import sys

from fairseq_slt.data.prep_utils import count_folder_frames, require, run_prep, write_data_root, write_dropped

logger = logging.getLogger("prep_csl_daily")

SPLITS = ("train", "dev", "test")
FRAMES = os.path.join("sentence", "frames_512x512")


class _PlainUnpickler(pickle.Unpickler):
    """The label file holds only containers, strings and numbers (possibly numpy scalars or
    arrays): refuse any other class, so a tampered file cannot run code."""

    ALLOWED = {
        ("builtins", n) for n in ("dict", "list", "tuple", "set", "str", "int", "float", "bool")
    } | {
        (m, n) for m in ("numpy.core.multiarray", "numpy._core.multiarray") for n in ("scalar", "_reconstruct")
    } | {("numpy", "dtype"), ("numpy", "ndarray")}

    def find_class(self, module, name):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing {module}.{name} in the CSL-Daily label file")


def read_labels(path: str) -> dict:
    with open(path, "rb") as f:
        data = _PlainUnpickler(f).load()
    if not isinstance(data, dict) or "info" not in data:
        raise ValueError(f"{path}: expected a dict with an 'info' list (CSL-Daily csl2020ct_v2.pkl)")
    return {item["name"]: item for item in data["info"]}


def read_split(path: str) -> dict:
    splits = {}
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            parts = line.strip().split("|")
            if len(parts) != 2 or (n == 1 and parts[1] not in SPLITS):
                continue  # header or blank line
            splits[parts[0]] = parts[1]
    return splits


def process(args) -> None:
    labels = read_labels(require(os.path.join(args.root, "sentence_label", "csl2020ct_v2.pkl"), "the label file"))
    split_of = read_split(require(os.path.join(args.root, "sentence_label", "split_1.txt"), "the split file"))
    require(os.path.join(args.root, FRAMES), f"the {FRAMES} folder")
    os.makedirs(args.out, exist_ok=True)
    out_splits = {}
    for split in SPLITS:
        names = [n for n, s in split_of.items() if s == split]
        folders = {n: os.path.join(args.root, FRAMES, n) for n in names}
        counts = count_folder_frames(list(folders.values()), desc=f"CSL-Daily {split}: frames")
        kept, dropped = [], []
        for name in names:
            info = labels.get(name)
            text = "".join(info.get("label_char") or []).strip() if info else ""
            if info is None:
                dropped.append((name, "not in csl2020ct_v2.pkl"))
            elif counts[folders[name]] == 0:
                dropped.append((name, "frame folder missing or empty"))
            elif not text:
                dropped.append((name, "empty label_char"))
            else:
                kept.append({"id": name, "video": os.path.join(FRAMES, name), "n_frames": counts[folders[name]],
                             "tgt_text": text, "signer": str(info.get("signer", ""))})
        write_dropped(args.out, split, dropped)
        out_splits[split] = kept
    write_data_root(
        args.out, out_splits, video_root=os.path.abspath(args.root), vocab_size=args.vocab_size,
        spm_type="char", mbart_dir=args.mbart_dir,
    )


def main(argv=None) -> None:
    run_prep(process, __doc__, "the CSL-Daily release folder", 3000, argv)


if __name__ == "__main__":
    sys.exit(main())
