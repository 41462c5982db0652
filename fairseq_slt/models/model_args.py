"""Command-line options shared by the models of both stages, defined once.

The visual encoder's options belong to stage 1 (``slt_lightt``), which trains it, and to stage 2
(``slt_mbart``), which loads it from the stage-1 checkpoint or, for the joint baseline, builds it
afresh; both models are encoder-decoder Transformers with the same size options.
"""

from .visual_frontend import DEFAULT_TEMPORAL_DIM, DEFAULT_TEMPORAL_MODULE


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
