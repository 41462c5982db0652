"""Shared fixtures: a tiny synthetic corpus (mp4 and frame folders) generated per test session, a
stage-1 model trained on it, and a tiny random mBART with a stage-1 checkpoint for stage 2.

Plain helpers (command lines, paths, data roots) are in ``helpers.py``.
"""

import os
from argparse import Namespace

import fairseq_slt
import pytest
import torch
from fairseq.data import Dictionary
from fairseq.models.bart import BARTModel

from fairseq_slt.data.manifest_utils import gen_vocab
from fairseq_slt.models.slt_lightt import SLTLightTModel
from fairseq_slt.models.slt_lightt import base_architecture as lightt_arch
from fairseq_slt.synthetic.generate import generate
from fairseq_slt.tasks.sign_translation import SignTranslationConfig, SignTranslationTask
from fairseq_slt.tasks.target_dictionary import add_mbart_symbols
from helpers import LANGS, TEXTS, StubTask, mbart_args, run_cli, stage1_train_cmd, synth_args

fairseq_slt.register()  # the tests use fairseq's registries and the patches, as --user-dir would


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory):
    """Data root with mp4 manifests; frame folders of the same videos under frames/."""
    out = tmp_path_factory.mktemp("corpus")
    generate(synth_args(out))
    return out


@pytest.fixture(scope="session")
def stage1_run(tiny_corpus, tmp_path_factory):
    """A stage-1 model trained for 3 updates through fairseq-train: (save_dir, log)."""
    save_dir = tmp_path_factory.mktemp("stage1_ckpt")
    log = run_cli(stage1_train_cmd(tiny_corpus, save_dir, 3))
    return save_dir, log


@pytest.fixture(scope="module")
def mbart_dir(tmp_path_factory):
    """A tiny random mBART in the mbart.cc25 layout (model.pt, dict.txt, sentence.bpe.model)."""
    out = tmp_path_factory.mktemp("mbart")
    gen_vocab(TEXTS + ["extra words nobody uses here zebra quartz"], str(out), vocab_size=60, model_type="bpe")
    os.rename(out / "spm.model", out / "sentence.bpe.model")
    d = Dictionary.load(str(out / "dict.txt"))
    add_mbart_symbols(d, LANGS, None)
    torch.manual_seed(0)
    bart = BARTModel.build_model(mbart_args(), StubTask(d))
    torch.save({"args": mbart_args(), "model": bart.state_dict(), "cfg": None}, out / "model.pt")
    return out


@pytest.fixture(scope="module")
def stage1_ckpt(tmp_path_factory, mbart_dir):
    """A stage-1 (slt_lightt) checkpoint over mBART's dictionary, BatchNorm statistics moved:
    (path, model)."""
    out = tmp_path_factory.mktemp("stage1")
    d = Dictionary.load(str(mbart_dir / "dict.txt"))
    args = Namespace(arch="slt_lightt", encoder_embed_dim=16, encoder_ffn_embed_dim=32,
                     encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
                     decoder_attention_heads=2, temporal_dim=8, temporal_module="K3,P2")
    lightt_arch(args)
    torch.manual_seed(1)
    model = SLTLightTModel.build_model(args, StubTask(d))
    model.train()
    model.encoder.visual(torch.randn(2, 6, 3, 32, 32), torch.tensor([6, 4]))  # move BN stats
    path = out / "checkpoint_best.pt"
    torch.save({"cfg": {"model": args}, "model": model.state_dict(), "task_state": stage1_task_state(out, mbart_dir)},
               path)
    return path, model


def stage1_task_state(out, mbart_dir) -> dict:
    """The ``task_state`` fairseq-train writes for a stage 1 over mBART's dictionary and the video
    settings of :func:`helpers.stage2_data_root` (its records of the dictionary and video settings)."""
    (out / "config.yaml").write_text(
        f"vocab_filename: {mbart_dir / 'dict.txt'}\nvideo: {{resize: 48, crop: 48, keep_ratio: 0.25}}\n"
    )
    return SignTranslationTask.setup_task(SignTranslationConfig(data=str(out))).state_dict()
