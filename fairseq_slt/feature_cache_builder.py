"""The feature cache's builder: the frozen stage-1 visual encoder's sign-wise features of every
split, computed once and streamed to the cache folder (the format: :mod:`fairseq_slt.data.feature_cache`).

The library behind ``fairseq-slt-cache-features`` (whose help documents the options). Call
:func:`main` with the command's options as a namespace; options it lacks take
:data:`~fairseq_slt.data.feature_cache_options.DEFAULTS`.
"""

import argparse
import logging
import os
from contextlib import nullcontext
from typing import Dict, List, Sequence, Tuple

import numpy as np
import torch
from tqdm import tqdm

from .checkpoints import load_task_state
from .data import SignVideoDatasetCreator
from .data.feature_cache import (
    FORMAT_VERSION,
    STORAGE_DTYPES,
    SplitWriter,
    eval_record,
    kept_splits,
    read_meta,
    rebuild_command,
    split_record,
    visual_fingerprints,
    write_meta,
)
from .data.feature_cache_options import DEFAULTS, PRECISION_CHOICES
from .data.manifest_utils import is_train_split
from .data.video_settings import RECORD_KEY as VIDEO_RECORD_KEY
from .data.video_settings import check_video_settings, video_settings
from .models.pretrained import load_stage1_visual_encoder
from .models.visual_frontend import tconv_out_lengths
from .tasks.sign_translation import SignTranslationConfig, SignTranslationTask

logger = logging.getLogger(__name__)

PRECISIONS = dict(zip(PRECISION_CHOICES, (torch.float32, torch.bfloat16, torch.float16)))


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


def with_defaults(args) -> argparse.Namespace:
    """``args`` with :data:`DEFAULTS` for the options it lacks."""
    return argparse.Namespace(**dict(DEFAULTS, **vars(args)))


def check_args(args) -> torch.device:
    """Refuse bad option values before anything is loaded; returns the device."""
    if args.batch_size < 1:
        raise ValueError(f"--batch-size {args.batch_size}: give at least 1 video per forward pass")
    if args.train_views < 0:
        raise ValueError(
            f"--train-views {args.train_views}: give K >= 1 views per training video (or 0 for one "
            "evaluation view, i.e. stage 2 without augmentation)"
        )
    if args.num_workers < 0:
        raise ValueError(f"--num-workers {args.num_workers}: give 0 (decode in this process) or more")
    if args.precision not in PRECISIONS:
        raise ValueError(f"--precision {args.precision!r}: use one of {', '.join(PRECISIONS)}")
    if args.dtype not in STORAGE_DTYPES:
        raise ValueError(f"--dtype {args.dtype!r}: store features as one of {', '.join(STORAGE_DTYPES)}")
    try:
        device = torch.device(args.device)
    except RuntimeError as e:
        raise ValueError(f"--device {args.device!r} is not a device: use cpu, cuda or cuda:N ({e})") from e
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"--device {args.device!r}: use cpu, cuda or cuda:N")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {args.device}: no CUDA GPU is available here; use --device cpu")
    if args.precision == "fp16" and device.type != "cuda":
        raise ValueError("--precision fp16 needs --device cuda (CPU autocast has no fp16); on CPU use bf16 or fp32")
    return device


def view_plan(split: str, train_views: int) -> List[int]:
    """The epoch each view of ``split`` reproduces (view v: epoch v + 1); ``[]`` for one
    evaluation view."""
    return list(range(1, train_views + 1)) if is_train_split(split) and train_views > 0 else []


def expected_lengths(n_sampled: Sequence[int], temporal_spec: str) -> np.ndarray:
    """``T'`` of each video: its sampled frame count through the temporal module. Random temporal
    sampling keeps the count, so every view of a video has the same length."""
    return tconv_out_lengths(torch.as_tensor(np.asarray(n_sampled, dtype=np.int64)), temporal_spec).numpy()


def split_dataset(task, split: str, train: bool, seed: int):
    """The split as live training (``train``) or decoding reads it, videos even where config.yaml
    names a cache."""
    return SignVideoDatasetCreator.from_tsv(
        task.cfg.data, task.data_cfg, split, task.tgt_dict, task.bpe_tokenizer,
        is_train=train, seed=seed, use_feature_cache=False,
    )


@torch.no_grad()
def encode_batches(dataset, visual, batches: List[List[int]], device: torch.device, precision: str,
                   num_workers: int):
    """``(first index, [T' x C float32 arrays])`` of each batch, in order: a torch DataLoader over
    the dataset (as fairseq's loader), the visual encoder under autocast."""
    loader = torch.utils.data.DataLoader(
        dataset, batch_sampler=batches, collate_fn=dataset.collater, num_workers=num_workers,
        pin_memory=device.type == "cuda",
    )
    autocast = (
        torch.autocast(device.type, dtype=PRECISIONS[precision]) if precision != "fp32" else nullcontext()
    )
    for batch in loader:
        frames = batch["net_input"]["src_tokens"].to(device, non_blocking=True)
        src_lengths = batch["net_input"]["src_lengths"]
        with autocast:
            feats, lengths = visual(frames, src_lengths.to(device))
        feats, lengths = feats.float().cpu(), lengths.cpu()
        by_index = {}
        for row, index in enumerate(batch["id"].tolist()):
            if int(lengths[row]) < 1:
                raise ValueError(
                    f"{dataset.describe(index)}: the visual encoder gives no sign-wise feature for its "
                    f"{int(src_lengths[row])} sampled frames; fix or remove the row"
                )
            by_index[index] = feats[row, : lengths[row]].numpy()
        indices = sorted(by_index)  # the collater sorts by length; the writer wants manifest order
        yield indices[0], [by_index[i] for i in indices]


def cache_split(task, visual, split: str, out: str, batch_size: int, options=None, identity=None) -> Tuple[int, int, int, Dict]:
    """Write (or resume) one split's views; returns ``(videos, feature vectors, bytes written,
    its split_views record)``."""
    options = with_defaults(options or argparse.Namespace())
    device = torch.device(options.device)
    epochs = view_plan(split, options.train_views)
    train = bool(epochs)
    dataset = split_dataset(task, split, train, options.seed)
    lengths = expected_lengths(dataset.src_sizes, visual.temporal.spec)
    record = dict(eval_record(options.dtype), precision=options.precision)
    if train:
        record.update(views=len(epochs), transforms="train", seed=options.seed, epochs=epochs,
                      augment=task.data_cfg.augment)
    writer = SplitWriter(out, split, dataset.ids, [lengths] * max(1, len(epochs)), visual.out_dim, record,
                         identity or {})
    try:
        for view, epoch in enumerate(epochs or [1]):
            dataset.set_epoch(epoch)  # view v: the (seed, epoch v + 1, index) draws of live training
            start = writer.done[view]
            batches = [list(range(i, min(i + batch_size, len(dataset)))) for i in range(start, len(dataset), batch_size)]
            desc = f"{split} view {view + 1}/{len(epochs)}" if train else f"{split}"
            bar = tqdm(total=len(dataset), initial=start, desc=desc, unit="video",
                       disable=options.no_progress_bar, dynamic_ncols=True)
            with bar:
                for first, feats in encode_batches(dataset, visual, batches, device, options.precision,
                                                   options.num_workers):
                    writer.write(view, first, feats)
                    bar.update(len(feats))
        n_bytes = writer.finish()
    finally:
        writer.close()
    return len(dataset), int(lengths.sum()) * max(1, len(epochs)), n_bytes, record


def cache_meta(args, task, visual, stage1_args) -> Dict:
    """``meta.json`` of a cache (its ``splits`` and ``split_views`` are filled in as they are written)."""
    fingerprints = visual_fingerprints(visual.state_dict())
    return {
        "format_version": FORMAT_VERSION,
        "stage1_checkpoint": os.path.abspath(args.stage1_checkpoint),
        "visual_fingerprint": fingerprints["float32"],
        "visual_fingerprints": fingerprints,
        "feature_dim": visual.out_dim,
        "temporal_module": stage1_args.temporal_module,
        "temporal_dim": stage1_args.temporal_dim,
        **video_settings(task.data_cfg),  # resize, crop, keep_ratio, max_frames, normalisation
        "splits": [],
        "split_views": {},
    }


def check_stage1_video_settings(args, task) -> None:
    """The stage-1 visual encoder learnt from frames made with the video settings its checkpoint
    records: the cache is computed with the data config's, which must be the same (or
    ``--allow-video-settings-change``, with a warning). A checkpoint that does not record them
    all is refused too, unless ``--allow-video-settings-change``."""
    recorded = load_task_state(args.stage1_checkpoint).get(VIDEO_RECORD_KEY)
    trained_with = f" ({recorded['data_config']})" if recorded and recorded.get("data_config") else ""
    check_video_settings(
        recorded, video_settings(task.data_cfg), f"the stage-1 checkpoint {args.stage1_checkpoint}",
        str(task.data_cfg.yaml_path), args.allow_video_settings_change,
        fix=f"cache with the data config it was trained with{trained_with}, --config-yaml",
        remake="train stage 1 again with this fairseq-slt",
        going_on="the cache is computed with the data config's settings and records them",
    )


def old_records(out: str, splits: Sequence[str]) -> Dict[str, Dict]:
    """``split_views`` entries of the kept ``splits`` of an existing cache."""
    try:
        old = read_meta(out)
    except (FileNotFoundError, ValueError):
        return {}
    return {s: split_record(old, s, out, rebuild_command(out, old, s)) for s in splits}


def main(args) -> None:
    args = with_defaults(args)
    splits = parse_splits(args.splits)
    device = check_args(args)
    task = SignTranslationTask.setup_task(SignTranslationConfig(data=args.data, config_yaml=args.config_yaml))
    visual, stage1_args = load_stage1_visual_encoder(args.stage1_checkpoint)
    check_stage1_video_settings(args, task)
    visual.eval().to(device)
    out = args.out if os.path.isabs(args.out) else os.path.join(args.data, args.out)
    os.makedirs(out, exist_ok=True)
    meta = cache_meta(args, task, visual, stage1_args)
    done = kept_splits(out, meta, splits)
    records = old_records(out, done)
    # the splits being rewritten are invalid until written
    total = write_meta(out, dict(meta, splits=done, split_views=dict(records)))
    # what the features depend on (a resumed split must match it); not the checkpoint's path
    identity = {k: v for k, v in meta.items() if k not in ("stage1_checkpoint", "splits", "split_views")}
    identity["device"] = device.type
    import time

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    start, n_encoded = time.perf_counter(), 0
    for split in splits:
        n_videos, n_vectors, n_bytes, record = cache_split(task, visual, split, out, args.batch_size, args, identity)
        n_encoded += n_videos * record.get("views", 1)
        done.append(split)
        records[split] = record
        total += n_bytes + write_meta(out, dict(meta, splits=done, split_views=dict(records)))  # commit the split
        views = (
            f"{record['views']} training view(s) (epochs {record['epochs'][0]}-{record['epochs'][-1]}, seed "
            f"{record['seed']})" if record["transforms"] == "train" else "1 evaluation view"
        )
        logger.info(
            f"{split}: {n_videos} videos, {views}, {n_vectors} sign-wise feature vectors x "
            f"{meta['feature_dim']} {record['dtype']} ({human_size(n_bytes)}) -> {out}"
        )
        if is_train_split(split) and record["transforms"] == "eval":
            logger.warning(
                f"{split}: cached as one evaluation view (--train-views 0): stage 2 on this cache trains "
                "without the paper's augmentation"
            )
    logger.info(
        f"feature cache {out}: wrote {human_size(total)} for split(s) {', '.join(splits)}; it holds "
        f"{', '.join(done)} (computed from {meta['stage1_checkpoint']})"
    )
    seconds = time.perf_counter() - start
    peak = (
        f", peak GPU memory {torch.cuda.max_memory_allocated(device) / 2**30:.2f} GiB" if device.type == "cuda" else ""
    )
    # a resumed split counts all its videos, the ones encoded before the interruption too
    logger.info(
        f"cache speed: {n_encoded} video views in {seconds:.1f} s ({n_encoded / max(seconds, 1e-9):.1f} videos/s) "
        f"on {device}, {args.precision}, {args.num_workers} loader workers{peak}"
    )
