"""How stage 2 trains a Hugging Face LLM: fully, frozen, or with LoRA.

* ``full``: every LLM weight trains (the paper's stage 2; per-module learning rates through
  ``--optimizer adam_grouped --group-lr-scales llm:0.01``);
* ``frozen``: no LLM weight trains; only the LLM-adapter (and the prompt's context) adapts;
* ``lora``: the LLM is frozen and low-rank adapters (``peft``) are trained in its projections
  (Hu et al. 2021; Sign2GPT and SpaMo adapt XGLM / Flan-T5 this way).

In ``frozen`` and ``lora`` the LLM's own weights are not stored in checkpoints (they are read
from the model folder, whose fingerprint the checkpoint records), and ``--llm-dtype`` may hold
them in bfloat16/float16.
"""

from typing import List, Optional

import torch
import torch.nn as nn

MODES = ("full", "frozen", "lora")
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def parse_target_modules(spec: Optional[str]) -> Optional[List[str]]:
    """``"q_proj,v_proj"`` -> ``["q_proj", "v_proj"]``; empty: ``None`` (peft's default for the
    model family)."""
    items = [s.strip() for s in (spec or "").split(",") if s.strip()]
    return items or None


def llm_dtype(mode: str, name: str) -> torch.dtype:
    if mode not in MODES:
        raise ValueError(f"--llm-mode {mode}: expected one of {', '.join(MODES)}")
    if name not in DTYPES:
        raise ValueError(f"--llm-dtype {name}: expected one of {', '.join(DTYPES)}")
    if mode == "full" and name != "float32":
        raise ValueError(
            f"--llm-dtype {name} holds the LLM's weights in {name}, which a fully trained LLM cannot "
            "take (its updates would round away); use --llm-mode lora or frozen, or keep float32 and "
            "use fairseq's --bf16 / --amp for mixed precision"
        )
    return DTYPES[name]


def apply_training_mode(llm: nn.Module, mode: str, rank: int = 8, alpha: float = 16.0,
                        dropout: float = 0.05, target_modules: Optional[str] = None) -> nn.Module:
    """``llm`` set up for ``mode``: untouched (``full``), frozen, or wrapped by peft with LoRA
    adapters (only they train; the LLM's weights are frozen)."""
    if mode == "full":
        llm.requires_grad_(True)
        return llm
    llm.requires_grad_(False)
    if mode == "frozen":
        return llm
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError as e:
        raise ImportError("--llm-mode lora needs peft: pip install -e '.[llm]'") from e
    if rank < 1:
        raise ValueError(f"--lora-rank {rank}: give a rank of at least 1")
    targets = parse_target_modules(target_modules) or default_target_modules(llm)
    config = LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=dropout, target_modules=targets)
    try:
        return get_peft_model(llm, config)
    except ValueError as e:  # peft: no default target modules for this family, or none matched
        raise ValueError(
            f"LoRA cannot wrap this {llm.config.model_type} model ({str(e).splitlines()[0]}); give "
            "--lora-target-modules, the names of its linear layers to adapt (e.g. q_proj,v_proj)"
        ) from e


# the attention projections LoRA adapts by default (Hu et al. 2021: query and value), by layer name
QUERY_VALUE_NAMES = (("q_proj", "v_proj"), ("q", "v"), ("query", "value"), ("c_attn",))


def default_target_modules(llm: nn.Module) -> Optional[List[str]]:
    """peft's default for the family where it has one, else the query and value projections by
    their usual names (mBART and XGLM have none in peft); ``None`` where neither is found."""
    from peft.utils.constants import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as PEFT_DEFAULTS

    if llm.config.model_type in PEFT_DEFAULTS:
        return list(PEFT_DEFAULTS[llm.config.model_type])
    leaves = {name.rsplit(".", 1)[-1] for name, m in llm.named_modules() if isinstance(m, nn.Linear)}
    return next((list(names) for names in QUERY_VALUE_NAMES if set(names) <= leaves), None)


def is_lora_parameter(name: str) -> bool:
    return ".lora_" in name
