"""mBART checkpoints in every fairseq layout: the released archive (fairseq of early 2020) and ours.

The released ``mbart.cc25`` ``model.pt`` carries a legacy ``args`` Namespace (``arch
mbart_large``, field names of its time), state-dict entries that current fairseq no longer has
(``encoder.version``, ``decoder.version``, ``_float_tensor``; no
``decoder.output_projection.weight``) and may carry training state. It is upgraded the way fairseq
upgrades an old checkpoint when it loads one, with fairseq's own code:

* the arguments: the model-relevant rename of ``checkpoint_utils._upgrade_state_dict`` (separate
  source/target positions), then the defaults of the registered arch (``ARCH_CONFIG_REGISTRY``,
  e.g. ``mbart_large``) for fields that did not exist then, as fairseq's ``build_model`` applies
  them. ``_upgrade_state_dict`` itself is not called: it composes the whole training config with
  hydra and fails on any Namespace that is not a complete training config of current fairseq
  (``Interpolation key 'common.train_subset' not found``);
* the weights: ``upgrade_state_dict_named`` of every module of a fairseq transformer of the
  checkpoint's sizes, built on the meta device (no memory): ``decoder.output_projection.weight``
  from the embeddings, ``layer_norms.N`` names, fused ``in_proj_weight``, ``version`` entries.

The result is checked strictly against that transformer: names and shapes, with the missing and
unexpected entries named in the error.
"""

import logging
import os
from argparse import Namespace
from typing import Dict, Tuple

import torch

from ..checkpoints import checkpoint_model_args, load_checkpoint_state
from . import MBART_FILES, check_dict, check_mbart_dir, dict_pieces

logger = logging.getLogger(__name__)

N_SPECIAL = 4  # fairseq's <s> <pad> </s> <unk>, before dict.txt's pieces


def upgrade_mbart_args(args: Namespace) -> Namespace:
    """A copy of an mBART checkpoint's model arguments with fairseq's legacy upgrades applied."""
    from fairseq.models import ARCH_CONFIG_REGISTRY

    args = Namespace(**vars(args))
    # checkpoint_utils._upgrade_state_dict: "old model checkpoints may not have separate
    # source/target positions"; "default to translation task"
    if hasattr(args, "max_positions") and not hasattr(args, "max_source_positions"):
        args.max_source_positions = args.max_positions
        args.max_target_positions = args.max_positions
    if not hasattr(args, "task"):
        args.task = "translation"
    arch = getattr(args, "arch", None) or getattr(args, "_name", None)
    if arch in ARCH_CONFIG_REGISTRY:
        ARCH_CONFIG_REGISTRY[arch](args)  # fills only the fields the checkpoint lacks
    return args


class _MetaTask:
    def __init__(self, dictionary):
        self.source_dictionary = self.target_dictionary = dictionary


def _dummy_dictionary(n_types: int):
    from fairseq.data import Dictionary

    d = Dictionary()
    for i in range(n_types - len(d)):
        d.add_symbol(f"madeupword{i:06d}")
    return d


def reference_transformer(args: Namespace, n_types: int):
    """fairseq's transformer of ``args``' sizes with ``n_types`` embedding rows, on the meta
    device: its modules upgrade a state dict and its own state dict is the layout to match."""
    from fairseq.models.transformer import TransformerModel

    with torch.device("meta"):
        return TransformerModel.build_model(Namespace(**vars(args)), _MetaTask(_dummy_dictionary(n_types)))


def upgrade_mbart_weights(weights: Dict[str, torch.Tensor], args: Namespace, where: str) -> Dict[str, torch.Tensor]:
    """mBART's encoder and decoder weights in current fairseq's layout (see the module doc)."""
    if "encoder.embed_tokens.weight" not in weights:
        raise ValueError(
            f"{where} is not an mBART checkpoint: its weights have no encoder.embed_tokens.weight"
        )
    n_types = weights["encoder.embed_tokens.weight"].size(0)
    reference = reference_transformer(args, n_types)
    state = {k: v for k, v in weights.items() if k.startswith(("encoder.", "decoder."))}
    state = {k: v for k, v in state.items() if not k.endswith("_float_tensor")}  # old caches
    reference.upgrade_state_dict(state)
    expected = reference.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [f"{k} {tuple(state[k].shape)} != {tuple(v.shape)}" for k, v in expected.items()
             if k in state and state[k].shape != v.shape]
    if missing or unexpected or wrong:
        hint = ""
        old = [n for n in ("encoder", "decoder") if f"{n}.version" not in weights]
        if old and any(k.startswith(tuple(f"{n}.layer_norm." for n in old)) for k in unexpected):
            hint = (" (fairseq drops the final layer norms of a checkpoint without "
                    "encoder.version / decoder.version 3)")
        raise ValueError(
            f"the weights of {where} do not fit its configuration (arch "
            f"{getattr(args, 'arch', None)}): missing {missing[:5]}, unexpected {unexpected[:5]}, "
            f"shapes {wrong[:3]}{hint}"
        )
    return {k: state[k] for k in expected}


def load_mbart_dir(mbart_dir: str) -> Tuple[Dict, Namespace]:
    """``model.pt`` of an mBART directory (:data:`~fairseq_slt.mbart.MBART_FILES`) in any fairseq
    layout: the checkpoint state with ``model`` upgraded to current fairseq's layout, and its
    upgraded model arguments. Checks ``dict.txt`` against the checkpoint: its stored checksum
    (:func:`~fairseq_slt.mbart.check_dict`) and the number of embedding rows."""
    check_mbart_dir(mbart_dir)
    model_path = os.path.join(mbart_dir, MBART_FILES[0])
    dict_path = os.path.join(mbart_dir, MBART_FILES[1])
    state = load_checkpoint_state(model_path)
    try:
        args = upgrade_mbart_args(checkpoint_model_args(state))
    except ValueError as e:
        raise ValueError(f"{model_path}: {e}") from e
    state["model"] = upgrade_mbart_weights(state["model"], args, model_path)
    check_dict(state, model_path, dict_path)
    n_pieces = len(dict_pieces(dict_path))
    rows = state["model"]["encoder.embed_tokens.weight"].size(0)
    if rows < N_SPECIAL + n_pieces + 1:
        raise ValueError(
            f"{dict_path} has {n_pieces} pieces but the embeddings of {model_path} have {rows} rows "
            f"(at least 4 specials + the pieces + <mask>): the dictionary does not belong to this model"
        )
    return state, args
