"""Trim an mBART directory to the vocabulary of a corpus (``fairseq-slt-trim-mbart``).

FLa-LLM (Chen et al. 2024) trims mBART-large-cc25's 250k-type vocabulary and embeddings to the
tokens of the target training corpus. The new directory keeps the layout of fairseq's mbart.cc25
archive (``model.pt``, ``dict.txt``, ``sentence.bpe.model``): ``dict.txt`` lists only the pieces
the corpus uses (in their original order), and the rows of the token embeddings and the output
projection are cut to: the 4 specials, those pieces, then every language token and ``<mask>``
(kept whole so that ``--langs`` stays mBART's list). The sentencepiece model is copied unchanged,
so it still tokenizes the corpus; on the kept tokens the trimmed model gives the same logits.

The source may be in any fairseq layout (the released archive included: see
:mod:`fairseq_slt.mbart.legacy`); the trimmed ``model.pt`` holds the weights in current fairseq's
layout and the source's config, no training state (whose optimizer moments would keep the full
vocabulary), and the checksum of the ``dict.txt`` written with it.
"""

import logging
import os
import shutil
from typing import Dict, Iterable, List

import torch
from fairseq.data import Dictionary

from . import count_unique, save_state, weights_and_args_state
from .legacy import load_mbart_dir

logger = logging.getLogger(__name__)

EMBEDDING_KEYS = (
    "encoder.embed_tokens.weight",
    "decoder.embed_tokens.weight",
    "decoder.output_projection.weight",
    "decoder.embed_out",
)


def used_pieces(texts: Iterable[str], spm_model: str) -> set:
    import sentencepiece as sp

    model = sp.SentencePieceProcessor(model_file=spm_model)
    used = set()
    for line in texts:
        used.update(model.encode(line.strip(), out_type=str))
    return used


def kept_rows(base: Dictionary, n_rows: int, used: set) -> List[int]:
    """Rows of the full embedding matrix to keep: specials, used pieces, language tokens, <mask>.

    The full mBART dictionary is ``dict.txt`` (after fairseq's 4 specials) followed by one
    ``[lang]`` per pre-training language and ``<mask>``; those trailing rows are all kept.
    """
    n_base = len(base)
    if n_rows < n_base + 1:
        raise ValueError(
            f"the embeddings have {n_rows} rows but dict.txt alone has {n_base} types: "
            "the dictionary does not match the model"
        )
    pieces = [i for i in range(base.nspecial, n_base) if base[i] in used]
    return list(range(base.nspecial)) + pieces + list(range(n_base, n_rows))


def select_rows(model: Dict[str, torch.Tensor], index: torch.Tensor) -> None:
    """Keep ``index``'s rows of every embedding matrix in place; entries that share one tensor
    (the tied input and output embeddings) still share the trimmed one."""
    done = {}
    for key in EMBEDDING_KEYS:
        if key in model:
            ptr = model[key].data_ptr()
            if ptr not in done:
                done[ptr] = model[key].index_select(0, index).clone()
            model[key] = done[ptr]


def trim(mbart_dir: str, texts: List[str], out_dir: str) -> dict:
    if os.path.abspath(out_dir) == os.path.abspath(mbart_dir):
        raise ValueError(f"--out {out_dir} is the mBART directory itself: give a new directory")
    state, _ = load_mbart_dir(mbart_dir)
    base = Dictionary.load(os.path.join(mbart_dir, "dict.txt"))
    model = state["model"]
    n_rows = model["encoder.embed_tokens.weight"].size(0)
    used = used_pieces(texts, os.path.join(mbart_dir, "sentence.bpe.model"))
    rows = kept_rows(base, n_rows, used)
    unknown = sorted(p for p in used if base.index(p) == base.unk())
    if unknown:
        logger.warning(f"{len(unknown)} pieces of the corpus are not in dict.txt (they map to <unk>): {unknown[:10]}")
    before = count_unique(v for v in model.values() if torch.is_tensor(v))
    select_rows(model, torch.tensor(rows, dtype=torch.long))
    after = count_unique(v for v in model.values() if torch.is_tensor(v))

    os.makedirs(out_dir, exist_ok=True)
    dict_path = os.path.join(out_dir, "dict.txt")
    with open(dict_path, "w", encoding="utf-8") as f:
        for i in rows[base.nspecial:]:
            if i < len(base):
                f.write(f"{base[i]} {base.count[i]}\n")
    shutil.copyfile(os.path.join(mbart_dir, "sentence.bpe.model"), os.path.join(out_dir, "sentence.bpe.model"))
    trimmed = weights_and_args_state(model, state.get("args"), state.get("cfg"), dict_path)
    save_state(trimmed, os.path.join(out_dir, "model.pt"))
    stats = {"rows_before": n_rows, "rows_after": len(rows), "params_before": before, "params_after": after}
    logger.info(
        f"trimmed {mbart_dir} -> {out_dir}: {n_rows} -> {len(rows)} embedding rows, "
        f"{before / 1e6:.2f}M -> {after / 1e6:.2f}M parameters"
    )
    return stats
