"""Bad inputs through the commands a user runs (fairseq-train): one clear error, no checkpoint.

The unit tests of each case are next to its code (test_data_cfg.py, test_mbart_sources.py,
test_manifest.py); these check that the message reaches the user of the stock CLI.
"""

import os
import shutil
import subprocess

import pytest

from helpers import BIN_DIR, stage1_train_cmd, stage2_data_root, stage2_train_cmd

pytestmark = pytest.mark.slow


def run_failing(cmd, tmp_path):
    proc = subprocess.run([os.path.join(BIN_DIR, cmd[0])] + [str(c) for c in cmd[1:]],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode != 0, proc.stdout[-2000:]
    assert not list(tmp_path.rglob("checkpoint_last.pt"))
    return proc.stderr


@pytest.mark.parametrize("config, expect", [
    ("video: {resize: 48, crop: 32\n", "malformed YAML (expected ',' or '}'"),
    ("video: {resize: 48, crop: 32, max_frames: 0}\n", "video.max_frames"),
])
def test_fairseq_train_on_a_broken_config(tiny_corpus, tmp_path, config, expect):
    data = shutil.copytree(tiny_corpus, tmp_path / "data")
    text = (data / "config.yaml").read_text()
    keep = "".join(line + "\n" for line in text.splitlines() if not line.startswith(("video", "  ")))
    (data / "config.yaml").write_text(keep + config)
    err = run_failing(stage1_train_cmd(data, tmp_path / "ckpt", 1), tmp_path)
    assert f"{data / 'config.yaml'}" in err and expect in err, err[-2000:]


def test_fairseq_train_stage2_with_a_truncated_stage1_checkpoint(tiny_corpus, mbart_dir, tmp_path):
    data = stage2_data_root(tiny_corpus, mbart_dir, tmp_path / "data")
    stage1 = tmp_path / "stage1.pt"
    stage1.write_bytes(b"PK\x03\x04" + b"\0" * 200)  # the start of a zip-format torch file, cut
    err = run_failing(stage2_train_cmd(data, mbart_dir, tmp_path / "ckpt", "--stage1-checkpoint", stage1), tmp_path)
    assert f"CheckpointError: {stage1} is truncated or corrupt" in err, err[-2000:]


def test_fairseq_train_stage2_with_mbart_dict_in_another_order(tiny_corpus, mbart_dir, tmp_path):
    from fairseq_slt.mbart.trim import trim

    trimmed = tmp_path / "mbart.trimmed"  # our trim stores dict.txt's checksum in model.pt
    trim(str(mbart_dir), ["hello world", "the weather is nice"], str(trimmed))
    lines = (trimmed / "dict.txt").read_text().splitlines()
    (trimmed / "dict.txt").write_text("\n".join([lines[1], lines[0]] + lines[2:]) + "\n")  # same size
    data = stage2_data_root(tiny_corpus, trimmed, tmp_path / "data")
    err = run_failing(stage2_train_cmd(data, trimmed, tmp_path / "ckpt", "--train-visual-encoder",
                                       "--temporal-module", "K3", "--temporal-dim", "8"), tmp_path)
    assert str(trimmed / "dict.txt") in err and "model.pt" in err, err[-2000:]


def test_fairseq_train_whose_checkpoint_save_fails_leaves_no_tmp_file(tiny_corpus, tmp_path):
    save_dir = tmp_path / "ckpt"
    for name in ("checkpoint_best.pt", "checkpoint_last.pt"):  # directories where the files should go
        (save_dir / name).mkdir(parents=True)
    cmd = stage1_train_cmd(tiny_corpus, save_dir, 1)
    proc = subprocess.run([os.path.join(BIN_DIR, cmd[0])] + [str(c) for c in cmd[1:]],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode != 0 and "Saving checkpoint to" in proc.stderr + proc.stdout, proc.stderr[-2000:]
    assert sorted(os.listdir(save_dir)) == ["checkpoint_best.pt", "checkpoint_last.pt"]
    assert all((save_dir / name).is_dir() and not os.listdir(save_dir / name) for name in os.listdir(save_dir))
