"""Write a prepared frame store of a data root's sentences, then point its data config at it.

    fairseq-slt-frame-store $DATA --out frames_store --workers 8 [--splits train,dev,test]

Every frame of every sentence of the manifests (a video file, a ``[start, end)`` range of one, or
a frame folder) is decoded once, resized to the data config's ``video.resize`` with the
transform's own resize, and stored as JPEG (``--quality``, default 95) in shard files with an index
(:mod:`fairseq_slt.data.frame_store`). Training and decoding then read the frames from there:
``frame_store: <out>`` is written into the data config (``--config-yaml``, default
``config.yaml``), and no training command changes. Writing is parallel (``--workers``) and
resumable: a rerun adds the sentences that are not stored yet and leaves the others. A store
written with another ``video.resize`` or quality is refused. The report gives the frames, the
disk use (GB per 1,000 frames) and the time per hour of video.
"""

import argparse
import json
import logging
import os
from typing import List, Optional

from ..logging_utils import setup_logging

logger = logging.getLogger("fairseq_slt.cli.frame_store")


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data", help="data root (config.yaml and the <split>.tsv manifests)")
    p.add_argument("--out", required=True, help="store folder; relative to the data root, or absolute")
    p.add_argument("--config-yaml", default="config.yaml", help="data config whose video.resize the frames get "
                   "and which is updated with frame_store (relative to the data root)")
    p.add_argument("--splits", default="train,dev,test", help="comma-separated splits whose sentences are stored")
    p.add_argument("--workers", type=int, default=1, help="parallel writer processes (one shard each at a time)")
    p.add_argument("--quality", type=int, default=95, help="JPEG quality of the stored frames (1-100)")
    p.add_argument("--shard-sentences", type=int, default=64, help="sentences per shard file")
    p.add_argument("--no-config", action="store_true", help="write the store only; leave the data config as it is")
    return p


def cli_main(argv: Optional[List[str]] = None) -> None:
    setup_logging()
    args = get_parser().parse_args(argv)
    if not 1 <= args.quality <= 100:
        raise SystemExit(f"fairseq-slt-frame-store: error: --quality {args.quality}: give 1 to 100")
    if args.workers < 1 or args.shard_sentences < 1:
        raise SystemExit("fairseq-slt-frame-store: error: --workers and --shard-sentences must be at least 1")
    from ..data.data_cfg import SignDataConfig
    from ..data.frame_store import FrameStoreError, Sentence, sentence_key, write_frame_store
    from ..data.manifest_utils import derive_config_yaml
    from ..data.sign_video_dataset import SignVideoDatasetCreator
    from ..data.transforms import resize_size

    try:
        cfg = SignDataConfig(os.path.join(args.data, args.config_yaml))
        sentences = []
        for split in [s.strip() for s in args.splits.split(",") if s.strip()]:
            manifest = os.path.join(args.data, f"{split}.tsv")
            for row in SignVideoDatasetCreator.read_manifest(manifest):
                source, n, _, problem = SignVideoDatasetCreator._parse_row(manifest, row, cfg.video_root)
                if problem is not None:
                    logger.warning(f"{manifest} row {row['_row']}: not stored: {problem}")
                    continue
                sentences.append(Sentence(sentence_key(source, cfg.video_root), source, n))
        store = args.out if os.path.isabs(args.out) else os.path.join(args.data, args.out)
        report = write_frame_store(sentences, store, cfg.resize, resize_size(cfg.resize, cfg.crop),
                                   args.quality, args.workers, args.shard_sentences)
    except (FrameStoreError, FileNotFoundError, ValueError) as e:
        raise SystemExit(f"fairseq-slt-frame-store: error: {e}")
    hours = report["frames"] / 25.0 / 3600  # at 25 fps, the datasets' rate
    per_hour = report["seconds"] / hours if hours else 0.0
    logger.info(
        f"{store}: {report['frames']} frames of {report['sentences'] - len(report['failed'])} sentences written, "
        f"{report['bytes'] / 1e9:.2f} GB ({report['gb_per_1000_frames']:.3f} GB per 1,000 frames), "
        f"{report['seconds']:.0f} s ({per_hour / 60:.1f} min per hour of 25 fps video with {args.workers} workers); "
        f"{len(report['failed'])} sentences could not be read"
    )
    with open(os.path.join(store, "report.json"), "w", encoding="utf-8") as f:
        json.dump(report, f, indent=1)
    if not args.no_config:
        derive_config_yaml(args.data, args.config_yaml, args.config_yaml, frame_store=args.out)
    if report["failed"]:
        raise SystemExit(f"fairseq-slt-frame-store: {len(report['failed'])} sentences could not be read (listed "
                         "above); fix or remove their rows and run the command again")


if __name__ == "__main__":
    cli_main()
