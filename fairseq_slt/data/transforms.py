"""Spatial video transforms, built from the data config with torchvision's ``transforms.v2``.

The random parameters (crop offset, rotation, scale, shift) are drawn once per video from a
``torch.Generator`` the dataset passes in, then applied to every frame with torchvision's
functional ops, so a video is cropped, rotated, scaled and shifted consistently over time. Drawing
from a private generator, not the global one, matters: fairseq reads batches in a background
thread, and reseeding the global generator there would race with dropout in the training thread
(runs would not repeat, and augmentation would be correlated with dropout).

Two spatial pipelines, chosen by ``resize`` (the data config's ``video.resize``):

* a ``(height, width)`` pair such as ``(256, 256)``: the whole frame is resized to it, its aspect
  ratio squashed, as GFSLT-VLP (the paper's code base, ``img.resize((256, 256))``) does; nothing
  of the frame is lost before the crop;
* an integer such as ``256``: the shorter side is resized to it, keeping the aspect ratio; on a
  tall frame (PHOENIX14T's 210 x 260) the crop then cuts the top and bottom of the frame.

Either way a ``crop`` x ``crop`` square is cut (random in training, centre in evaluation) and,
in training, rotated (30 deg), scaled (+-20%) and translated (10 px), each with p=0.5 (GFSLT-VLP's
augmentation); ImageNet normalisation.

The hot path stays in uint8 for as long as it can (see ``benchmarks/loader.py``): frames are
resized and cropped as uint8 (torchvision's vectorised uint8 kernels), rotated/scaled/shifted
(nearest neighbour, so exact on integer values) as floats in [0, 255], and normalised once, in a
pass that also writes the contiguous ``T x 3 x H x W`` layout the model and the collater want.
"""

import numbers
from typing import Callable, List, Optional, Sequence, Union

import torch
from torchvision.transforms.v2 import functional as F

from .frame_buffers import FrameBufferPool, empty_frames

IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]
_MEAN_255 = torch.tensor(IMAGENET_MEAN).mul(255).view(3, 1, 1)
_INV_STD_255 = torch.tensor(IMAGENET_STD).mul(255).reciprocal().view(3, 1, 1)

def _is_size(value) -> bool:
    """A positive integer (``True`` is not one)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value > 0


def resize_size(resize: Union[int, Sequence[int]], crop: int) -> List[int]:
    """The ``size`` argument of torchvision's ``resize`` for ``video.resize``: ``[shorter side]``
    for an integer, ``[height, width]`` for a pair (the whole frame squashed to it, GFSLT-VLP).
    A size that is not a positive integer, a pair that is not two of them, or a side smaller than
    ``crop`` is a ``ValueError`` naming the value and the fix."""
    if not _is_size(crop):
        raise ValueError(f"config.yaml: crop ({crop!r}) must be a size in pixels, an integer > 0")
    if isinstance(resize, (list, tuple)):
        if len(resize) != 2 or not all(_is_size(side) for side in resize):
            raise ValueError(
                f"config.yaml: resize {list(resize)!r} must be a [height, width] pair of integers > 0 "
                "(e.g. [256, 256], GFSLT-VLP) or one integer > 0 (the shorter side)"
            )
        if min(resize) < crop:
            raise ValueError(
                f"config.yaml: both sides of resize {list(resize)} must be at least crop ({crop})"
            )
        return [int(resize[0]), int(resize[1])]
    if not _is_size(resize):
        raise ValueError(
            f"config.yaml: resize ({resize!r}) must be an integer > 0 (the shorter side) or a "
            "[height, width] pair of them (e.g. [256, 256], GFSLT-VLP)"
        )
    if resize < crop:
        raise ValueError(f"config.yaml: resize ({resize}) must be at least crop ({crop})")
    return [int(resize)]


def describe_resize(resize: Union[int, Sequence[int]], crop: int) -> str:
    """The spatial pipeline in words, for logs: ``resize 256x256 (whole frame, GFSLT-VLP) -> crop
    224`` for a pair, ``shorter side 256 -> crop 224`` for an integer."""
    size = resize_size(resize, crop)
    if len(size) == 2:
        return f"resize {size[0]}x{size[1]} (whole frame, GFSLT-VLP) -> crop {crop}"
    return f"shorter side {size[0]} -> crop {crop}"


def normalize_frames(x: torch.Tensor, inplace: bool = False, pool: Optional[FrameBufferPool] = None) -> torch.Tensor:
    """``T x 3 x H x W`` frames with values in [0, 255] (uint8 or float, any strides) ->
    contiguous float32 ``(x / 255 - mean) / std`` (ImageNet), in two passes over the output.
    ``inplace`` reuses ``x`` where it is a contiguous float32 tensor; otherwise the output is a new
    tensor (from ``pool`` where one is given, :func:`~.frame_buffers.empty_frames`)."""
    if inplace and x.dtype == torch.float32 and x.is_contiguous():
        out = x
    else:
        out = empty_frames(x.shape, pool=pool)  # contiguous float32, whatever x's layout
        out.copy_(x)
    return out.sub_(_MEAN_255).mul_(_INV_STD_255)


def _uniform(low: float, high: float, g: Optional[torch.Generator]) -> float:
    return low + (high - low) * float(torch.rand((), generator=g))


def build_video_transform(
    resize: Union[int, Sequence[int]],
    crop: int,
    train: bool,
    rotate: float = 30.0,
    scale: float = 0.2,
    translate: float = 10.0,
    p: float = 0.5,
    pool: Optional[FrameBufferPool] = None,
) -> Callable[..., torch.Tensor]:
    """``T x H x W x 3`` uint8 frames (and a generator) -> ``T x 3 x crop x crop`` float32.

    ``resize`` is either the size of the shorter side before cropping (an integer; the aspect
    ratio is kept) or a ``(height, width)`` pair the whole frame is resized to (the aspect ratio
    squashed, GFSLT-VLP's ``img.resize((256, 256))``); see :func:`resize_size`. Then a random
    (training) or centre (evaluation) ``crop`` x ``crop`` square is cut. ``translate`` is in
    pixels of the cropped frame. Augmentations with a zero magnitude are left out.

    The returned function's ``min_size`` attribute is the resize's ``size``: pass it to
    :func:`~.video_io.read_frames` so frames are decoded no larger than needed. ``pool``: the
    float32 frames are allocated from it (the loader's ``--frame-buffer-pool``).
    """
    size = resize_size(resize, crop)

    def apply(frames: torch.Tensor, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        # T x H x W x 3 uint8 -> T x 3 x H x W view (channels-last strides: uint8 resize fast path)
        x = F.resize(frames.permute(0, 3, 1, 2), size, antialias=True)  # T x 3 x H' x W' uint8
        if not train:
            return normalize_frames(F.center_crop(x, [crop, crop]), pool=pool)  # T x 3 x crop x crop
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
            x = F.affine(empty_frames(x.shape, pool=pool).copy_(x), angle=angle, translate=shift, scale=factor, shear=[0.0, 0.0])
            return normalize_frames(x, inplace=True)  # T x 3 x crop x crop
        return normalize_frames(x, pool=pool)  # T x 3 x crop x crop

    # how large the frames must be decoded: the reader may decode smaller (JPEG DCT scaling,
    # scaled video conversion) but not below this (video_io.read_frames' ``min_size``)
    apply.min_size = list(size)
    return apply
