"""Write the synthetic demo corpus: videos (mp4 and/or frame folders) and a ready data root.

    fairseq-slt-synth --out data/synthetic --seed 1

writes ``<out>/videos/<split>/<id>.mp4``, ``<out>/frames/<split>/<id>/images0001.png ...``,
``<out>/{train,dev,test}.tsv`` (pointing at the mp4 files, or at the frame folders with
``--source frames``), ``spm.model``, ``dict.txt`` and ``config.yaml``. The same seed writes the
same corpus.
"""

import argparse
import logging
import os
from typing import List

import numpy as np
from tqdm import tqdm

from ..logging_utils import setup_logging
from ..data.manifest_utils import gen_config_yaml, gen_vocab, write_manifest
from .grammar import sample_sentence
from .render import render_sentence

logger = logging.getLogger(__name__)

SPLITS = ("train", "dev", "test")


def write_mp4(path: str, video: np.ndarray, fps: int = 25, crf: int = 12) -> None:
    """Encode ``T x H x W x 3`` uint8 frames as H.264 (no B-frames, so every frame seeks exactly)."""
    import av

    tmp = path + ".tmp.mp4"
    with av.open(tmp, mode="w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = video.shape[2], video.shape[1]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": str(crf), "bf": "0", "preset": "veryfast"}
        for frame in video:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    os.replace(tmp, path)


def write_frame_folder(folder: str, video: np.ndarray) -> None:
    """Write frames as ``images0001.png ...`` (PHOENIX-2014-T's naming)."""
    from PIL import Image

    os.makedirs(folder, exist_ok=True)
    for i, frame in enumerate(video):
        Image.fromarray(frame).save(os.path.join(folder, f"images{i + 1:04d}.png"), compress_level=1)


def generate_split(args, split: str, n: int, split_id: int) -> List[dict]:
    rows = []
    for i in tqdm(range(n), desc=f"synthetic {split}", disable=n < 20):
        rng = np.random.default_rng([args.seed, split_id, i])
        glosses, text = sample_sentence(rng)
        signer = int(rng.integers(args.signers))
        video = render_sentence(glosses, signer, args.size, args.seed, rng)
        sid = f"{split}_{i:05d}"
        mp4 = os.path.join("videos", split, f"{sid}.mp4")
        frames = os.path.join("frames", split, sid)
        if "mp4" in args.formats:
            os.makedirs(os.path.join(args.out, "videos", split), exist_ok=True)
            write_mp4(os.path.join(args.out, mp4), video)
        if "frames" in args.formats:
            write_frame_folder(os.path.join(args.out, frames), video)
        rows.append({
            "id": sid,
            "video": mp4 if args.source == "mp4" else frames,
            "n_frames": len(video),
            "tgt_text": text,
            "signer": f"signer{signer:02d}",
            "glosses": " ".join(glosses),
        })
    return rows


def generate(args) -> None:
    if args.source not in args.formats:
        raise ValueError(f"--source {args.source} needs it in --formats (got {args.formats})")
    os.makedirs(args.out, exist_ok=True)
    sizes = {"train": args.n_train, "dev": args.n_dev, "test": args.n_test}
    train_texts = []
    for split_id, split in enumerate(SPLITS):
        rows = generate_split(args, split, sizes[split], split_id)
        write_manifest(os.path.join(args.out, f"{split}.tsv"), rows)
        if split == "train":
            train_texts = [r["tgt_text"] for r in rows]
    gen_vocab(train_texts, args.out, vocab_size=args.vocab_size, model_type=args.spm_type)
    gen_config_yaml(
        args.out, video_root=".", resize=args.resize or args.size, crop=args.crop or args.size,
        keep_ratio=args.keep_ratio, max_frames=args.max_frames,
        augment={"rotate": args.rotate, "scale": args.scale, "translate": args.translate, "p": 0.5},
    )
    logger.info(f"synthetic corpus written to {args.out}: {sizes}")


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="data root to write")
    p.add_argument("--seed", type=int, default=1, help="the same seed writes the same corpus")
    p.add_argument("--n-train", type=int, default=800, help="training videos")
    p.add_argument("--n-dev", type=int, default=60, help="dev videos")
    p.add_argument("--n-test", type=int, default=60, help="test videos")
    p.add_argument("--signers", type=int, default=6, help="number of signers (appearance, speed)")
    p.add_argument("--size", type=int, default=64, help="frame side in pixels (even)")
    p.add_argument("--formats", default="mp4,frames", help="what to write: mp4, frames or both")
    p.add_argument("--source", choices=["mp4", "frames"], default="mp4", help="what the manifests point at")
    p.add_argument("--vocab-size", type=int, default=128, help="sentencepiece vocabulary (soft limit)")
    p.add_argument("--spm-type", default="bpe", help="sentencepiece model type (bpe: whole words here)")
    p.add_argument("--resize", type=int, default=None, help="config.yaml resize (default: --size)")
    p.add_argument("--crop", type=int, default=None, help="config.yaml crop (default: --size)")
    p.add_argument("--keep-ratio", type=float, default=0.25, help="config.yaml temporal keep ratio")
    p.add_argument("--max-frames", type=int, default=300, help="config.yaml cap on frames fed to the model")
    p.add_argument("--rotate", type=float, default=5.0, help="config.yaml augmentation: rotation (deg)")
    p.add_argument("--scale", type=float, default=0.05, help="config.yaml augmentation: scale (+-)")
    p.add_argument("--translate", type=float, default=2.0, help="config.yaml augmentation: shift (px)")
    return p


def cli_main() -> None:
    setup_logging()
    args = get_parser().parse_args()
    args.formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    generate(args)


if __name__ == "__main__":
    cli_main()
