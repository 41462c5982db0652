"""The performance suite in one run: every table, each ratio against its baseline measured in the
same run on the same machine.

    python benchmarks/run.py                   # data loader, stage 2 + memory, inference, bf16 backbone
    python benchmarks/run.py --only inference  # one part
    python benchmarks/run.py --quick           # fewer videos / repeats (a smoke run, noisier)

``loader`` (``loader.py``): frames/s delivered to the model vs a GFSLT-VLP-style loader and raw
decode. ``stage2`` (``stage2.py``): cached vs live stage-2 updates; memory and parameters of one
mBART-large update. ``inference`` (``inference.py``): real-time factor of translating a 9 s clip
with beam 5. ``backbone_bf16`` (``backbone_bf16.py``): a stage-1 training step with the ResNet
in float32 vs under bfloat16 autocast (``--backbone-bf16``). GPU: ``benchmarks/gpu.sh`` (needs
CUDA). Not part of the test suite; random weights, no downloads.
"""

import argparse
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PARTS = {
    "loader": ("data loader", ["loader.py"], ["--quick"]),
    "stage2": ("stage 2 + memory", ["stage2.py"], []),
    "inference": ("inference", ["inference.py"], ["--repeats", "1"]),
    "backbone_bf16": ("stage 1 with --backbone-bf16", ["backbone_bf16.py"], ["--steps", "3"]),
}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", action="append", choices=list(PARTS), help="run these parts only")
    p.add_argument("--quick", action="store_true", help="smaller runs (smoke test; noisier numbers)")
    args = p.parse_args()
    for key in args.only or list(PARTS):
        title, script, quick_args = PARTS[key]
        cmd = [sys.executable, os.path.join(HERE, *script)] + (quick_args if args.quick else [])
        print(f"\n## {title}  (`{' '.join(['python', 'benchmarks/' + script[0]] + cmd[2:])}`)\n", flush=True)
        start = time.perf_counter()
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
        print(proc.stdout.strip(), flush=True)
        if proc.returncode != 0:
            sys.exit(f"{script[0]} failed with exit code {proc.returncode}")
        print(f"\n({time.perf_counter() - start:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
