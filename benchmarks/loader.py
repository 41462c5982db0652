"""Data-loader benchmark: frames/s delivered to the model, on the three datasets' geometries.

    python benchmarks/loader.py               # 4 videos per geometry, 3 interleaved passes
    python benchmarks/loader.py --quick       # 2 videos, 2 passes (a smoke run)
    python benchmarks/loader.py --videos 16
    python benchmarks/loader.py --profile     # where a delivered frame's time goes, per step
    python benchmarks/loader.py --buffer-pool-ab  # our loader with and without --frame-buffer-pool

It generates, into a temporary folder (nothing is kept), photo-like videos (a textured static
background, a textured signer whose hands move, per-frame lighting flicker and Gaussian sensor
noise, so frames compress and decode like camera photos) in each dataset's layout:

* ``png``: PHOENIX-2014-T, frame folders ``<id>/images0001.png ...`` of 210 x 260 px, 100-200 frames;
* ``jpg``: CSL-Daily, frame folders of 512 x 512 jpg (quality 90), 100-150 frames;
* ``mp4``: How2Sign, 12 s 1280 x 720 H.264 "full videos" (crf 18, x264 defaults), two 4 s
  sentences cut out of each by the manifest's ``start``/``end`` (one at 0.5 s, one at 5.5 s).

Loaders, each timed on the same videos with the paper's config (resize 256, crop 224, keep 25% of
the frames, ImageNet normalisation), in train (random crop + augmentation) and eval (centre crop):

* ``baseline``: written the way GFSLT-VLP loads: every frame of the video (sentence) is decoded to
  a PIL image (``Image.open(...).convert("RGB")``; for mp4 PyAV's ``to_image``, from the start of
  the video), then per-frame torchvision transforms (resize 256, crop 224, in training the
  per-video rotate/scale/translate on the PIL image, ToTensor, Normalize), then 25% of the frames
  are kept, then the batch is collated.
* ``SignVideoDataset``: ours, built by ``SignVideoDatasetCreator.from_tsv`` and read through a
  ``torch.utils.data.DataLoader`` with its collater (frames decoded no larger than the resize
  needs: JPEG DCT scaling, PyAV scaled conversion).
* ``SignVideoDataset, frame store``: the same dataset reading a frame store
  (``fairseq-slt-frame-store``: every frame of the sentence decoded once at the resize, JPEG
  quality 95, written before the timing; its writing time and size are reported below the table).
* ``SignVideoDataset, full-size decode (before)``: the same with ``min_size`` off, i.e. the
  loader before reduced decoding (PIL full decode, decord at full size).
* ``raw decode``: decoding only the frames the model gets (eval sampling), no transform, through
  ``read_frames``: full size (PIL; decord, PyAV, torchcodec if installed) and, for mp4, scaled.

"frames delivered" counts frames in the model input (``src_lengths`` summed). Every loader runs in
one process with one torch thread and one decoding thread (as a DataLoader worker does); passes
are interleaved and the median pass is kept, so another job on the machine slows every loader
alike. Batches of 4 videos. Not part of the test suite.

``--profile`` times each step of our loader on the same corpus, per delivered frame (eval
sampling; the median of 5 repeats of each step over all videos): the raw full-size decode, the
decode as our loader does it (reduced where the format allows), the resize, the centre crop with
ImageNet normalisation (float32 out), the training augmentation, and the collate, and from them
the loader's best possible ratio to the raw decode (its steps' sum, nothing else). For comparison:
the same steps delivering uint8 frames (crop, uint8 collate; normalisation left to the model), the
ratio that would leave.
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


def _smooth_field(rng: np.random.Generator, cells: int, height: int, width: int, channels: int = 3) -> np.ndarray:
    """``H x W x C`` float32 in [0, 255]: random values on a ``cells`` grid, bicubic up-sampled."""
    from PIL import Image

    small = rng.random((cells, max(2, cells * width // height), channels), dtype=np.float32)
    bands = [np.asarray(Image.fromarray(small[..., c]).resize((width, height), Image.BICUBIC)) for c in range(channels)]
    return np.clip(np.stack(bands, -1) * 255, 0, 255)


def photo_like_video(rng: np.random.Generator, n_frames: int, height: int = HEIGHT, width: int = WIDTH,
                     noise: float = 4.0, fps: int = FPS) -> np.ndarray:
    """``T x height x width x 3`` uint8 frames of a signer in front of a textured background
    (hard-edged moving hands, per-frame flicker, Gaussian sensor noise from a bank of 7 fields)."""
    s = height / 260.0
    bg = 0.55 * _smooth_field(rng, 4, height, width) + 0.3 * _smooth_field(rng, 16, height, width) + 0.15 * _smooth_field(rng, 60, height, width)
    cloth = 0.6 * _smooth_field(rng, 6, height, width) * rng.uniform(0.2, 0.6) + 0.4 * _smooth_field(rng, 40, height, width) * 0.5
    skin = np.array([205, 160, 135], np.float32) * (0.85 + 0.15 * _smooth_field(rng, 20, height, width, 1) / 255)
    y, x = np.ogrid[:height, :width]
    ell = lambda cy, cx, ry, rx: (((y - cy) / ry) ** 2 + ((x - cx) / rx) ** 2 <= 1.0)[..., None]
    cx0 = width / 2
    body = ell(height * 0.75, cx0, height * 0.35, min(width * 0.32, height * 0.3))
    head = ell(height * 0.25, cx0, 30 * s, 24 * s)
    still = np.where(head, skin, np.where(body, cloth, bg)).astype(np.float32)
    bank = [rng.normal(0, noise, still.shape).astype(np.float32) for _ in range(7)]
    t = np.arange(n_frames) / fps
    freq, phase = rng.uniform(0.3, 1.2, (2, 2)), rng.uniform(0, 2 * np.pi, (2, 2))
    span = min(width, 1.2 * height)
    out = np.empty((n_frames, height, width, 3), np.uint8)
    for i in range(n_frames):
        frame = still.copy()
        for h in range(2):
            cy = height * (0.55 + 0.2 * np.sin(2 * np.pi * freq[h, 0] * t[i] + phase[h, 0]))
            cx = cx0 + span * (-0.2 + 0.4 * h + 0.15 * np.sin(2 * np.pi * freq[h, 1] * t[i] + phase[h, 1]))
            ry, rx = 16 * s, 12 * s
            y0, y1 = max(0, int(cy - ry)), min(height, int(cy + ry) + 1)
            x0, x1 = max(0, int(cx - rx)), min(width, int(cx + rx) + 1)
            m = (((y[y0:y1] - cy) / ry) ** 2 + ((x[:, x0:x1] - cx) / rx) ** 2 <= 1.0)[..., None]
            frame[y0:y1, x0:x1] = np.where(m, skin[y0:y1, x0:x1], frame[y0:y1, x0:x1])
        frame *= rng.uniform(0.97, 1.03)
        frame += bank[i % 7]
        np.clip(frame, 0, 255, out=frame)
        out[i] = frame
    return out


def write_frame_folder(frames: np.ndarray, folder: str, ext: str) -> None:
    from PIL import Image

    os.makedirs(folder, exist_ok=True)
    for i, f in enumerate(frames):
        path = os.path.join(folder, f"images{i + 1:04d}.{ext}")
        Image.fromarray(f).save(path, **({"quality": 90} if ext == "jpg" else {}))


def write_png_folder(frames: np.ndarray, folder: str) -> None:
    """PHOENIX-style ``images0001.png ...`` (used by ``stage2.py``)."""
    write_frame_folder(frames, folder, "png")


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


def _folder_kb(root: str, rows: List[Dict]) -> float:
    total = sum(e.stat().st_size for r in rows for e in os.scandir(os.path.join(root, r["video"])))
    return total / sum(int(r["n_frames"]) for r in rows) / 1024


def write_corpus(root: str, n_videos: int, seed: int = 1) -> Dict[str, str]:
    """One data root per geometry (``png``, ``jpg``, ``mp4``), each with ``train.tsv``,
    ``dict.txt`` and ``config.yaml`` (resize 256, crop 224, 25%); returns a description of each.

    * ``png``: PHOENIX-2014-T, 210 x 260 png frame folders, 100-200 frames;
    * ``jpg``: CSL-Daily, 512 x 512 jpg frame folders (quality 90), 100-150 frames;
    * ``mp4``: How2Sign, 1280 x 720 H.264 (crf 18, x264 defaults: B frames, keyframe every 250)
      "full videos" of 12 s, two sentences cut out of each by ``start``/``end`` (4 s each, the
      second one starting mid-video, 5.5 s in).
    """
    from fairseq_slt.data.manifest_utils import gen_config_yaml, write_manifest

    rng = np.random.default_rng(seed)
    rows = {"png": [], "jpg": [], "mp4": []}
    for v in range(n_videos):
        vid = f"video{v:03d}"
        n = int(rng.integers(100, 201))
        folder = os.path.join("frames", vid)
        write_frame_folder(photo_like_video(rng, n), os.path.join(root, "png", folder), "png")
        rows["png"].append({"id": vid, "video": folder, "n_frames": n, "tgt_text": "a b c"})
        n = int(rng.integers(100, 151))
        write_frame_folder(photo_like_video(rng, n, 512, 512), os.path.join(root, "jpg", folder), "jpg")
        rows["jpg"].append({"id": vid, "video": folder, "n_frames": n, "tgt_text": "a b c"})
    for v in range(max(1, n_videos // 2)):  # two sentences per full video
        vid = f"full{v:03d}.mp4"
        write_mp4(photo_like_video(rng, 12 * FPS, 720, 1280, noise=2.0), os.path.join(root, "mp4", "videos", vid))
        for k, (start, end) in enumerate(((0.5, 4.5), (5.5, 9.5))):
            rows["mp4"].append({
                "id": f"{vid[:-4]}_{k}", "video": os.path.join("videos", vid), "n_frames": int(round((end - start) * FPS)),
                "tgt_text": "a b c", "start": start, "end": end,
            })
    for kind, r in rows.items():
        write_manifest(os.path.join(root, kind, "train.tsv"), r)
        with open(os.path.join(root, kind, "dict.txt"), "w") as f:
            f.write("a 1\nb 1\nc 1\n")
        gen_config_yaml(os.path.join(root, kind), video_root=".", resize=RESIZE, crop=CROP, keep_ratio=KEEP)
    mp4_kb = sum(os.path.getsize(os.path.join(root, "mp4", "videos", f)) for f in os.listdir(os.path.join(root, "mp4", "videos")))
    mp4_kb /= 1024 * 12 * FPS * max(1, n_videos // 2)
    return {
        "png": f"{len(rows['png'])} videos of 210x260 png, {_folder_kb(os.path.join(root, 'png'), rows['png']):.0f} KB/frame",
        "jpg": f"{len(rows['jpg'])} videos of 512x512 jpg, {_folder_kb(os.path.join(root, 'jpg'), rows['jpg']):.0f} KB/frame",
        "mp4": f"{len(rows['mp4'])} sentences of 4 s in {max(1, n_videos // 2)} 12 s 1280x720 H.264 videos, {mp4_kb:.0f} KB/frame",
    }


# ----------------------------------------------------------------------------------------------
# loaders: each is an iterable of batches; a pass returns the number of frames delivered


def _frame_files(root: str, video: str) -> List[str]:
    from fairseq_slt.data.video_io import list_frame_files

    return list_frame_files(os.path.join(root, video))


def _pyav_sentence_images(path: str, start: float, end: float) -> list:
    """Every frame of ``[start, end)`` seconds as PIL images (GFSLT-VLP decodes whole clips)."""
    import av

    images = []
    with av.open(path) as container:
        stream = container.streams.video[0]
        stream.codec_context.thread_count = 1  # one thread, as ours
        for frame in container.decode(stream):
            i = int(round(frame.time * FPS))
            if i >= int(round(end * FPS)):
                break
            if i >= int(round(start * FPS)):
                images.append(frame.to_image())
    return images


def baseline_pass(root: str, rows: List[Dict], train: bool, seed: int = 1) -> int:
    """GFSLT-VLP style: decode every frame to PIL, per-frame torchvision transforms, then sample."""
    import torch
    from PIL import Image
    from torchvision import transforms as T
    from torchvision.transforms import functional as TF

    from fairseq_slt.data.sampling import sample_indices
    from fairseq_slt.data.transforms import IMAGENET_MEAN, IMAGENET_STD

    to_tensor = T.Compose([T.ToTensor(), T.Normalize(IMAGENET_MEAN, IMAGENET_STD)])
    rng = np.random.default_rng(seed)
    delivered, batch = 0, []
    for i, row in enumerate(rows):
        path = os.path.join(root, row["video"])
        if os.path.isdir(path):
            images = [Image.open(p).convert("RGB") for p in _frame_files(root, row["video"])]
        else:  # a sentence of a full video: decoded from the video's start, as a clip reader does
            images = _pyav_sentence_images(path, float(row["start"]), float(row["end"]))
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


def dataset(root: str, train: bool, reduced: bool = True, config: str = "config.yaml", frame_buffer_pool: bool = False):
    """Our dataset; ``reduced=False`` is the loader as it was before reduced decoding: frames
    decoded at full size (``min_size`` None: PIL full decode, decord full size);
    ``frame_buffer_pool``: the task's ``--frame-buffer-pool``."""
    from fairseq.data import Dictionary

    from fairseq_slt.data import SignDataConfig, SignVideoDatasetCreator

    cfg = SignDataConfig(os.path.join(root, config))
    tgt_dict = Dictionary.load(os.path.join(root, "dict.txt"))
    ds = SignVideoDatasetCreator.from_tsv(root, cfg, "train", tgt_dict, None, is_train=train,
                                          frame_buffer_pool=frame_buffer_pool)
    if not reduced:
        ds.transform.min_size = None
    return ds


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


def write_store(root: str, rows: List[Dict]) -> Dict:
    """A frame store of the corpus (``fairseq-slt-frame-store``'s writer, one process) and a
    ``config_store.yaml`` that reads it; returns its report (time, size)."""
    from fairseq_slt.data import SignDataConfig
    from fairseq_slt.data.frame_store import Sentence, sentence_key, write_frame_store
    from fairseq_slt.data.manifest_utils import derive_config_yaml
    from fairseq_slt.data.transforms import resize_size
    from fairseq_slt.data.video_io import VideoSource

    cfg = SignDataConfig(os.path.join(root, "config.yaml"))
    sentences = []
    for row in rows:
        start = float(row["start"]) if row.get("start") else None
        end = float(row["end"]) if row.get("end") else None
        source = VideoSource(os.path.join(root, row["video"]), start, end)
        sentences.append(Sentence(sentence_key(source, cfg.video_root), source, int(row["n_frames"])))
    report = write_frame_store(sentences, os.path.join(root, "store"), cfg.resize, resize_size(cfg.resize, cfg.crop))
    derive_config_yaml(root, "config.yaml", "config_store.yaml", frame_store="store")
    return report


def raw_pass(root: str, rows: List[Dict], backend: str, scaled: bool = False) -> int:
    """Decoding the frames the model gets (eval sampling), no transform: full size (``scaled``
    False: PIL for frame folders; decord / PyAV / torchcodec for video) or at the reduced size."""
    from fairseq_slt.data.sampling import sample_indices
    from fairseq_slt.data.video_io import VideoSource, read_frames

    min_size = [RESIZE] if scaled else None
    delivered = 0
    for row in rows:
        n = int(row["n_frames"])
        start = float(row["start"]) if row.get("start") else None
        end = float(row["end"]) if row.get("end") else None
        source = VideoSource(os.path.join(root, row["video"]), start, end)
        idx = sample_indices(n, KEEP, 300, train=False)
        delivered += len(read_frames(source, idx, n, min_size=min_size, backend=backend))
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


BASELINE, BEFORE, OURS = "baseline (GFSLT-VLP style)", "SignVideoDataset, full-size decode (before)", "SignVideoDataset"
STORE = "SignVideoDataset, frame store"
RAW = "raw decode, full size"


def run(quick: bool = False, n_videos: int = None, passes: int = None, verbose: bool = True,
        stores: Dict = None) -> List[Dict]:
    """Generate the corpus, time every loader; one dict per table row. ``stores`` (a dict) gets
    each geometry's frame-store report (writing time, bytes)."""
    import logging

    from fairseq_slt.data import SignVideoDatasetCreator
    from fairseq_slt.data.video_io import torchcodec_unusable

    n_videos = n_videos or (2 if quick else 4)
    passes = passes or (2 if quick else 3)
    for name in ("fairseq_slt", "PIL"):
        logging.getLogger(name).setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="slt_loader_bench_") as tmp, _one_thread():
        t0 = time.perf_counter()
        info = write_corpus(tmp, n_videos)
        if verbose:
            print(f"corpus ({time.perf_counter() - t0:.0f} s to write): " + "; ".join(f"{k}: {v}" for k, v in info.items()), file=sys.stderr)
        root = {k: os.path.join(tmp, k) for k in ("png", "jpg", "mp4")}
        rows = {k: SignVideoDatasetCreator.read_manifest(os.path.join(root[k], "train.tsv")) for k in root}
        for kind in root:
            report = write_store(root[kind], rows[kind])
            if stores is not None:
                stores[kind] = report
            if verbose:
                print(f"{kind}: frame store of {report['frames']} frames in {report['seconds']:.1f} s, "
                      f"{report['gb_per_1000_frames'] * 1000:.1f} MB per 1,000 frames", file=sys.stderr)
        cases = {}  # (loader, input, mode) -> callable returning frames delivered
        for kind in ("png", "jpg", "mp4"):
            for mode in ("eval", "train"):
                train = mode == "train"
                cases[(BASELINE, kind, mode)] = lambda kind=kind, train=train: baseline_pass(root[kind], rows[kind], train)
                if kind != "png":  # png is never decoded smaller: one loader
                    ds = dataset(root[kind], train, reduced=False)
                    cases[(BEFORE, kind, mode)] = lambda ds=ds: ours_pass(ds)
                ds = dataset(root[kind], train)
                cases[(OURS, kind, mode)] = lambda ds=ds: ours_pass(ds)
                ds = dataset(root[kind], train, config="config_store.yaml")
                cases[(STORE, kind, mode)] = lambda ds=ds: ours_pass(ds)
        for kind in ("png", "jpg"):
            cases[(RAW + " (PIL)", kind, "eval")] = lambda kind=kind: raw_pass(root[kind], rows[kind], "auto")
        video = {"decord": "decord", "PyAV": "pyav"}
        if torchcodec_unusable() is None:
            video["torchcodec"] = "torchcodec"
        for name, backend in video.items():
            cases[(f"{RAW} ({name})", "mp4", "eval")] = lambda b=backend: raw_pass(root["mp4"], rows["mp4"], b)
        for name in ("PyAV", "torchcodec") if "torchcodec" in video else ("PyAV",):
            cases[(f"raw decode, scaled to 256 ({name})", "mp4", "eval")] = (
                lambda b=video[name]: raw_pass(root["mp4"], rows["mp4"], b, scaled=True)
            )
        times = {k: [] for k in cases}
        frames = {}
        for p in range(passes):  # interleaved: every loader once per pass
            for key, fn in cases.items():
                n, dt = _time(fn)
                frames[key] = n
                times[key].append(dt)
            if verbose:
                print(f"pass {p + 1}/{passes} done", file=sys.stderr)
    seconds = {k: float(np.median(v)) for k, v in times.items()}
    rate = {k: frames[k] / seconds[k] for k in cases}
    raw = {
        kind: max(r for (loader, k, _), r in rate.items() if k == kind and loader.startswith(RAW))
        for kind in ("png", "jpg", "mp4")
    }
    out = []
    for (loader, kind, mode), r in rate.items():
        base, before = rate.get((BASELINE, kind, mode)), rate.get((BEFORE, kind, mode))
        ours = rate.get((OURS, kind, mode))
        out.append({
            "loader": loader, "input": kind, "mode": mode, "frames": frames[(loader, kind, mode)],
            "seconds": seconds[(loader, kind, mode)], "frames_per_s": r,
            "x_baseline": r / base if base else None,
            "x_before": r / before if before else None,
            "x_ours": r / ours if ours else None,
            "x_raw_decode": r / raw[kind],
        })
    return out


def markdown(rows: List[Dict]) -> str:
    lines = [
        "| loader | input | mode | frames/s | x baseline | x full-size decode (before) | x SignVideoDataset | x raw full-size decode |",
        "|---|---|---|---|---|---|---|---|",
    ]
    fmt = lambda v: "-" if v is None else f"{v:.2f}"  # noqa: E731
    for r in sorted(rows, key=lambda r: (["png", "jpg", "mp4"].index(r["input"]), r["mode"])):
        lines.append(
            f"| {r['loader']} | {r['input']} | {r['mode']} | {r['frames_per_s']:.0f} | {fmt(r['x_baseline'])} | "
            f"{fmt(r['x_before'])} | {fmt(r['x_ours'])} | {r['x_raw_decode']:.2f} |"
        )
    return "\n".join(lines)


def timings(fn: Callable[[], object], repeats: int = 5) -> List[float]:
    """Seconds of each of ``repeats`` calls of ``fn``, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def _median_time(fn: Callable[[], object], repeats: int = 5) -> float:
    return sorted(timings(fn, repeats))[repeats // 2]


def profile(n_videos: int = 4) -> str:
    """Milliseconds per delivered frame of each step of our loader, and the ratios they allow."""
    import torch
    from torchvision.transforms.v2 import functional as F

    from fairseq_slt.data import SignVideoDatasetCreator
    from fairseq_slt.data.sampling import sample_indices
    from fairseq_slt.data.sign_video_dataset import collate_frames
    from fairseq_slt.data.transforms import build_video_transform, normalize_frames
    from fairseq_slt.data.video_io import VideoSource, read_frames

    lines = [
        "| input | raw full-size decode | our decode | resize | crop + normalise | augmentation (train) | "
        "collate | best ratio to raw decode: float32 out (eval / train) | uint8 out: crop + collate | best ratio, uint8 out |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    with tempfile.TemporaryDirectory(prefix="slt_loader_profile_") as tmp, _one_thread():
        write_corpus(tmp, n_videos)
        for kind, backend in (("png", "auto"), ("jpg", "auto"), ("mp4", "pyav")):
            root = os.path.join(tmp, kind)
            rows = SignVideoDatasetCreator.read_manifest(os.path.join(root, "train.tsv"))
            evaluate = build_video_transform(RESIZE, CROP, train=False)
            train = build_video_transform(RESIZE, CROP, train=True)  # the paper's augmentation, p = 0.5 each
            jobs = []
            for row in rows:
                n = int(row["n_frames"])
                start = float(row["start"]) if row.get("start") else None
                end = float(row["end"]) if row.get("end") else None
                jobs.append((VideoSource(os.path.join(root, row["video"]), start, end), sample_indices(n, KEEP, 300, train=False), n))
            frames = [read_frames(s, i, n, min_size=evaluate.min_size) for s, i, n in jobs]
            resized = [F.resize(f.permute(0, 3, 1, 2), [RESIZE], antialias=True) for f in frames]
            outputs = [evaluate(f) for f in frames]
            n_frames = sum(len(f) for f in frames)
            ms = {
                "raw": _median_time(lambda: [read_frames(s, i, n, backend=backend) for s, i, n in jobs]),
                "decode": _median_time(lambda: [read_frames(s, i, n, min_size=evaluate.min_size) for s, i, n in jobs]),
                "resize": _median_time(lambda: [F.resize(f.permute(0, 3, 1, 2), [RESIZE], antialias=True) for f in frames]),
                "normalise": _median_time(lambda: [normalize_frames(F.center_crop(x, [CROP, CROP])) for x in resized]),
                "train": _median_time(lambda: [  # 8 draws per video: the mean cost of the random augmentation
                    train(f, torch.Generator().manual_seed(8 * k + d)) for k, f in enumerate(frames) for d in range(8)
                ]) / 8,
                "collate": _median_time(lambda: [collate_frames(outputs[k:k + BATCH]) for k in range(0, len(outputs), BATCH)]),
                "uint8": _median_time(lambda: [
                    collate_frames([F.center_crop(x, [CROP, CROP]).contiguous() for x in resized[k:k + BATCH]])
                    for k in range(0, len(resized), BATCH)
                ]),
            }
            ms = {k: v * 1e3 / n_frames for k, v in ms.items()}
            augment = ms["train"] - ms["resize"] - ms["normalise"]  # the train transform minus its eval steps
            steps = ms["decode"] + ms["resize"] + ms["normalise"] + ms["collate"]
            lines.append(
                f"| {kind} | {ms['raw']:.3f} | {ms['decode']:.3f} | {ms['resize']:.3f} | {ms['normalise']:.3f} | "
                f"{augment:.3f} | {ms['collate']:.3f} | {ms['raw'] / steps:.2f} / {ms['raw'] / (steps + augment):.2f} | "
                f"{ms['uint8']:.3f} | {ms['raw'] / (ms['decode'] + ms['resize'] + ms['uint8']):.2f} |"
            )
    return "\n".join(lines) + (
        "\n\nms per delivered frame (one thread; eval sampling, median of 5). Best ratio: the raw full-size "
        "decode over the sum of our steps (nothing else: no DataLoader, sampling or Python overhead), i.e. the "
        "most the loader can reach with these steps; train adds the augmentation (its mean over 8 draws per video)."
    )


def buffer_pool_ab(n_videos: int = 4, passes: int = 5) -> str:
    """Our loader (direct and frame store; png and jpg geometries, eval and train) with and without
    ``--frame-buffer-pool``: frames/s, the median of interleaved passes (one thread)."""
    import csv
    import statistics

    lines = ["| input | loader | mode | frames/s, --frame-buffer-pool | frames/s, default | ratio |",
             "|---|---|---|---|---|---|"]
    with tempfile.TemporaryDirectory() as tmp, _one_thread():
        write_corpus(tmp, n_videos)
        for kind in ("png", "jpg"):
            root = os.path.join(tmp, kind)
            with open(os.path.join(root, "train.tsv"), newline="") as f:
                write_store(root, list(csv.DictReader(f, delimiter="\t")))
            for config, loader in (("config.yaml", OURS), ("config_store.yaml", STORE)):
                for train in (False, True):
                    datasets = {pool: dataset(root, train, config=config, frame_buffer_pool=pool) for pool in (True, False)}
                    rates = {True: [], False: []}
                    for p in range(passes + 1):  # the first pass of each warms up
                        for pool in ((True, False) if p % 2 == 0 else (False, True)):
                            n, seconds = _time(lambda: ours_pass(datasets[pool]))
                            if p:
                                rates[pool].append(n / seconds)
                    on, off = statistics.median(rates[True]), statistics.median(rates[False])
                    lines.append(f"| {kind} | {loader} | {'train' if train else 'eval'} | {on:.0f} | {off:.0f} | {on / off:.2f} |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--videos", type=int, default=None, help="frame-folder videos per geometry (default 4; 2 with --quick); half as many 12 s mp4s, 2 sentences each")
    parser.add_argument("--passes", type=int, default=None, help="interleaved timed passes, median kept (default 3; 2 with --quick)")
    parser.add_argument("--quick", action="store_true", help="a small, fast run")
    parser.add_argument("--profile", action="store_true", help="time each step of our loader per frame, and the ratios the steps allow")
    parser.add_argument("--buffer-pool-ab", action="store_true", help="our loader with and without --frame-buffer-pool, interleaved")
    args = parser.parse_args()
    if args.buffer_pool_ab:
        print(buffer_pool_ab(args.videos or 4, args.passes or 5))
        return
    if args.profile:
        print(profile(args.videos or 4))
        return
    stores = {}
    rows = run(quick=args.quick, n_videos=args.videos, passes=args.passes, stores=stores)
    print(markdown(rows))
    print("\n| input | frame store: frames | MB per 1,000 frames | writing s per 1,000 frames (one process) | min per hour of 25 fps video |")
    print("|---|---|---|---|---|")
    for kind, r in stores.items():
        per_k = r["seconds"] / max(r["frames"], 1) * 1000
        print(f"| {kind} | {r['frames']} | {r['gb_per_1000_frames'] * 1000:.1f} | {per_k:.1f} | {per_k * 90 / 60:.1f} |")
    print(
        "\nframes/s: frames in the model input per second (one process, one torch thread and one "
        "decoding thread, median of interleaved passes); x raw full-size decode: against the "
        "fastest full-size decode of only the frames the model gets (png/jpg: PIL; mp4: decord, "
        "PyAV or torchcodec)."
    )


if __name__ == "__main__":
    main()
