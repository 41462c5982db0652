"""A TRUSTED fairseq checkpoint as a weights-and-args-only checkpoint (``fairseq-slt-convert-mbart
--checkpoint`` / ``--fairseq-dir``).

Every loader of the project reads checkpoints with torch's weights-only unpickler, which refuses a
file that pickles objects beyond tensors and fairseq's config (e.g. training state of an old
fairseq). This module rewrites such a file ONCE, when its user says it is trusted
(``--trust-pickle``): it is read with the full unpickler only then (and only after the
weights-only reader refused it; the log says so), and the new file keeps the weights and the
config (``args`` / ``cfg``, reduced to plain values) and nothing else. The result is read back
with the weights-only loader before it replaces anything.
"""

import enum
import logging
import os
import shutil
from argparse import Namespace
from typing import Any, Dict, List, Optional

import torch

from ..checkpoints import CheckpointError, RefusedPickleError, load_checkpoint_state
from . import DICT_KEY, MBART_FILES, check_dict, check_mbart_dir, save_state, weights_and_args_state

logger = logging.getLogger(__name__)

PLAIN = (type(None), bool, int, float, str)


def read_trusted(path: str) -> Dict:
    """``path`` with the weights-only loader, or (only if that refuses it) with the full
    unpickler, which runs the code pickled in the file: for trusted files only."""
    try:
        return load_checkpoint_state(path)
    except RefusedPickleError:
        pass
    logger.warning(
        f"--trust-pickle: reading {path} with torch.load(weights_only=False); the objects pickled "
        "in it run as code, which is safe only for a file from a trusted source"
    )
    state = torch.load(path, map_location="cpu", weights_only=False)
    if not isinstance(state, dict) or not isinstance(state.get("model"), dict):
        raise CheckpointError(f"{path} is not a fairseq checkpoint (no 'model' weights)")
    return state


def plain_config(value: Any, where: str, changed: List[str]) -> Any:
    """``value`` (``args`` / ``cfg``) with only values torch's weights-only loader reads:
    Namespaces and containers are kept, omegaconf configs become dicts, an enum its value, any
    other object its ``str`` (its name is added to ``changed``)."""
    if isinstance(value, PLAIN) or torch.is_tensor(value):
        return value
    if isinstance(value, enum.Enum):
        return plain_config(value.value, where, changed)
    if isinstance(value, Namespace):
        return Namespace(**{k: plain_config(v, f"{where}.{k}", changed) for k, v in vars(value).items()})
    if type(value).__module__.startswith("omegaconf"):
        from omegaconf import OmegaConf

        return plain_config(OmegaConf.to_container(value, resolve=False), where, changed)
    if isinstance(value, dict):
        return {k: plain_config(v, f"{where}.{k}", changed) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain_config(v, f"{where}[{i}]", changed) for i, v in enumerate(value)]
    changed.append(f"{where} ({type(value).__name__})")
    return str(value)


def weights_only_state(state: Dict, path: str, dict_path: Optional[str] = None) -> Dict:
    """The weights and plain config of a checkpoint ``state`` read from ``path``."""
    model = state["model"]
    bad = [k for k, v in model.items() if not torch.is_tensor(v)]
    if bad:
        raise CheckpointError(f"{path}: the model weights hold entries that are not tensors: {bad[:5]}")
    changed: List[str] = []
    args = plain_config(state.get("args"), "args", changed)
    cfg = plain_config(state.get("cfg"), "cfg", changed)
    if changed:
        logger.warning(f"{path}: config values stored as text: {', '.join(changed[:10])}")
    if dict_path:
        check_dict(state, path, dict_path)  # a stored checksum must match; else the log says so
    dropped = sorted(k for k in state if k not in ("args", "cfg", "model", DICT_KEY))
    if dropped:
        logger.info(f"{path}: dropped {', '.join(dropped)} (training state)")
    return weights_and_args_state(model, args, cfg, dict_path)


def convert_checkpoint(path: str, out: str, trust_pickle: bool = False, dict_path: Optional[str] = None) -> Dict:
    """Write the weights-and-args-only checkpoint of ``path`` to ``out``; returns it as read back."""
    if os.path.abspath(path) == os.path.abspath(out):
        raise ValueError(f"--out {out} is the input itself: give a new file")
    state = read_trusted(path) if trust_pickle else load_checkpoint_state(path)
    folder = os.path.dirname(os.path.abspath(out))
    os.makedirs(folder, exist_ok=True)
    tmp = out + ".check"
    save_state(weights_only_state(state, path, dict_path), tmp)
    try:
        checked = load_checkpoint_state(tmp)  # the weights-only loader reads the result
    except Exception:
        os.remove(tmp)
        raise
    os.replace(tmp, out)
    logger.info(f"{path} -> {out}: weights and config only ({len(checked['model'])} tensors)")
    return checked


def convert_fairseq_dir(mbart_dir: str, out_dir: str, trust_pickle: bool = False) -> None:
    """An mBART directory (e.g. the released ``mbart.cc25``) as a new directory of the same layout
    with a weights-and-args-only ``model.pt``, stamped with its ``dict.txt``'s checksum."""
    check_mbart_dir(mbart_dir)
    if os.path.abspath(out_dir) == os.path.abspath(mbart_dir):
        raise ValueError(f"--out {out_dir} is the mBART directory itself: give a new directory")
    os.makedirs(out_dir, exist_ok=True)
    for name in MBART_FILES[1:]:
        shutil.copyfile(os.path.join(mbart_dir, name), os.path.join(out_dir, name))
    convert_checkpoint(
        os.path.join(mbart_dir, MBART_FILES[0]), os.path.join(out_dir, MBART_FILES[0]), trust_pickle,
        dict_path=os.path.join(out_dir, MBART_FILES[1]),
    )
    from .legacy import load_mbart_dir

    load_mbart_dir(out_dir)  # stage 2's loader accepts it
    logger.info(f"{mbart_dir} -> {out_dir}: dict.txt and sentence.bpe.model copied")
