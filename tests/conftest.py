"""Shared fixtures: a tiny synthetic corpus (mp4 and frame folders) generated per test session."""

import os
import subprocess
import sys
from argparse import Namespace

import pytest

import fairseq_slt
from fairseq_slt.synthetic.generate import generate

fairseq_slt.register()  # the tests use fairseq's registries and the patches, as --user-dir would

PLUGIN_DIR = os.path.dirname(os.path.abspath(fairseq_slt.__file__))
BIN_DIR = os.path.dirname(sys.executable)


def synth_args(out, **overrides):
    args = dict(
        out=str(out), seed=3, n_train=12, n_dev=4, n_test=5, signers=2, size=48,
        formats=["mp4", "frames"], source="mp4", vocab_size=40, spm_type="bpe", resize=None, crop=None,
        keep_ratio=0.25, max_frames=300, rotate=5.0, scale=0.05, translate=2.0,
    )
    args.update(overrides)
    return Namespace(**args)


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory):
    """Data root with mp4 manifests; frame folders of the same videos under frames/."""
    out = tmp_path_factory.mktemp("corpus")
    generate(synth_args(out))
    return out


def run_cli(cmd, **kwargs):
    """Run a console script of this venv; fail with its output."""
    proc = subprocess.run(
        [os.path.join(BIN_DIR, cmd[0])] + [str(c) for c in cmd[1:]],
        capture_output=True, text=True, timeout=600, **kwargs,
    )
    assert proc.returncode == 0, f"{cmd[0]} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    return proc.stdout + proc.stderr


TINY_LIGHTT = [
    "--arch", "slt_lightt", "--encoder-embed-dim", "16", "--encoder-ffn-embed-dim", "32",
    "--encoder-layers", "1", "--decoder-layers", "1", "--encoder-attention-heads", "2",
    "--decoder-attention-heads", "2", "--temporal-dim", "16", "--temporal-module", "K5,P2",
]


def stage1_train_cmd(data, save_dir, max_update):
    return [
        "fairseq-train", data, "--user-dir", PLUGIN_DIR, "--task", "sign_translation",
        *TINY_LIGHTT, "--valid-subset", "dev", "--criterion", "label_smoothed_cross_entropy",
        "--label-smoothing", "0.2", "--optimizer", "adam", "--lr", "1e-3", "--max-tokens", "200",
        "--max-update", max_update, "--save-dir", save_dir, "--num-workers", "0",
        "--no-progress-bar", "--log-interval", "1", "--seed", "2",
    ]


@pytest.fixture(scope="session")
def stage1_run(tiny_corpus, tmp_path_factory):
    """A stage-1 model trained for 3 updates through fairseq-train: (save_dir, log)."""
    save_dir = tmp_path_factory.mktemp("stage1_ckpt")
    log = run_cli(stage1_train_cmd(tiny_corpus, save_dir, 3))
    return save_dir, log
