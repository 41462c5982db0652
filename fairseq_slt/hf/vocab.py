"""A Hugging Face model folder's tokenizer as fairseq's target dictionary.

Stage 2 over a Hugging Face LLM (``--arch slt_hf``) predicts the LLM's own token ids, so the
task's dictionary must be the tokenizer's vocabulary in id order: symbol ``i`` is token id ``i``,
and fairseq's ``pad``/``eos``/``unk``/``bos`` indices are the tokenizer's. Three details:

* the dictionary has as many rows as the model's output layer (``vocab_size`` in
  ``config.json``, often more than the tokenizer's tokens: the rows without a token get the
  symbol ``<hf:ID>`` and are never a target);
* a tokenizer without a padding token (GPT-2, Llama) gets one extra symbol ``<hf:pad>`` after the
  last row; the model gives it a constant logit that no beam picks (fairseq's generator masks
  ``pad``) and never embeds it;
* a token whose text holds whitespace (fairseq's dictionary splits lines on it) or is empty is
  written ``<hf:ID>``; :func:`token_symbols` is the one map both ways.
"""

import os
import re
from typing import Dict, List, Optional, Tuple

from fairseq.data import Dictionary

PAD_SYMBOL = "<hf:pad>"
_ESCAPED = re.compile(r"^<hf:(\d+)>$")


def escaped(token_id: int) -> str:
    return f"<hf:{token_id}>"


def token_symbols(vocab: Dict[str, int], n_rows: int) -> List[str]:
    """Symbol of each of the ``n_rows`` output rows: the token's text, or ``<hf:ID>`` where the
    row has no token, the text holds whitespace or is empty, or it already looks escaped."""
    symbols = [escaped(i) for i in range(n_rows)]
    for text, i in vocab.items():
        if 0 <= i < n_rows and text and not any(c.isspace() for c in text) and not _ESCAPED.match(text):
            symbols[i] = text
    return symbols


def symbol_to_id(symbol: str, token_ids: Dict[str, int]) -> Optional[int]:
    """The token id of a dictionary symbol (``None`` for the extra ``<pad>`` or an unknown one)."""
    m = _ESCAPED.match(symbol)
    if m:
        return int(m.group(1))
    return token_ids.get(symbol)


def load_tokenizer(folder: str):
    """The folder's tokenizer, from local files only (never a hub)."""
    from transformers import AutoTokenizer

    from .folder import check_folder, first_line

    check_folder(folder, weights=False)
    try:
        return AutoTokenizer.from_pretrained(folder, local_files_only=True)
    except Exception as e:  # transformers raises many types for missing or malformed files
        raise ValueError(f"{folder}: cannot load its tokenizer ({first_line(e)}); the folder must hold "
                         "the tokenizer files that save_pretrained writes (tokenizer.json, "
                         "tokenizer_config.json, ...)") from e


def output_rows(folder: str) -> int:
    """The rows of the model's output layer: ``vocab_size`` of ``config.json`` (of its text
    model where the config nests one)."""
    from .folder import read_config

    config = read_config(folder)
    for node in (config, config.get("text_config") or {}, config.get("decoder") or {}):
        if isinstance(node.get("vocab_size"), int):
            return node["vocab_size"]
    raise ValueError(f"{os.path.join(folder, 'config.json')}: has no vocab_size; is it a language model's config?")


def special_ids(tokenizer) -> Tuple[int, Optional[int], Optional[int], Optional[int]]:
    """``(eos, pad, unk, bos)`` of the tokenizer; eos is required."""
    eos = tokenizer.eos_token_id
    if eos is None:
        raise ValueError(f"the tokenizer of {tokenizer.name_or_path} has no eos token: targets could not end; "
                         "set eos_token in its tokenizer_config.json")
    return eos, tokenizer.pad_token_id, tokenizer.unk_token_id, tokenizer.bos_token_id


def hf_dictionary(folder: str, tokenizer=None) -> Dictionary:
    """fairseq's target dictionary of the model folder (see the module docstring)."""
    tokenizer = tokenizer if tokenizer is not None else load_tokenizer(folder)
    n_rows = output_rows(folder)
    vocab = tokenizer.get_vocab()
    if max(vocab.values()) >= n_rows:
        raise ValueError(
            f"{folder}: the tokenizer has token ids up to {max(vocab.values())} but the model's output layer "
            f"has {n_rows} rows (vocab_size in config.json): tokens were added without resizing the model's "
            "embeddings; call model.resize_token_embeddings(len(tokenizer)) and save_pretrained again"
        )
    eos, pad, unk, bos = special_ids(tokenizer)
    symbols = token_symbols(vocab, n_rows)
    if pad is None or pad == eos:  # fairseq masks pad in every beam: it must be its own row
        pad = n_rows
        symbols.append(PAD_SYMBOL)
    bos = bos if bos is not None else eos
    unk = unk if unk is not None else eos
    d = Dictionary(bos=symbols[bos], pad=symbols[pad], eos=symbols[eos], unk=symbols[unk],
                   add_special_symbols=False)
    d.symbols, d.count = symbols, [1] * len(symbols)
    d.indices = {s: i for i, s in enumerate(symbols)}
    d.bos_index, d.pad_index, d.eos_index, d.unk_index = bos, pad, eos, unk
    d.nspecial = 0  # the model's own ids: no fairseq specials in front
    return d

