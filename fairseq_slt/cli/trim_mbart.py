"""Trim an mBART directory to the vocabulary of a corpus.

    fairseq-slt-trim-mbart --mbart-dir mbart.cc25 --text train.txt [--text dev.txt] --out mbart.trimmed

Trims mBART-large-cc25's embeddings to the pieces of the target corpus (FLa-LLM, Chen et al. 2024);
see :mod:`fairseq_slt.mbart.trim` for what is kept. The source is the released fairseq archive, a
Hugging Face folder converted by fairseq-slt-convert-mbart, or any directory of that layout (see
docs/mbart.md); the output stores the checksum of its dict.txt, which stage 2 checks.
"""

import argparse
from typing import List

from ..logging_utils import setup_logging
from ..mbart import MBART_FILES


def read_lines(paths: List[str]) -> List[str]:
    lines = []
    for path in paths:
        with open(path, encoding="utf-8") as f:
            lines += [line.rstrip("\n") for line in f]
    return lines


def cli_main() -> None:
    setup_logging()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mbart-dir", required=True, help=f"mBART directory ({', '.join(MBART_FILES)})")
    p.add_argument("--text", action="append", required=True,
                   help="target-language text, one sentence per line (repeat for several files)")
    p.add_argument("--out", required=True, help="directory to write the trimmed mBART to")
    args = p.parse_args()
    from ..mbart.trim import trim  # torch and fairseq: after --help

    stats = trim(args.mbart_dir, read_lines(args.text), args.out)
    print(
        f"parameters: {stats['params_before']:,} before, {stats['params_after']:,} after "
        f"({stats['rows_before']:,} -> {stats['rows_after']:,} vocabulary rows)"
    )


if __name__ == "__main__":
    cli_main()
