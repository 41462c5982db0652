#!/usr/bin/env python3
"""Prepare CSL-Daily for the ``sign_translation`` task.

    python examples/csl_daily/prep_csl_daily.py --root CSL-Daily --out data/csl_daily [--mbart-dir mbart.cc25]

Reads the release as it is: ``sentence_label/csl2020ct_v2.pkl`` (a pickled dict whose ``info`` is a
list of dicts with ``name``, ``label_char``, ``signer``, ...), ``sentence_label/split_1.txt``
('|'-separated ``name|split``) and the frames ``sentence/frames_512x512/<name>/*.jpg``. The target
is the characters of ``label_char`` joined without spaces; the stage-1 vocabulary is one piece per
character, and scoring is character level (``fairseq-slt-score --char-level``). The rows go through
the same code as ``fairseq-slt-prep --char-level``
(:func:`fairseq_slt.data.prep_utils.prepare_data_root`): rows whose folder is missing or empty,
whose ``label_char`` is empty, or that are not in the label file are dropped and listed in
``dropped_<split>.tsv``.
"""

import logging
import os
import pickle
import sys

from fairseq_slt.cli.prep import run_prep
from fairseq_slt.data.prep_utils import SourceRow, prepare_data_root, require

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
    splits, dropped = {}, {}
    for split in SPLITS:
        names = [n for n, s in split_of.items() if s == split]
        dropped[split] = [(n, "not in csl2020ct_v2.pkl") for n in names if n not in labels]
        splits[split] = [
            SourceRow(id=n, video=os.path.join(FRAMES, n), text="".join(labels[n].get("label_char") or []),
                      signer=str(labels[n].get("signer", "")))
            for n in names if n in labels
        ]
    prepare_data_root(
        args.out, splits, video_root=os.path.abspath(args.root), vocab_size=args.vocab_size,
        spm_type=args.spm_type or "char", mbart_dir=args.mbart_dir, text_field="label_char", workers=args.workers,
        dropped=dropped, name="CSL-Daily", **args.video_config,
    )


def main(argv=None) -> None:
    run_prep(process, __doc__, "the CSL-Daily release folder", 3000, argv)


if __name__ == "__main__":
    sys.exit(main())
