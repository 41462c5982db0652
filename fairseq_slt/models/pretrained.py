"""Loading pre-trained components: the stage-1 visual encoder and an mBART directory.

Strict by default (fairseq's ``load_pretrained_component_from_model`` convention): a missing file,
a checkpoint of another architecture or sizes that do not match are errors that say what to do.
"""

import logging
import os
from argparse import Namespace
from typing import Dict, Iterable, Tuple

import torch
import torch.nn as nn

from .visual_frontend import SignVisualEncoder

logger = logging.getLogger(__name__)

STAGE1_ARCHS = ("slt_lightt", "slt_lightt_tiny")
MBART_FILES = ("model.pt", "dict.txt", "sentence.bpe.model")


def checkpoint_model_args(state: Dict) -> Namespace:
    """The model arguments of a fairseq checkpoint (``cfg.model`` or legacy ``args``)."""
    cfg = state.get("cfg") or {}
    model_cfg = cfg.get("model") if isinstance(cfg, dict) else getattr(cfg, "model", None)
    if model_cfg is None and state.get("args") is not None:
        model_cfg = state["args"]
    if model_cfg is None:
        raise ValueError("the checkpoint holds no model configuration (cfg.model or args)")
    if isinstance(model_cfg, Namespace):
        return model_cfg
    return Namespace(**dict(model_cfg))


def load_checkpoint_state(path: str) -> Dict:
    """A fairseq checkpoint as saved (torch's weights-only loader with our allow-list); unlike
    ``checkpoint_utils.load_checkpoint_to_cpu`` it does not rebuild the training config."""
    return torch.load(path, map_location="cpu")


def prefixed_state(state_dict: Dict[str, torch.Tensor], prefix: str) -> Dict[str, torch.Tensor]:
    """Entries under ``prefix`` with the prefix removed."""
    return {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}


def load_stage1_visual_encoder(path: str) -> Tuple[SignVisualEncoder, Namespace]:
    """Build the visual encoder (ResNet-18 + local temporal module) of a stage-1 checkpoint and
    load its weights strictly (``encoder.visual.*``)."""
    if not path:
        raise ValueError(
            "--stage1-checkpoint is required: the slt_lightt checkpoint of stage 1 (or "
            "--train-visual-encoder for the joint end-to-end baseline)"
        )
    if not os.path.isfile(path):
        raise FileNotFoundError(f"stage-1 checkpoint not found: {path} (train stage 1 first)")
    state = load_checkpoint_state(path)
    args = checkpoint_model_args(state)
    arch = getattr(args, "arch", None) or getattr(args, "_name", None)
    if arch not in STAGE1_ARCHS:
        raise ValueError(
            f"{path} is a checkpoint of --arch {arch}, not of stage 1 ({', '.join(STAGE1_ARCHS)})"
        )
    visual = SignVisualEncoder(args.temporal_module, args.temporal_dim, resnet_pretrained=None)
    weights = prefixed_state(state["model"], "encoder.visual.")
    try:
        visual.load_state_dict(weights, strict=True)
    except RuntimeError as e:
        raise ValueError(f"{path}: the visual encoder weights do not match its configuration: {e}") from e
    logger.info(
        f"visual encoder loaded from {path} (temporal module {args.temporal_module}, "
        f"{args.temporal_dim} channels)"
    )
    return visual, args


def freeze(module: nn.Module) -> None:
    """Turn off gradients; :class:`FrozenModule` keeps BatchNorm/dropout in eval mode."""
    module.requires_grad_(False)
    module.eval()


class FrozenModule(nn.Module):
    """Wraps a module that stays in eval mode (BatchNorm statistics, dropout) and has no
    gradients, whatever ``.train()`` is called on its parents (paper Sec. 3.2: the visual
    encoder, backbone AND local temporal module, is fully frozen in stage 2)."""

    def __init__(self, module: nn.Module):
        super().__init__()
        self.module = module
        freeze(module)

    def train(self, mode: bool = True):
        super().train(mode)
        self.module.eval()
        return self

    def forward(self, *args, **kwargs):
        with torch.no_grad():
            return self.module(*args, **kwargs)


def check_mbart_dir(path: str) -> None:
    if not path:
        return
    if not os.path.isdir(path):
        raise FileNotFoundError(f"mBART directory not found: {path}")
    missing = [f for f in MBART_FILES if not os.path.isfile(os.path.join(path, f))]
    if missing:
        raise FileNotFoundError(
            f"mBART directory {path} lacks {', '.join(missing)} (expected the layout of fairseq's "
            f"mbart.cc25 archive: {', '.join(MBART_FILES)})"
        )


def count_parameters(params: Iterable[nn.Parameter]) -> int:
    return sum(p.numel() for p in params)
