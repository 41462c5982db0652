"""Start-up benchmark: wall time of the console scripts, warm, and where ``import`` time goes.

    python benchmarks/startup.py                 # every command, 5 warm runs each
    python benchmarks/startup.py --runs 3 --only score --only translate
    python benchmarks/startup.py --no-before     # skip the "full registration" column
    python benchmarks/startup.py --profile       # only the -X importtime summary

Each command runs in a fresh process, first once to warm the file cache (not counted), then
``--runs`` times; the median is kept. "after" runs the installed console script
(``.venv/bin/fairseq-slt-...``), which imports only what the command needs. "before" runs the same
``cli_main`` from a plain ``python -c`` that first does ``import fairseq_slt``, i.e. registers the
task, the models and the optimizer with fairseq (torch, torchvision, fairseq) as every command did
before start-up was made lazy. Reference rows: the interpreter alone, ``import torch``,
``import fairseq`` and ``import fairseq_slt`` (full registration). The profile sums
``-X importtime``'s self times per top-level package for one import: ``fairseq_slt.cli.score`` as
its console script imports it, and ``fairseq_slt`` in a plain python. Not part of the test suite.
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from typing import Dict, List, Optional, Tuple

BIN = os.path.dirname(sys.executable)

# name: (console script, its module, arguments); "{hyp}" is a small fairseq-generate output
COMMANDS = {
    "translate": ("fairseq-slt-translate", "fairseq_slt.cli.translate", ["--help"]),
    "score": ("fairseq-slt-score", "fairseq_slt.cli.score", ["{hyp}"]),
    "score-help": ("fairseq-slt-score", "fairseq_slt.cli.score", ["--help"]),
    "synth": ("fairseq-slt-synth", "fairseq_slt.synthetic.generate", ["--help"]),
    "prep": ("fairseq-slt-prep", "fairseq_slt.cli.prep", ["--help"]),
    "data-config": ("fairseq-slt-data-config", "fairseq_slt.cli.data_config", ["--help"]),
    "audit": ("fairseq-slt-audit", "fairseq_slt.cli.audit", ["--help"]),
    "plot": ("fairseq-slt-plot", "fairseq_slt.cli.plot", ["--help"]),
    "cache-features": ("fairseq-slt-cache-features", "fairseq_slt.cli.cache_features", ["--help"]),
    "trim-mbart": ("fairseq-slt-trim-mbart", "fairseq_slt.cli.trim_mbart", ["--help"]),
    "build-mbart": ("fairseq-slt-build-mbart", "fairseq_slt.cli.build_tiny_mbart", ["--help"]),
    "convert-mbart": ("fairseq-slt-convert-mbart", "fairseq_slt.cli.convert_mbart", ["--help"]),
}
REFERENCES = [
    ("python -c pass (interpreter)", "pass"),
    ("python -c 'import torch'", "import torch"),
    ("python -c 'import fairseq'", "import fairseq"),
    ("python -c 'import fairseq_slt' (full registration)", "import fairseq_slt"),
]


def write_hypotheses(path: str, n: int = 200) -> None:
    """A small ``fairseq-generate`` output: ``n`` sentences, ``T-``/``H-``/``D-`` lines."""
    words = "am morgen regen im norden sonne im sueden wind aus west kuehl".split()
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n):
            ref = " ".join(words[(i + k) % len(words)] for k in range(8))
            hyp = " ".join(words[(i + 2 * k) % len(words)] for k in range(8))
            f.write(f"S-{i}\tvideo_{i}\nT-{i}\t{ref}\nH-{i}\t-0.5\t{hyp}\nD-{i}\t-0.5\t{hyp}\n")


def wall(cmd: List[str], runs: int, env: Dict[str, str]) -> Tuple[float, float]:
    """(first run, median of ``runs`` more) in seconds; the command must succeed."""
    times = []
    for _ in range(runs + 1):
        start = time.perf_counter()
        proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, text=True)
        times.append(time.perf_counter() - start)
        if proc.returncode != 0:
            sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return times[0], statistics.median(times[1:])


def full_registration_cmd(script: str, module: str, args: List[str]) -> List[str]:
    """``cli_main`` of ``module`` after ``import fairseq_slt`` in a plain python (argv[0] set only
    after the import, so the package registers everything, as before)."""
    code = (
        "import sys, fairseq_slt; "
        f"sys.argv = [{script!r}] + sys.argv[1:]; "
        f"from {module} import cli_main; sys.exit(cli_main())"
    )
    return [sys.executable, "-c", code] + args


def import_profile(statement: str, env: Dict[str, str], top: int = 12) -> Tuple[float, List[Tuple[str, float]]]:
    """(total s, [(top-level package, summed self time s)]) of ``python -X importtime -c``."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", statement],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, text=True, check=True,
    )
    self_us: Dict[str, int] = defaultdict(int)
    total = 0
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        head, cumulative, name = line.split("|", 2)
        own = int(head.split(":")[1])
        package = name.strip().split(".")[0]
        self_us[package] += own
        if not name.startswith("  "):  # a top-level import of the statement (or of site)
            total += int(cumulative)
    ranked = sorted(self_us.items(), key=lambda kv: -kv[1])[:top]
    return total / 1e6, [(k, v / 1e6) for k, v in ranked]


def fmt(seconds: Optional[float]) -> str:
    return "-" if seconds is None else f"{seconds:.2f}"


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=5, help="warm runs per command (median kept)")
    p.add_argument("--only", action="append", choices=list(COMMANDS), help="these commands only")
    p.add_argument("--no-before", action="store_true", help="skip the full-registration column")
    p.add_argument("--no-references", action="store_true", help="skip the reference rows")
    p.add_argument("--profile", action="store_true", help="only the -X importtime summary")
    p.add_argument(
        "--profile-import", default="fairseq_slt.cli.score",
        help="module whose import is profiled (default: %(default)s)",
    )
    args = p.parse_args()
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))

    as_script = "import sys; sys.argv[0] = 'fairseq-slt-score'; "  # as in a console script
    for statement in (f"{as_script}import {args.profile_import}", "import fairseq_slt"):
        total, ranked = import_profile(statement, env)
        print(f"\n`python -X importtime -c \"{statement}\"`: {total:.2f} s; self time per package:\n")
        print("| package | s |\n|---|---|")
        for package, s in ranked:
            print(f"| {package} | {s:.2f} |")
    if args.profile:
        return

    with tempfile.TemporaryDirectory() as work:
        hyp = os.path.join(work, "generate-test.txt")
        write_hypotheses(hyp)
        print(f"\nwall time in s, first run (cold-ish) and median of {args.runs} warm runs:\n")
        print("| command | after: first | after: warm | before (full registration): warm | before / after |")
        print("|---|---|---|---|---|")
        for name in args.only or list(COMMANDS):
            script, module, cmd_args = COMMANDS[name]
            cmd_args = [a.format(hyp=hyp) for a in cmd_args]
            shown = " ".join([script] + [os.path.basename(a) for a in cmd_args])
            first, warm = wall([os.path.join(BIN, script)] + cmd_args, args.runs, env)
            before = None
            if not args.no_before:
                before = wall(full_registration_cmd(script, module, cmd_args), args.runs, env)[1]
            ratio = f"{before / warm:.1f}x" if before else "-"
            print(f"| `{shown}` | {fmt(first)} | {fmt(warm)} | {fmt(before)} | {ratio} |", flush=True)
        if not args.no_references:
            for label, statement in REFERENCES:
                first, warm = wall([sys.executable, "-c", statement], args.runs, env)
                print(f"| {label} | {fmt(first)} | {fmt(warm)} | - | - |", flush=True)


if __name__ == "__main__":
    main()
