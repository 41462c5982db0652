"""Reading fairseq checkpoints: the one place that loads a checkpoint file and reads its config.

A fairseq checkpoint stores its configuration as ``cfg`` (an omegaconf dict with ``model`` and
``task`` sections; current fairseq) or as a legacy ``args`` Namespace (fairseq before 0.10, e.g.
the released mBART archives). :func:`checkpoint_section` reads either.

Every file is read with torch's weights-only unpickler; a file it cannot read is a
:class:`CheckpointError` of one line that names the file and says what to do (a pickled object
beyond fairseq's config, with the one command that converts a TRUSTED file; a truncated or
corrupt file; a file that is no torch checkpoint at all).
"""

import logging
import os
import re
from argparse import Namespace
from typing import Any, Dict, Optional

import torch

logger = logging.getLogger(__name__)

# how a torch.save file begins: a zip archive (torch >= 1.6), or the legacy format's pickled
# magic number (protocol 2, LONG1 0x1950a86a20f9469cfc6c), e.g. the mbart.cc25 archive of 2020
ZIP_MAGIC = b"PK\x03\x04"
LEGACY_MAGIC = b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19"
CONVERT_COMMAND = "fairseq-slt-convert-mbart"


def fairseq_checkpoint_globals() -> list:
    """The non-tensor globals found in fairseq checkpoints: an ``argparse.Namespace`` (the legacy
    ``args``) and numpy scalars (best validation loss, meter state). What torch's weights-only
    loader is allowed to rebuild, and nothing more."""
    import numpy as np

    if int(np.__version__.split(".")[0]) >= 2:
        from numpy._core.multiarray import scalar
    else:
        from numpy.core.multiarray import scalar
    dtypes = [type(np.dtype(t)) for t in ("float64", "float32", "int64", "int32", "bool")]
    return [Namespace, scalar, np.dtype, *dtypes]


class CheckpointError(ValueError):
    """A file that is not a readable checkpoint; the message names it and says what to do."""


class RefusedPickleError(CheckpointError):
    """A torch file that pickles objects the weights-only loader refuses (``global_name``: the
    first one, as torch names it)."""

    def __init__(self, message: str, global_name: Optional[str] = None):
        super().__init__(message)
        self.global_name = global_name


def convert_command(path: str) -> str:
    """The one command that rewrites a TRUSTED ``path`` as a weights-and-args-only checkpoint:
    for the ``model.pt`` of an mBART directory, the whole directory (stage 2 reads directories)."""
    from .mbart import MBART_FILES

    folder = os.path.dirname(path) or "."
    if os.path.basename(path) == MBART_FILES[0] and all(
        os.path.isfile(os.path.join(folder, f)) for f in MBART_FILES[1:]
    ):
        out = os.path.normpath(os.path.abspath(folder)) + ".weights"
        return f"{CONVERT_COMMAND} --trust-pickle --fairseq-dir {folder} --out {out}"
    stem = path[:-3] if path.endswith(".pt") else path
    return f"{CONVERT_COMMAND} --trust-pickle --checkpoint {path} --out {stem}.weights.pt"


def refused_global(message: str) -> Optional[str]:
    """The global named by torch's weights-only error message (``GLOBAL module.name``)."""
    match = re.search(r"GLOBAL ([\w.]+)", message)
    return match.group(1) if match else None


def _file_kind(path: str) -> str:
    with open(path, "rb") as f:
        head = f.read(len(LEGACY_MAGIC))
    if not head:
        return "empty"
    if head.startswith(ZIP_MAGIC) or head == LEGACY_MAGIC:
        return "torch"
    return "other"


def _first_line(error: BaseException, limit: int = 160) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _plausible_global(name: Optional[str]) -> bool:
    """Whether a refused global names something that can exist (``module.attr``, its top-level
    module installed): a legacy-format file cut inside a name makes the unpickler refuse a
    fragment such as ``collect.``. Nothing is imported."""
    import importlib.util

    parts = (name or "").split(".")
    return len(parts) >= 2 and all(parts) and importlib.util.find_spec(parts[0]) is not None


def is_refused_pickle(path: str, error: BaseException) -> bool:
    """Whether torch's weights-only loader refused a pickled object of a readable torch file."""
    message = str(error)
    if "Weights only load failed" not in message or _file_kind(path) != "torch":
        return False
    name = refused_global(message)
    return name is None or _plausible_global(name)


def describe_load_error(path: str, error: BaseException) -> str:
    """One line for a file torch's weights-only loader could not read."""
    kind = _file_kind(path)
    if is_refused_pickle(path, error):
        name = refused_global(str(error))
        what = f"the pickled global {name}" if name else "a pickled object"
        return (
            f"{path}: torch's weights-only loader refuses {what} (it holds more than weights and "
            f"fairseq's config); if you trust this file, convert it once into a weights-and-args-only "
            f"checkpoint: {convert_command(path)}"
        )
    if kind == "empty":
        return f"{path} is empty: copy or download it again"
    if kind == "torch":
        return (
            f"{path} is truncated or corrupt (torch: {_first_line(error)}): copy or download it again"
        )
    return (
        f"{path} is not a torch checkpoint (it does not start as torch.save writes one): give a "
        "checkpoint written by fairseq-train or torch.save"
    )


def load_torch_file(path: str, what: str = "checkpoint", mmap: bool = False) -> Any:
    """A ``torch.save`` file as saved, with torch's weights-only unpickler (fairseq's globals
    allowed); any failure is a one-line :class:`CheckpointError` naming ``path``. ``mmap``: the
    tensors of a zip-format file are memory-mapped, not read (a legacy-format file is read).

    ``weights_only=True`` is explicit (an environment variable can change torch's default) and the
    pickled globals of fairseq checkpoints are allowed for this call only (torch's
    ``safe_globals`` context), so this does not depend on the plugin's import-time allow-list.

    Only the globals not yet allowed enter the context: torch's ``safe_globals`` REMOVES its list
    on exit, even entries that were allowed before (torch 2.6-2.14), which would undo the
    import-time allow-list that fairseq's own loader needs.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{what} not found: {path}")
    allowed = set(torch.serialization.get_safe_globals())
    extra = [g for g in fairseq_checkpoint_globals() if g not in allowed]
    try:
        with torch.serialization.safe_globals(extra):
            if mmap and is_zip_file(path):
                return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
            return torch.load(path, map_location="cpu", weights_only=True)
    except OSError:
        raise
    except Exception as e:  # the unpickler's errors on a bad file are of many types
        if is_refused_pickle(path, e):
            raise RefusedPickleError(describe_load_error(path, e), refused_global(str(e))) from e
        raise CheckpointError(describe_load_error(path, e)) from e


def is_zip_file(path: str) -> bool:
    """Whether ``path`` is a zip-format torch file (torch >= 1.6's ``torch.save``)."""
    with open(path, "rb") as f:
        return f.read(len(ZIP_MAGIC)) == ZIP_MAGIC


def load_task_state(path: str) -> Dict:
    """The ``task_state`` of a fairseq checkpoint (``{}`` where it has none), read without reading
    its weights: they are memory-mapped and let go of."""
    state = load_torch_file(path, mmap=True)
    task_state = state.get("task_state") if isinstance(state, dict) else None
    return dict(task_state) if isinstance(task_state, dict) else {}


def load_checkpoint_state(path: str) -> Dict:
    """A fairseq checkpoint file as saved (a dict with the ``model`` weights), read by
    :func:`load_torch_file`. Unlike ``checkpoint_utils.load_checkpoint_to_cpu`` it does not
    rebuild the training config."""
    state = load_torch_file(path)
    if not isinstance(state, dict) or not isinstance(state.get("model"), dict):
        raise CheckpointError(
            f"{path} is a torch file but not a fairseq checkpoint (no 'model' weights): give a "
            "checkpoint written by fairseq-train (checkpoint_best.pt / checkpoint_last.pt, or an "
            "mBART directory's model.pt)"
        )
    return state


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

    from . import register

    register()  # our archs
    return ARCH_MODEL_NAME_REGISTRY.get(arch) if arch else None
