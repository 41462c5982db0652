"""Write a synthetic sign language corpus: videos (mp4 and/or frame folders) and a ready data root.

    fairseq-slt-synth --out data/synthetic --seed 1            # the demo corpus
    fairseq-slt-synth --out data/open --grammar open --n-train 8000 --n-dev 500 --n-test 500 \
        --text-corpus-size 30000 [--split-by-signer] [--hard]     # the benchmark
    fairseq-slt-synth --grammar open --stats 50000              # the grammar's size; writes nothing

writes ``<out>/videos/<split>/<id>.mp4``, ``<out>/frames/<split>/<id>/images0001.png ...``,
``<out>/{train,dev,test}.tsv`` (pointing at the mp4 files, or at the frame folders with
``--source frames``), ``glosses_{train,dev,test}.tsv`` (each video's glosses, their categories
and target words, for ``fairseq-slt-score --glosses``), ``spm.model``, ``dict.txt``,
``config.yaml`` and, with ``--text-corpus-size``, ``text_corpus.en``. The same seed and options
write the same corpus. See docs/synthetic_corpora.md.
"""

import argparse
import logging
import os
import sys
from typing import List

import numpy as np
from tqdm import tqdm

from ..logging_utils import setup_logging
from ..data.manifest_utils import MANIFEST_COLUMNS, gen_config_yaml, gen_vocab, write_manifest
from .corpus import (
    GRAMMARS, SPLITS, Grammar, Sample, grammar_stats, plan_corpus, sample_text_corpus, write_gloss_file,
    write_text,
)
from .effects import EFFECTS, parse_effects
from .render import render_sentence

logger = logging.getLogger(__name__)

TEXT_CORPUS = "text_corpus.en"
EXTRA_COLUMNS = ["signer", "glosses"]  # manifest columns after id, video, n_frames, tgt_text
DEFAULT_VOCAB = {"demo": 128, "open": 1000, "weather": 1000}  # --vocab-size by grammar


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


def fit_frame(video: np.ndarray, width: int, height: int) -> np.ndarray:
    """A rendered ``T x S x S x 3`` video scaled to ``height`` (bilinear) and centred in a
    ``width x height`` frame, the sides filled with the render's edge pixels (``--video-size``: a
    camera's frame around the signer; resize S + crop S gives the model the render back)."""
    from PIL import Image

    if width < height:
        raise ValueError(f"--video-size {width}x{height}: give a landscape size (width >= height)")
    x = np.stack([np.asarray(Image.fromarray(f).resize((height, height), Image.BILINEAR)) for f in video])
    left = (width - height) // 2
    out = np.empty((len(x), height, width, 3), dtype=np.uint8)  # T x H x W x 3
    out[:, :, left:left + height] = x
    out[:, :, :left] = x[:, :, :1]
    out[:, :, left + height:] = x[:, :, -1:]
    return out


def parse_video_size(value: str):
    try:
        width, height = (int(v) for v in value.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r}: give WIDTHxHEIGHT, e.g. 1280x720")
    if width % 2 or height % 2 or height < 2:
        raise argparse.ArgumentTypeError(f"{value!r}: give even sides (H.264's 4:2:0)")
    return width, height


def write_video(args, split: str, sid: str, video: np.ndarray) -> str:
    """Write a rendered video in ``--formats``; returns the manifest's path for it."""
    if getattr(args, "video_size", None):
        video = fit_frame(video, *args.video_size)
    mp4 = os.path.join("videos", split, f"{sid}.mp4")
    frames = os.path.join("frames", split, sid)
    if "mp4" in args.formats:
        os.makedirs(os.path.join(args.out, "videos", split), exist_ok=True)
        write_mp4(os.path.join(args.out, mp4), video)
    if "frames" in args.formats:
        write_frame_folder(os.path.join(args.out, frames), video)
    return mp4 if args.source == "mp4" else frames


def render_split(args, split: str, samples: List[Sample], grammar: Grammar) -> List[dict]:
    """Render and write a split's videos; returns its manifest rows."""
    rows = []
    for sample in tqdm(samples, desc=f"synthetic {split}", disable=len(samples) < 20):
        video = render_sentence(
            sample.sentence.glosses, sample.signer, args.size, args.seed, sample.rng,
            signs=grammar.signs, effects=args.effects,
        )
        rows.append({
            "id": sample.id,
            "video": write_video(args, split, sample.id, video),
            "n_frames": len(video),
            "tgt_text": sample.sentence.text,
            "signer": f"signer{sample.signer:02d}",
            "glosses": " ".join(sample.sentence.glosses),
        })
    return rows


def complete_args(args: argparse.Namespace) -> argparse.Namespace:
    """``args`` with every option it lacks at its default (for callers that build a Namespace),
    ``--effects`` parsed into a set and the grammar-dependent defaults filled in."""
    full = vars(get_parser().parse_args(["--out", "."]))
    full.update(vars(args))
    args = argparse.Namespace(**full)
    if isinstance(args.formats, str):
        args.formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    if isinstance(args.effects, str) or args.effects is None:
        args.effects = parse_effects(args.effects, args.hard)
    elif args.hard:
        args.effects = parse_effects("", hard=True)
    if args.vocab_size is None:
        args.vocab_size = DEFAULT_VOCAB[args.grammar]
    if args.sentence_split is None:
        args.sentence_split = args.grammar != "demo"
    return args


def generate(args) -> None:
    args = complete_args(args)
    if args.source not in args.formats:
        raise ValueError(f"--source {args.source} needs it in --formats (got {args.formats})")
    if args.text_corpus_size < 0:
        raise ValueError(f"--text-corpus-size {args.text_corpus_size}: must be 0 or more")
    grammar = GRAMMARS[args.grammar]
    sizes = {"train": args.n_train, "dev": args.n_dev, "test": args.n_test}
    plan = plan_corpus(grammar, args.seed, sizes, args.signers, by_sentence=args.sentence_split,
                       by_signer=args.split_by_signer, held_out=args.held_out_signers)
    os.makedirs(args.out, exist_ok=True)
    train_texts = []
    for split in SPLITS:
        rows = render_split(args, split, plan[split], grammar)
        write_manifest(os.path.join(args.out, f"{split}.tsv"), rows, columns=MANIFEST_COLUMNS + EXTRA_COLUMNS)
        write_gloss_file(os.path.join(args.out, f"glosses_{split}.tsv"), plan[split])
        if split == "train":
            train_texts = [r["tgt_text"] for r in rows]
    gen_vocab(train_texts, args.out, vocab_size=args.vocab_size, model_type=args.spm_type)
    gen_config_yaml(
        args.out, video_root=".", resize=args.resize or args.size, crop=args.crop or args.size,
        keep_ratio=args.keep_ratio, max_frames=args.max_frames,
        augment={"rotate": args.rotate, "scale": args.scale, "translate": args.translate, "p": 0.5},
    )
    held_out = {s.sentence.text for split in ("dev", "test") for s in plan[split]}
    if args.text_corpus_size:
        text = sample_text_corpus(grammar, args.seed, args.text_corpus_size, held_out)
        write_text(os.path.join(args.out, TEXT_CORPUS), text)
        logger.info(f"{TEXT_CORPUS}: {len(text)} sentences ({len(set(text))} distinct), none a dev/test target")
    train_set = set(train_texts)
    for split in SPLITS:
        texts = [s.sentence.text for s in plan[split]]
        logger.info(
            f"{split}: {len(texts)} videos, {len(set(texts))} distinct targets"
            + ("" if split == "train" else f", {sum(t in train_set for t in texts)} of them also in train")
        )
    logger.info(f"synthetic corpus ({args.grammar} grammar) written to {args.out}: {sizes}")


def print_stats(grammar: str, n: int) -> None:
    """``--stats N``: the grammar's statistics from N sampled sentences, on stdout."""
    stats = grammar_stats(GRAMMARS[grammar], n)
    sys.stdout.write("".join(
        f"{k} {v:.4g}\n" if isinstance(v, float) else f"{k} {v}\n" for k, v in stats.items()))


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", help="data root to write (required unless --stats)")
    p.add_argument(
        "--grammar", choices=sorted(GRAMMARS), default="demo",
        help="demo: the 360-sentence weather grammar of the README's demo; open: the benchmark "
        "grammar (clause types, numbers, questions, everyday actions; most sentences unique); "
        "weather: the open grammar's weather clauses only (PHOENIX-2014-T's domain; 113 glosses, "
        "most sentences unique)",
    )
    p.add_argument(
        "--sentence-split", action=argparse.BooleanOptionalAction, default=None,
        help="split by sentence: no dev or test target occurs in train, no test target in dev "
        "(default: on with --grammar open and weather, off with --grammar demo)",
    )
    p.add_argument(
        "--split-by-signer", action="store_true",
        help="dev and test signed by signers unseen in training (--held-out-signers each)",
    )
    p.add_argument(
        "--held-out-signers", type=int, default=1,
        help="with --split-by-signer: signers reserved for dev and, as many again, for test",
    )
    p.add_argument(
        "--text-corpus-size", type=int, default=0,
        help=f"write {TEXT_CORPUS}: this many target-language sentences of the grammar, none a dev "
        "or test target, for the LLM's denoising pre-training (fairseq-slt-build-mbart --text)",
    )
    p.add_argument("--hard", action="store_true", help=f"harder video: every effect ({', '.join(EFFECTS)})")
    p.add_argument(
        "--effects", default="",
        help=f"harder video, effect by effect: a comma-separated subset of {', '.join(EFFECTS)} "
        "(see fairseq_slt/synthetic/effects.py)",
    )
    p.add_argument("--stats", type=int, metavar="N", default=None,
                   help="print the grammar's statistics from N sampled sentences and write nothing")
    p.add_argument("--seed", type=int, default=1, help="the same seed writes the same corpus")
    p.add_argument("--n-train", type=int, default=800, help="training videos")
    p.add_argument("--n-dev", type=int, default=60, help="dev videos")
    p.add_argument("--n-test", type=int, default=60, help="test videos")
    p.add_argument("--signers", type=int, default=6, help="number of signers (appearance, speed)")
    p.add_argument("--size", type=int, default=64, help="frame side in pixels (even; 32 to 112 and more)")
    p.add_argument("--video-size", type=parse_video_size, default=None, metavar="WxH",
                   help="write the videos at this frame size, e.g. 1280x720 (How2Sign's): the --size render "
                   "scaled to the height and centred; config.yaml's resize and crop stay --size")
    p.add_argument("--formats", default="mp4,frames", help="what to write: mp4, frames or both")
    p.add_argument("--source", choices=["mp4", "frames"], default="mp4", help="what the manifests point at")
    p.add_argument(
        "--vocab-size", type=int, default=None,
        help="sentencepiece vocabulary (soft limit; default 128 with --grammar demo, 1000 with open and weather)",
    )
    p.add_argument("--spm-type", default="bpe", help="sentencepiece model type (bpe: whole words here)")
    p.add_argument("--resize", type=int, default=None, help="config.yaml resize (default: --size)")
    p.add_argument("--crop", type=int, default=None, help="config.yaml crop (default: --size)")
    p.add_argument("--keep-ratio", type=float, default=0.25, help="config.yaml temporal keep ratio")
    p.add_argument("--max-frames", type=int, default=300, help="config.yaml cap on frames fed to the model")
    p.add_argument("--rotate", type=float, default=5.0, help="config.yaml augmentation: rotation (deg)")
    p.add_argument("--scale", type=float, default=0.05, help="config.yaml augmentation: scale (+-)")
    p.add_argument("--translate", type=float, default=2.0, help="config.yaml augmentation: shift (px)")
    return p


def cli_main(argv=None) -> None:
    setup_logging()
    parser = get_parser()
    args = parser.parse_args(argv)
    if args.stats is not None:
        if args.stats < 1:
            parser.error(f"--stats {args.stats}: sample at least one sentence")
        print_stats(args.grammar, args.stats)
        return
    if args.out is None:
        parser.error("--out is required (unless --stats)")
    try:
        generate(args)
    except ValueError as e:
        parser.error(str(e))


if __name__ == "__main__":
    cli_main()
