"""Loading pre-trained components (the stage-1 visual encoder) and freezing them.

Strict by default (fairseq's ``load_pretrained_component_from_model`` convention): a missing file,
a checkpoint of another architecture or sizes that do not match are errors that say what to do.
"""

import logging
import os
from argparse import Namespace
from typing import Dict, Iterable, Tuple

import torch
import torch.nn as nn

from ..checkpoints import checkpoint_arch, checkpoint_model_args, load_checkpoint_state, registered_model_of_arch
from .visual_frontend import SignEncoderMixin, SignVisualEncoder

logger = logging.getLogger(__name__)

STAGE1_MODEL = "slt_lightt"  # the registered stage-1 model; its archs come from fairseq's registry


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
    arch = checkpoint_arch(state)
    if registered_model_of_arch(arch) != STAGE1_MODEL:
        raise ValueError(f"{path} is a checkpoint of --arch {arch}, not of stage 1 (a {STAGE1_MODEL} arch)")
    visual = SignVisualEncoder(args.temporal_module, args.temporal_dim, from_checkpoint=True)
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


def count_parameters(params: Iterable[nn.Parameter]) -> int:
    return sum(p.numel() for p in params)


class StageTwoVisualMixin(SignEncoderMixin):
    """The visual side of a stage-2 encoder: the stage-1 visual encoder, frozen (wrapped in
    :class:`FrozenModule`, the factorized default) or trained (the joint baseline). Only a frozen
    one has features that a cache can hold, so only then does ``forward`` take cached features."""

    def set_visual(self, visual: SignVisualEncoder, freeze: bool) -> None:
        self.visual = FrozenModule(visual) if freeze else visual

    @property
    def visual_encoder(self) -> SignVisualEncoder:
        return self.visual.module if self.visual_frozen else self.visual

    @property
    def visual_frozen(self) -> bool:
        return isinstance(self.visual, FrozenModule)

    @property
    def accepts_cached_features(self) -> bool:
        return self.visual_frozen

    def sign_features(self, src_tokens: torch.Tensor, src_lengths: torch.Tensor):
        """``B x T x 3 x H x W`` frames, or ``B x T' x C`` cached sign-wise features -> ``B x T' x C``
        sign-wise features and their lengths."""
        if src_tokens.dim() == 5:
            return self.visual(src_tokens, src_lengths)
        return src_tokens, src_lengths
