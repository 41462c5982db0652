"""Gradient and parameter norms of the last visual-encoder layer and the last LLM layer.

The paper's Figure 2 (Chen et al. 2024) compares these norms during joint training: the
LLM's gradients dominate the visual encoder's, which motivates factorized training. The task logs
them through fairseq's metrics (``--log-norms-interval N``), so they reach the progress bar, the
json log and tensorboard as ``gnorm_visual_last``, ``pnorm_visual_last``, ``gnorm_llm_last`` and
``pnorm_llm_last``.

The gradient is the one the optimizer applies: after fairseq's normalisation by the sample size
and ``--clip-norm`` (which scales every layer alike), with fp16 loss scaling undone.
"""

from collections import defaultdict
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn as nn


def unwrap_model(model: nn.Module) -> nn.Module:
    """Strip distributed wrappers (``.module``) down to the fairseq model."""
    while not hasattr(model, "encoder") and hasattr(model, "module"):
        model = model.module
    return model


def last_layers(model: nn.Module) -> Dict[str, nn.Module]:
    """``visual``: the last block with parameters of the visual encoder (the local temporal
    module's last Conv1d + BatchNorm, or ResNet-18's last block without a temporal conv);
    ``llm``: the last decoder layer (mBART in stage 2, Light-T in stage 1)."""
    model = unwrap_model(model)
    visual = model.encoder.visual_encoder
    blocks = [b for b in visual.temporal.layers if any(True for _ in b.parameters())]
    return {
        "visual": blocks[-1] if blocks else visual.backbone.layer4[-1],
        "llm": model.decoder.layers[-1],
    }


def _fp32_master_grads(optimizer) -> Dict[int, torch.Tensor]:
    """``id(param) -> fp32 gradient`` of fairseq's FP16Optimizer (flat or per-parameter copies),
    in the order its ``_sync_fp16_grads_to_fp32`` writes them."""
    grads = {}
    if optimizer.has_flat_params:
        offsets = defaultdict(int)
        for p in optimizer.fp16_params:
            if not p.requires_grad:
                continue
            device = p.device.index
            flat = optimizer.fp32_params[device].grad
            grads[id(p)] = flat[offsets[device]: offsets[device] + p.numel()]
            offsets[device] += p.numel()
    else:
        for p, p32 in zip(optimizer.fp16_params, optimizer.fp32_params):
            if p.requires_grad and p32.grad is not None:
                grads[id(p)] = p32.grad
    return grads


def applied_grads(params: List[nn.Parameter], optimizer) -> List[Optional[torch.Tensor]]:
    """The gradients fairseq's optimizer is about to apply, for fp32, fp16/bf16 and
    memory-efficient fp16 training (whose pending loss-scale factor is applied here)."""
    factor = getattr(optimizer, "_multiply_factor", 1.0)
    if hasattr(optimizer, "fp32_params") and hasattr(optimizer, "fp16_params"):
        master = _fp32_master_grads(optimizer)
        grads = [master.get(id(p)) for p in params]
    else:
        grads = [p.grad for p in params]
    return [None if g is None else g.float() * factor for g in grads]


def _norm(tensors: List[torch.Tensor]) -> float:
    return float(torch.linalg.vector_norm(torch.stack([t.float().norm() for t in tensors])))


def layer_norms(layer: nn.Module, optimizer) -> Tuple[Optional[float], float]:
    """(gradient L2 norm or None when the layer gets no gradient, parameter L2 norm)."""
    params = [p for p in layer.parameters()]
    grads = [g for g in applied_grads(params, optimizer) if g is not None]
    return (_norm(grads) if grads else None), _norm([p.detach() for p in params])


def last_layer_norms(model: nn.Module, optimizer) -> Dict[str, float]:
    """``{gnorm_visual_last, pnorm_visual_last, gnorm_llm_last, pnorm_llm_last}``; a frozen
    layer (stage 2's visual encoder) has no gradient entry."""
    out = {}
    for name, layer in last_layers(model).items():
        gnorm, pnorm = layer_norms(layer, optimizer)
        if gnorm is not None:
            out[f"gnorm_{name}_last"] = gnorm
        out[f"pnorm_{name}_last"] = pnorm
    return out


def log_last_layer_norms(model: nn.Module, optimizer, update_num: int, interval: int) -> Dict[str, float]:
    """Every ``interval`` updates (``--log-norms-interval``; 0: never), log :func:`last_layer_norms`
    through fairseq's metrics; called before the optimizer's step, so the gradient is the one it
    applies. Returns what was logged (``{}`` between intervals)."""
    if interval <= 0 or update_num % interval != 0:
        return {}
    from fairseq import metrics

    norms = last_layer_norms(model, optimizer)
    for key, value in norms.items():
        metrics.log_scalar(key, value, weight=0, round=4)
    return norms
