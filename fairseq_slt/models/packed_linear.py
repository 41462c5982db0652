"""``nn.Linear`` with its weight pre-packed by oneDNN, for beam search on the CPU.

Each beam-search step multiplies every decoder weight with the few rows of the beam (5 at
``--beam 5``), so the decoder is bound by how fast a product reads its weights, not by arithmetic.
oneDNN's ``_linear_pointwise`` on a weight reordered once by ``_reorder_linear_weight`` streams
the weights faster than ``torch.nn.functional.linear`` (MKL) does for such products
(``python benchmarks/inference.py``). The product is the same up to the order of the float
additions.

One switch: :class:`~fairseq_slt.inference.SignTranslator` packs the decoder's linears on the CPU
in fp32 unless ``pack_weights=False`` (``fairseq-slt-translate --no-packed-weights``); never on a
GPU, in bf16 / fp16, in training or in ``fairseq-generate``.

Only for inference: the packed copy is made once and never updated, so the module computes with it
only where no gradient is recorded, autocast is off and the input is a float32 CPU tensor; anywhere else it falls
back to ``F.linear`` on the original weight (which it keeps, so tied weights and code that reads
``.weight`` see the original).
"""

import logging

import torch
import torch.nn as nn
import torch.nn.functional as F

logger = logging.getLogger(__name__)


def packing_available() -> bool:
    """oneDNN's reordered linear is built into this torch and enabled."""
    ops = torch.ops.mkldnn
    return (
        torch.backends.mkldnn.is_available()
        and hasattr(ops, "_reorder_linear_weight")
        and hasattr(ops, "_linear_pointwise")
    )


class PackedLinear(nn.Module):
    """A frozen ``nn.Linear`` computing with a oneDNN pre-packed copy of its weight."""

    def __init__(self, linear: nn.Linear, rows: int):
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.weight, self.bias = linear.weight, linear.bias  # the originals, shared, not copied
        with torch.no_grad():  # out_features x in_features, reordered for about ``rows`` input rows
            self.packed = torch.ops.mkldnn._reorder_linear_weight(linear.weight.detach().float(), rows)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (
            torch.is_grad_enabled() or x.dtype != torch.float32 or x.device.type != "cpu"
            or torch.is_autocast_enabled("cpu")
        ):
            return F.linear(x, self.weight, self.bias)
        bias = None if self.bias is None else self.bias.detach()
        return torch.ops.mkldnn._linear_pointwise(x, self.packed, bias, "none", [], "")

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, packed"


def pack_linears(module: nn.Module, rows: int) -> int:
    """Replace every float32 CPU ``nn.Linear`` inside ``module`` by a :class:`PackedLinear` (for
    inputs of about ``rows`` rows: the beam size times the batch); returns how many. Nothing is
    replaced where oneDNN's packing is not available."""
    if not packing_available():
        logger.info("oneDNN weight packing is not available in this torch: decoder linears left as they are")
        return 0
    replaced = 0
    for parent in list(module.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is nn.Linear and child.weight.dtype == torch.float32 and child.weight.device.type == "cpu":
                setattr(parent, name, PackedLinear(child, rows))
                replaced += 1
    return replaced
