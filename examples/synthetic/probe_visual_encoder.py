#!/usr/bin/env python3
"""Why stage 1 writes a template on unseen sentences: probes of the visual encoder alone.

Each probe trains a fresh visual encoder (ResNet-18 from random weights + the local temporal
module K5, 256 channels: stage 1's of examples/synthetic/open_benchmark.sh) with a linear head,
without the Transformer, and reports held-out accuracy against the prior. Results:
docs/open_benchmark.md ("Why stage 1 writes a template").

  signs  classify isolated signs (one-gloss clips rendered like the corpus, at --side px, every
         4th frame): can the encoder see the signs at this frame size?
  bag    multiple-instance learning on the corpus's own sentence videos (the task's data path):
         a linear head scores every entry at every step, an entry's best step is its score, and
         the balanced binary cross-entropy asks for the entries of the sentence: the
         criterion's own bow_logits and bow_loss. --bag glosses uses the
         synthetic gloss annotation (an oracle), --bag tokens every target token, --bag content
         the target tokens seen in training and in at most 20% of the training targets (what
         --criterion label_smoothed_cross_entropy_with_bow scores). The score is dev precision@k
         (k = the sentence's number of entries) against the frequency prior's.

  python examples/synthetic/probe_visual_encoder.py signs --data runs/open_benchmark/data
  python examples/synthetic/probe_visual_encoder.py bag --bag content --data runs/open_benchmark/data
"""

import argparse
import csv
import logging
import os
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

logger = logging.getLogger("probe_visual_encoder")
MEAN, STD = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])


def read_rows(data: str, split: str):
    with open(os.path.join(data, f"{split}.tsv"), newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def precision_at_k(bags, scores):
    out = []
    for b, s in zip(bags, scores):
        k = int(b.sum())
        if k:
            out.append(float(b[s.topk(k).indices].mean()))
    return float(np.mean(out))


def masked_max(feats, lengths):
    """``B x T x C`` sign-wise features -> ``B x C``, each channel's best real step (signs)."""
    from fairseq_slt.models.visual_frontend import lengths_to_padding_mask

    pad = lengths_to_padding_mask(lengths, feats.size(1))  # B x T
    return feats.masked_fill(pad[..., None], -1e4).max(1).values


def probe_signs(args, encoder, rng):
    """Isolated-sign classification at ``args.side`` px."""
    from PIL import Image

    from fairseq_slt.synthetic.render import SIGNS, render_sentence
    from fairseq_slt.synthetic.signs import OPEN_SIGNS

    glosses = sorted({g for r in read_rows(args.data, "train") for g in r["glosses"].split()})
    signs = OPEN_SIGNS if all(g in OPEN_SIGNS for g in glosses) else SIGNS  # open/weather, or demo

    def clip(g, signer, k):
        video = render_sentence([g], signer, 64, 1, np.random.default_rng([k, signer, glosses.index(g)]),
                                signs=signs)[k % 4::4]
        video = np.stack([np.array(Image.fromarray(f).resize((args.side, args.side), Image.BILINEAR))
                          for f in video]) / 255.0
        return torch.tensor(((video - MEAN) / STD).transpose(0, 3, 1, 2), dtype=torch.float32)

    train = [(clip(g, s, k), i) for i, g in enumerate(glosses) for s in range(5) for k in range(2)]
    test = [(clip(g, s, k), i) for i, g in enumerate(glosses) for s, k in ((5, 9), (1, 7))]
    logger.info(f"{len(glosses)} signs, {len(train)} training clips, {len(test)} held-out clips at {args.side} px")
    head = nn.Linear(encoder.out_dim, len(glosses))

    def batch(items):
        lengths = torch.tensor([x.shape[0] for x, _ in items])
        frames = torch.zeros(len(items), int(lengths.max()), 3, args.side, args.side)
        for j, (x, _) in enumerate(items):
            frames[j, : len(x)] = x
        return frames, lengths, torch.tensor([y for _, y in items])

    def logits(frames, lengths):
        return head(masked_max(*encoder(frames, lengths)))

    def evaluate():
        encoder.eval()
        with torch.no_grad():
            hits = sum(int((logits(f, l).argmax(1) == y).sum())
                       for f, l, y in (batch(test[i:i + 32]) for i in range(0, len(test), 32)))
        encoder.train()
        return f"held-out accuracy {hits / len(test):.3f} (prior {1 / len(glosses):.3f})"

    def step_loss():
        frames, lengths, labels = batch([train[i] for i in rng.choice(len(train), 32, replace=False)])
        return F.cross_entropy(logits(frames, lengths), labels)

    return head, step_loss, evaluate


def probe_bag(args, encoder, rng):
    """Multiple-instance learning of a bag of glosses or target tokens on the sentence videos."""
    import fairseq_slt
    from fairseq_slt.criterions.label_smoothed_ce_with_bow import (
        bag_of_words, bow_logits, bow_loss, bow_word_mask, content_word_mask,
    )
    from fairseq_slt.models.visual_frontend import lengths_to_padding_mask
    from fairseq_slt.tasks.sign_translation import SignTranslationConfig, SignTranslationTask

    fairseq_slt.register()
    task = SignTranslationTask.setup_task(SignTranslationConfig(data=args.data, seed=1))
    task.load_dataset("train")
    task.load_dataset("dev")
    rows = {s: read_rows(args.data, s) for s in ("train", "dev")}
    if args.bag == "glosses":
        vocab = sorted({g for r in rows["train"] for g in r["glosses"].split()})
        keep = torch.ones(len(vocab))
    else:
        keep = bow_word_mask(task.target_dictionary)
        if args.bag == "content":
            keep = content_word_mask(keep, task.dataset("train").tgt_tokens, 0.2)
        keep = keep.float()
    logger.info(f"bag of {args.bag}: {int(keep.sum())} entries")
    head = nn.Linear(encoder.out_dim, len(keep))

    def forward(split, idx):
        ds = task.dataset(split)
        sample = ds.collater([ds[i] for i in idx])
        feats, lengths = encoder(sample["net_input"]["src_tokens"], sample["net_input"]["src_lengths"])
        logits = bow_logits(feats, lengths_to_padding_mask(lengths, feats.size(1)), head)  # B x V
        if args.bag == "glosses":
            bags = torch.zeros(len(idx), len(keep))
            for j, i in enumerate(sample["id"].tolist()):
                for g in rows[split][i]["glosses"].split():
                    bags[j, vocab.index(g)] = 1
        else:
            bags = bag_of_words(sample["target"], keep.bool())
        return logits, bags

    def step_loss():
        logits, bags = forward("train", list(rng.choice(len(rows["train"]), args.batch_size, replace=False)))
        return bow_loss(logits, bags, keep).mean()  # the criterion's balanced loss

    def evaluate():
        encoder.eval()
        with torch.no_grad():
            outs = [forward("dev", list(range(i, min(i + 16, len(rows["dev"]))))) for i in range(0, len(rows["dev"]), 16)]
        encoder.train()
        scores = torch.cat([o[0] for o in outs]).masked_fill(keep == 0, -1e9)
        bags = torch.cat([o[1] for o in outs])
        prior = bags.mean(0) + 1e-6 * torch.rand(bags.size(1))
        return (f"dev precision@k {precision_at_k(bags, scores):.3f} "
                f"(frequency prior {precision_at_k(bags, prior.expand_as(bags)):.3f})")

    return head, step_loss, evaluate


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("probe", choices=("signs", "bag"))
    parser.add_argument("--data", required=True, help="a fairseq-slt-synth --grammar weather/open data root")
    parser.add_argument("--bag", choices=("glosses", "tokens", "content"), default="content")
    parser.add_argument("--side", type=int, default=32, help="signs: frame side in px")
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--batch-size", type=int, default=8, help="bag: videos per step (signs: 32 clips)")
    parser.add_argument("--lr", type=float, default=1e-3, help="Adam, constant")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    logging.basicConfig(format="%(asctime)s | %(message)s", level=logging.INFO)
    from fairseq_slt.models.visual_frontend import SignVisualEncoder

    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    encoder = SignVisualEncoder("K5", 256, "none")
    head, step_loss, evaluate = (probe_signs if args.probe == "signs" else probe_bag)(args, encoder, rng)
    opt = torch.optim.Adam(list(encoder.parameters()) + list(head.parameters()), lr=args.lr)
    t0 = time.time()
    for step in range(1, args.steps + 1):
        loss = step_loss()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % max(args.steps // 4, 1) == 0:
            logger.info(f"{args.probe} step {step}: training loss {loss.item():.3f}, {evaluate()} ({time.time() - t0:.0f} s)")


if __name__ == "__main__":
    main()
