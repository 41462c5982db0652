"""benchmarks/gpu.sh: shell syntax, the dry run, and the tiny CPU mode end to end."""

import importlib.util
import os
import re
import shutil
import subprocess
import sys

import pytest

from fairseq_slt.data.video_io import torchcodec_unusable

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
    # the cache build on the GPU, from a stage-1 checkpoint of the same arch saved after 1 update
    ckpt = next(l for l in log.splitlines() if "--save-dir" in l and "stage1" in l)
    assert "--no-save" not in ckpt.split() and ckpt.endswith("--max-update 1 --save-dir "
                                                             f"{tmp_path / 'bench' / 'stage1'} --no-epoch-checkpoints")
    cache = next(l for l in log.splitlines() if "fairseq_slt.cli.cache_features" in l)
    for setting in ("--splits train --train-views 1", "--device cuda --precision bf16", "--batch-size 8",
                    f"--stage1-checkpoint {tmp_path / 'bench' / 'stage1' / 'checkpoint_last.pt'}"):
        assert setting in cache, (setting, cache)
    decode = next(l for l in log.splitlines() if "decoding every frame" in l)
    assert "64 training mp4s: decord, torchcodec (cpu cuda)" in decode
    assert not os.path.exists(tmp_path / "bench" / "data"), "a dry run renders nothing"


def test_tiny_dry_run_keeps_the_cache_and_decoding_on_the_cpu(tmp_path):
    log = run_script(tmp_path, timeout=60, DRY_RUN="1", TINY="1").stderr
    cache = next(l for l in log.splitlines() if "fairseq_slt.cli.cache_features" in l)
    assert "--device cpu --precision bf16" in cache
    assert "torchcodec (cpu)" in log and "cpu cuda" not in log


def test_bad_settings_are_refused(tmp_path):
    proc = run_script(tmp_path, timeout=60, DRY_RUN="1", PRECISIONS="bf16 int8")
    assert proc.returncode != 0 and "unknown precision int8" in proc.stderr
    proc = run_script(tmp_path, timeout=60, DRY_RUN="1", UPDATES="10", WARMUP="10")
    assert proc.returncode != 0 and "WARMUP (10) must be below UPDATES (10)" in proc.stderr
    proc = run_script(tmp_path, timeout=60, DRY_RUN="1", TINY="1", CACHE_PRECISION="fp16")
    assert proc.returncode != 0 and "CACHE_PRECISION=fp16 needs a GPU" in proc.stderr
    proc = run_script(tmp_path, timeout=60, DRY_RUN="1", CACHE_VIEWS="0")
    assert proc.returncode != 0 and "CACHE_VIEWS must be a positive integer" in proc.stderr


@pytest.mark.slow
def test_tiny_cpu_run_prints_the_table(tmp_path):
    """TINY=1: 24 rendered 32-px videos, slt_lightt_tiny on the CPU for 6 updates, the feature
    cache of the 24 videos and the decode rows on the CPU (~2.5 min on 2 shared cores)."""
    proc = run_script(tmp_path, TINY="1", SHARDS="2", FRAME_STORE="1", VIDEO_SIZE="64x36")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    out = proc.stdout
    assert "| precision | videos/s | fairseq bsz x ups | ms/update | loader share | peak GPU GiB | goal met |" in out
    fp32 = re.search(r"^\| fp32 \| ([\d.]+) \| ([\d.]+) \| (\d+) \| ([\d.]+)% \| - \| (yes|no) \|$", out, re.M)
    assert fp32, out
    assert float(fp32.group(1)) > 0 and float(fp32.group(2)) > 0 and 0 <= float(fp32.group(4)) <= 100
    loader = re.search(r"^\| loader only \| ([\d.]+) \| - \| (\d+) \| - \| - \| - \|$", out, re.M)
    assert loader and float(loader.group(1)) > 0, out
    # FRAME_STORE=1: the same run and the loader reading a frame store of the 64x36 videos
    store = re.search(r"^\| fp32, frame store \| ([\d.]+) \| ([\d.]+) \| (\d+) \| ([\d.]+)% \| - \| (yes|no) \|$", out, re.M)
    assert store and float(store.group(1)) > 0, out
    assert re.search(r"^\| loader only, frame store \| ([\d.]+) \| - \| (\d+) \| - \| - \| - \|$", out, re.M), out
    assert "32px mp4 at 64x36" in out
    # the cache build's row from the command's own log line: CPU, so no peak GPU memory
    cache = re.search(r"^\| cache-features bf16 \(cpu\) \| ([\d.]+) \| - \| - \| - \| - \| - \|$", out, re.M)
    assert cache and float(cache.group(1)) > 0, out
    log = (tmp_path / "bench" / "cache.log").read_text()
    assert re.search(r"cache speed: 24 video views in [\d.]+ s \([\d.]+ videos/s\) on cpu, bf16", log), log[-2000:]
    # decoding the mp4s: decord and torchcodec on the CPU (torchcodec: a row saying it is skipped
    # when it is not installed)
    decode = r"^\| decode: {} cpu, (\d+) frames/s \| ([\d.]+) \| - \| - \| - \| - \| - \|$"
    decord = re.search(decode.format("decord"), out, re.M)
    assert decord and 0 < float(decord.group(1)) < 1e6 and float(decord.group(2)) > 0, out
    if importlib.util.find_spec("torchcodec") is None:
        assert "| decode: torchcodec | skipped: torchcodec is not installed |" in out
        assert "note: torchcodec is not usable here" in proc.stderr
    elif torchcodec_unusable():  # installed without FFmpeg's shared libraries (torchcodec >= 0.17 imports)
        assert "| decode: torchcodec | skipped: FFmpeg's shared libraries are not installed |" in out
        assert "note: torchcodec is not usable here" in proc.stderr
    else:
        torchcodec_row = re.search(decode.format("torchcodec"), out, re.M)
        assert torchcodec_row and float(torchcodec_row.group(1)) > 0, out
    assert "torchcodec cuda" not in out
    bench = tmp_path / "bench"
    # 24 videos over the generator shards, one manifest; fairseq's JSON log of the timed run
    assert sum(1 for _ in open(bench / "data" / "train.tsv")) == 25
    assert '| train_inner | {"epoch": 1' in (bench / "train_fp32.log").read_text()
