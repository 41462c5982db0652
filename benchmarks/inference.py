"""Inference real-time factor: translating one 9 s, 25 fps, 224 px clip with beam 5 on CPU.

    python benchmarks/inference.py                  # both stages, one table
    python benchmarks/inference.py --case stage1    # one case, JSON

The whole path of ``fairseq-slt-translate`` (:class:`fairseq_slt.inference.SignTranslator`):
decode the mp4, sample 25% of the frames, resize 256 / centre crop 224, normalise, visual encoder,
beam search, detokenize. Stage 1 is ``slt_lightt`` at the paper's size (3+3 layers, d=512), stage 2
``slt_mbart`` at full size (mBART-large 12+12 layers, d=1024) with a trimmed 3,000-token
vocabulary. Random weights never choose end-of-sentence on cue, so every hypothesis is forced to
exactly ``TOKENS`` tokens (``min_len = max_len``), a long PHOENIX-2014-T sentence. RTF = seconds
per clip / 9 s (median of ``--repeats`` after one warm-up). Not part of the test suite.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from argparse import Namespace

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # the sibling benchmarks
from loader import FPS  # noqa: E402
from stage2 import LANGS, write_stage1_checkpoint  # noqa: E402

SECONDS, SIZE = 9, 224
TOKENS = 30
VOCAB = 3000
GOALS = {"stage1": 0.25, "stage2": 1.0}
CASES = ("stage1", "stage1:bf16", "stage2", "stage2:bf16")


def write_clip(path: str) -> None:
    """A photo-like 9 s clip (textured background, moving hands, sensor noise), H.264."""
    import numpy as np
    import torch

    from loader import photo_like_video, write_mp4

    frames = photo_like_video(np.random.default_rng(0), SECONDS * FPS)  # T x 260 x 210 x 3
    x = torch.from_numpy(frames).permute(0, 3, 1, 2).float()
    x = torch.nn.functional.interpolate(x, size=(SIZE, SIZE), mode="bilinear", antialias=True)
    write_mp4(x.clamp(0, 255).byte().permute(0, 2, 3, 1).numpy(), path)


def write_data_root(work: str) -> None:
    with open(os.path.join(work, "dict.txt"), "w") as f:
        for i in range(VOCAB - 4 - 26):  # + 4 specials + 25 languages + <mask> = VOCAB
            f.write(f"w{i} 1\n")
    with open(os.path.join(work, "config.yaml"), "w") as f:
        f.write("vocab_filename: dict.txt\nvideo: {resize: 256, crop: 224, keep_ratio: 0.25, max_frames: 300}\n")


def build_translator(work: str, stage: str, precision: str = "fp32"):
    import torch
    from fairseq.dataclass.configs import GenerationConfig

    import fairseq_slt  # noqa: F401
    from fairseq_slt.inference import SignTranslator
    from fairseq_slt.models.slt_lightt import SLTLightTModel, base_architecture
    from fairseq_slt.models.slt_mbart import SLTMBartModel
    from fairseq_slt.tasks.sign_translation import SignTranslationConfig, SignTranslationTask

    torch.manual_seed(0)
    write_data_root(work)
    if stage == "stage1":
        task = SignTranslationTask.setup_task(SignTranslationConfig(data=work))
        args = Namespace(arch="slt_lightt")
        base_architecture(args)
        model = SLTLightTModel.build_model(args, task)
    else:
        task = SignTranslationTask.setup_task(SignTranslationConfig(data=work, langs=LANGS, tgt_lang="de_DE"))
        ckpt = write_stage1_checkpoint(work)
        model = SLTMBartModel.build_model(Namespace(stage1_checkpoint=ckpt, dropout=0.1), task)
    model.eval()
    gen = GenerationConfig(beam=5, max_len_a=0, max_len_b=TOKENS, min_len=TOKENS)
    generator = task.build_generator([model], gen)
    return SignTranslator(model, task, generator, torch.device("cpu"), precision=precision)


def case(name: str, repeats: int) -> dict:
    import torch

    stage, _, precision = name.partition(":")
    with tempfile.TemporaryDirectory() as work:
        clip = os.path.join(work, "clip.mp4")
        write_clip(clip)
        translator = build_translator(work, stage, precision or "fp32")
        params = sum(p.numel() for p in translator.model.parameters())
        result = translator.translate(clip)  # warm-up
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            result = translator.translate(clip)
            times.append(time.perf_counter() - start)
        # where the time goes: frames (decode + transforms) vs the model (encoder + beam search)
        start = time.perf_counter()
        frames = translator.load_frames(result.video)
        load_s = time.perf_counter() - start
    seconds = statistics.median(times)
    return {
        "stage": stage, "precision": precision or "fp32", "seconds": seconds, "rtf": seconds / SECONDS, "load_s": load_s,
        "frames_in": SECONDS * FPS, "frames_model": int(frames.size(0)), "tokens": len(result.tokens),
        "params_m": params / 1e6, "threads": torch.get_num_threads(),
    }


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--case", choices=CASES, help="run one case and print its JSON")
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    if args.case:
        print(json.dumps(case(args.case, args.repeats)))
        return
    rows = []
    for name in CASES:
        out = subprocess.run([sys.executable, __file__, "--case", name, "--repeats", str(args.repeats)],
                             capture_output=True, text=True)
        if out.returncode != 0:
            raise SystemExit(f"case {name} failed:\n{out.stderr[-3000:]}")
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(markdown(rows))


def markdown(rows) -> str:
    lines = [
        f"inference on CPU ({os.cpu_count()} cores): {SECONDS} s clip, {FPS} fps, {SIZE} px, beam 5, "
        f"{TOKENS} tokens",
        "| model | precision | params | frames in clip / to model | load s | total s | RTF | goal |",
        "|---|---|---|---|---|---|---|---|",
    ]
    labels = {"stage1": "stage 1 slt_lightt (3+3, d=512)", "stage2": "stage 2 slt_mbart (mBART-large, 3k vocab)"}
    for r in rows:
        lines.append(
            f"| {labels[r['stage']]} | {r['precision']} | {r['params_m']:.1f}M | {r['frames_in']} / {r['frames_model']} | "
            f"{r['load_s']:.2f} | {r['seconds']:.2f} | {r['rtf']:.3f} | <= {GOALS[r['stage']]} "
            f"{'met' if r['rtf'] <= GOALS[r['stage']] else 'MISSED'} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
