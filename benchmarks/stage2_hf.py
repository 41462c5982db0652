"""Stage 2 over Hugging Face LLMs (``--arch slt_hf``): time and peak memory of one update on
cached features, per family and training mode, at the sizes of models researchers use.

    python benchmarks/stage2_hf.py                         # every case, one table
    python benchmarks/stage2_hf.py --cases flan-t5-base:lora gpt2:full

Each case builds a random-weight model of the named size from its config (no download), saves
it with a small tokenizer as a model folder, builds ``slt_hf`` on it through ``build_model`` (the
stage-1 visual encoder: random, paper size), then runs updates as the trainer does: adapter + LLM
forward on a batch of cached sign-wise features, label-smoothed cross-entropy, backward, Adam
step on the trainable parameters. The first update is a warm-up; the median of the others is
reported. Each case runs in its own process, so peak RSS is that case's (torch included).
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

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.join(HERE, "..", "tests")]  # stage2.py, tiny_hf.py

# name: (family, config kwargs) at the published sizes of each model
SIZES = {
    "flan-t5-base": ("t5", dict(d_model=768, d_kv=64, d_ff=2048, num_layers=12, num_decoder_layers=12,
                                num_heads=12, vocab_size=32128, feed_forward_proj="gated-gelu",
                                decoder_start_token_id=0, pad_token_id=0, eos_token_id=1)),
    "mbart-large-50": ("mbart", dict(d_model=1024, encoder_layers=12, decoder_layers=12,
                                     encoder_attention_heads=16, decoder_attention_heads=16,
                                     encoder_ffn_dim=4096, decoder_ffn_dim=4096, vocab_size=250054,
                                     max_position_embeddings=1024, decoder_start_token_id=2, bos_token_id=0,
                                     pad_token_id=1, eos_token_id=2)),
    "gpt2": ("gpt2", dict(n_embd=768, n_layer=12, n_head=12, n_positions=1024, vocab_size=50257,
                          bos_token_id=0, eos_token_id=0)),
    "smollm-135m": ("llama", dict(hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                                  num_attention_heads=9, num_key_value_heads=3, vocab_size=49152,
                                  max_position_embeddings=2048, tie_word_embeddings=True, bos_token_id=1,
                                  eos_token_id=2)),
    "qwen2.5-0.5b": ("qwen2", dict(hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
                                   num_attention_heads=14, num_key_value_heads=2, vocab_size=151936,
                                   max_position_embeddings=32768, tie_word_embeddings=True, eos_token_id=0,
                                   pad_token_id=0)),
    "xglm-564m": ("xglm", dict(d_model=1024, num_layers=24, attention_heads=16, ffn_dim=4096,
                               vocab_size=256008, max_position_embeddings=2048, bos_token_id=0, pad_token_id=1,
                               eos_token_id=2, decoder_start_token_id=2)),
}
PROMPT = "Translate the German sign language video into German:"
CASES = ["flan-t5-base:full", "flan-t5-base:lora", "mbart-large-50:lora", "gpt2:full", "gpt2:lora",
         "smollm-135m:full", "smollm-135m:lora", "qwen2.5-0.5b:lora", "xglm-564m:lora"]


def write_folder(name: str, out: str) -> None:
    import torch
    import transformers as tf
    from tiny_hf import TEXTS, train_tokenizer

    family, kwargs = SIZES[name]
    config_cls = {"t5": tf.T5Config, "mbart": tf.MBartConfig, "gpt2": tf.GPT2Config, "llama": tf.LlamaConfig,
                  "qwen2": tf.Qwen2Config, "xglm": tf.XGLMConfig}[family]
    auto = tf.AutoModelForSeq2SeqLM if family in ("t5", "mbart") else tf.AutoModelForCausalLM
    torch.manual_seed(0)
    auto.from_config(config_cls(**kwargs)).save_pretrained(out)
    # a small tokenizer that holds the prompt's words whole, as a real one does (about 10 tokens)
    train_tokenizer(family, (TEXTS + [PROMPT]) * 10, vocab_size=400).save_pretrained(out)


def run_case(name: str, mode: str, batch: int, steps: int, target_len: int, updates: int) -> dict:
    import torch
    from stage2 import write_stage1_checkpoint

    from fairseq_slt.hf.vocab import hf_dictionary
    from fairseq_slt.models.slt_hf import SLTHFModel

    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as work:
        folder = os.path.join(work, name)
        write_folder(name, folder)
        d = hf_dictionary(folder)
        task = Namespace(target_dictionary=d, source_dictionary=d, building_from_checkpoint=False)
        args = Namespace(stage1_checkpoint=write_stage1_checkpoint(work), llm_dir=folder, llm_mode=mode,
                         llm_prompt=PROMPT)
        model = SLTHFModel.build_model(args, task).train()
        rss_built = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        params = [p for p in model.parameters() if p.requires_grad]
        opt = torch.optim.Adam(params, lr=1e-4)
        feats = torch.randn(batch, steps, model.encoder.visual_encoder.out_dim)
        lengths = torch.full((batch,), steps)
        target = torch.randint(4, 150, (batch, target_len))
        target[:, -1] = d.eos()
        prev = torch.cat([target.new_full((batch, 1), d.eos()), target[:, :-1]], 1)
        times = []
        for _ in range(updates + 1):
            t0 = time.perf_counter()
            logits, _ = model(feats, lengths, prev)
            lprobs = torch.log_softmax(logits, -1)
            nll = -lprobs.gather(-1, target.unsqueeze(-1)).mean()
            loss = 0.8 * nll - 0.2 * lprobs.mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            times.append(time.perf_counter() - t0)
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        state = model.state_dict()
        storages = {v.untyped_storage().data_ptr(): v.untyped_storage().nbytes()  # tied weights once
                    for v in state.values() if isinstance(v, torch.Tensor)}
        saved = sum(storages.values())
        record = model.decoder.llm_record
        return {"prompt_tokens": int(model.encoder.prompt_ids.numel()),
            "case": f"{name}:{mode}", "family": record["model_type"], "llm_params_M": record["parameters"] / 1e6,
            "trainable_M": sum(p.numel() for p in params) / 1e6, "update_s": sorted(times[1:])[len(times[1:]) // 2],
            "peak_rss_GiB": rss, "rss_after_build_GiB": rss_built, "checkpoint_model_MB": saved / 1e6,
        }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cases", nargs="+", default=CASES, help="NAME:MODE items (names: %s)" % ", ".join(SIZES))
    p.add_argument("--batch", type=int, default=16, help="videos per update (the paper's stage-2 batch)")
    p.add_argument("--steps", type=int, default=29, help="sign-wise feature steps per video (the visual prefix: "
                   "PHOENIX-2014-T's ~114 frames, 25%% kept, the paper's temporal module keeps the length)")
    p.add_argument("--target-len", type=int, default=24, help="target tokens per video")
    p.add_argument("--updates", type=int, default=3, help="timed updates after one warm-up")
    p.add_argument("--json", help="also write the rows to this file")
    p.add_argument("--one", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.one:
        name, mode = a.one.split(":")
        print(json.dumps(run_case(name, mode, a.batch, a.steps, a.target_len, a.updates)))
        return
    rows = []
    print("| case | LLM parameters | trainable | s / update | peak RSS (GiB) | checkpoint weights (MB) |")
    print("|---|---|---|---|---|---|")
    for case in a.cases:
        cmd = [sys.executable, os.path.abspath(__file__), "--one", case, "--batch", str(a.batch), "--steps",
               str(a.steps), "--target-len", str(a.target_len), "--updates", str(a.updates)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            print(f"| {case} | failed: {proc.stderr.strip().splitlines()[-1][:200]} |||||", flush=True)
            continue
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        rows.append(r)
        print(f"| {r['case']} | {r['llm_params_M']:.0f}M | {r['trainable_M']:.1f}M | {r['update_s']:.2f} | "
              f"{r['peak_rss_GiB']:.1f} | {r['checkpoint_model_MB']:.0f} |", flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
