"""Reading fairseq checkpoints: the one place that loads a checkpoint file and reads its config.

A fairseq checkpoint stores its configuration as ``cfg`` (an omegaconf dict with ``model`` and
``task`` sections; current fairseq) or as a legacy ``args`` Namespace (fairseq before 0.10, e.g.
the released mBART archives). :func:`checkpoint_section` reads either.
"""

import logging
from argparse import Namespace
from typing import Dict, Optional

import torch

from .checkpoint_safety import fairseq_checkpoint_globals

logger = logging.getLogger(__name__)


def load_checkpoint_state(path: str) -> Dict:
    """A checkpoint file as saved, with torch's weights-only unpickler.

    ``weights_only=True`` is explicit (an environment variable can change torch's default) and the
    pickled globals of fairseq checkpoints are allowed for this call only (torch's
    ``safe_globals`` context), so this does not depend on the plugin's import-time allow-list.
    Unlike ``checkpoint_utils.load_checkpoint_to_cpu`` it does not rebuild the training config.

    Only the globals not yet allowed enter the context: torch's ``safe_globals`` REMOVES its list
    on exit, even entries that were allowed before (torch 2.6-2.14), which would undo the
    import-time allow-list that fairseq's own loader needs.
    """
    allowed = set(torch.serialization.get_safe_globals())
    extra = [g for g in fairseq_checkpoint_globals() if g not in allowed]
    with torch.serialization.safe_globals(extra):
        return torch.load(path, map_location="cpu", weights_only=True)


def checkpoint_section(state: Dict, section: str) -> Optional[Namespace]:
    """``cfg.<section>`` (``model``, ``task``, ...) of a checkpoint as a Namespace; for a legacy
    checkpoint, its ``args`` Namespace (which holds every section's fields); None if neither."""
    cfg = state.get("cfg") or {}
    value = cfg.get(section) if isinstance(cfg, dict) else getattr(cfg, section, None)
    if value is None:
        value = state.get("args")
    if value is None or isinstance(value, Namespace):
        return value
    return Namespace(**dict(value))


def checkpoint_model_args(state: Dict) -> Namespace:
    """The model arguments of a checkpoint (``cfg.model`` or legacy ``args``)."""
    args = checkpoint_section(state, "model")
    if args is None:
        raise ValueError("the checkpoint holds no model configuration (cfg.model or args)")
    return args


def checkpoint_arch(state: Dict) -> Optional[str]:
    """The ``--arch`` a checkpoint was trained with."""
    args = checkpoint_section(state, "model")
    return None if args is None else getattr(args, "arch", None) or getattr(args, "_name", None)


def checkpoint_task_field(state: Dict, key: str) -> Optional[str]:
    """A field of the checkpoint's task config; ``_name`` is the task's name (legacy: ``task``)."""
    value = getattr(checkpoint_section(state, "task"), key, None)
    if value is None and key == "_name":
        value = getattr(state.get("args"), "task", None)
    return value


def registered_model_of_arch(arch: Optional[str]) -> Optional[str]:
    """The registered model name of an ``--arch`` (e.g. ``slt_lightt_tiny`` -> ``slt_lightt``),
    from fairseq's registry; None for an unknown arch."""
    from fairseq.models import ARCH_MODEL_NAME_REGISTRY

    return ARCH_MODEL_NAME_REGISTRY.get(arch) if arch else None
