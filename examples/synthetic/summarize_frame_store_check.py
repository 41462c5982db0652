"""The table of ``frame_store_check.sh``: dev loss per epoch of every seed and arm (direct path vs
frame store), their difference against the spread between seeds, and each arm's wall time.

    python examples/synthetic/summarize_frame_store_check.py runs/frame_store_check

Writes ``summary.md`` and ``summary.json`` into the run folder and prints the table.
"""

import json
import os
import sys

from fairseq_slt.cli.plot import read_json_log

ARMS = ("direct", "store")


def dev_losses(path: str) -> list:
    """The dev loss after each epoch (``dev_loss`` records in update order)."""
    return [value for _, value in read_json_log(path).get("dev_loss", [])]


def main(work_dir: str) -> None:
    seeds = sorted(int(d[4:]) for d in os.listdir(work_dir) if d.startswith("seed"))
    runs = {}
    for seed in seeds:
        for arm in ARMS:
            folder = os.path.join(work_dir, f"seed{seed}", arm)
            if not os.path.isfile(os.path.join(folder, "done")):
                continue
            with open(os.path.join(folder, "seconds")) as f:
                seconds = int(f.read())
            runs[f"seed{seed}/{arm}"] = {"dev_loss": dev_losses(os.path.join(folder, "train.log")), "seconds": seconds}
    epochs = max((len(r["dev_loss"]) for r in runs.values()), default=0)
    names = sorted(runs)
    lines = ["| epoch | " + " | ".join(names) + " | max abs(store - direct), same seed | max abs(seed - seed), same arm |",
             "|---|" + "---|" * (len(names) + 2)]
    for e in range(epochs):
        row = {n: runs[n]["dev_loss"][e] for n in names if e < len(runs[n]["dev_loss"])}
        arm_gap = [abs(row[f"seed{s}/store"] - row[f"seed{s}/direct"]) for s in seeds
                   if f"seed{s}/store" in row and f"seed{s}/direct" in row]
        seed_gap = [abs(row[f"seed{a}/{arm}"] - row[f"seed{b}/{arm}"]) for arm in ARMS
                    for a in seeds for b in seeds if a < b and f"seed{a}/{arm}" in row and f"seed{b}/{arm}" in row]
        fmt = lambda v: f"{max(v):.3f}" if v else "-"  # noqa: E731
        lines.append(f"| {e + 1} | " + " | ".join(f"{row[n]:.3f}" if n in row else "-" for n in names)
                     + f" | {fmt(arm_gap)} | {fmt(seed_gap)} |")
    lines += ["", "| run | wall time of fairseq-train (s) |", "|---|---|"]
    lines += [f"| {n} | {runs[n]['seconds']} |" for n in names]
    table = "\n".join(lines)
    with open(os.path.join(work_dir, "summary.md"), "w") as f:
        f.write(table + "\n")
    with open(os.path.join(work_dir, "summary.json"), "w") as f:
        json.dump(runs, f, indent=1)
    print(table)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "runs/frame_store_check")
