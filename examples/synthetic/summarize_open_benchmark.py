"""The table of examples/synthetic/open_benchmark.sh: every arm's test scores over seeds (mean and
standard deviation), its training time, updates and video passes, and the collapse diagnostics
(distinct hypotheses, per-slot accuracy).

    python examples/synthetic/summarize_open_benchmark.py WORK_DIR --seeds 1 2 3
    python examples/synthetic/summarize_open_benchmark.py WORK_DIR --training-seconds RUN_DIR
    python examples/synthetic/summarize_open_benchmark.py WORK_DIR --norms --seeds 1 2 3
    python examples/synthetic/summarize_open_benchmark.py WORK_DIR --convergence --seeds 1 2 3

Training time is fairseq's own clock, the one ``--stop-time-hours`` stops on: the trainer's
cumulative training time (wall time from the trainer's start, validation included) stored in
``checkpoint_last.pt``.
"""

import argparse
import json
import os
import re
import statistics
import sys
from typing import Dict, List, Optional, Tuple

# the repository's fairseq_slt, imported only where a function needs it (it loads torch and fairseq)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))

ARMS = [
    ("stage1", "stage 1 alone (Light-T)", ["stage1"]),
    ("stage2_text", "factorized: stage 1 + frozen stage 2, LLM pre-trained on the text corpus",
     ["stage1", "cache", "stage2_text"]),
    ("stage2_parallel", "factorized, LLM pre-trained on the parallel targets only",
     ["stage1", "cache", "stage2_parallel"]),
    ("stage2_random", "factorized, the text LLM's architecture never pre-trained (random weights)",
     ["stage1", "cache", "stage2_random"]),
    ("joint", "joint: visual encoder + LLM (text corpus) end to end", ["joint"]),
]


def arms_of(work: str, seeds: List[str]) -> List[Tuple[str, str, List[str]]]:
    """:data:`ARMS`, then every other stage-2 run folder of the seeds (a variant run with
    ``STAGE2_TAG``: ``stage2_<llm><tag>``), labelled by its folder name."""
    known = {key for key, _, _ in ARMS}
    extra = sorted({d for seed in seeds if os.path.isdir(os.path.join(work, f"seed{seed}"))
                    for d in os.listdir(os.path.join(work, f"seed{seed}"))
                    if d.startswith("stage2_") and d not in known})
    return ARMS + [(d, f"variant {d}", ["stage1", "cache", d]) for d in extra]


def training_seconds(run_dir: str) -> float:
    """The trainer's cumulative training time (s) of RUN_DIR/checkpoints/checkpoint_last.pt."""
    from fairseq_slt.checkpoints import load_checkpoint_state

    state = load_checkpoint_state(os.path.join(run_dir, "checkpoints", "checkpoint_last.pt"))
    return float(state["extra_state"]["previous_training_time"])


def parse_score(path: str) -> Dict[str, float]:
    """fairseq-slt-score's printout -> BLEU-4, ROUGE-L, distinct hypotheses, per-slot accuracy."""
    text = open(path, encoding="utf-8").read()

    def grab(pattern: str) -> Optional[float]:
        m = re.search(pattern, text)
        return float(m.group(1)) if m else None

    return {
        "bleu4": grab(r"BLEU-4 ([\d.]+)"),
        "rouge": grab(r"ROUGE-L ([\d.]+)"),
        "distinct": grab(r"distinct hypotheses (\d+) of"),
        "sentences": grab(r"distinct hypotheses \d+ of (\d+)"),
        "slot": grab(r"per-slot accuracy ([\d.]+)%"),
        "categories": {k: (int(r), int(t)) for k, r, t in re.findall(r"\| (\w+) [\d.]+% \((\d+)/(\d+)\)", text)},
    }


def summarize_per_seed(work: str, seeds: List[str]) -> str:
    """Test BLEU-4 of every arm per seed."""
    rows = []
    for key, label, _ in arms_of(work, seeds):
        cells = []
        for seed in seeds:
            score = os.path.join(work, f"seed{seed}", key, "score.txt")
            cells.append(f"{parse_score(score)['bleu4']:.2f}" if os.path.isfile(score) else "-")
        if any(c != "-" for c in cells):
            rows.append(f"| {label} | " + " | ".join(cells) + " |")
    head = "| arm | " + " | ".join(f"seed {s}" for s in seeds) + " |\n|---|" + "---|" * len(seeds)
    return head + "\n" + "\n".join(rows)


def summarize_categories(work: str, seeds: List[str]) -> str:
    """Per-slot accuracy by gloss category (number, day, region, ...) of every arm, summed over seeds."""
    table: Dict[str, Dict[str, List[int]]] = {}
    for key, label, _ in arms_of(work, seeds):
        for seed in seeds:
            score = os.path.join(work, f"seed{seed}", key, "score.txt")
            if not os.path.isfile(score):
                continue
            for cat, (r, t) in parse_score(score)["categories"].items():
                c = table.setdefault(label, {}).setdefault(cat, [0, 0])
                c[0], c[1] = c[0] + r, c[1] + t
    cats = sorted({c for row in table.values() for c in row})
    head = "| arm | " + " | ".join(cats) + " |\n|---|" + "---|" * len(cats)
    rows = [f"| {label} | " + " | ".join(
        f"{100.0 * row[c][0] / row[c][1]:.1f}" if c in row else "-" for c in cats) + " |"
        for label, row in table.items()]
    return head + "\n" + "\n".join(rows)


def sentences_of(path: str) -> List[List[str]]:
    """The lowercased words of each target of a split's manifest (``.tsv``) or of a text file (one
    sentence a line)."""
    from fairseq_slt.scoring import manifest_texts
    from fairseq_slt.synthetic.sentence import word_tokens

    if path.endswith(".tsv"):
        lines = manifest_texts(path)
    else:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    return [[w for w in word_tokens(line) if w.isalnum()] for line in lines]


def ngrams(sentences: List[List[str]], n: int) -> List[Tuple[str, ...]]:
    return [tuple(s[i:i + n]) for s in sentences for i in range(len(s) - n + 1)]


def summarize_coverage(work: str) -> str:
    """How much of the test targets' language the parallel targets and the text corpus hold: the
    share of the test targets' words and word pairs (tokens and distinct) seen in each."""
    data = os.path.join(work, "data")
    test = sentences_of(os.path.join(data, "test.tsv"))
    sources = [("parallel training targets", sentences_of(os.path.join(data, "train.tsv")))]
    text = os.path.join(data, "text_corpus.en")
    if os.path.isfile(text):
        sources.append(("text corpus", sentences_of(text)))
    rows = []
    for name, sentences in sources:
        cells = [name, str(len(sentences)), str(sum(map(len, sentences)))]
        for n in (1, 2):
            seen, wanted = set(ngrams(sentences, n)), ngrams(test, n)
            cells.append(f"{100.0 * sum(g in seen for g in wanted) / len(wanted):.1f}")
            cells.append(f"{100.0 * len(set(wanted) & seen) / len(set(wanted)):.1f}")
        rows.append("| " + " | ".join(cells) + " |")
    head = ("| source | sentences | words | test words seen (%) | distinct test words seen (%) "
            "| test word pairs seen (%) | distinct test word pairs seen (%) |\n|---|---|---|---|---|---|---|")
    return head + "\n" + "\n".join(rows)


def json_records(path: str, key: str):
    """The json records of a fairseq --log-format json log that hold ``key`` (with its other lines:
    ``(record or None, line)``)."""
    with open(path, encoding="utf-8") as f:
        for line in f:
            i = line.find("{")
            rec = None
            if i >= 0 and f'"{key}"' in line:
                try:
                    rec = json.loads(line[i:])
                except json.JSONDecodeError:
                    pass
            yield rec, line


def parse_log(path: str) -> Dict[str, float]:
    """A fairseq json log -> updates and video passes (sum over epochs of bsz x updates)."""
    updates, passes, last_updates = 0, 0.0, 0
    for rec, _ in json_records(path, "train_num_updates"):
        if rec is not None:
            n = int(float(rec["train_num_updates"]))
            passes += float(rec.get("train_bsz", 0)) * (n - last_updates)
            last_updates = updates = n
    return {"updates": updates, "passes": passes}


EARLY_STOP = "early stop since valid performance hasn't improved for last"


def dev_losses(path: str, subset: str = "dev") -> Tuple[Dict[int, float], bool]:
    """A fairseq json log -> the loss on ``subset`` of each epoch (fairseq names the validation
    keys after ``--valid-subset``: ``dev_loss`` for the script's runs; its --log-file repeats lines,
    one per epoch is kept) and whether the trainer stopped early (``--patience``):
    ``(losses, early)``."""
    key = f"{subset}_loss"
    losses, early = {}, False
    for rec, line in json_records(path, key):
        early = early or EARLY_STOP in line
        if rec is not None and key in rec:
            losses[int(rec["epoch"])] = float(rec[key])
    return losses, early


def summarize_convergence(work: str, seeds: List[str], subset: str = "dev") -> str:
    """Stage 1 of the factorized arm on dev, per seed: epochs run, the best dev loss and its epoch,
    and what stopped it (the patience on dev loss, i.e. converged, or the epoch cap). A seed whose
    log holds no ``{subset}_loss`` is an error, not a missing row."""
    lines = [
        "| seed | stage 1 epochs | best dev loss (epoch) | dev loss of the last epoch | stopped by |",
        "|---|---|---|---|---|",
    ]
    for seed in seeds:
        log = os.path.join(work, f"seed{seed}", "stage1", "train.log")
        if not os.path.isfile(log):
            continue
        losses, early = dev_losses(log, subset)
        if not losses:
            raise SystemExit(f"{log}: no '{subset}_loss' record (a --log-format json log of a run "
                             f"with --valid-subset {subset}?); pass --valid-subset NAME if it validated "
                             "on another subset")
        best = min(losses, key=lambda e: (losses[e], e))
        last = max(losses)
        why = "patience on dev loss (converged)" if early else "the epoch cap (EPOCHS1): not converged"
        lines.append(f"| {seed} | {last} | {losses[best]:.3f} ({best}) | {losses[last]:.3f} | {why} |")
    return "\n".join(lines)


def mean_std(values: List[float]) -> str:
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f}"


def summarize(work: str, seeds: List[str]) -> str:
    rows = []
    for key, label, parts in arms_of(work, seeds):
        scores, seconds, updates, passes = [], [], [], []
        for seed in seeds:
            s = os.path.join(work, f"seed{seed}")
            score = os.path.join(s, key, "score.txt")
            if not os.path.isfile(score):
                continue
            scores.append(parse_score(score))
            t, u, p = 0.0, 0, 0.0
            for part in parts:
                if part == "cache":
                    t += float(open(os.path.join(s, "cache_seconds")).read())
                    continue
                t += training_seconds(os.path.join(s, part))
                log = parse_log(os.path.join(s, part, "train.log"))
                u, p = u + log["updates"], p + log["passes"]
            seconds.append(t)
            updates.append(u)
            passes.append(p)
        if not scores:
            continue
        rows.append(
            f"| {label} | {len(scores)} | {mean_std([x['bleu4'] for x in scores])} "
            f"| {mean_std([x['rouge'] for x in scores])} "
            f"| {mean_std([x['slot'] for x in scores])} "
            f"| {' / '.join(str(int(x['distinct'] or 0)) for x in scores)} of {int(scores[0]['sentences'] or 0)} "
            f"| {statistics.mean(seconds):.0f} | {statistics.mean(updates):.0f} "
            f"| {statistics.mean(passes):.0f} |"
        )
    head = (
        "| arm | seeds | test BLEU-4 | test ROUGE-L | per-slot accuracy (%) | distinct hypotheses "
        "(per seed) | training time (s, mean) | updates (mean) | video passes (mean) |\n"
        "|---|---|---|---|---|---|---|---|---|"
    )
    return head + "\n" + "\n".join(rows)


NORM_RUNS = [("joint", "joint"), ("stage1", "factorized stage 1 (LLM = Light-T decoder)"),
             ("stage2_text", "factorized stage 2 (visual encoder frozen)")]


def norm_records(path: str) -> List[Dict[str, float]]:
    """The ``train_inner`` records of a fairseq json log, one per update (a resumed run repeats
    updates, and fairseq's ``--log-file`` without the plugin writes each line once more per epoch:
    ``fairseq-slt-plot``'s reader keeps one)."""
    from fairseq_slt.cli.plot import parse_json_lines

    with open(path, encoding="utf-8") as f:
        inner = parse_json_lines(f).get("train_inner", {})
    return [inner[u] for u in sorted(inner)]


def median_of(records: List[Dict[str, float]], key: str) -> str:
    """The median of ``key`` over the records that log it, 3 decimals; ``-`` where none does."""
    values = [r[key] for r in records if key in r]
    return f"{statistics.median(values):.3f}" if values else "-"


def summarize_norms(work: str, seeds: List[str]) -> str:
    """The Figure-2 norms of each seed's runs: medians over the logged updates of the last visual
    layer's and the last LLM layer's gradient norm, their ratio, and the parameter norms."""
    rows = []
    for seed in seeds:
        for key, label in NORM_RUNS:
            log = os.path.join(work, f"seed{seed}", key, "train.log")
            if not os.path.isfile(log):
                continue
            recs = norm_records(log)
            ratios = [r["gnorm_visual_last"] / r["gnorm_llm_last"] for r in recs
                      if "gnorm_visual_last" in r and r.get("gnorm_llm_last")]
            ratio = (f"{statistics.median(ratios):.2f} (above 1 at {sum(x > 1 for x in ratios)} of "
                     f"{len(ratios)} points)" if ratios else "-")
            rows.append(
                f"| {seed} | {label} | {median_of(recs, 'gnorm_visual_last')} | {median_of(recs, 'gnorm_llm_last')} "
                f"| {ratio} | {median_of(recs, 'pnorm_visual_last')} / {median_of(recs, 'pnorm_llm_last')} |"
            )
    head = (
        "| seed | run | grad norm, last visual layer | grad norm, last LLM layer | visual / LLM grad norm "
        "| param norm visual / LLM |\n|---|---|---|---|---|---|"
    )
    return head + "\n" + "\n".join(rows)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("work_dir", help="the experiment's WORK_DIR")
    p.add_argument("--seeds", nargs="+", default=["1", "2", "3"], help="the seeds to summarise")
    p.add_argument("--training-seconds", metavar="RUN_DIR",
                   help="print the training time (s) of RUN_DIR's checkpoint_last.pt and exit")
    p.add_argument("--norms", action="store_true",
                   help="print the medians of the logged gradient and parameter norms instead")
    p.add_argument("--convergence", action="store_true",
                   help="print stage 1's dev losses per seed instead: epochs, best epoch, what stopped it")
    p.add_argument("--per-seed", action="store_true", help="print every arm's test BLEU-4 per seed instead")
    p.add_argument("--categories", action="store_true",
                   help="print every arm's per-slot accuracy by gloss category (seeds summed) instead")
    p.add_argument("--coverage", action="store_true",
                   help="print the share of the test targets' words seen in the parallel targets and "
                        "in the text corpus instead")
    p.add_argument("--valid-subset", default="dev",
                   help="the subset stage 1 validated on (fairseq's --valid-subset; its log keys are "
                        "SUBSET_loss): the script's runs use dev")
    args = p.parse_args()
    if args.convergence:
        print(summarize_convergence(args.work_dir, args.seeds, args.valid_subset))
        return
    if args.per_seed:
        print(summarize_per_seed(args.work_dir, args.seeds))
        return
    if args.categories:
        print(summarize_categories(args.work_dir, args.seeds))
        return
    if args.coverage:
        print(summarize_coverage(args.work_dir))
        return
    if args.norms:
        print(summarize_norms(args.work_dir, args.seeds))
        return
    if args.training_seconds:
        print(f"{training_seconds(args.training_seconds):.0f}")
        return
    print(summarize(args.work_dir, args.seeds))


if __name__ == "__main__":
    main()
