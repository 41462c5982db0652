"""``--optimizer adam_grouped``: fairseq's Adam with a learning-rate scale per parameter group.

FLa-LLM stage 2 (Chen et al. 2024, Sec. 4.2) fine-tunes mBART with lr 1e-5 and trains the
LLM-adapter with lr 1e-3 under one cosine schedule. Models tag their parameters with a
``param_group`` attribute (the convention of fairseq's composite optimizer); this optimizer puts
each group in its own torch param group whose lr is ``scale x`` the lr that fairseq's scheduler
sets. So a stock ``fairseq-train`` line gives the paper's setting::

    --optimizer adam_grouped --lr 1e-3 --group-lr-scales llm:0.01 --lr-scheduler cosine

fairseq's ``composite`` optimizer can do the same but needs its groups as a nested hydra config,
which ``fairseq-train``'s flat command line cannot express; this keeps one scheduler and one line.

The update itself is torch's fused AdamW by default (``--adam-impl torch``; foreach where fused
is unavailable): the same algorithm as fairseq's Python Adam (bias-corrected Adam with decoupled
weight decay; eps is scaled by the bias correction, a difference of order eps), about 5x faster
per step on mBART-large (``benchmarks/stage2.py``). ``--adam-impl fairseq`` keeps fairseq's own
implementation, which ``--memory-efficient-fp16/bf16`` needs (fp32 moments for fp16 weights).
"""

import logging
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Dict

import torch
from fairseq.optim import register_optimizer
from fairseq.optim.adam import FairseqAdam, FairseqAdamConfig

logger = logging.getLogger(__name__)


@dataclass
class AdamGroupedConfig(FairseqAdamConfig):
    group_lr_scales: str = field(
        default="",
        metadata={
            "help": "comma-separated group:scale pairs, e.g. 'llm:0.01': parameters tagged "
            "param_group='llm' train with 0.01 x --lr; untagged ones ('default') with 1 x"
        },
    )
    adam_impl: str = field(
        default="torch",
        metadata={
            "help": "'torch': torch.optim.AdamW (= fairseq's Adam), fused where the device supports it; "
            "'fairseq': fairseq's Python Adam (needed with --memory-efficient-fp16/bf16)"
        },
    )


def parse_scales(spec: str) -> Dict[str, float]:
    scales = {}
    for item in filter(None, (s.strip() for s in spec.split(","))):
        name, sep, value = item.partition(":")
        if not sep:
            raise ValueError(f"--group-lr-scales: expected group:scale, got {item!r}")
        scales[name.strip()] = float(value)
    return scales


@register_optimizer("adam_grouped", dataclass=AdamGroupedConfig)
class FairseqAdamGrouped(FairseqAdam):
    def __init__(self, cfg: AdamGroupedConfig, params):
        scales = parse_scales(cfg.group_lr_scales)
        groups: "OrderedDict[str, list]" = OrderedDict()
        for p in params:
            groups.setdefault(getattr(p, "param_group", "default"), []).append(p)
        unknown = set(scales) - set(groups)
        if unknown:
            raise ValueError(
                f"--group-lr-scales names groups {sorted(unknown)} that no trainable parameter has "
                f"(groups: {sorted(groups)})"
            )
        param_groups = [
            {"params": ps, "lr_scale": scales.get(name, 1.0), "group_name": name} for name, ps in groups.items()
        ]
        super().__init__(cfg, param_groups)
        if cfg.adam_impl not in ("torch", "fairseq"):
            raise ValueError(f"--adam-impl must be torch or fairseq, not {cfg.adam_impl}")
        self.impl = cfg.adam_impl
        if cfg.adam_impl == "torch":
            self._optimizer = build_torch_adam(param_groups, self.optimizer_config)
        for g in param_groups:
            n = sum(p.numel() for p in g["params"])
            logger.info(f"param group {g['group_name']}: {n / 1e6:.2f}M parameters, lr x {g['lr_scale']}")
        self.set_lr(self.get_lr())

    @property
    def supports_memory_efficient_fp16(self):
        return self.impl == "fairseq"  # torch's Adam would keep fp16 moments for fp16 weights

    @property
    def supports_flat_params(self):
        return False  # keep the groups apart under --fp16/--bf16

    def get_lr(self):
        """The base learning rate (what the scheduler sets, before the group scales)."""
        group = self.param_groups[0]
        return group["lr"] / group.get("lr_scale", 1.0)

    def set_lr(self, lr):
        for group in self.param_groups:
            group["lr"] = lr * group.get("lr_scale", 1.0)


def build_torch_adam(param_groups, config: Dict) -> torch.optim.AdamW:
    """torch's AdamW over fairseq's groups (fairseq's Adam decays weights decoupled, as AdamW):
    fused kernels where every parameter's device and dtype allow them, else foreach."""
    kwargs = dict(lr=config["lr"], betas=tuple(config["betas"]), eps=config["eps"],
                  weight_decay=config["weight_decay"])
    try:
        return torch.optim.AdamW(param_groups, fused=True, **kwargs)
    except (RuntimeError, ValueError) as e:
        logger.info(f"fused AdamW unavailable ({e}); using torch's foreach AdamW")
        return torch.optim.AdamW(param_groups, foreach=True, **kwargs)
