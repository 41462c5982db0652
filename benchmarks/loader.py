"""Data-loader benchmark: frames/s delivered to the model.

    python benchmarks/loader.py               # 8 videos, 3 interleaved passes, one table
    python benchmarks/loader.py --quick       # 3 videos, 2 passes (a smoke run)
    python benchmarks/loader.py --videos 32

It generates, into a temporary folder (nothing is kept), photo-like videos in PHOENIX-2014-T's
layout: frame folders ``<id>/images0001.png ...`` of 210 x 260 px (width x height), 100-200 frames
each, with a textured static background, a textured signer whose hands move, per-frame lighting
flicker and Gaussian sensor noise (so a png is ~100 KB and decodes like a camera photo, not like a
flat synthetic frame), plus the same videos as H.264 mp4 (PyAV, crf 18).

Loaders, each timed on the same videos with the paper's config (resize 256, crop 224, keep 25% of
the frames, ImageNet normalisation), in train (random crop + augmentation) and eval (centre crop):

* ``baseline``: written the way GFSLT-VLP loads: every frame of the video is decoded to a PIL image
  (``Image.open(...).convert("RGB")``; for mp4 PyAV's ``to_image``), then per-frame torchvision
  transforms (resize 256, crop 224, in training the per-video rotate/scale/translate on the PIL
  image, ToTensor, Normalize), then 25% of the frames are kept, then the batch is collated.
* ``SignVideoDataset``: ours, built by ``SignVideoDatasetCreator.from_tsv`` and read through a
  ``torch.utils.data.DataLoader`` with its collater.
* ``raw decode``: decoding only the frames the model gets (eval sampling), no transform: PIL
  ``open + load`` per png, decord's ``get_batch`` for mp4 (or PyAV where faster).

"frames delivered" counts frames in the model input (``src_lengths`` summed). Every loader runs in
one process with one torch thread (as a DataLoader worker does); passes are interleaved and the
best pass is kept, so another job on the machine slows every loader alike. Batches of 4 videos.
Not part of the test suite.
"""

import argparse
import contextlib
import os
import sys
import tempfile
import time
from typing import Callable, Dict, List

import numpy as np

HEIGHT, WIDTH = 260, 210  # PHOENIX-2014-T fullFrame-210x260px: 210 wide, 260 high
FPS = 25
BATCH = 4
RESIZE, CROP, KEEP = 256, 224, 0.25


# ----------------------------------------------------------------------------------------------
# data


def _smooth_field(rng: np.random.Generator, cells: int, channels: int = 3) -> np.ndarray:
    """``H x W x C`` float32 in [0, 255]: random values on a ``cells`` grid, bicubic up-sampled."""
    from PIL import Image

    small = rng.random((cells, max(2, cells * WIDTH // HEIGHT), channels), dtype=np.float32)
    bands = [
        np.asarray(Image.fromarray(small[..., c]).resize((WIDTH, HEIGHT), Image.BICUBIC))
        for c in range(channels)
    ]
    return np.clip(np.stack(bands, -1) * 255, 0, 255)


def _ellipse(cy: float, cx: float, ry: float, rx: float) -> np.ndarray:
    y, x = np.ogrid[:HEIGHT, :WIDTH]
    return (((y - cy) / ry) ** 2 + ((x - cx) / rx) ** 2 <= 1.0)[..., None]


def photo_like_video(rng: np.random.Generator, n_frames: int) -> np.ndarray:
    """``T x 260 x 210 x 3`` uint8 frames of a signer in front of a textured background."""
    bg = 0.55 * _smooth_field(rng, 4) + 0.3 * _smooth_field(rng, 16) + 0.15 * _smooth_field(rng, 60)
    cloth = 0.6 * _smooth_field(rng, 6) * rng.uniform(0.2, 0.6) + 0.4 * _smooth_field(rng, 40) * 0.5
    skin = np.array([205, 160, 135], np.float32) * (0.85 + 0.15 * _smooth_field(rng, 20, 1) / 255)
    body = _ellipse(HEIGHT * 0.75, WIDTH / 2, HEIGHT * 0.35, WIDTH * 0.32)
    head = _ellipse(HEIGHT * 0.25, WIDTH / 2, 30, 24)
    still = np.where(head, skin, np.where(body, cloth, bg))
    # hands: smooth random trajectories
    t = np.arange(n_frames) / FPS
    freq, phase = rng.uniform(0.3, 1.2, (2, 2)), rng.uniform(0, 2 * np.pi, (2, 2))
    out = np.empty((n_frames, HEIGHT, WIDTH, 3), np.uint8)
    for i in range(n_frames):
        frame = still.copy()
        for h in range(2):
            cy = HEIGHT * (0.55 + 0.2 * np.sin(2 * np.pi * freq[h, 0] * t[i] + phase[h, 0]))
            cx = WIDTH * (0.3 + 0.4 * h + 0.15 * np.sin(2 * np.pi * freq[h, 1] * t[i] + phase[h, 1]))
            frame = np.where(_ellipse(cy, cx, 16, 12), skin, frame)
        frame = frame * rng.uniform(0.97, 1.03) + rng.normal(0, 4.0, frame.shape)  # flicker, noise
        out[i] = np.clip(frame, 0, 255).astype(np.uint8)
    return out


def write_png_folder(frames: np.ndarray, folder: str) -> None:
    from PIL import Image

    os.makedirs(folder, exist_ok=True)
    for i, f in enumerate(frames):
        Image.fromarray(f).save(os.path.join(folder, f"images{i + 1:04d}.png"))


def write_mp4(frames: np.ndarray, path: str) -> None:
    import av

    os.makedirs(os.path.dirname(path), exist_ok=True)
    with av.open(path, "w") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.height, stream.width = frames.shape[1:3]  # T x H x W x 3
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "18", "preset": "fast"}
        for f in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")))
        container.mux(stream.encode())


def write_corpus(root: str, n_videos: int, seed: int = 1) -> Dict[str, float]:
    """Data root with ``png.tsv`` (frame folders) and ``mp4.tsv`` manifests of the same videos."""
    from fairseq_slt.data.manifest_utils import gen_config_yaml, write_manifest

    rng = np.random.default_rng(seed)
    rows = {"png": [], "mp4": []}
    png_bytes, n_png = 0, 0
    for v in range(n_videos):
        n = int(rng.integers(100, 201))
        frames = photo_like_video(rng, n)
        vid = f"video{v:03d}"
        folder = os.path.join("features", "fullFrame-210x260px", "train", vid)
        write_png_folder(frames, os.path.join(root, folder))
        write_mp4(frames, os.path.join(root, "videos", vid + ".mp4"))
        png_bytes += sum(e.stat().st_size for e in os.scandir(os.path.join(root, folder)))
        n_png += n
        for kind, path in (("png", folder), ("mp4", os.path.join("videos", vid + ".mp4"))):
            rows[kind].append({"id": vid, "video": path, "n_frames": n, "tgt_text": "a b c"})
    for kind, r in rows.items():
        write_manifest(os.path.join(root, f"{kind}.tsv"), r)
    with open(os.path.join(root, "dict.txt"), "w") as f:
        f.write("a 1\nb 1\nc 1\n")
    gen_config_yaml(root, video_root=".", resize=RESIZE, crop=CROP, keep_ratio=KEEP)
    mp4_bytes = sum(os.path.getsize(os.path.join(root, r["video"])) for r in rows["mp4"])
    return {"frames": n_png, "png_kb": png_bytes / n_png / 1024, "mp4_kb": mp4_bytes / n_png / 1024}


# ----------------------------------------------------------------------------------------------
# loaders: each is an iterable of batches; a pass returns the number of frames delivered


def _png_files(root: str, video: str) -> List[str]:
    from fairseq_slt.data.video_io import list_frame_files

    return list_frame_files(os.path.join(root, video))


def baseline_pass(root: str, rows: List[Dict], train: bool, seed: int = 1) -> int:
    """GFSLT-VLP style: decode every frame to PIL, per-frame torchvision transforms, then sample."""
    import av
    import torch
    from PIL import Image
    from torchvision import transforms as T
    from torchvision.transforms import functional as TF

    from fairseq_slt.data.transforms import IMAGENET_MEAN, IMAGENET_STD
    from fairseq_slt.data.sampling import sample_indices

    to_tensor = T.Compose([T.ToTensor(), T.Normalize(IMAGENET_MEAN, IMAGENET_STD)])
    rng = np.random.default_rng(seed)
    delivered, batch = 0, []
    for i, row in enumerate(rows):
        path = os.path.join(root, row["video"])
        if os.path.isdir(path):
            images = [Image.open(p).convert("RGB") for p in _png_files(root, row["video"])]
        else:
            with av.open(path) as container:
                container.streams.video[0].codec_context.thread_count = 1  # one thread, as ours
                images = [f.to_image() for f in container.decode(video=0)]
        images = [TF.resize(im, RESIZE) for im in images]
        w, h = images[0].size
        if train:  # per-video parameters, as GFSLT-VLP's video augmentation
            top, left = int(rng.integers(0, h - CROP + 1)), int(rng.integers(0, w - CROP + 1))
            angle = float(rng.uniform(-30, 30)) if rng.random() < 0.5 else 0.0
            factor = float(rng.uniform(0.8, 1.2)) if rng.random() < 0.5 else 1.0
            shift = [int(rng.integers(-10, 11)), int(rng.integers(-10, 11))] if rng.random() < 0.5 else [0, 0]
            images = [TF.crop(im, top, left, CROP, CROP) for im in images]
            if angle or factor != 1.0 or shift != [0, 0]:
                images = [TF.affine(im, angle, shift, factor, [0.0, 0.0]) for im in images]
        else:
            images = [TF.center_crop(im, [CROP, CROP]) for im in images]
        frames = torch.stack([to_tensor(im) for im in images])  # T x 3 x 224 x 224
        idx = sample_indices(len(frames), KEEP, 300, train, rng)
        batch.append(frames[torch.from_numpy(idx)])
        if len(batch) == BATCH or i == len(rows) - 1:
            max_len = max(len(b) for b in batch)  # zero-pad and stack, as GFSLT-VLP's collate
            out = torch.stack([torch.cat([b, b.new_zeros((max_len - len(b),) + b.shape[1:])]) for b in batch])
            delivered += sum(len(b) for b in batch)
            assert out.shape[-1] == CROP
            batch = []
    return delivered


def dataset(root: str, split: str, train: bool):
    from fairseq.data import Dictionary

    from fairseq_slt.data import SignDataConfig, SignVideoDatasetCreator

    cfg = SignDataConfig(os.path.join(root, "config.yaml"))
    tgt_dict = Dictionary.load(os.path.join(root, "dict.txt"))
    return SignVideoDatasetCreator.from_tsv(root, cfg, split, tgt_dict, None, is_train=train)


def ours_pass(ds) -> int:
    import torch

    loader = torch.utils.data.DataLoader(
        ds, batch_size=BATCH, shuffle=False, collate_fn=ds.collater, num_workers=0
    )
    delivered = 0
    for batch in loader:
        delivered += int(batch["net_input"]["src_lengths"].sum())
        assert batch["net_input"]["src_tokens"].shape[-1] == CROP
    return delivered


def raw_png_pass(root: str, rows: List[Dict]) -> int:
    """PIL decode of the frames the model gets, nothing else."""
    from PIL import Image

    from fairseq_slt.data.sampling import sample_indices

    delivered = 0
    for row in rows:
        files = _png_files(root, row["video"])
        for i in sample_indices(len(files), KEEP, 300, train=False):
            with Image.open(files[i]) as im:
                im.load()
            delivered += 1
    return delivered


def raw_mp4_pass(root: str, rows: List[Dict], decoder: str) -> int:
    """Decoding the frames the model gets to rgb24 (the stream is decoded up to the last one)."""
    import av
    import decord

    from fairseq_slt.data.sampling import sample_indices

    delivered = 0
    for row in rows:
        path = os.path.join(root, row["video"])
        idx = sample_indices(int(row["n_frames"]), KEEP, 300, train=False)
        if decoder == "decord":
            vr = decord.VideoReader(path, ctx=decord.cpu(0), num_threads=1)
            delivered += len(vr.get_batch(list(idx)).asnumpy())
        else:
            wanted = set(int(i) for i in idx)
            with av.open(path) as container:
                # one decoding thread, as decord and every loader here (PyAV's default uses all
                # cores, which would compare a 2-thread decoder with 1-thread loaders)
                container.streams.video[0].codec_context.thread_count = 1
                for j, frame in enumerate(container.decode(video=0)):
                    if j in wanted:
                        frame.to_ndarray(format="rgb24")
                        delivered += 1
                    if j >= idx[-1]:
                        break
    return delivered


# ----------------------------------------------------------------------------------------------
# driver


def _time(fn: Callable[[], int]) -> tuple:
    t0 = time.perf_counter()
    n = fn()
    return n, time.perf_counter() - t0


@contextlib.contextmanager
def _one_thread():
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def run(quick: bool = False, n_videos: int = None, passes: int = None, verbose: bool = True) -> List[Dict]:
    """Generate the corpus, time every loader; one dict per table row."""
    import logging

    from fairseq_slt.data import SignVideoDatasetCreator

    n_videos = n_videos or (3 if quick else 8)
    passes = passes or (2 if quick else 3)
    for name in ("fairseq_slt", "PIL"):
        logging.getLogger(name).setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="slt_loader_bench_") as root, _one_thread():
        t0 = time.perf_counter()
        info = write_corpus(root, n_videos)
        if verbose:
            print(
                f"corpus: {n_videos} videos, {info['frames']} frames of {WIDTH}x{HEIGHT}, "
                f"png {info['png_kb']:.0f} KB/frame, mp4 {info['mp4_kb']:.1f} KB/frame "
                f"({time.perf_counter() - t0:.0f} s to write)",
                file=sys.stderr,
            )
        rows = {k: SignVideoDatasetCreator.read_manifest(os.path.join(root, f"{k}.tsv")) for k in ("png", "mp4")}
        cases = {}  # (loader, input, mode) -> callable returning frames delivered
        for kind in ("png", "mp4"):
            for mode in ("eval", "train"):
                train = mode == "train"
                cases[("baseline (GFSLT-VLP style)", kind, mode)] = (
                    lambda kind=kind, train=train: baseline_pass(root, rows[kind], train)
                )
                ds = dataset(root, kind, train)
                cases[("SignVideoDataset", kind, mode)] = lambda ds=ds: ours_pass(ds)
        cases[("raw decode (PIL)", "png", "eval")] = lambda: raw_png_pass(root, rows["png"])
        cases[("raw decode (decord)", "mp4", "eval")] = lambda: raw_mp4_pass(root, rows["mp4"], "decord")
        cases[("raw decode (PyAV)", "mp4", "eval")] = lambda: raw_mp4_pass(root, rows["mp4"], "pyav")
        best = {k: float("inf") for k in cases}
        frames = {}
        for p in range(passes):
            for key, fn in cases.items():
                n, dt = _time(fn)
                frames[key], best[key] = n, min(best[key], dt)
            if verbose:
                print(f"pass {p + 1}/{passes} done", file=sys.stderr)
    rate = {k: frames[k] / best[k] for k in cases}
    raw = {
        "png": rate[("raw decode (PIL)", "png", "eval")],
        "mp4": max(rate[("raw decode (decord)", "mp4", "eval")], rate[("raw decode (PyAV)", "mp4", "eval")]),
    }
    out = []
    for (loader, kind, mode), r in rate.items():
        base_key = ("baseline (GFSLT-VLP style)", kind, mode)
        out.append({
            "loader": loader, "input": kind, "mode": mode, "frames": frames[(loader, kind, mode)],
            "seconds": best[(loader, kind, mode)], "frames_per_s": r,
            "x_baseline": r / rate[base_key] if base_key in rate else None,
            "x_raw_decode": r / raw[kind],
        })
    return out


def markdown(rows: List[Dict]) -> str:
    lines = [
        "| loader | input | mode | frames/s | x baseline | x raw decode |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        xb = "-" if r["x_baseline"] is None else f"{r['x_baseline']:.2f}"
        lines.append(
            f"| {r['loader']} | {r['input']} | {r['mode']} | {r['frames_per_s']:.0f} | {xb} | "
            f"{r['x_raw_decode']:.2f} |"
        )
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--videos", type=int, default=None, help="videos to generate (default 8; 3 with --quick)")
    parser.add_argument("--passes", type=int, default=None, help="timed passes per loader, best kept (default 3; 2 with --quick)")
    parser.add_argument("--quick", action="store_true", help="a small, fast run")
    args = parser.parse_args()
    rows = run(quick=args.quick, n_videos=args.videos, passes=args.passes)
    print(markdown(rows))
    print(
        "\nframes/s: frames in the model input per second (one process, one torch thread, best of "
        "the passes); x raw decode: against decoding only the frames the model gets (png: PIL; "
        "mp4: the faster of decord and PyAV)."
    )


if __name__ == "__main__":
    main()
