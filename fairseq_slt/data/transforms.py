"""Spatial video transforms, built from the data config with torchvision's ``transforms.v2``.

The random parameters (crop offset, rotation, scale, shift) are drawn once per video from a
``torch.Generator`` the dataset passes in, then applied to every frame with torchvision's
functional ops, so a video is cropped, rotated, scaled and shifted consistently over time. Drawing
from a private generator, not the global one, matters: fairseq reads batches in a background
thread, and reseeding the global generator there would race with dropout in the training thread
(runs would not repeat, and augmentation would be correlated with dropout).

Defaults follow GFSLT-VLP, which the paper builds on: resize 256 / crop 224 (random in training,
centre in evaluation) and, in training, rotate (30 deg), scale (+-20%) and translate (10 px), each
with p=0.5; ImageNet normalisation.

The hot path stays in uint8 for as long as it can (see ``benchmarks/loader.py``): frames are
resized and cropped as uint8 (torchvision's vectorised uint8 kernels), rotated/scaled/shifted
(nearest neighbour, so exact on integer values) as floats in [0, 255], and normalised once, in a
pass that also writes the contiguous ``T x 3 x H x W`` layout the model and the collater want.
"""

from typing import Callable, Optional

import torch
from torchvision.transforms.v2 import functional as F

from .frame_buffers import empty_frames

IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]
_MEAN_255 = torch.tensor(IMAGENET_MEAN).mul(255).view(3, 1, 1)
_INV_STD_255 = torch.tensor(IMAGENET_STD).mul(255).reciprocal().view(3, 1, 1)


def normalize_frames(x: torch.Tensor, inplace: bool = False) -> torch.Tensor:
    """``T x 3 x H x W`` frames with values in [0, 255] (uint8 or float, any strides) ->
    contiguous float32 ``(x / 255 - mean) / std`` (ImageNet), in two passes over the output.
    ``inplace`` reuses ``x`` where it is a contiguous float32 tensor."""
    if inplace and x.dtype == torch.float32 and x.is_contiguous():
        out = x
    else:
        out = empty_frames(x.shape)  # contiguous float32, whatever x's layout
        out.copy_(x)
    return out.sub_(_MEAN_255).mul_(_INV_STD_255)


def _uniform(low: float, high: float, g: Optional[torch.Generator]) -> float:
    return low + (high - low) * float(torch.rand((), generator=g))


def build_video_transform(
    resize: int,
    crop: int,
    train: bool,
    rotate: float = 30.0,
    scale: float = 0.2,
    translate: float = 10.0,
    p: float = 0.5,
) -> Callable[..., torch.Tensor]:
    """``T x H x W x 3`` uint8 frames (and a generator) -> ``T x 3 x crop x crop`` float32.

    ``resize`` is the size of the shorter side before cropping; ``translate`` is in pixels of the
    cropped frame. Augmentations with a zero magnitude are left out.
    """
    if resize < crop:
        raise ValueError(f"config.yaml: resize ({resize}) must be at least crop ({crop})")

    def apply(frames: torch.Tensor, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        # T x H x W x 3 uint8 -> T x 3 x H x W view (channels-last strides: uint8 resize fast path)
        x = F.resize(frames.permute(0, 3, 1, 2), [resize], antialias=True)  # T x 3 x H' x W' uint8
        if not train:
            return normalize_frames(F.center_crop(x, [crop, crop]))  # T x 3 x crop x crop
        g = generator
        top = int(torch.randint(0, x.shape[-2] - crop + 1, (), generator=g))
        left = int(torch.randint(0, x.shape[-1] - crop + 1, (), generator=g))
        x = F.crop(x, top, left, crop, crop)
        angle = _uniform(-rotate, rotate, g) if rotate > 0 and float(torch.rand((), generator=g)) < p else 0.0
        factor = _uniform(1 - scale, 1 + scale, g) if scale > 0 and float(torch.rand((), generator=g)) < p else 1.0
        shift = [0, 0]
        if translate > 0 and float(torch.rand((), generator=g)) < p:
            shift = [round(_uniform(-translate, translate, g)), round(_uniform(-translate, translate, g))]
        if angle != 0.0 or factor != 1.0 or shift != [0, 0]:
            # nearest neighbour on [0, 255] floats = the same pixels as on uint8, without the
            # uint8 <-> float round trip torchvision would do; zero fill = black borders
            x = F.affine(empty_frames(x.shape).copy_(x), angle=angle, translate=shift, scale=factor, shear=[0.0, 0.0])
            return normalize_frames(x, inplace=True)  # T x 3 x crop x crop
        return normalize_frames(x)  # T x 3 x crop x crop

    return apply
