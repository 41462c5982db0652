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

A second table gives each case's floor on the machine it runs on: the operations of the encoder
forward (``torch.utils.flop_counter``) over this machine's fp32 (or bf16) matrix-product rate, and the
decoder's weight reads (each beam step reads every decoder weight once for the ``BEAM`` rows of the
beam: bytes = decoder operations / (2 x ``BEAM``) x bytes per weight) over the rate at which a
``BEAM``-row product streams weights here and over the plain memory-read rate (the hardware's
floor). The rates are measured by the same run, so the floors move with the machine.
"""

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from argparse import Namespace

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # the sibling benchmarks
from loader import FPS, timings  # noqa: E402
from stage2 import LANGS, write_stage1_checkpoint  # noqa: E402

SECONDS, SIZE = 9, 224
TOKENS = 30
BEAM = 5
VOCAB = 3000
GOALS = {"stage1": 0.10, "stage2": 0.30}  # real-time factor goals: 2 CPU cores, fp32, beam 5
LABELS = {"stage1": "stage 1 slt_lightt (3+3, d=512)", "stage2": "stage 2 slt_mbart (mBART-large, 3k vocab)"}
CASES = ("stage1", "stage1:bf16", "stage2", "stage2:bf16", "stage2:unpacked")  # unpacked: fp32, plain F.linear


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


def build_translator(work: str, stage: str, precision: str = "fp32", pack_weights: bool = True):
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
        ckpt = write_stage1_checkpoint(work, task)
        model = SLTMBartModel.build_model(Namespace(stage1_checkpoint=ckpt, dropout=0.1), task)
    model.eval()
    gen = GenerationConfig(beam=BEAM, max_len_a=0, max_len_b=TOKENS, min_len=TOKENS)
    generator = task.build_generator([model], gen)
    return SignTranslator(model, task, generator, torch.device("cpu"), precision=precision, pack_weights=pack_weights)


def case(name: str, repeats: int) -> dict:
    import torch

    from fairseq_slt.models.packed_linear import PackedLinear

    stage, _, variant = name.partition(":")
    precision = "fp32" if variant in ("", "unpacked") else variant
    with tempfile.TemporaryDirectory() as work:
        clip = os.path.join(work, "clip.mp4")
        write_clip(clip)
        translator = build_translator(work, stage, precision, pack_weights=variant != "unpacked")
        params = sum(p.numel() for p in translator.model.parameters())
        packed = [m for m in translator.model.modules() if isinstance(m, PackedLinear)]
        packed_mb = sum(m.weight.numel() * 4 for m in packed) / 2**20  # the second, packed copy
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
        flops = count_flops(translator, clip)
    seconds = statistics.median(times)
    return {
        "stage": stage, "precision": precision, "packed": bool(packed), "packed_mb": packed_mb, "seconds": seconds, "rtf": seconds / SECONDS, "load_s": load_s,
        "frames_in": SECONDS * FPS, "frames_model": int(frames.size(0)), "tokens": len(result.tokens),
        "params_m": params / 1e6, "threads": torch.get_num_threads(), **flops,
    }


def count_flops(translator, clip: str) -> dict:
    """Floating-point operations of one translation: the encoder forward and the rest (beam search)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    def packed_linear_flops(x_shape, *args, out_shape=None, **kwargs) -> int:
        return 2 * math.prod(out_shape) * x_shape[-1]  # oneDNN's packed linear (PackedLinear)

    custom = {torch.ops.mkldnn._linear_pointwise: packed_linear_flops}  # keyed by the op packet
    video = translator.translate(clip).video
    sample = translator._sample([translator.load_frames(video)])
    with torch.no_grad(), FlopCounterMode(display=False, custom_mapping=custom) as encoder:
        translator.model.encoder(**sample["net_input"])
    with FlopCounterMode(display=False, custom_mapping=custom) as total:
        translator.translate(clip)
    enc = encoder.get_total_flops()
    return {"encoder_gflop": enc / 1e9, "decoder_gflop": (total.get_total_flops() - enc) / 1e9}


def machine_rates(threads: int) -> dict:
    """This machine's rates with ``threads`` threads: fp32 and bf16 matrix products (GFLOP/s), the
    weight-streaming rate of a ``BEAM``-row product with weights out of cache, and memory reads (GB/s)."""
    import torch

    torch.set_num_threads(threads)

    def best_of(fn, repeats=5):
        return min(timings(fn, repeats))

    rates = {}
    for dtype in (torch.float32, torch.bfloat16):
        a, b = torch.randn(2048, 2048).to(dtype), torch.randn(2048, 2048).to(dtype)
        rates[f"gemm_{str(dtype).split('.')[-1]}"] = 2 * 2048**3 * 4 / best_of(lambda: [a @ b for _ in range(4)]) / 1e9
    from fairseq_slt.models.packed_linear import PackedLinear, packing_available

    for dtype, name in ((torch.float32, "stream_float32"), (torch.bfloat16, "stream_bfloat16")):
        weights = [torch.randn(4096, 1024).to(dtype) for _ in range(48)]  # 800 / 400 MB: out of cache
        x, nbytes = torch.randn(BEAM, 1024).to(dtype), sum(w.numel() * w.element_size() for w in weights)
        rates[name] = nbytes / best_of(lambda: [torch.nn.functional.linear(x, w) for w in weights], 3) / 1e9
        if dtype == torch.float32 and packing_available():  # what SignTranslator uses on the CPU in fp32
            rates["stream_float32_mkl"] = rates[name]
            packed = [PackedLinear(torch.nn.Linear(1024, 4096, bias=False), BEAM) for _ in range(48)]
            with torch.no_grad():
                rates[name] = nbytes / best_of(lambda: [p(x) for p in packed], 3) / 1e9
    big = torch.randn(128 << 20)  # 512 MB
    rates["read"] = big.numel() * 4 / best_of(big.sum, 3) / 1e9
    return rates


def precision_label(r: dict) -> str:
    if r["precision"] != "fp32":
        return r["precision"]
    if r["packed"]:
        return f"fp32, decoder weights pre-packed (+{r['packed_mb']:.0f} MiB)"
    return "fp32, F.linear (--no-packed-weights)" if r["stage"] == "stage2" else "fp32"


def floors(rows, rates) -> str:
    """Each case's floor: encoder operations at the matrix-product rate plus the decoder's weight
    reads at the measured streaming rate (and at the plain memory-read rate)."""
    lines = [
        f"this machine ({os.cpu_count()} cores): fp32 matrix product {rates['gemm_float32']:.0f} GFLOP/s, bf16 "
        f"{rates['gemm_bfloat16']:.0f}; a {BEAM}-row product streams weights at {rates['stream_float32']:.1f} GB/s "
        f"(fp32{', oneDNN pre-packed; F.linear %.1f' % rates['stream_float32_mkl'] if 'stream_float32_mkl' in rates else ''}) "
        f"/ {rates['stream_bfloat16']:.1f} (bf16); memory read {rates['read']:.1f} GB/s",
        "| model | precision | encoder GFLOP | floor: encoder s | decoder weight reads GB | floor: decoder s "
        "(at the streaming rate / at the read rate) | floor RTF | measured RTF |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        dtype = "bfloat16" if r["precision"] == "bf16" else "float32"
        enc_s = r["encoder_gflop"] / rates[f"gemm_{dtype}"]
        read_gb = r["decoder_gflop"] / (2 * BEAM) * (2 if dtype == "bfloat16" else 4)
        stream = rates[f"stream_{dtype}"]
        if dtype == "float32" and not r["packed"]:  # F.linear's rate
            stream = rates.get("stream_float32_mkl", stream)
        dec_s, dec_hw = read_gb / stream, read_gb / rates["read"]
        lines.append(
            f"| {LABELS[r['stage']]} | {precision_label(r)} | {r['encoder_gflop']:.0f} | {enc_s:.2f} | {read_gb:.1f} | "
            f"{dec_s:.2f} / {dec_hw:.2f} | {(enc_s + dec_s) / SECONDS:.3f} | {r['rtf']:.3f} |"
        )
    return "\n".join(lines)


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
    print()
    print(floors(rows, machine_rates(rows[0]["threads"])))


def markdown(rows) -> str:
    lines = [
        f"inference on CPU ({os.cpu_count()} cores): {SECONDS} s clip, {FPS} fps, {SIZE} px, beam 5, "
        f"{TOKENS} tokens",
        "| model | precision | params | frames in clip / to model | load s | total s | RTF | goal |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {LABELS[r['stage']]} | {precision_label(r)} | {r['params_m']:.1f}M | {r['frames_in']} / {r['frames_model']} | "
            f"{r['load_s']:.2f} | {r['seconds']:.2f} | {r['rtf']:.3f} | <= {GOALS[r['stage']]:.2f} "
            f"{'met' if r['rtf'] <= GOALS[r['stage']] else 'MISSED'} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
