"""Spatial video transforms, built from the data config with torchvision's ``transforms.v2``.

A v2 transform applied to a ``T x C x H x W`` tensor draws its random parameters once and applies
them to every frame, so a video is cropped, rotated, scaled and shifted consistently over time.

Defaults follow GFSLT-VLP, which the paper builds on: resize 256 / crop 224 (random in training,
centre in evaluation) and, in training, rotate (30 deg), scale (+-20%) and translate (10 px), each
with p=0.5; ImageNet normalisation.
"""

from typing import Callable

import torch
from torchvision.transforms import v2

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def build_video_transform(
    resize: int,
    crop: int,
    train: bool,
    rotate: float = 30.0,
    scale: float = 0.2,
    translate: float = 10.0,
    p: float = 0.5,
) -> Callable[[torch.Tensor], torch.Tensor]:
    """``T x H x W x 3`` uint8 frames -> ``T x 3 x crop x crop`` normalised float32.

    ``resize`` is the size of the shorter side before cropping; ``translate`` is in pixels of the
    cropped frame. Augmentations with a zero magnitude are left out.
    """
    ops = [v2.Resize(resize, antialias=True)]
    ops.append(v2.RandomCrop(crop) if train else v2.CenterCrop(crop))
    if train:
        if rotate > 0:
            ops.append(v2.RandomApply([v2.RandomRotation(rotate)], p=p))
        if scale > 0:
            ops.append(v2.RandomApply([v2.RandomAffine(degrees=0, scale=(1 - scale, 1 + scale))], p=p))
        if translate > 0:
            shift = min(translate / crop, 1.0)
            ops.append(v2.RandomApply([v2.RandomAffine(degrees=0, translate=(shift, shift))], p=p))
    ops += [v2.ToDtype(torch.float32, scale=True), v2.Normalize(IMAGENET_MEAN, IMAGENET_STD)]
    pipeline = v2.Compose(ops)

    def apply(frames: torch.Tensor) -> torch.Tensor:
        # T x H x W x 3 (uint8) -> T x 3 x H x W
        return pipeline(frames.permute(0, 3, 1, 2).contiguous())

    return apply
