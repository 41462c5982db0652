"""Plain helpers shared by test modules: paths, command lines, tiny model arguments, data roots.

Fixtures live in ``conftest.py``; this module holds only functions and constants, imported as
``from helpers import ...`` (the tests folder is on ``sys.path`` when pytest runs).
"""

import os
import shutil
import subprocess
import sys
from argparse import Namespace

import torch
import yaml
from fairseq.data import Dictionary
from fairseq.models.bart.model import mbart_base_architecture
from torchvision.transforms.v2 import functional as F

import fairseq_slt
from fairseq_slt.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from fairseq_slt.models.slt_mbart import SLTMBartModel
from fairseq_slt.tasks.target_dictionary import add_mbart_symbols

PLUGIN_DIR = os.path.dirname(os.path.abspath(fairseq_slt.__file__))
BIN_DIR = os.path.dirname(sys.executable)


# --------------------------------------------------------------------------- the synthetic corpus


def synth_args(out, **overrides):
    args = dict(
        out=str(out), seed=3, n_train=12, n_dev=4, n_test=5, signers=2, size=48,
        formats=["mp4", "frames"], source="mp4", vocab_size=40, spm_type="bpe", resize=None, crop=None,
        keep_ratio=0.25, max_frames=300, rotate=5.0, scale=0.05, translate=2.0,
    )
    args.update(overrides)
    return Namespace(**args)


def other_root(tiny_corpus, out, **video):
    """The tiny corpus's data root with other video settings (absolute paths to its files)."""
    config = yaml.safe_load((tiny_corpus / "config.yaml").read_text())
    config["video_root"] = str(tiny_corpus)
    config["vocab_filename"] = str(tiny_corpus / "dict.txt")
    config["bpe_tokenizer"]["sentencepiece_model"] = str(tiny_corpus / "spm.model")
    config["video"].update(video)
    out.mkdir()
    (out / "config.yaml").write_text(yaml.safe_dump(config))
    for split in ("train", "dev", "test"):
        shutil.copy(tiny_corpus / f"{split}.tsv", out / f"{split}.tsv")
    return out


# --------------------------------------------------------------------------- console scripts


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


# --------------------------------------------------------------------------- a tiny mBART (stage 2)

LANGS = "de_DE,en_XX"
TEXTS = [
    "tomorrow there will be heavy rain in the north",
    "there will be no wind in the east at the weekend",
    "today there will be bright sunshine in the south",
] * 5


class StubTask:
    def __init__(self, d):
        self.target_dictionary = self.source_dictionary = d
        self.building_from_checkpoint = False


def mbart_args(**kw):
    args = Namespace(
        arch="mbart_base", encoder_layers=2, decoder_layers=2, encoder_embed_dim=16,
        decoder_embed_dim=16, encoder_ffn_embed_dim=32, decoder_ffn_embed_dim=32,
        encoder_attention_heads=2, decoder_attention_heads=2, encoder_normalize_before=True,
        decoder_normalize_before=True, dropout=0.0, max_source_positions=64, max_target_positions=64,
        task="translation_from_pretrained_bart",
    )
    for k, v in kw.items():
        setattr(args, k, v)
    mbart_base_architecture(args)
    return args


def build_stage2(mbart_dir, stage1_path, **kw):
    d = Dictionary.load(str(mbart_dir / "dict.txt"))
    add_mbart_symbols(d, LANGS, "en_XX")
    args = Namespace(stage1_checkpoint=str(stage1_path), mbart_dir=str(mbart_dir), dropout=0.0, **kw)
    return SLTMBartModel.build_model(args, StubTask(d)), d


def stage2_data_root(tiny_corpus, mbart_dir, out):
    """The tiny corpus with mBART's dictionary and sentencepiece model."""
    out.mkdir()
    for split in ("train", "dev", "test"):
        (out / f"{split}.tsv").write_text((tiny_corpus / f"{split}.tsv").read_text())
    (out / "config.yaml").write_text(
        f"video_root: {tiny_corpus}\n"
        f"vocab_filename: {mbart_dir / 'dict.txt'}\n"
        f"bpe_tokenizer: {{bpe: sentencepiece, sentencepiece_model: {mbart_dir / 'sentence.bpe.model'}}}\n"
        "video: {resize: 48, crop: 48, keep_ratio: 0.25}\n"
    )
    return out


STAGE2_TASK = ["--task", "sign_translation", "--langs", LANGS, "--tgt-lang", "en_XX"]


def stage2_train_cmd(data, mbart_dir, save_dir, *model_args):
    return [
        "fairseq-train", data, "--user-dir", PLUGIN_DIR, *STAGE2_TASK, "--arch", "slt_mbart", *model_args,
        "--mbart-dir", mbart_dir, "--valid-subset", "dev", "--criterion", "label_smoothed_cross_entropy",
        "--label-smoothing", "0.2", "--optimizer", "adam_grouped", "--lr", "1e-3", "--group-lr-scales",
        "llm:0.01", "--lr-scheduler", "cosine", "--max-tokens", "200", "--max-update", "3",
        "--save-dir", save_dir, "--num-workers", "0", "--no-progress-bar", "--log-interval", "1",
        "--log-format", "json", "--log-norms-interval", "1",
    ]


# --------------------------------------------------------------------------- reference video transforms


def reference_normalise(x_uint8):
    """ImageNet normalisation written out: uint8 -> [0, 1] -> (x - mean) / std."""
    mean = torch.tensor(IMAGENET_MEAN)[:, None, None]
    std = torch.tensor(IMAGENET_STD)[:, None, None]
    return (x_uint8.float() / 255 - mean) / std


def reference_train_transform(frames, size, crop, seed, rotate, scale, translate, p):
    """The straightforward torchvision training pipeline, with the fast path's draws in its
    order: resize (``[short]`` or ``[h, w]``) -> random crop -> affine on uint8 -> normalise."""
    g = torch.Generator().manual_seed(seed)
    x = F.resize(frames.permute(0, 3, 1, 2), size, antialias=True)
    top = int(torch.randint(0, x.shape[-2] - crop + 1, (), generator=g))
    left = int(torch.randint(0, x.shape[-1] - crop + 1, (), generator=g))
    x = F.crop(x, top, left, crop, crop)

    def uniform(lo, hi):
        return lo + (hi - lo) * float(torch.rand((), generator=g))

    angle = uniform(-rotate, rotate) if float(torch.rand((), generator=g)) < p else 0.0
    factor = uniform(1 - scale, 1 + scale) if float(torch.rand((), generator=g)) < p else 1.0
    shift = [0, 0]
    if float(torch.rand((), generator=g)) < p:
        shift = [round(uniform(-translate, translate)), round(uniform(-translate, translate))]
    x = F.affine(x, angle=angle, translate=shift, scale=factor, shear=[0.0, 0.0])
    return reference_normalise(x)
