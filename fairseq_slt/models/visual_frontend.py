"""The visual encoder shared by both stages: ResNet-18 per frame -> local temporal module.

FLa-LLM (Chen et al., LREC-COLING 2024, Sec. 3.1): a ResNet-18 applied to every frame gives
512-d frame features; a local temporal module (Conv1D + BatchNorm + ReLU over time) turns them
into "sign-wise" features. Stage 2 loads this module from the stage-1 checkpoint and freezes it.

Padding is handled so that a video encodes the same alone as in a padded batch (in eval mode):
only the real frames go through the backbone, padded time steps are zeroed before every
convolution (exactly what the convolution's own zero padding shows a video alone), excluded from
the BatchNorm statistics and set to -inf before max pooling.
"""

import contextlib
import logging
import os
import re
from typing import List, Optional, Tuple

import torch
import torch.nn as nn
import torchvision

logger = logging.getLogger(__name__)

RESNET18_DIM = 512
# the paper's local temporal module: one Conv1D (kernel 5) + BatchNorm + ReLU, 1024 channels
DEFAULT_TEMPORAL_MODULE = "K5"
DEFAULT_TEMPORAL_DIM = 1024


# length arithmetic of the visual encoder (pure functions)

def parse_temporal_spec(spec: str) -> List[tuple]:
    """Parse a local temporal module spec such as ``"K5"`` or ``"K5,P2,K5,P2"`` (GFSLT-VLP's
    notation): ``K<k>`` is a Conv1d of kernel k with 'same' padding + BatchNorm + ReLU, ``P<k>``
    a max-pool of kernel and stride k."""
    layers = []
    for tok in spec.replace(" ", "").split(","):
        m = re.fullmatch(r"([KP])(\d+)", tok)
        if m is None or int(m.group(2)) < 1:
            raise ValueError(f"bad temporal module spec {spec!r}: expected items like K5 or P2, got {tok!r}")
        layers.append((m.group(1), int(m.group(2))))
    return layers


def tconv_out_lengths(lengths: torch.Tensor, spec: str) -> torch.Tensor:
    """Output lengths of the local temporal module for input ``lengths``.

    'Same'-padded convolutions keep the length (an even kernel loses one step); a pool of size k
    floors the length by k and keeps at least one step.
    """
    out = lengths.clone()
    for kind, k in parse_temporal_spec(spec):
        if kind == "K":
            out = out + 2 * ((k - 1) // 2) - (k - 1)
        else:
            out = torch.div(out, k, rounding_mode="floor")
        out = out.clamp(min=1)
    return out


def lengths_to_padding_mask(lengths: torch.Tensor, max_len: Optional[int] = None) -> torch.Tensor:
    """``B`` lengths -> ``B x T`` bool mask, True at padded positions (fairseq's convention)."""
    max_len = int(lengths.max()) if max_len is None else max_len
    return torch.arange(max_len, device=lengths.device)[None, :] >= lengths[:, None]


RESNET_IMAGENET = "imagenet"  # torchvision's ResNet18_Weights.IMAGENET1K_V1 (the paper's init)
RESNET_NONE = "none"  # an explicit random initialisation


def imagenet_weights_file() -> str:
    """The local file of torchvision's ``ResNet18_Weights.IMAGENET1K_V1``, in torch's hub cache
    (``$TORCH_HOME/hub/checkpoints/``); downloaded there by torchvision when missing and online.
    Offline and missing: an error naming the file, where to put it and where it comes from."""
    weights = torchvision.models.ResNet18_Weights.IMAGENET1K_V1
    path = os.path.join(torch.hub.get_dir(), "checkpoints", os.path.basename(weights.url))
    if os.path.isfile(path):
        return path
    try:
        torch.hub.load_state_dict_from_url(weights.url, progress=False, check_hash=True)
    except Exception as e:  # no network (URLError, timeout), or a corrupt download
        raise FileNotFoundError(
            f"--resnet-pretrained imagenet: torchvision's ResNet-18 ImageNet weights are not in "
            f"{path} and could not be downloaded ({' '.join(str(e).split())[:120]}); copy "
            f"{os.path.basename(weights.url)} from {weights.url} to {path} (or set TORCH_HOME), or "
            "pass the file's path"
        ) from e
    return path


def resolve_resnet_init(spec: Optional[str]) -> Optional[str]:
    """``--resnet-pretrained``: ``imagenet`` (torchvision's weights API, the paper's choice), a
    file path, or ``none`` / nothing for a random initialisation. Returns the file to load or
    None."""
    if not spec or spec.strip().lower() == RESNET_NONE:
        return None
    if spec.strip().lower() == RESNET_IMAGENET:
        return imagenet_weights_file()
    return spec


def build_resnet18(pretrained: Optional[str] = None, from_checkpoint: bool = False) -> nn.Module:
    """torchvision ResNet-18 without its classifier (``N x 3 x H x W -> N x 512``).

    ``pretrained`` is ``imagenet`` (torchvision's ``ResNet18_Weights.IMAGENET1K_V1`` from torch's
    hub cache, downloaded when missing and online), a local file, or ``none`` / None (random). The
    file is a torchvision state dict (``resnet18-*.pth``) or a checkpoint holding one under
    ``state_dict`` or ``model`` (torchvision's reference training script), keys with or without
    DataParallel's ``module.`` prefix; the classifier (``fc.*``) may be there or not, it is
    dropped. Any other file is an error naming it. A random initialisation is logged (a warning
    unless ``none`` was asked for). ``from_checkpoint``: the weights come from a checkpoint loaded
    next (stage 2, decoding, resuming), so nothing is loaded or logged here.
    """
    from ..checkpoints import RefusedPickleError, load_torch_file

    net = torchvision.models.resnet18(weights=None)
    if from_checkpoint:
        net.fc = nn.Identity()
        return net
    explicit_none = bool(pretrained) and pretrained.strip().lower() == RESNET_NONE
    pretrained_path = resolve_resnet_init(pretrained)
    if pretrained_path:
        if not os.path.isfile(pretrained_path):
            raise FileNotFoundError(
                f"ResNet-18 weights not found: {pretrained_path} (give a torchvision resnet18 "
                "state dict, e.g. resnet18-f37072fd.pth)"
            )
        try:
            state = load_torch_file(pretrained_path, "ResNet-18 weights")
        except RefusedPickleError as e:
            raise ValueError(
                f"{pretrained_path} pickles {e.global_name or 'an object'} beyond weights (a whole "
                "model?): save its state dict instead, torch.save(model.state_dict(), path)"
            ) from e
        for key in ("state_dict", "model"):
            if isinstance(state, dict) and isinstance(state.get(key), dict):
                state = state[key]
                break
        if not (isinstance(state, dict) and state and all(torch.is_tensor(v) for v in state.values())):
            raise ValueError(
                f"{pretrained_path} holds no ResNet-18 state dict (a dict of tensors, or one under "
                "'state_dict' / 'model'): give torchvision's resnet18-*.pth or a checkpoint of it"
            )
        state = {k[len("module."):] if k.startswith("module.") else k: v for k, v in state.items()}
        backbone = {k: v for k, v in state.items() if not k.startswith("fc.")}
        try:
            result = net.load_state_dict(backbone, strict=False)
        except RuntimeError as e:  # shapes
            raise ValueError(f"{pretrained_path} is not a ResNet-18: {' '.join(str(e).split())[:300]}") from e
        missing = [k for k in result.missing_keys if not k.startswith("fc.")]
        if missing or result.unexpected_keys:
            raise ValueError(
                f"{pretrained_path} is not a torchvision ResNet-18 state dict: {len(missing)} missing "
                f"keys {missing[:3]}, {len(result.unexpected_keys)} unexpected {result.unexpected_keys[:3]}"
            )
        logger.info(f"ResNet-18 initialised from {pretrained_path}")
    elif explicit_none:
        logger.info("ResNet-18 is randomly initialised (--resnet-pretrained none)")
    else:
        logger.warning(
            "ResNet-18 is randomly initialised (no --resnet-pretrained given); the paper starts "
            "from ImageNet weights: --resnet-pretrained imagenet"
        )
    net.fc = nn.Identity()
    return net


def fuse_batchnorm(net: nn.Module) -> nn.Module:
    """Fold every BatchNorm2d of an eval-mode torchvision ResNet into the convolution before it
    and store the weights channels-last (inference only: the statistics are frozen into the
    weights). Returns ``net``, modified."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    if net.training:
        raise ValueError("fuse_batchnorm is for inference: call .eval() first")
    net.conv1, net.bn1 = fuse_conv_bn_eval(net.conv1, net.bn1), nn.Identity()
    for stage in (net.layer1, net.layer2, net.layer3, net.layer4):
        for block in stage:
            block.conv1, block.bn1 = fuse_conv_bn_eval(block.conv1, block.bn1), nn.Identity()
            block.conv2, block.bn2 = fuse_conv_bn_eval(block.conv2, block.bn2), nn.Identity()
            if block.downsample is not None:
                block.downsample = nn.Sequential(fuse_conv_bn_eval(*block.downsample))
    return net.to(memory_format=torch.channels_last)


class MaskedBatchNorm1d(nn.BatchNorm1d):
    """BatchNorm over time whose statistics use the valid (unpadded) steps only."""

    def forward(self, x: torch.Tensor, padding_mask: torch.Tensor) -> torch.Tensor:
        # x: B x C x T, padding_mask: B x T (True = pad)
        x_btc = x.transpose(1, 2)
        valid = ~padding_mask
        out = torch.zeros_like(x_btc)
        out[valid] = super().forward(x_btc[valid])  # N x C
        return out.transpose(1, 2)


class TemporalModule(nn.Module):
    """Local temporal module: ``K<k>`` = Conv1d('same') + BatchNorm + ReLU, ``P<k>`` = max-pool.

    The paper uses one Conv1D + BN + ReLU ("K5"); GFSLT-VLP used "K5,P2,K5,P2".
    """

    def __init__(self, spec: str, in_dim: int, hidden_dim: int):
        super().__init__()
        self.spec = spec
        self.layers = nn.ModuleList()
        dim = in_dim
        for kind, k in parse_temporal_spec(spec):
            if kind == "K":
                conv = nn.Conv1d(dim, hidden_dim, kernel_size=k, padding=(k - 1) // 2)
                self.layers.append(nn.ModuleList([conv, MaskedBatchNorm1d(hidden_dim)]))
                dim = hidden_dim
            else:
                self.layers.append(nn.MaxPool1d(kernel_size=k, stride=k))
        self.out_dim = dim

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        # x: B x T x C -> B x C x T
        x = x.transpose(1, 2)
        for layer in self.layers:
            mask = lengths_to_padding_mask(lengths, x.size(2))  # B x T
            if isinstance(layer, nn.MaxPool1d):
                k = layer.kernel_size
                x = x.masked_fill(mask[:, None, :], float("-inf"))
                if x.size(2) < k:  # a video shorter than the pool still yields one step
                    x = nn.functional.pad(x, (0, k - x.size(2)), value=float("-inf"))
                x = layer(x)
                lengths = tconv_out_lengths(lengths, f"P{k}")
            else:
                conv, bn = layer
                x = conv(x.masked_fill(mask[:, None, :], 0.0))
                lengths = tconv_out_lengths(lengths, f"K{conv.kernel_size[0]}")
                x = torch.relu(bn(x, lengths_to_padding_mask(lengths, x.size(2))))
        out_mask = lengths_to_padding_mask(lengths, x.size(2))
        x = x.masked_fill(out_mask[:, None, :], 0.0)
        return x.transpose(1, 2), lengths  # B x T' x C'


def backbone_autocast(device_type: str, dtype: Optional[torch.dtype]):
    """``torch.autocast`` in ``dtype`` for the backbone, or no context at all for ``None``: an
    ``autocast(enabled=False)`` would switch off an outer one (fairseq's ``--amp``) as well."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device_type, dtype=dtype)


class SignVisualEncoder(nn.Module):
    """ResNet-18 per frame + local temporal module: ``B x T x 3 x H x W -> B x T' x C``.

    ``resnet_pretrained`` initialises the backbone (see :func:`build_resnet18`);
    ``from_checkpoint``: the weights are loaded from a checkpoint next, nothing is initialised;
    ``backbone_dtype``: ``torch.bfloat16`` runs the ResNet under autocast in that type
    (``--backbone-bf16``), its weights, gradients and output, and the temporal module, stay in
    the input's type; ``None`` (default): no autocast of ours."""

    def __init__(self, temporal_spec: str, temporal_dim: int, resnet_pretrained: Optional[str] = None,
                 from_checkpoint: bool = False, backbone_dtype: Optional[torch.dtype] = None):
        super().__init__()
        self.backbone = build_resnet18(resnet_pretrained, from_checkpoint=from_checkpoint)
        self.temporal = TemporalModule(temporal_spec, RESNET18_DIM, temporal_dim)
        self.out_dim = self.temporal.out_dim
        self.backbone_dtype = backbone_dtype

    def frame_features(self, frames: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Run the backbone on the real frames only: ``B x T x 3 x H x W -> B x T x 512``."""
        bsz, max_len = frames.shape[:2]
        valid = ~lengths_to_padding_mask(lengths, max_len)  # B x T
        # channels-last input: oneDNN (CPU) and cuDNN under AMP convolve NHWC faster; the weights
        # stay contiguous, so their gradients do too (fairseq's fp16 optimizer and legacy DDP
        # flatten gradients with .view)
        x = frames[valid].contiguous(memory_format=torch.channels_last)  # N x 3 x H x W
        with backbone_autocast(x.device.type, self.backbone_dtype):
            feats = self.backbone(x)  # N x 512
        feats = feats.to(frames.dtype)  # back to the input's type, the temporal module's
        out = feats.new_zeros(bsz, max_len, feats.size(-1))
        out[valid] = feats
        return out

    def forward(self, frames: torch.Tensor, lengths: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        x = self.frame_features(frames, lengths)  # B x T x 512
        return self.temporal(x, lengths)  # B x T' x C, B


class SignEncoderMixin:
    """The interface of our encoders (both stages) to the task, norm logging and inference.

    * :attr:`visual_encoder`: the :class:`SignVisualEncoder` (ResNet-18 + local temporal module),
      unwrapped where stage 2 freezes it;
    * :attr:`visual_frozen`: whether it is frozen (stage 2's factorized default);
    * :attr:`accepts_cached_features`: whether ``forward`` also takes cached sign-wise features
      (``B x T' x C``, ``fairseq-slt-cache-features``) in place of frames; only a frozen visual
      encoder has features that a cache can hold.
    """

    visual: nn.Module

    @property
    def visual_encoder(self) -> "SignVisualEncoder":
        return self.visual

    @property
    def visual_frozen(self) -> bool:
        return False

    @property
    def accepts_cached_features(self) -> bool:
        return False


class MLPAdapter(nn.Module):
    """MLP with one hidden layer (the paper's VL-Adapter and LLM-Adapter): ``... x C -> ... x D``."""

    def __init__(self, in_dim: int, hidden_dim: int, out_dim: int, dropout: float = 0.0):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(in_dim, hidden_dim), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden_dim, out_dim)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
