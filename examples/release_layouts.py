"""Lay out a synthetic corpus as the PHOENIX-2014-T, CSL-Daily or How2Sign release is laid out on
disk, so that each dataset recipe (``examples/<dataset>/run.sh``) can be walked from stage 0 with
paths only, on data that no test has seen:

    fairseq-slt-synth --out runs/synth_src --grammar weather --n-train 40 --n-dev 8 --n-test 8 \\
        --formats mp4 --size 64
    python examples/release_layouts.py runs/synth_src --out runs/releases

writes ``runs/releases/PHOENIX-2014-T`` (the ``|``-separated ``annotations/manual/*.corpus.csv``
and ``features/fullFrame-210x260px/<split>/<name>/images0001.png`` frame folders, frames resized
to 210x260), ``runs/releases/CSL-Daily`` (``sentence_label/csl2020ct_v2.pkl`` with ``label_char``,
``sentence_label/split_1.txt`` and ``sentence/frames_512x512/<name>/*.jpg``, frames resized to
512x512) and ``runs/releases/How2Sign`` (the TAB-separated ``how2sign_realigned_<split>.csv``
with realigned start/end times, and full videos ``video_level/<split>/rgb_front/raw_videos/*.mp4``
in which ``--per-video`` sentences follow each other with a pause between them, at 1280x720 with
``--how2sign-size 1280x720``, default 320x180 to keep a CPU walk fast).

The targets stay the synthetic English sentences (CSL-Daily's ``label_char`` is their
characters). A few rows are made bad on purpose, as the releases have them: one listed video of
each split is missing on disk, and in How2Sign one sentence ends past its video.
"""

import argparse
import csv
import os
import pickle
from typing import Dict, List

import numpy as np
from PIL import Image

SPLITS = ("train", "dev", "test")


def read_rows(synth: str, split: str) -> List[Dict[str, str]]:
    with open(os.path.join(synth, f"{split}.tsv"), encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))


def read_video(synth: str, row: Dict[str, str]) -> np.ndarray:
    """``T x H x W x 3`` uint8 frames of a synthetic row's mp4 (PyAV: decord 0.6 misreads widths
    that are not a multiple of 32)."""
    import av

    with av.open(os.path.join(synth, row["video"])) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def save_frames(folder: str, video: np.ndarray, size, ext: str) -> None:
    """Frames as ``images0001.<ext> ...`` resized to ``size`` (width, height)."""
    os.makedirs(folder, exist_ok=True)
    for i, frame in enumerate(video):
        image = Image.fromarray(frame).resize(size, Image.BILINEAR)
        image.save(os.path.join(folder, f"images{i + 1:04d}.{ext}"), **({"quality": 90} if ext == "jpg" else {}))


def write_phoenix(synth: str, out: str) -> str:
    root = os.path.join(out, "PHOENIX-2014-T")
    ann = os.path.join(root, "annotations", "manual")
    os.makedirs(ann, exist_ok=True)
    for split in SPLITS:
        rows = read_rows(synth, split)
        lines = ["name|video|start|end|speaker|orth|translation"]
        for i, r in enumerate(rows):
            name = f"{split}_{r['id']}"
            lines.append(f"{name}|{name}/1/*.png|-1|-1|{r.get('signer', 'Signer01')}|{r.get('glosses', '')}|"
                         f"{r['tgt_text'].lower()}")
            if i == len(rows) - 1:
                continue  # listed, missing on disk
            save_frames(os.path.join(root, "features", "fullFrame-210x260px", split, name),
                        read_video(synth, r), (210, 260), "png")
        with open(os.path.join(ann, f"PHOENIX-2014-T.{split}.corpus.csv"), "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")
    return root


def write_csl_daily(synth: str, out: str) -> str:
    root = os.path.join(out, "CSL-Daily")
    os.makedirs(os.path.join(root, "sentence_label"), exist_ok=True)
    info, split_lines = [], ["name|split"]
    for split in SPLITS:
        rows = read_rows(synth, split)
        for i, r in enumerate(rows):
            name = f"S{split[:2]}{r['id'].split('_')[-1]}"
            video = read_video(synth, r)
            info.append({"name": name, "length": len(video), "label_gloss": r.get("glosses", "").split(),
                         "label_char": list(r["tgt_text"]), "label_word": r["tgt_text"].split(),
                         "label_postag": [], "signer": r.get("signer", ""), "time": 0})
            split_lines.append(f"{name}|{split}")
            if i == len(rows) - 1:
                continue  # listed, missing on disk
            save_frames(os.path.join(root, "sentence", "frames_512x512", name), video, (512, 512), "jpg")
    with open(os.path.join(root, "sentence_label", "csl2020ct_v2.pkl"), "wb") as f:
        pickle.dump({"info": info, "gloss_map": [], "char_map": []}, f)
    with open(os.path.join(root, "sentence_label", "split_1.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(split_lines) + "\n")
    return root


def write_how2sign(synth: str, out: str, per_video: int, size, fps: int = 25) -> str:
    from fairseq_slt.synthetic.generate import write_mp4

    root = os.path.join(out, "How2Sign")
    header = ["VIDEO_ID", "VIDEO_NAME", "SENTENCE_ID", "SENTENCE_NAME", "START_REALIGNED",
              "END_REALIGNED", "SENTENCE"]
    pause = np.full((fps // 2, size[1], size[0], 3), 127, dtype=np.uint8)  # 0.5 s between sentences
    for split, h2s_split in zip(SPLITS, ("train", "val", "test")):
        vdir = os.path.join(root, "video_level", h2s_split, "rgb_front", "raw_videos")
        os.makedirs(vdir, exist_ok=True)
        rows = read_rows(synth, split)
        lines = ["\t".join(header)]
        for v, first in enumerate(range(0, len(rows), per_video)):
            name = f"{h2s_split}_vid{v:03d}-rgb_front"
            clips, t = [pause], len(pause) / fps
            for j, r in enumerate(rows[first:first + per_video]):
                video = read_video(synth, r)
                video = np.stack([np.asarray(Image.fromarray(f).resize(size, Image.BILINEAR)) for f in video])
                start, end = t, t + len(video) / fps
                if v == 0 and j == 0 and split == "test":
                    end = 1e3  # ends past its video, as a few realigned rows do
                lines.append("\t".join([f"v{v:03d}", name, f"s{first + j}", f"{name}_{j}", f"{start:.2f}",
                                        f"{end:.2f}", r["tgt_text"]]))
                clips += [video, pause]
                t += (len(video) + len(pause)) / fps
            if v == 1:
                continue  # listed, missing on disk
            write_mp4(os.path.join(vdir, f"{name}.mp4"), np.concatenate(clips), fps=fps, crf=18)
        with open(os.path.join(root, f"how2sign_realigned_{h2s_split}.csv"), "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")
    return root


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("synth", help="a fairseq-slt-synth data root written with --formats mp4")
    p.add_argument("--out", required=True, help="folder to write the releases into")
    p.add_argument("--layouts", default="phoenix14t,csl_daily,how2sign",
                   help="comma-separated: phoenix14t, csl_daily, how2sign")
    p.add_argument("--per-video", type=int, default=3, help="How2Sign: sentences per full video")
    p.add_argument("--how2sign-size", default="320x180", help="How2Sign: WIDTHxHEIGHT of the full videos")
    args = p.parse_args(argv)
    w, h = (int(x) for x in args.how2sign_size.lower().split("x"))
    for layout in args.layouts.split(","):
        if layout == "phoenix14t":
            root = write_phoenix(args.synth, args.out)
        elif layout == "csl_daily":
            root = write_csl_daily(args.synth, args.out)
        elif layout == "how2sign":
            root = write_how2sign(args.synth, args.out, args.per_video, (w, h))
        else:
            p.error(f"unknown layout {layout!r}: use phoenix14t, csl_daily, how2sign")
        print(f"{layout}: {root}")


if __name__ == "__main__":
    main()
