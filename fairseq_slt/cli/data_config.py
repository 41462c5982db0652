"""Derive a data config from another one in the same data root.

    fairseq-slt-data-config $DATA --out config_stage2.yaml --mbart-dir $DATA/mbart.trimmed
    fairseq-slt-data-config $DATA --src config_stage2.yaml --out config_stage2_run.yaml --feature-cache features_stage2
    fairseq-slt-data-config $DATA --src config_stage2.yaml --out config_joint.yaml --no-feature-cache
    fairseq-slt-data-config $DATA --out config_llm.yaml --llm-dir /models/flan-t5-base --feature-cache features_stage2

Copies ``$DATA/<src>`` (default ``config.yaml``) to ``$DATA/<out>`` (atomically, keys in their
order), with ``--mbart-dir`` pointing the target vocabulary and the sentencepiece model at an mBART
directory's ``dict.txt`` and ``sentence.bpe.model`` (relative to the data root when the directory
is inside it, absolute otherwise), ``--llm-dir`` tokenizing the targets with a Hugging Face model
folder's tokenizer (``--arch slt_hf``; ``vocab_filename`` is dropped: the tokenizer is the
dictionary), and ``--feature-cache`` / ``--no-feature-cache`` setting or
removing the folder of cached features that stage 2 reads (see ``fairseq-slt-cache-features``).
A thin command line over :func:`fairseq_slt.data.manifest_utils.derive_config_yaml`.
"""

import argparse
from typing import List, Optional

from ..data.manifest_utils import derive_config_yaml
from ..logging_utils import setup_logging


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data", help="data root (holds the manifests and the data configs)")
    p.add_argument("--src", default="config.yaml", help="data config to start from, relative to the data root")
    p.add_argument("--out", required=True, help="data config to write, relative to the data root")
    p.add_argument("--mbart-dir", help="mBART directory (dict.txt, sentence.bpe.model) whose vocabulary "
                   "and tokenizer the config uses; relative to the working directory, or absolute")
    p.add_argument("--llm-dir", help="Hugging Face model folder whose tokenizer the targets use (--arch "
                   "slt_hf); relative to the working directory, or absolute; not with --mbart-dir")
    p.add_argument("--frame-store", help="set frame_store: a folder of fairseq-slt-frame-store, relative to the "
                   "data root, or absolute")
    cache = p.add_mutually_exclusive_group()
    cache.add_argument("--feature-cache", help="set feature_cache: a folder of cached features, relative "
                       "to the data root (as fairseq-slt-cache-features --out), or absolute")
    cache.add_argument("--no-feature-cache", action="store_true", help="remove feature_cache")
    return p


def cli_main(argv: Optional[List[str]] = None) -> None:
    setup_logging()
    args = get_parser().parse_args(argv)
    derive_config_yaml(args.data, args.src, args.out, mbart_dir=args.mbart_dir,
                       feature_cache=args.feature_cache, drop_feature_cache=args.no_feature_cache,
                       llm_dir=args.llm_dir, frame_store=args.frame_store)


if __name__ == "__main__":
    cli_main()
