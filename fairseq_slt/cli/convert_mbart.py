"""Convert mBART from where it is held into the layout stage 2 reads (fairseq's mbart.cc25).

    # a Hugging Face folder (facebook/mbart-large-cc25: config.json, model.safetensors or
    # pytorch_model.bin, sentencepiece.bpe.model)
    fairseq-slt-convert-mbart --hf-dir mbart-large-cc25 --out mbart.cc25
    # the released fairseq archive, when torch's weights-only loader refuses its training state:
    # a TRUSTED directory, once, into one with a weights-and-args-only model.pt
    fairseq-slt-convert-mbart --trust-pickle --fairseq-dir mbart.cc25 --out mbart.cc25.weights
    # any one fairseq checkpoint file likewise
    fairseq-slt-convert-mbart --trust-pickle --checkpoint model.pt --out model.weights.pt

Each output directory holds model.pt, dict.txt and sentence.bpe.model, and model.pt stores the
checksum of dict.txt, which stage 2 and fairseq-slt-trim-mbart check. See docs/mbart.md. A source
that cannot be converted (a malformed config.json, a truncated model.safetensors, a sentencepiece
model of another layout, ...) is one line naming the file and what to do.
"""

import argparse
import sys
from typing import List, Optional

from ..logging_utils import setup_logging
from ..mbart import parse_langs


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--hf-dir", metavar="DIR", help="Hugging Face mBART folder")
    source.add_argument("--fairseq-dir", metavar="DIR",
                        help="mBART directory of fairseq's layout (model.pt, dict.txt, sentence.bpe.model)")
    source.add_argument("--checkpoint", metavar="FILE", help="one fairseq checkpoint file")
    p.add_argument("--out", required=True, help="directory to write (a file with --checkpoint)")
    p.add_argument("--langs", help="with --hf-dir: the model's languages in order, or cc25 (default: "
                   "from tokenizer.json, else cc25's 25 when the embeddings have that many rows)")
    p.add_argument("--trust-pickle", action="store_true",
                   help="with --fairseq-dir / --checkpoint: if torch's weights-only loader refuses the "
                   "file, read it with the full unpickler, which runs the code pickled in it. ONLY for "
                   "a file from a trusted source; the output holds weights and config only")
    return p


def main(argv: Optional[List[str]] = None) -> None:
    p = get_parser()
    args = p.parse_args(argv)
    if args.langs and not args.hf_dir:
        p.error("--langs goes with --hf-dir")
    if args.trust_pickle and args.hf_dir:
        p.error("--trust-pickle goes with --fairseq-dir / --checkpoint (Hugging Face weights are read "
                "as safetensors or weights-only)")
    if args.hf_dir:
        from ..mbart.convert_hf import convert_hf

        stats = convert_hf(args.hf_dir, args.out, parse_langs(args.langs) or None)
        print(f"{args.out}: {stats['params']:,} parameters, {stats['rows']:,} vocabulary rows; "
              f"stage 2: --mbart-dir {args.out} --langs {','.join(stats['langs'])}")
        return
    from ..mbart.convert_fairseq import convert_checkpoint, convert_fairseq_dir

    if args.fairseq_dir:
        convert_fairseq_dir(args.fairseq_dir, args.out, args.trust_pickle)
    else:
        convert_checkpoint(args.checkpoint, args.out, args.trust_pickle)
    print(f"{args.out}: weights and config only")


def cli_main(argv: Optional[List[str]] = None) -> None:
    setup_logging()
    try:
        main(argv)
    except (ValueError, OSError) as e:  # CheckpointError is a ValueError; FileNotFoundError an OSError
        sys.exit(f"fairseq-slt-convert-mbart: error: {e}")


if __name__ == "__main__":
    cli_main()
