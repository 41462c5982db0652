"""``--backbone-bf16`` on the CPU: one stage-1 training step (``slt_lightt_tiny``, the open
benchmark's model) with the ResNet-18 in float32 against the ResNet under bfloat16 autocast.

    python benchmarks/backbone_bf16.py                      # 32 and 64 px, 8 videos of 25 frames
    python benchmarks/backbone_bf16.py --sizes 32 --steps 5

A step is what the trainer does per batch: forward of frames -> ResNet-18 -> K5 temporal module ->
VL-adapter -> Light-T encoder-decoder, label-smoothed cross entropy, backward, Adam. The two modes
run interleaved on the same weights and batch, medians kept; the table gives ms per video and the
speed-up. ``feature cos`` is the cosine similarity of the sign-wise features of the two modes
(same weights, eval mode), ``max rel diff`` their largest difference relative to the largest
float32 value. fairseq's ``--amp`` / ``--fp16`` are CUDA-only, so this is the only mixed precision
a CPU run gets. Random weights, no downloads; not part of the test suite.
"""

import argparse
import statistics
import time
from argparse import Namespace

import torch

import fairseq_slt  # noqa: F401  (registers the models)
from fairseq.data import Dictionary
from fairseq_slt.models.model_args import cpu_has_native_bf16
from fairseq_slt.models.slt_lightt import SLTLightTModel, slt_lightt_tiny


class Task:
    building_from_checkpoint = False

    def __init__(self, d):
        self.target_dictionary = self.source_dictionary = d


def build(vocab: int, bf16: bool) -> SLTLightTModel:
    """``slt_lightt_tiny`` with a 256-channel K5 temporal module (the open benchmark's stage 1)."""
    d = Dictionary()
    for i in range(vocab):
        d.add_symbol(f"w{i}")
    args = Namespace(arch="slt_lightt_tiny", temporal_dim=256, resnet_pretrained="none", backbone_bf16=bf16)
    slt_lightt_tiny(args)
    return SLTLightTModel.build_model(args, Task(d))


def batch(bsz: int, n_frames: int, size: int, tgt_len: int, vocab: int):
    g = torch.Generator().manual_seed(0)
    frames = torch.randn(bsz, n_frames, 3, size, size, generator=g)
    lengths = torch.full((bsz,), n_frames)
    target = torch.randint(4, vocab, (bsz, tgt_len), generator=g)
    prev = torch.cat([torch.full((bsz, 1), 2), target[:, :-1]], 1)
    return frames, lengths, prev, target


def step(model, opt, frames, lengths, prev, target):
    opt.zero_grad()
    logits, _ = model(frames, lengths, prev)
    lprobs = torch.log_softmax(logits.float(), -1).view(-1, logits.size(-1))
    nll = -lprobs.gather(1, target.view(-1, 1)).mean()
    loss = 0.8 * nll - 0.2 * lprobs.mean()  # label smoothing 0.2
    loss.backward()
    opt.step()


def feature_agreement(model, frames, lengths):
    """Cosine similarity and max relative difference of the sign-wise features, fp32 vs bf16."""
    visual = model.encoder.visual_encoder
    model.eval()
    with torch.no_grad():
        visual.backbone_dtype = None
        ref, _ = visual(frames, lengths)
        visual.backbone_dtype = torch.bfloat16
        low, _ = visual(frames, lengths)
    model.train()
    cos = torch.nn.functional.cosine_similarity(ref.flatten(), low.flatten(), dim=0).item()
    return cos, ((ref - low).abs().max() / ref.abs().max()).item()


def case(size: int, bsz: int, n_frames: int, steps: int) -> dict:
    torch.manual_seed(0)
    vocab = 200
    model = build(vocab, bf16=True)
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    frames, lengths, prev, target = batch(bsz, n_frames, size, 16, vocab)
    visual = model.encoder.visual_encoder
    times = {"fp32": [], "bf16": []}
    for mode in times:  # warm-up: oneDNN picks its kernels on the first calls
        visual.backbone_dtype = torch.bfloat16 if mode == "bf16" else None
        step(model, opt, frames, lengths, prev, target)
    for _ in range(steps):
        for mode in times:
            visual.backbone_dtype = torch.bfloat16 if mode == "bf16" else None
            start = time.perf_counter()
            step(model, opt, frames, lengths, prev, target)
            times[mode].append(time.perf_counter() - start)
    cos, rel = feature_agreement(model, frames, lengths)
    fp32, bf16 = (statistics.median(times[m]) * 1000 / bsz for m in ("fp32", "bf16"))
    return {"size": size, "fp32": fp32, "bf16": bf16, "speedup": fp32 / bf16, "cos": cos, "rel": rel}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[32, 64], help="frame sides (px)")
    p.add_argument("--videos", type=int, default=8, help="videos per batch")
    p.add_argument("--frames", type=int, default=25, help="frames per video fed to the model")
    p.add_argument("--steps", type=int, default=10, help="timed steps per mode")
    args = p.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, native CPU bfloat16: "
          f"{cpu_has_native_bf16()}; {args.videos} videos x {args.frames} frames per step, "
          f"median of {args.steps}\n")
    print("| frame side | fp32 (ms/video) | --backbone-bf16 (ms/video) | speed-up | feature cos | max rel diff |")
    print("|---|---|---|---|---|---|")
    for size in args.sizes:
        r = case(size, args.videos, args.frames, args.steps)
        print(f"| {r['size']} px | {r['fp32']:.1f} | {r['bf16']:.1f} | {r['speedup']:.2f}x | "
              f"{r['cos']:.5f} | {r['rel']:.4f} |", flush=True)


if __name__ == "__main__":
    main()
