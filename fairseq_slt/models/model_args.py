"""Command-line options shared by the models of both stages, defined once.

The visual encoder's options belong to stage 1 (``slt_lightt``), which trains it, and to stage 2
(``slt_mbart``), which loads it from the stage-1 checkpoint or, for the joint baseline, builds it
afresh; both models are encoder-decoder Transformers with the same size options.
"""

import logging
from typing import Optional

import torch

from .visual_frontend import DEFAULT_TEMPORAL_DIM, DEFAULT_TEMPORAL_MODULE

logger = logging.getLogger(__name__)


def add_visual_encoder_args(parser) -> None:
    """Options of the visual encoder (ResNet-18 + local temporal module)."""
    parser.add_argument("--resnet-pretrained", type=str, metavar="imagenet|none|PATH",
                        help="ResNet-18 initialisation: 'imagenet' (torchvision's ResNet18_Weights."
                        "IMAGENET1K_V1 from torch's hub cache under $TORCH_HOME, downloaded when "
                        "missing and online; the paper's), a torchvision state dict file, or 'none' "
                        "(random); not given: random, with a warning")
    parser.add_argument("--temporal-module", type=str, metavar="SPEC",
                        help="local temporal module: comma-separated K<k> (Conv1d+BN+ReLU, 'same' "
                        f"padding) and P<k> (max-pool) items; default and paper: '{DEFAULT_TEMPORAL_MODULE}'")
    parser.add_argument("--temporal-dim", type=int, metavar="N",
                        help="channels of the sign-wise features out of the temporal module "
                        f"(default {DEFAULT_TEMPORAL_DIM})")
    parser.add_argument("--backbone-bf16", action="store_true",
                        help="run the ResNet-18 under torch.autocast in bfloat16, on CPU or CUDA; its "
                        "weights and gradients, and the temporal module, stay float32. fairseq's "
                        "--amp/--fp16 are CUDA-only: this is the CPU's mixed precision. On a CPU with "
                        "native bfloat16 (AVX512-BF16, AMX) it makes the visual encoder's training "
                        "step faster (benchmarks/backbone_bf16.py); without, slower. Not the "
                        "paper's setting; not with --fp16 (use --amp). Stored in the checkpoint: decoding it "
                        "does the same")


def add_stage2_args(parser) -> None:
    """Options of every stage-2 model: the stage-1 visual encoder, the LLM-adapter, and the joint
    baseline's switch (plus the visual encoder's own options)."""
    parser.add_argument("--stage1-checkpoint", type=str, metavar="PATH",
                        help="slt_lightt checkpoint whose visual encoder (ResNet-18 + temporal "
                        "module) is loaded and frozen")
    parser.add_argument("--llm-adapter-hidden-dim", type=int, metavar="N",
                        help="hidden size of the LLM-adapter MLP (default: the LLM's width)")
    parser.add_argument("--train-visual-encoder", action="store_true",
                        help="do NOT freeze the visual encoder: the joint end-to-end baseline of the "
                        "paper's Table 4. Without --stage1-checkpoint the visual encoder starts from "
                        "--resnet-pretrained (ImageNet) or random weights, shaped by --temporal-module "
                        "and --temporal-dim")
    add_visual_encoder_args(parser)


def backbone_dtype(args) -> Optional[torch.dtype]:
    """The backbone's autocast type from ``--backbone-bf16`` (``None``: no autocast of ours); warns
    where neither CUDA nor a CPU with native bfloat16 is there to make it faster."""
    if not getattr(args, "backbone_bf16", False):
        return None
    if getattr(args, "fp16", False) or getattr(args, "memory_efficient_fp16", False):
        raise ValueError(
            "--backbone-bf16 cannot run with --fp16: that turns the weights to float16, which a "
            "bfloat16 autocast cannot mix with; use --amp (float16 autocast, float32 weights) or "
            "--bf16, or drop --backbone-bf16"
        )
    if not torch.cuda.is_available() and not cpu_has_native_bf16():
        logger.warning(
            "--backbone-bf16: this CPU has no native bfloat16 (AVX512-BF16 / AMX), so the ResNet "
            "will run slower than in float32; drop the flag"
        )
    return torch.bfloat16


def cpu_has_native_bf16() -> bool:
    """Whether oneDNN runs bfloat16 natively on this CPU (a private torch probe; False if gone)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def add_transformer_size_args(parser, model: str) -> None:
    """Layers, widths, heads and dropout of the encoder-decoder Transformer (``model`` names it in
    the help: Light-T in stage 1, mBART in stage 2)."""
    for side in ("encoder", "decoder"):
        parser.add_argument(f"--{side}-embed-dim", type=int, metavar="N", help=f"{model} {side} width")
        parser.add_argument(f"--{side}-ffn-embed-dim", type=int, metavar="N", help=f"{model} {side} FFN dim")
        parser.add_argument(f"--{side}-layers", type=int, metavar="N", help=f"{model} {side} layers")
        parser.add_argument(f"--{side}-attention-heads", type=int, metavar="N", help=f"{model} {side} heads")
    parser.add_argument("--dropout", type=float, metavar="D", help="dropout probability")
    parser.add_argument("--attention-dropout", type=float, metavar="D", help="attention dropout")
