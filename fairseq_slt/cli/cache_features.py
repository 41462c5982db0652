"""Compute the frozen stage-1 visual encoder's sign-wise features of every split once.

    fairseq-slt-cache-features $DATA --stage1-checkpoint $STAGE1/checkpoint_best.pt --out features \
        --train-views 4 [--device cuda --precision bf16 --num-workers 8 --dtype float16]

Training splits (names starting with ``train``, as the task decides) get ``--train-views K`` views
under the training transforms (the paper's random temporal sampling and spatial augmentation):
view v is what live training draws in epoch v + 1 for ``--seed``, and stage 2 reads view
``(epoch - 1) mod K`` in each epoch. ``--train-views 0`` caches one evaluation view of them instead
(stage 2 then trains without augmentation, and says so). Other splits get one evaluation view
(uniform temporal sampling, centre crop), so decoding on the cache gives what the live model gives.
Then add ``feature_cache: features`` to the stage-2 ``config.yaml`` (or use ``--config-yaml`` with a
copy that names it).

The features are computed with the data config's video settings (``video`` in ``config.yaml``),
which must be the ones the stage-1 checkpoint records it was trained with: a difference stops the
command naming the key and both values, unless ``--allow-video-settings-change``. ``meta.json``
records the settings, and stage 2 checks them against its own data config.

Features are streamed to preallocated files (memory does not grow with the number of videos) and
a split records its progress: rerunning an interrupted command continues where it stopped, and a
run with another encoder, transforms, views, dtype or precision restarts the split. ``meta.json``
lists a split only once its files are complete; re-running into an existing folder keeps its other
splits when they come from the same stage-1 checkpoint and transforms, and drops them otherwise.
"""

import argparse
import sys
from typing import List, Optional

from ..data.feature_cache_options import DEFAULTS, DTYPE_CHOICES, PRECISION_CHOICES
from ..logging_utils import setup_logging


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data", help="data root (config.yaml and <split>.tsv)")
    p.add_argument("--stage1-checkpoint", required=True, help="slt_lightt checkpoint of stage 1")
    p.add_argument("--config-yaml", default="config.yaml", help="data config, relative to the data root")
    p.add_argument("--splits", default="train,dev,test", help="comma-separated splits to cache")
    p.add_argument("--out", default="features", help="cache folder (relative to the data root)")
    p.add_argument("--batch-size", type=int, default=8, help="videos per forward pass")
    p.add_argument("--train-views", type=int, default=DEFAULTS["train_views"],
                   help="views per training video under the training transforms (stage 2 reads view "
                        "(epoch-1) mod K); 0: one evaluation view (no augmentation)")
    p.add_argument("--seed", type=int, default=DEFAULTS["seed"],
                   help="seed of the training views: stage 2's --seed (fairseq's default 1)")
    p.add_argument("--device", default=DEFAULTS["device"], help="cpu, cuda or cuda:N")
    p.add_argument("--precision", choices=PRECISION_CHOICES, default=DEFAULTS["precision"],
                   help="autocast precision of the visual encoder (fp16 needs cuda)")
    p.add_argument("--num-workers", type=int, default=DEFAULTS["num_workers"],
                   help="DataLoader processes decoding videos (0: in this process)")
    p.add_argument("--dtype", choices=DTYPE_CHOICES, default=DEFAULTS["dtype"],
                   help="storage dtype of the features (read back as float32)")
    p.add_argument("--no-progress-bar", action="store_true", help="no tqdm progress bar")
    p.add_argument("--allow-video-settings-change", action="store_true",
                   help="cache, with a warning, where the data config's video settings (video.resize, video.crop, "
                        "video.keep_ratio, video.max_frames, normalisation) differ from those the stage-1 "
                        "checkpoint was trained with, or that checkpoint does not record them all; default: stop "
                        "with an error naming them")
    return p


def cli_main(argv: Optional[List[str]] = None) -> None:
    setup_logging()
    args = get_parser().parse_args(argv)
    from ..data.video_settings import VideoSettingsMismatchError
    from ..feature_cache_builder import main  # torch and fairseq: only once the arguments are parsed

    try:
        main(args)
    except VideoSettingsMismatchError as e:
        sys.exit(f"fairseq-slt-cache-features: error: {e}")


if __name__ == "__main__":
    cli_main()
