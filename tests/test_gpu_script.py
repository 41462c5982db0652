"""benchmarks/gpu.sh: shell syntax, the dry run, and the tiny CPU mode end to end."""

import os
import re
import shutil
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(REPO, "benchmarks", "gpu.sh")

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")


def run_script(tmp_path, timeout=300, **env):
    """Run gpu.sh with this interpreter (not whatever python is on PATH) and a private WORK_DIR."""
    full_env = dict(os.environ, PYTHON=sys.executable, WORK_DIR=str(tmp_path / "bench"), **env)
    return subprocess.run(["bash", SCRIPT], capture_output=True, text=True, timeout=timeout, env=full_env,
                          cwd=str(tmp_path))


def test_syntax():
    proc = subprocess.run(["bash", "-n", SCRIPT], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_dry_run_prints_the_paper_settings(tmp_path):
    proc = run_script(tmp_path, timeout=60, DRY_RUN="1")
    assert proc.returncode == 0, proc.stderr
    log = proc.stderr
    for precision, flag in (("bf16", "--bf16"), ("fp16", "--fp16")):
        line = next(l for l in log.splitlines() if f"steps_{precision}.json" in l)
        assert flag in line.split() and "--arch slt_lightt " in line
        for setting in ("--batch-size 8", "--optimizer sgd --momentum 0.9 --lr 1e-2 --lr-scheduler cosine",
                        "--label-smoothing 0.2", "--disable-validation --no-save"):
            assert setting in line, (setting, line)
    fp32 = next(l for l in log.splitlines() if "steps_fp32.json" in l)
    assert "--bf16" not in fp32 and "--fp16" not in fp32 and "--cpu" not in fp32
    assert "resize 256 / crop 224" in log
    assert not os.path.exists(tmp_path / "bench" / "data"), "a dry run renders nothing"


def test_bad_settings_are_refused(tmp_path):
    proc = run_script(tmp_path, timeout=60, DRY_RUN="1", PRECISIONS="bf16 int8")
    assert proc.returncode != 0 and "unknown precision int8" in proc.stderr
    proc = run_script(tmp_path, timeout=60, DRY_RUN="1", UPDATES="10", WARMUP="10")
    assert proc.returncode != 0 and "WARMUP (10) must be below UPDATES (10)" in proc.stderr


@pytest.mark.slow
def test_tiny_cpu_run_prints_the_table(tmp_path):
    """TINY=1: 24 rendered 32-px videos, slt_lightt_tiny on the CPU for 6 updates (~45 s)."""
    proc = run_script(tmp_path, TINY="1", SHARDS="2")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    out = proc.stdout
    assert "| precision | videos/s | fairseq bsz x ups | ms/update | loader share | peak GPU GiB | goal met |" in out
    fp32 = re.search(r"^\| fp32 \| ([\d.]+) \| ([\d.]+) \| (\d+) \| ([\d.]+)% \| - \| (yes|no) \|$", out, re.M)
    assert fp32, out
    assert float(fp32.group(1)) > 0 and float(fp32.group(2)) > 0 and 0 <= float(fp32.group(4)) <= 100
    loader = re.search(r"^\| loader only \| ([\d.]+) \| - \| (\d+) \| - \| - \| - \|$", out, re.M)
    assert loader and float(loader.group(1)) > 0, out
    bench = tmp_path / "bench"
    # 24 videos over the generator shards, one manifest; fairseq's JSON log of the timed run
    assert sum(1 for _ in open(bench / "data" / "train.tsv")) == 25
    assert '| train_inner | {"epoch": 1' in (bench / "train_fp32.log").read_text()
