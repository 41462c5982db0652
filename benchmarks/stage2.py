"""Stage-2 benchmarks: per-update time with cached features vs the live frozen encoder, and the
peak memory / parameter count of one full-size mBART-large update with a trimmed vocabulary.

    python benchmarks/stage2.py                 # every case, one table
    python benchmarks/stage2.py --case memory   # one case
    python benchmarks/stage2.py --only llm      # one table: stage 2 on the cache vs the LLM alone

``llm_*``: one stage-2 update on cached features as the trainer runs it (batch read from a
feature cache and collated by the dataset, LLM-adapter, mBART, backward, optimizer step) next to
the update of the LLM alone (the same mBART encoder + decoder on input embeddings of the same
shape, no adapter, no cache), interleaved, medians kept.

Each case runs in its own process (so peak RSS is that case's). Random weights, no downloads.
Not part of the test suite.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from argparse import Namespace

MBART_LARGE_VOCAB = 250027  # mbart.cc25: dict.txt + 4 specials + 25 languages + <mask>
LANGS = "cc25"  # --langs: mBART-large-cc25's 25 languages (fairseq_slt.mbart.CC25_LANGS)


def write_stage1_checkpoint(work: str, task=None) -> str:
    """A stage-1 checkpoint holding a random paper-size visual encoder (K5, 1024 channels); with
    ``task``, its ``task_state`` (the records of the dictionary and video settings) as fairseq-train
    writes it. Without, only the weights that ``--stage1-checkpoint`` loads (what building a model
    reads; fairseq-slt-cache-features refuses such a checkpoint)."""
    import torch

    from fairseq_slt.models.visual_frontend import SignVisualEncoder

    visual = SignVisualEncoder("K5", 1024)
    ckpt = os.path.join(work, "stage1.pt")
    state = {"cfg": {"model": Namespace(arch="slt_lightt", temporal_module="K5", temporal_dim=1024)},
             "model": {f"encoder.visual.{k}": v for k, v in visual.state_dict().items()}}
    if task is not None:
        state["task_state"] = task.state_dict()
    torch.save(state, ckpt)
    return ckpt


def build(work, mbart_size: str, vocab: int):
    from fairseq.data import Dictionary

    import fairseq_slt  # noqa: F401
    from fairseq_slt.models.slt_mbart import SLTMBartModel
    from fairseq_slt.tasks.target_dictionary import add_mbart_symbols

    ckpt = write_stage1_checkpoint(work)
    d = Dictionary()
    for i in range(vocab - len(d) - 26):
        d.add_symbol(f"w{i}")
    add_mbart_symbols(d, LANGS, "de_DE")

    class Task:
        target_dictionary = source_dictionary = d
        building_from_checkpoint = False

    args = Namespace(stage1_checkpoint=ckpt, dropout=0.1)
    if mbart_size == "small":  # the demo's mBART
        args.encoder_layers = args.decoder_layers = 2
        args.encoder_embed_dim = args.decoder_embed_dim = 128
        args.encoder_attention_heads = args.decoder_attention_heads = 4
    model = SLTMBartModel.build_model(args, Task())
    return model, d


def one_update(model, opt, src, lengths, prev, target):
    import torch

    opt.zero_grad()
    logits, _ = model(src, lengths, prev)
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), target.reshape(-1))
    loss.backward()
    opt.step()


def make_optimizer(model, impl: str):
    """The stage-2 optimizer of the recipes: ``--optimizer adam_grouped --group-lr-scales llm:0.01``
    with ``--adam-impl`` torch (fused AdamW, the default) or fairseq (fairseq's Python Adam)."""
    from omegaconf import OmegaConf

    from fairseq_slt.optim.adam_grouped import AdamGroupedConfig, FairseqAdamGrouped

    cfg = OmegaConf.structured(AdamGroupedConfig(lr=[1e-3], group_lr_scales="llm:0.01", tpu=False, adam_impl=impl))
    return FairseqAdamGrouped(cfg, [p for p in model.parameters() if p.requires_grad])


def write_videos(work: str, n: int, n_frames: int) -> list:
    """``n`` photo-like PHOENIX-layout png folders (210x260) of ``n_frames`` frames."""
    import numpy as np

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from loader import photo_like_video, write_png_folder

    rng = np.random.default_rng(0)
    folders = []
    for i in range(n):
        folders.append(os.path.join(work, f"video{i}"))
        write_png_folder(photo_like_video(rng, n_frames), folders[-1])
    return folders


def load_batch(folders, n_frames: int):
    """What the data loader does per batch without a cache: decode the sampled 25% of the
    frames, resize 256 / crop 224, normalise, collate (evaluation transforms)."""
    import torch

    from fairseq_slt.data.sign_video_dataset import collate_frames
    from fairseq_slt.data.transforms import build_video_transform
    from fairseq_slt.data.sampling import sample_indices
    from fairseq_slt.data.video_io import VideoSource, read_frames

    transform = build_video_transform(256, 224, train=False)
    idx = sample_indices(n_frames, 0.25, 300, train=False)
    videos = [transform(read_frames(VideoSource(f), idx, n_frames)) for f in folders]
    return collate_frames(videos), torch.tensor([v.size(0) for v in videos])


def case_speed(mbart_size: str, updates: int) -> dict:
    """Seconds per update: live (4 videos of 160 png frames decoded, 25% sampled, through the
    frozen encoder at 224 px) vs cached features; and the live update without the decoding."""
    import torch

    torch.manual_seed(0)
    bsz, n_frames = 4, 160  # 4 videos of 160 frames (PHOENIX-2014-T's median is ~130), 40 kept
    with tempfile.TemporaryDirectory() as work:
        model, d = build(work, mbart_size, vocab=3000)
        folders = write_videos(work, bsz, n_frames)
        model.train()
        opt = make_optimizer(model, "torch")
        video, lengths = load_batch(folders, n_frames)
        with torch.no_grad():
            feats, feat_lengths = model.encoder.sign_features(video, lengths)
        target = torch.randint(4, 2000, (bsz, 20))
        prev = torch.cat([torch.full((bsz, 1), d.index("[de_DE]")), target[:, :-1]], 1)

        def live():
            src, n = load_batch(folders, n_frames)
            one_update(model, opt, src, n, prev, target)

        result = {}
        for name, fn in (
            ("live", live),
            ("live_no_decode", lambda: one_update(model, opt, video, lengths, prev, target)),
            ("cached", lambda: one_update(model, opt, feats, feat_lengths, prev, target)),
            ("cached_fairseq_adam", lambda: one_update(model, opt_fs, feats, feat_lengths, prev, target)),
        ):
            if name == "cached_fairseq_adam":
                opt_fs = make_optimizer(model, "fairseq")
            fn()  # warm-up
            start = time.perf_counter()
            for _ in range(updates):
                fn()
            result[name] = (time.perf_counter() - start) / updates
    return {
        "live_s": result["live"], "live_no_decode_s": result["live_no_decode"], "cached_s": result["cached"],
        "cached_fairseq_adam_s": result["cached_fairseq_adam"], "speedup": result["live"] / result["cached"],
    }


def write_cached_dataset(work: str, model, d, n_videos: int, n_frames: int, tgt_len: int):
    """A split of ``n_videos`` videos whose sign-wise features come from a feature cache written by
    the library (random ``T' x C`` features of the lengths the model's temporal module gives for
    ``n_frames`` frames, 25% kept), read as stage 2 reads it: :class:`SignVideoDataset` over a
    :class:`FeatureCache` (memory-mapped ``.npy``), batches made by its collater."""
    import numpy as np
    import torch

    from fairseq_slt.data.data_cfg import SignDataConfig
    from fairseq_slt.data.feature_cache import FORMAT_VERSION, eval_record, write_meta, write_split
    from fairseq_slt.data.sampling import num_sampled_frames
    from fairseq_slt.data.sign_video_dataset import SignVideoDataset
    from fairseq_slt.data.video_io import VideoSource
    from fairseq_slt.data.video_settings import video_settings
    from fairseq_slt.models.visual_frontend import tconv_out_lengths

    visual = model.encoder.visual_encoder
    kept = num_sampled_frames(n_frames, 0.25, 300)
    t_out = int(tconv_out_lengths(torch.tensor([kept]), visual.temporal.spec)[0])
    rng = np.random.default_rng(0)
    ids = [f"v{i}" for i in range(n_videos)]
    cache = os.path.join(work, "features")
    os.makedirs(cache)
    features = [rng.standard_normal((t_out, visual.out_dim)).astype(np.float32) for _ in ids]
    write_split(cache, "train", ids, features)
    with open(os.path.join(work, "config.yaml"), "w") as f:
        f.write("feature_cache: features\nvideo:\n  keep_ratio: 0.25\n")
    data_cfg = SignDataConfig(os.path.join(work, "config.yaml"))
    write_meta(cache, {
        "format_version": FORMAT_VERSION, "visual_fingerprint": "-", "feature_dim": visual.out_dim,
        **video_settings(data_cfg), "splits": ["train"], "split_views": {"train": eval_record()},
    })
    targets = [torch.cat([torch.randint(4, 2000, (tgt_len - 2,)), torch.tensor([d.eos(), d.index("[de_DE]")])])
               for _ in ids]
    dataset = SignVideoDataset(
        "train", False, data_cfg, "train.tsv", ids,
        [VideoSource(os.path.join(work, i)) for i in ids], [n_frames] * n_videos, ["-"] * n_videos, targets,
        d, list(range(2, n_videos + 2)),
    )
    return dataset, t_out


def case_llm_vs_cached(mbart_size: str, updates: int) -> dict:
    """Seconds per update of stage 2 on cached features, as fairseq's trainer runs it (dataset read
    from the feature cache, collate, LLM-adapter + mBART forward, backward, optimizer step), vs the
    LLM alone: the same mBART encoder + decoder on input embeddings of the same shape (no adapter,
    no cache, no collate), i.e. training mBART as a translation model on sequences of that length.
    Also the parts of the difference: the data (read + collate) and the adapter."""
    import statistics

    import torch
    from fairseq.models.transformer import TransformerEncoder

    torch.manual_seed(0)
    bsz, n_frames, tgt_len = 4, 160, 20
    with tempfile.TemporaryDirectory() as work:
        model, d = build(work, mbart_size, vocab=3000)
        dataset, t_out = write_cached_dataset(work, model, d, 64, n_frames, tgt_len)
        model.train()
        opt = make_optimizer(model, "torch")
        encoder = model.encoder
        dim = encoder.embed_tokens.embedding_dim
        embeddings = torch.randn(bsz, t_out, dim)  # what mBART's token embedding would give
        tokens = torch.full((bsz, t_out), encoder.placeholder_idx, dtype=torch.long)
        lengths = torch.full((bsz,), t_out, dtype=torch.long)
        step = [0]

        def next_batch():
            first = (step[0] * bsz) % len(dataset)
            step[0] += 1
            return dataset.collater([dataset[i] for i in range(first, first + bsz)])

        def loss_step(forward, target):
            opt.zero_grad()
            logits, _ = forward()
            loss = torch.nn.functional.cross_entropy(
                logits.reshape(-1, logits.size(-1)), target.reshape(-1), ignore_index=d.pad()
            )
            loss.backward()
            opt.step()

        batch = next_batch()
        net, target = batch["net_input"], batch["target"]

        def llm_alone():
            def forward():
                enc = TransformerEncoder.forward(encoder, tokens, lengths, token_embeddings=embeddings)
                return model.decoder(net["prev_output_tokens"], encoder_out=enc)
            loss_step(forward, target)

        def stage2_cached():
            b = next_batch()
            loss_step(lambda: model(**b["net_input"]), b["target"])

        def stage2_on_batch():  # the same without reading and collating
            loss_step(lambda: model(**net), target)

        def data_only():
            next_batch()

        fns = {"llm": llm_alone, "cached": stage2_cached, "on_batch": stage2_on_batch, "data": data_only}
        for fn in fns.values():
            fn()  # warm-up
        times = {name: [] for name in fns}
        for _ in range(updates):  # interleaved, so load from other jobs hits every case alike
            for name, fn in fns.items():
                start = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - start)
        with torch.no_grad():
            feats = net["src_tokens"]
            start = time.perf_counter()
            for _ in range(20):
                encoder.adapter(feats)
            adapter_fwd = (time.perf_counter() - start) / 20
    med = {name: statistics.median(t) for name, t in times.items()}
    return {
        "ratio_min": min(times["cached"]) / min(times["llm"]), "llm_all_s": times["llm"],
        "cached_all_s": times["cached"],
        "llm_s": med["llm"], "cached_s": med["cached"], "on_batch_s": med["on_batch"], "data_s": med["data"],
        "adapter_fwd_s": adapter_fwd, "ratio": med["cached"] / med["llm"], "t_out": t_out,
        "src_shape": list(net["src_tokens"].shape), "tgt_len": int(target.size(1)),
    }


def case_memory(vocab: int) -> dict:
    """One update of the full-size mBART-large architecture with a trimmed vocabulary."""
    import torch

    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as work:
        model, d = build(work, "large", vocab=vocab)
    model.train()
    params = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    dim = model.encoder.embed_tokens.embedding_dim
    opt = make_optimizer(model, "torch")
    bsz, frames = 2, 60
    video = torch.randn(bsz, frames, 3, 224, 224)
    target = torch.randint(4, vocab - 30, (bsz, 30))
    prev = torch.cat([torch.full((bsz, 1), d.index("[de_DE]")), target[:, :-1]], 1)
    start = time.perf_counter()
    one_update(model, opt, video, torch.full((bsz,), frames), prev, target)
    return {
        "params": params,
        "trainable": trainable,
        "params_untrimmed": params + (MBART_LARGE_VOCAB - len(d)) * dim,
        "vocab": len(d),
        "update_s": time.perf_counter() - start,
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2,
    }


CASES = {
    "speed_small": lambda: case_speed("small", updates=3),
    "speed_large": lambda: case_speed("large", updates=2),
    "memory": lambda: case_memory(vocab=3000),
    "llm_small": lambda: case_llm_vs_cached("small", updates=20),
    "llm_large": lambda: case_llm_vs_cached("large", updates=6),
}


TABLES = {"speed": ("speed_small", "speed_large"), "llm": ("llm_small", "llm_large"), "memory": ("memory",)}
LABELS = {"small": "small mBART (demo: 2+2 layers, d=128)", "large": "mBART-large (12+12, d=1024), vocab 3k"}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--case", choices=sorted(CASES), help="run one case and print its JSON")
    p.add_argument("--only", action="append", choices=sorted(TABLES), help="print these tables only")
    args = p.parse_args()
    if args.case:
        print(json.dumps(CASES[args.case]()))
        return
    tables = args.only or list(TABLES)
    results = {}
    for name in [c for t in tables for c in TABLES[t]]:
        out = subprocess.run([sys.executable, __file__, "--case", name], capture_output=True, text=True)
        if out.returncode != 0:
            raise SystemExit(f"case {name} failed:\n{out.stderr[-3000:]}")
        results[name] = json.loads(out.stdout.strip().splitlines()[-1])
    torch_threads = os.environ.get("OMP_NUM_THREADS", "default")
    print(f"stage 2 on CPU ({os.cpu_count()} cores, OMP_NUM_THREADS={torch_threads}); random weights")
    if "speed" in tables:
        print()
        print("| case | live s/update | live without decoding | cached s/update | speed-up (goal >= 10x) "
              "| cached, fairseq's Python Adam |")
        print("|---|---|---|---|---|---|")
        for size in ("small", "large"):
            r = results[f"speed_{size}"]
            print(f"| {LABELS[size]} | {r['live_s']:.2f} | {r['live_no_decode_s']:.2f} | {r['cached_s']:.3f} | "
                  f"{r['speedup']:.1f}x | {r['cached_fairseq_adam_s']:.3f} |")
    if "llm" in tables:
        print()
        print("| case | LLM alone s/update | stage 2 on the cache s/update | ratio (goal <= 1.1x) "
              "| ratio of the fastest | of which cache read + collate | adapter forward |")
        print("|---|---|---|---|---|---|---|")
        for size in ("small", "large"):
            r = results[f"llm_{size}"]
            print(f"| {LABELS[size]} | {r['llm_s']:.3f} | {r['cached_s']:.3f} | {r['ratio']:.2f}x | "
                  f"{r['ratio_min']:.2f}x | {r['data_s'] * 1e3:.1f} ms | {r['adapter_fwd_s'] * 1e3:.1f} ms |")
    if "memory" in tables:
        m = results["memory"]
        print()
        print("| one update, mBART-large, trimmed vocab | value | goal |")
        print("|---|---|---|")
        print(f"| vocabulary | {m['vocab']:,} | a few thousand |")
        print(f"| parameters (all / trainable) | {m['params'] / 1e6:.1f}M / {m['trainable'] / 1e6:.1f}M | <= 370M |")
        print(f"| parameters with the untrimmed 250k vocabulary | {m['params_untrimmed'] / 1e6:.1f}M | ~610M |")
        print(f"| peak RSS | {m['peak_rss_gb']:.2f} GB | <= 12 GB |")
        print(f"| seconds for the update | {m['update_s']:.1f} | - |")


if __name__ == "__main__":
    main()
