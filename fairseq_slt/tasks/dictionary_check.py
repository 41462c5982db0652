"""Which target dictionary a checkpoint was trained with, and the check that decoding uses it.

Stage 1 trains with the corpus's own sentencepiece model and dictionary (``config.yaml``) or,
when the recipes set ``MBART_DIR``, with the trimmed mBART's (``config_stage2.yaml``, plus
``--langs``). A checkpoint decoded with the other one fails with a shape mismatch, or, when the
two have the same size, decodes every token id to another word with exit code 0.

The task therefore stores a record of its dictionary in every checkpoint fairseq-train writes
(``task_state``, the entry fairseq keeps for the task; :func:`dictionary_record`): the dictionary
file, its size, the sha256 of its symbols in order, the data root, ``--config-yaml`` and
``--langs``/``--tgt-lang``. fairseq's ``load_model_ensemble_and_task`` (fairseq-generate,
fairseq-interactive, :class:`fairseq_slt.inference.SignTranslator`) hands it back to the task
before it builds the model, and so does fairseq-train before it loads a checkpoint to continue
from (the ``task_state_on_resume`` patch of :mod:`fairseq_slt.patches`); :func:`check_dictionary_record`
refuses another dictionary, naming both and the data config to pass. Any weights loaded into a
model are also checked by size (:func:`check_embedding_rows`).
"""

import hashlib
import os
from typing import TYPE_CHECKING, Dict, Optional

if TYPE_CHECKING:
    from fairseq.data import Dictionary

# the entry of the task's state (a checkpoint's ``task_state``) that records its dictionary
RECORD_KEY = "target_dictionary"
# the rows of this weight are the target dictionary's (both models' decoders)
EMBEDDING_KEY = "decoder.embed_tokens.weight"


def symbols_sha256(tgt_dict: "Dictionary") -> str:
    """sha256 of all the dictionary's symbols in index order (specials and ``[lang]`` included),
    one per line: what fixes the meaning of every token id (counts do not)."""
    return hashlib.sha256("\n".join(tgt_dict.symbols).encode("utf-8")).hexdigest()


def dictionary_record(tgt_dict: "Dictionary", dict_path: str, data: str, config_yaml: str,
                      langs: Optional[str] = None, tgt_lang: Optional[str] = None) -> Dict:
    """What :func:`check_dictionary_record` compares (size, sha256) and what its error names."""
    return {
        "path": os.path.abspath(dict_path),
        "size": len(tgt_dict),
        "sha256": symbols_sha256(tgt_dict),
        "data": data,
        "config_yaml": config_yaml,
        "langs": langs,
        "tgt_lang": tgt_lang,
    }


def describe(record: Dict) -> str:
    """``/data/dict.txt + [lang] for --langs de_DE,en_XX and <mask> (3019 types, sha256 1a2b3c4d5e6f...)``"""
    langs = f" + [lang] for --langs {record['langs']} and <mask>" if record.get("langs") else ""
    return f"{record['path']}{langs} ({record['size']} types, sha256 {record['sha256'][:12]}...)"


def training_options(record: Dict) -> str:
    """The task options that give the dictionary of ``record``: ``--config-yaml X [--langs ...]``."""
    options = f"--config-yaml {record['config_yaml']}"
    if record.get("langs"):
        options += f" --langs {record['langs']}"
        if record.get("tgt_lang"):
            options += f" --tgt-lang {record['tgt_lang']}"
    return options


class DictionaryMismatchError(ValueError):
    """A checkpoint decoded with another target dictionary than it was trained with; ``saved``
    and ``current``: the two records (``saved`` None: the checkpoint stores none), ``yaml_path``:
    the data config that gave ``current``."""

    def __init__(self, message: str, saved: Optional[Dict], current: Dict, yaml_path: str):
        super().__init__(message)
        self.saved, self.current, self.yaml_path = saved, current, yaml_path


def mismatch_message(saved: Dict, current: Dict, yaml_path: str, fix: Optional[str] = None,
                     checkpoint: str = "this checkpoint") -> str:
    """The error of :func:`check_dictionary_record`; ``fix``: what to do, when not the task
    options of the training run (fairseq-generate's)."""
    consequence = (
        "same size, other symbols: it would decode every token id to another word without an error"
        if saved["size"] == current["size"] else "its output layer does not fit this dictionary"
    )
    fix = fix or (
        f"pass the data config it was trained with: {training_options(saved)} (data root "
        f"{saved['data']})"
    )
    return (
        f"{checkpoint} was trained with the target dictionary {describe(saved)}, but the data "
        f"config {yaml_path} gives {describe(current)} ({consequence}); {fix}. (The recipes train "
        "stage 1 with the trimmed mBART's vocabulary, config_stage2.yaml and --langs, when MBART_DIR "
        "is set, and with the corpus's own, config.yaml, otherwise.)"
    )


def check_dictionary_record(saved: Dict, current: Dict, yaml_path: str,
                            checkpoint: str = "this checkpoint") -> None:
    """Refuse to use a checkpoint (``checkpoint``: how the error names it) trained with the
    dictionary ``saved`` with ``current`` (the task's, read from the data config ``yaml_path``)."""
    if saved.get("size") != current["size"] or saved.get("sha256") != current["sha256"]:
        raise DictionaryMismatchError(
            mismatch_message(saved, current, yaml_path, checkpoint=checkpoint), saved, current, yaml_path
        )


def check_embedding_rows(state_dict: Dict, current: Dict, yaml_path: str, prefix: str = "") -> None:
    """The size check for any weights loaded into a model: the rows of the decoder's embeddings
    against the task's dictionary."""
    weight = state_dict.get(prefix + EMBEDDING_KEY)
    if weight is None or weight.dim() != 2 or weight.size(0) == current["size"]:
        return
    raise DictionaryMismatchError(
        f"the checkpoint's decoder embeddings have {weight.size(0)} rows (the size of the target "
        f"dictionary it was trained with), but the data config {yaml_path} gives {describe(current)}: "
        "pass the data config it was trained with (--config-yaml ..., and --langs/--tgt-lang if it "
        "used mBART's vocabulary)", None, current, yaml_path,
    )
