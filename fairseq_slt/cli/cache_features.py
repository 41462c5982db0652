"""Compute the frozen stage-1 visual encoder's sign-wise features of every split once.

    fairseq-slt-cache-features $DATA --stage1-checkpoint $STAGE1/checkpoint_best.pt --out features

Evaluation transforms are used (uniform temporal sampling, centre crop), so training and decoding
on the cache give what the live model gives in eval mode. Then add ``feature_cache: features`` to
the stage-2 ``config.yaml`` (or use ``--config-yaml`` with a copy that names it).
"""

import argparse
import logging
import os

import torch
from tqdm import tqdm

from ..data import SignVideoDatasetCreator
from ..data.feature_cache import visual_fingerprint, write_meta, write_split
from ..models.pretrained import load_stage1_visual_encoder
from ..tasks.sign_translation import SignTranslationConfig, SignTranslationTask
from ..logging_utils import setup_logging

logger = logging.getLogger(__name__)


@torch.no_grad()
def cache_split(task, visual, split: str, out: str, batch_size: int) -> int:
    # evaluation transforms for every split, and the videos even where config.yaml names a cache
    dataset = SignVideoDatasetCreator.from_tsv(
        task.cfg.data, task.data_cfg, split, task.tgt_dict, task.bpe_tokenizer,
        is_train=False, use_feature_cache=False,
    )
    features = [None] * len(dataset)
    for start in tqdm(range(0, len(dataset), batch_size), desc=f"features {split}"):
        batch = dataset.collater([dataset[i] for i in range(start, min(start + batch_size, len(dataset)))])
        feats, lengths = visual(batch["net_input"]["src_tokens"], batch["net_input"]["src_lengths"])
        for row, index in enumerate(batch["id"].tolist()):
            features[index] = feats[row, : lengths[row]].float().numpy()
    write_split(out, split, features)
    return sum(f.shape[0] for f in features)


def main(args) -> None:
    task = SignTranslationTask.setup_task(SignTranslationConfig(data=args.data, config_yaml=args.config_yaml))
    visual, stage1_args = load_stage1_visual_encoder(args.stage1_checkpoint)
    visual.eval()
    out = args.out if os.path.isabs(args.out) else os.path.join(args.data, args.out)
    os.makedirs(out, exist_ok=True)
    for split in args.splits.split(","):
        n = cache_split(task, visual, split, out, args.batch_size)
        logger.info(f"{split}: {n} sign-wise feature vectors -> {out}")
    write_meta(out, {
        "stage1_checkpoint": os.path.abspath(args.stage1_checkpoint),
        "visual_fingerprint": visual_fingerprint(visual.state_dict()),
        "temporal_module": stage1_args.temporal_module,
        "temporal_dim": stage1_args.temporal_dim,
        "keep_ratio": task.data_cfg.keep_ratio,
        "crop": task.data_cfg.crop,
        "splits": args.splits.split(","),
    })


def cli_main() -> None:
    setup_logging()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data", help="data root (config.yaml and <split>.tsv)")
    p.add_argument("--stage1-checkpoint", required=True, help="slt_lightt checkpoint of stage 1")
    p.add_argument("--config-yaml", default="config.yaml", help="data config, relative to the data root")
    p.add_argument("--splits", default="train,dev,test", help="comma-separated splits to cache")
    p.add_argument("--out", default="features", help="cache folder (relative to the data root)")
    p.add_argument("--batch-size", type=int, default=8, help="videos per forward pass")
    main(p.parse_args())


if __name__ == "__main__":
    cli_main()
