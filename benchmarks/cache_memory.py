"""Peak memory of ``fairseq-slt-cache-features`` for N and 4N videos: streamed writes keep it flat.

    python benchmarks/cache_memory.py                # N = 400 and 4N = 1600 videos
    python benchmarks/cache_memory.py --videos 100   # a quicker look

A few tiny png videos (40 x 32 px, 100 frames; 25 sampled at keep_ratio 0.25) are rendered once
and listed many times in one manifest (unique ids), so the split is larger than any buffer; the
stage-1 checkpoint is a random paper-width visual encoder (ResNet-18 + K5, 1024 channels), so each
video gives 25 x 1024 float32 features (100 KiB). Each size runs in its own process, whose peak
resident memory (``VmHWM`` of ``/proc/self/status``) is reported with the size of the features it
wrote. Random weights, no downloads; not part of the test suite.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from argparse import Namespace

N_RENDERED = 20  # distinct videos; the manifest lists each of them many times
N_FRAMES = 100
TEMPORAL_DIM = 1024


def write_data_root(work: str, n_videos_per_split: dict) -> None:
    """Rendered frame folders, ``<split>.tsv`` manifests listing them, ``dict.txt``, ``config.yaml``."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for v in range(N_RENDERED):
        folder = os.path.join(work, "videos", f"v{v}")
        os.makedirs(folder)
        base = rng.integers(0, 255, (32, 40, 3), dtype=np.uint8)
        for t in range(N_FRAMES):
            frame = np.roll(base, t, axis=1)  # a moving texture
            Image.fromarray(frame).save(os.path.join(folder, f"images{t + 1:04d}.png"))
    for split, n in n_videos_per_split.items():
        with open(os.path.join(work, f"{split}.tsv"), "w", encoding="utf-8") as f:
            f.write("id\tvideo\tn_frames\ttgt_text\n")
            for i in range(n):
                f.write(f"{split}_{i}\tv{i % N_RENDERED}\t{N_FRAMES}\thello world\n")
    with open(os.path.join(work, "dict.txt"), "w", encoding="utf-8") as f:
        f.write("hello 1\nworld 1\n")
    with open(os.path.join(work, "config.yaml"), "w", encoding="utf-8") as f:
        f.write(f"video_root: {os.path.join(work, 'videos')}\nvocab_filename: {os.path.join(work, 'dict.txt')}\n"
                "video: {resize: 32, crop: 32, keep_ratio: 0.25}\n")


def write_stage1_checkpoint(work: str) -> str:
    """A stage-1 checkpoint of a random visual encoder whose ``task_state`` records the data root's
    dictionary and video settings, as fairseq-train writes it."""
    import torch

    from fairseq_slt.models.visual_frontend import SignVisualEncoder
    from fairseq_slt.tasks.sign_translation import SignTranslationConfig, SignTranslationTask

    torch.manual_seed(0)
    visual = SignVisualEncoder("K5", TEMPORAL_DIM)
    path = os.path.join(work, "stage1.pt")
    task_state = SignTranslationTask.setup_task(SignTranslationConfig(data=work)).state_dict()
    torch.save({"cfg": {"model": Namespace(arch="slt_lightt", temporal_module="K5", temporal_dim=TEMPORAL_DIM)},
                "model": {f"encoder.visual.{k}": v for k, v in visual.state_dict().items()},
                "task_state": task_state}, path)
    return path


def peak_rss_kib() -> int:
    """``VmHWM``: this process's peak resident set size, KiB."""
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise RuntimeError("/proc/self/status has no VmHWM (Linux only)")


def child(work: str, split: str, dtype: str) -> None:
    """Cache one split in this process; print its peak RSS as JSON."""
    import torch

    from fairseq_slt.feature_cache_builder import main

    torch.set_num_threads(1)
    start = time.perf_counter()
    out = f"cache_{split}_{dtype}"
    main(Namespace(data=work, stage1_checkpoint=os.path.join(work, "stage1.pt"), config_yaml="config.yaml",
                   splits=split, out=out, batch_size=8, train_views=0, dtype=dtype, no_progress_bar=True))
    feats = os.path.join(work, out, f"{split}.feats.npy")
    print(json.dumps({"peak_rss_mib": peak_rss_kib() / 1024, "features_mib": os.path.getsize(feats) / 2**20,
                      "seconds": time.perf_counter() - start}))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--videos", type=int, default=400, help="N (the second run caches 4N videos)")
    p.add_argument("--dtype", default="float32", choices=("float32", "float16"))
    p.add_argument("--child", nargs=2, metavar=("WORK", "SPLIT"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(args.child[0], args.child[1], args.dtype)
        return
    if args.videos < 1:
        p.error(f"--videos {args.videos}: give N >= 1")
    sizes = {f"n{args.videos}": args.videos, f"n{4 * args.videos}": 4 * args.videos}
    env = dict(os.environ, OMP_NUM_THREADS="1")
    with tempfile.TemporaryDirectory() as work:
        sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        write_data_root(work, sizes)
        write_stage1_checkpoint(work)
        rows = []
        for split, n in sizes.items():
            proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", work, split,
                                   "--dtype", args.dtype], capture_output=True, text=True, env=env)
            if proc.returncode != 0:
                sys.exit(f"caching {n} videos failed:\n{proc.stderr[-3000:]}")
            rows.append((n, json.loads(proc.stdout.strip().splitlines()[-1])))
    print(f"| videos | features written ({args.dtype}) | peak RSS | seconds |")
    print("|---|---|---|---|")
    for n, r in rows:
        print(f"| {n} | {r['features_mib']:.1f} MiB | {r['peak_rss_mib']:.0f} MiB | {r['seconds']:.0f} |")


if __name__ == "__main__":
    main()
