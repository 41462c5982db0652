"""Compute the frozen stage-1 visual encoder's sign-wise features of every split once.

    fairseq-slt-cache-features $DATA --stage1-checkpoint $STAGE1/checkpoint_best.pt --out features

Evaluation transforms are used (uniform temporal sampling, centre crop), so training and decoding
on the cache give what the live model gives in eval mode. Then add ``feature_cache: features`` to
the stage-2 ``config.yaml`` (or use ``--config-yaml`` with a copy that names it).

Every file is written atomically and ``meta.json`` lists a split only once its files are complete;
re-running into an existing folder keeps its other splits when they come from the same stage-1
checkpoint and transforms, and drops them from ``meta.json`` otherwise.
"""

import argparse
import logging
import os
from typing import Dict, List, Tuple

import torch
from tqdm import tqdm

from ..data import SignVideoDatasetCreator
from ..data.feature_cache import (
    FORMAT_VERSION,
    kept_splits,
    visual_fingerprints,
    write_meta,
    write_split,
)
from ..models.pretrained import load_stage1_visual_encoder
from ..tasks.sign_translation import SignTranslationConfig, SignTranslationTask
from ..logging_utils import setup_logging

logger = logging.getLogger(__name__)


def human_size(n_bytes: int) -> str:
    """``1.5 MiB``-style size."""
    if n_bytes < 1024:
        return f"{n_bytes} B"
    size = n_bytes / 1024
    for unit in ("KiB", "MiB"):
        if size < 1024:
            return f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"


def parse_splits(text: str) -> List[str]:
    splits = [s.strip() for s in text.split(",") if s.strip()]
    if not splits:
        raise ValueError(f"--splits {text!r} names no split: give e.g. --splits train,dev,test")
    return list(dict.fromkeys(splits))


@torch.no_grad()
def cache_split(task, visual, split: str, out: str, batch_size: int) -> Tuple[int, int, int]:
    """Write one split's features; returns ``(videos, feature vectors, bytes written)``."""
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
            if int(lengths[row]) < 1:
                raise ValueError(
                    f"{dataset.describe(index)}: the visual encoder gives no sign-wise feature for its "
                    f"{int(batch['net_input']['src_lengths'][row])} sampled frames; fix or remove the row"
                )
            features[index] = feats[row, : lengths[row]].float().numpy()
    n_bytes = write_split(out, split, dataset.ids, features)
    return len(features), sum(f.shape[0] for f in features), n_bytes


def cache_meta(args, task, visual, stage1_args) -> Dict:
    """``meta.json`` of a cache (its ``splits`` are filled in as they are written)."""
    fingerprints = visual_fingerprints(visual.state_dict())
    cfg = task.data_cfg
    return {
        "format_version": FORMAT_VERSION,
        "stage1_checkpoint": os.path.abspath(args.stage1_checkpoint),
        "visual_fingerprint": fingerprints["float32"],
        "visual_fingerprints": fingerprints,
        "feature_dim": visual.out_dim,
        "temporal_module": stage1_args.temporal_module,
        "temporal_dim": stage1_args.temporal_dim,
        "resize": list(cfg.resize) if isinstance(cfg.resize, tuple) else cfg.resize,  # as JSON stores it
        "crop": cfg.crop,
        "keep_ratio": cfg.keep_ratio,
        "max_frames": cfg.max_frames,
        "splits": [],
    }


def main(args) -> None:
    splits = parse_splits(args.splits)
    if args.batch_size < 1:
        raise ValueError(f"--batch-size {args.batch_size}: give at least 1 video per forward pass")
    task = SignTranslationTask.setup_task(SignTranslationConfig(data=args.data, config_yaml=args.config_yaml))
    visual, stage1_args = load_stage1_visual_encoder(args.stage1_checkpoint)
    visual.eval()
    out = args.out if os.path.isabs(args.out) else os.path.join(args.data, args.out)
    os.makedirs(out, exist_ok=True)
    meta = cache_meta(args, task, visual, stage1_args)
    done = kept_splits(out, meta, splits)
    total = write_meta(out, dict(meta, splits=done))  # the splits being rewritten are invalid until written
    for split in splits:
        n_videos, n_vectors, n_bytes = cache_split(task, visual, split, out, args.batch_size)
        done.append(split)
        total += n_bytes + write_meta(out, dict(meta, splits=done))  # commit the split
        logger.info(
            f"{split}: {n_videos} videos, {n_vectors} sign-wise feature vectors x {meta['feature_dim']} "
            f"({human_size(n_bytes)}) -> {out}"
        )
    logger.info(
        f"feature cache {out}: wrote {human_size(total)} for split(s) {', '.join(splits)}; it holds "
        f"{', '.join(done)} (computed from {meta['stage1_checkpoint']})"
    )


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
