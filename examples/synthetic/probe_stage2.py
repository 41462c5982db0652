#!/usr/bin/env python3
"""Where does stage 2 lose what stage 1 reads? Linear probes along the stage-2 path, and what
the translations do with each missed sign.

For a stage-2 checkpoint (``slt_mbart``, factorized: frozen visual encoder, features cached by
``fairseq-slt-cache-features``) it reads the synthetic corpus's glosses at three points of the
path to the LLM's decoder:

  features   the stage-1 sign-wise features (the LLM-adapter's input, the cache)
  adapter    the LLM-adapter's output (the mBART encoder's input embeddings)
  encoder    the mBART encoder's output (what the decoder attends to)

At each point a linear multiple-instance probe (a score per gloss at every step, the best step
is the sentence's score, binary cross-entropy on the sentence's glosses: the bag-of-words loss's
form) is trained on the training split and asked, on the test split, for the sentence's k
glosses (its top k scores; k = the reference's distinct glosses). The printout is the share of
test glosses read, per gloss category. A category the probe reads at the encoder's output as
well as at the features is not lost on the way to the LLM; if the translations still miss it,
the decoder loses it.

``--hypotheses`` adds, for each category, what a translation that misses a gloss wrote instead:
another gloss of the same category (a substitution: weak visual evidence, the LLM's prior won)
or nothing of that category (an omission).

    python examples/synthetic/probe_stage2.py --data runs/llm_benchmark/data \\
        --checkpoint runs/llm_benchmark/seed1/stage2_text/checkpoints/checkpoint_best.pt \\
        --cache features_seed1 \\
        --hypotheses stage1=runs/llm_benchmark/seed1/stage1/generate/generate-test.txt \\
        --hypotheses stage2=runs/llm_benchmark/seed1/stage2_text/generate/generate-test.txt
"""

import argparse
import logging
import os
import sys
from collections import defaultdict
from typing import Dict, List, Sequence, Tuple

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))

logger = logging.getLogger("probe_stage2")
POINTS = ("features", "adapter", "encoder")


def load_stage2(checkpoint: str, data: str):
    import fairseq_slt
    from fairseq import checkpoint_utils

    fairseq_slt.register()
    models, _cfg, _task = checkpoint_utils.load_model_ensemble_and_task([checkpoint], arg_overrides={"data": data})
    model = models[0].eval()
    if not getattr(model.encoder, "accepts_cached_features", False):
        raise SystemExit(f"{checkpoint}: not a factorized stage-2 model (its visual encoder is trained)")
    return model


@torch.no_grad()
def representations(model, cache, n: int) -> Dict[str, List[torch.Tensor]]:
    """Every video's ``T' x D`` sequence at each point of the path."""
    out = {p: [] for p in POINTS}
    for i in range(n):
        feats = cache.get(i)[None]  # 1 x T' x C
        lengths = torch.tensor([feats.size(1)])
        out["features"].append(feats[0])
        out["adapter"].append(model.encoder.adapter(feats)[0])
        enc = model.encoder.forward_features(feats, lengths)["encoder_out"][0]  # T' x 1 x D
        out["encoder"].append(enc[:, 0])
    return out


def pad(seqs: Sequence[torch.Tensor]) -> Tuple[torch.Tensor, torch.Tensor]:
    """``B x T x D`` (zeros after each end) and a ``B x T`` mask of the real steps."""
    t = max(s.size(0) for s in seqs)
    x = torch.zeros(len(seqs), t, seqs[0].size(1))
    mask = torch.zeros(len(seqs), t, dtype=torch.bool)
    for i, s in enumerate(seqs):
        x[i, : s.size(0)], mask[i, : s.size(0)] = s, True
    return x, mask


def train_probe(x: torch.Tensor, mask: torch.Tensor, y: torch.Tensor, steps: int, seed: int) -> torch.nn.Linear:
    """The multiple-instance linear probe: max over steps of a per-step linear score per gloss."""
    torch.manual_seed(seed)
    mean, std = x[mask].mean(0), x[mask].std(0) + 1e-5
    probe = torch.nn.Linear(x.size(-1), y.size(1))
    opt = torch.optim.Adam(probe.parameters(), lr=1e-2, weight_decay=1e-4)
    pos = y.mean(0).clamp(min=1e-3)
    weight = torch.where(y > 0, 0.5 / pos, 0.5 / (1 - pos))  # balanced, as the bag-of-words loss
    for _ in range(steps):
        opt.zero_grad()
        loss = F.binary_cross_entropy_with_logits(bag_scores(probe, x, mask, mean, std), y, weight=weight)
        loss.backward()
        opt.step()
    probe.norm = (mean, std)
    return probe


def bag_scores(probe, x, mask, mean, std) -> torch.Tensor:
    scores = probe((x - mean) / std)  # B x T x G
    return scores.masked_fill(~mask[..., None], float("-inf")).max(1).values  # B x G


def read_by_category(probe, x, mask, sentences, gloss_index: Dict[str, int]) -> Dict[str, Tuple[int, int]]:
    """Per category: (test glosses among the sentence's top-k probe scores, test glosses)."""
    with torch.no_grad():
        scores = bag_scores(probe, x, mask, *probe.norm)
    counts: Dict[str, List[int]] = defaultdict(lambda: [0, 0])
    for sentence, s in zip(sentences, scores):
        wanted = dict(zip(sentence.glosses, sentence.categories))
        top = {i for i in s.topk(min(len(wanted), s.numel())).indices.tolist()}
        for gloss, cat in wanted.items():
            hit = gloss in gloss_index and gloss_index[gloss] in top
            for key in (cat, "all"):
                counts[key][0] += hit
                counts[key][1] += 1
    return {k: (v[0], v[1]) for k, v in counts.items()}


def misses(hyps: Dict[int, str], sentences, words_by_category: Dict[str, set]) -> Dict[str, List[int]]:
    """Per category: [read (as the per-slot accuracy counts it), substituted (another word of the
    category written), omitted]."""
    from fairseq_slt.synthetic.sentence import word_tokens
    from fairseq_slt.synthetic.slots import slot_hits

    counts: Dict[str, List[int]] = defaultdict(lambda: [0, 0, 0])
    for i, sentence in enumerate(sentences):
        hyp = hyps.get(i, "")
        text = " " + " ".join(word_tokens(hyp)) + " "
        for word, cat, hit in zip(sentence.words, sentence.categories, slot_hits(hyp, sentence)):
            if hit:
                counts[cat][0] += 1
            elif any(f" {w} " in text for w in words_by_category[cat] if w != word):
                counts[cat][1] += 1
            else:
                counts[cat][2] += 1
    return counts


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="the synthetic corpus (fairseq-slt-synth --out)")
    p.add_argument("--checkpoint", required=True, help="a factorized stage-2 checkpoint (slt_mbart)")
    p.add_argument("--cache", required=True, help="its feature cache, relative to --data or absolute")
    p.add_argument("--steps", type=int, default=300, help="full-batch Adam steps of each probe")
    p.add_argument("--seed", type=int, default=1, help="the probes' seed")
    p.add_argument("--hypotheses", action="append", default=[], metavar="NAME=GENERATE_TXT",
                   help="a run's fairseq-generate output on test: also count its substitutions and omissions")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s | %(levelname)s | %(name)s | %(message)s")
    torch.set_grad_enabled(True)

    from fairseq_slt.data.feature_cache import FeatureCache
    from fairseq_slt.scoring import manifest_ids, read_generate_rows
    from fairseq_slt.synthetic.corpus import read_gloss_file

    model = load_stage2(args.checkpoint, args.data)
    cache_dir = args.cache if os.path.isabs(args.cache) else os.path.join(args.data, args.cache)
    rows = {s: read_gloss_file(os.path.join(args.data, f"glosses_{s}.tsv")) for s in ("train", "test")}
    reps = {}
    for s in rows:
        cache = FeatureCache(cache_dir, s, manifest_ids(os.path.join(args.data, f"{s}.tsv")))
        reps[s] = representations(model, cache, len(rows[s]))
    glosses = sorted({g for r in rows["train"] for g in r.glosses})
    gloss_index = {g: i for i, g in enumerate(glosses)}
    y = torch.zeros(len(rows["train"]), len(glosses))
    for i, r in enumerate(rows["train"]):
        y[i, [gloss_index[g] for g in r.glosses]] = 1.0
    table = {}
    for point in POINTS:
        x, mask = pad(reps["train"][point])
        probe = train_probe(x, mask, y, args.steps, args.seed)
        xt, mt = pad(reps["test"][point])
        table[point] = read_by_category(probe, xt, mt, rows["test"], gloss_index)
        logger.info(f"{point}: {table[point]['all'][0]} of {table[point]['all'][1]} test glosses read")
    cats = ["all"] + sorted(k for k in table["features"] if k != "all")
    print("| probe on | " + " | ".join(cats) + " |")
    print("|---|" + "---|" * len(cats))
    for point in POINTS:
        print(f"| {point} | " + " | ".join(f"{100.0 * table[point][c][0] / table[point][c][1]:.1f}" for c in cats) + " |")
    if args.hypotheses:
        words_by_category: Dict[str, set] = defaultdict(set)
        for r in rows["train"] + rows["test"]:
            for w, c in zip(r.words, r.categories):
                words_by_category[c].add(w)
        print()
        print("| run | category | read (%) | another word of the category (%) | none of the category (%) | glosses |")
        print("|---|---|---|---|---|---|")
        for spec in args.hypotheses:
            name, path = spec.split("=", 1)
            hyps = {i: hyp for i, (hyp, _ref) in read_generate_rows(path).items()}
            counts = misses(hyps, rows["test"], words_by_category)
            for cat in sorted(counts):
                read, sub, omit = counts[cat]
                n = read + sub + omit
                print(f"| {name} | {cat} | {100.0 * read / n:.1f} | {100.0 * sub / n:.1f} | {100.0 * omit / n:.1f} | {n} |")


if __name__ == "__main__":
    main()
