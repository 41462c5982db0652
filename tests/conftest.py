"""Shared fixtures: a tiny synthetic corpus (mp4 and frame folders) generated per test session."""

import os
import sys
from argparse import Namespace

import pytest

import fairseq_slt
from fairseq_slt.synthetic.generate import generate

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
