"""mBART directories in the layout of fairseq's ``mbart.cc25`` archive, and their languages.

A directory holds ``model.pt`` (a fairseq checkpoint), ``dict.txt`` (the sentencepiece pieces in
fairseq's order, without the 4 specials) and ``sentence.bpe.model``. The full dictionary of the
model is ``dict.txt`` plus one ``[lang]`` per pre-training language, in order, plus ``<mask>``
(fairseq's ``translation_from_pretrained_bart``).

Row ``i`` of the embeddings belongs to line ``i - 4`` of ``dict.txt``: a ``dict.txt`` of the
right size in another order would be accepted by every size check and misalign every embedding.
The directories our tools write (``fairseq-slt-trim-mbart``, ``fairseq-slt-build-mbart``,
``fairseq-slt-convert-mbart``) therefore store in ``model.pt`` the sha256 of the ``dict.txt``
written with it (:func:`stamp_dict`), which stage 2 and trimming check (:func:`check_dict`). The
released fairseq archive has none: there the order cannot be checked, and the log says so.
"""

import hashlib
import logging
import os
from typing import Dict, List, Optional

logger = logging.getLogger(__name__)

MBART_FILES = ("model.pt", "dict.txt", "sentence.bpe.model")

# the 25 pre-training languages of mBART-large-cc25, in the order of its dictionary
CC25_LANGS = (
    "ar_AR", "cs_CZ", "de_DE", "en_XX", "es_XX", "et_EE", "fi_FI", "fr_XX", "gu_IN", "hi_IN",
    "it_IT", "ja_XX", "kk_KZ", "ko_KR", "lt_LT", "lv_LV", "my_MM", "ne_NP", "nl_XX", "ro_RO",
    "ru_RU", "si_LK", "tr_TR", "vi_VN", "zh_CN",
)
LANG_LISTS = {"cc25": CC25_LANGS}


def parse_langs(langs: Optional[str]) -> List[str]:
    """``--langs``: comma-separated language codes, or the name of a known list (``cc25``)."""
    if not langs:
        return []
    if langs.strip() in LANG_LISTS:
        return list(LANG_LISTS[langs.strip()])
    return [lang.strip() for lang in langs.split(",") if lang.strip()]


def check_mbart_dir(path: str) -> None:
    """``path`` must be a directory holding :data:`MBART_FILES` (an empty path is not checked)."""
    if not path:
        return
    if not os.path.isdir(path):
        raise FileNotFoundError(f"mBART directory not found: {path}")
    missing = [f for f in MBART_FILES if not os.path.isfile(os.path.join(path, f))]
    if missing:
        raise FileNotFoundError(
            f"mBART directory {path} lacks {', '.join(missing)} (expected the layout of fairseq's "
            f"mbart.cc25 archive: {', '.join(MBART_FILES)})"
        )


# the entry of model.pt that pins its dict.txt: {"sha256": ..., "size": ...}
DICT_KEY = "mbart_dict"


def dict_pieces(dict_path: str) -> List[str]:
    """The symbols of a fairseq ``dict.txt`` in file order (fairseq's own parser)."""
    from fairseq.data import Dictionary

    d = Dictionary.load(dict_path)
    return d.symbols[d.nspecial:]


def dict_sha256(dict_path: str) -> str:
    """sha256 of ``dict.txt``'s symbols in order, one per line: what fixes the embedding rows
    (counts and line endings do not)."""
    return hashlib.sha256("\n".join(dict_pieces(dict_path)).encode("utf-8")).hexdigest()


def stamp_dict(state: Dict, dict_path: str) -> None:
    """Store in a checkpoint ``state`` the checksum of the ``dict.txt`` written with it."""
    state[DICT_KEY] = {"sha256": dict_sha256(dict_path), "size": len(dict_pieces(dict_path))}


def check_dict(state: Dict, model_path: str, dict_path: str) -> bool:
    """``dict_path`` must be the ``dict.txt`` that ``model_path`` was written with, when the
    checkpoint stores its checksum. Returns whether it could be checked (False: the checkpoint
    stores none, e.g. the released fairseq archive; the log says so)."""
    stored = state.get(DICT_KEY)
    if not stored:
        logger.warning(
            f"{model_path} stores no checksum of its dict.txt (the released fairseq archive, or a "
            f"directory not written by fairseq-slt): the order of {dict_path} cannot be checked; a "
            "dict.txt of the right size in another order misaligns every embedding, so use the "
            "dict.txt that came with this model.pt"
        )
        return False
    found = dict_sha256(dict_path)
    if found != stored["sha256"]:
        raise ValueError(
            f"{dict_path} is not the dict.txt that {model_path} was written with (sha256 of its "
            f"pieces {found[:12]}..., {len(dict_pieces(dict_path))} pieces; the checkpoint was "
            f"written with {stored['sha256'][:12]}..., {stored.get('size')} pieces): its embedding "
            "rows would be misaligned; put back the dict.txt written with model.pt (or rebuild the "
            "directory with fairseq-slt-trim-mbart / fairseq-slt-convert-mbart)"
        )
    return True


def weights_and_args_state(model: Dict, args=None, cfg=None, dict_path: Optional[str] = None) -> Dict:
    """The ``model.pt`` our tools write: the weights and the config, no training state, stamped
    with ``dict_path``'s checksum. The empty training-state entries are those fairseq's
    ``checkpoint_utils.load_checkpoint_to_cpu`` expects, so fairseq's own loader reads it too."""
    state = {
        "args": args, "cfg": cfg, "model": model,
        "optimizer_history": [
            {"criterion_name": "", "optimizer_name": "", "lr_scheduler_state": {}, "num_updates": 0}
        ],
        "extra_state": {"train_iterator": None},
        "last_optimizer_state": None,
    }
    if dict_path:
        stamp_dict(state, dict_path)
    return state


def count_unique(tensors) -> int:
    """Elements of ``tensors``, counting a tensor shared by several entries (tied embeddings) once."""
    seen = {}
    for t in tensors:
        seen.setdefault((t.data_ptr(), tuple(t.shape)), t.numel())
    return sum(seen.values())


def save_state(state: Dict, path: str) -> None:
    """``torch.save`` to ``<path>.tmp``, then rename: no half-written ``model.pt``."""
    import torch

    tmp = path + ".tmp"
    torch.save(state, tmp)
    os.replace(tmp, path)
