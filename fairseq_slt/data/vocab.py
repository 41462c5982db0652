"""Target vocabularies: a sentencepiece model and the fairseq dictionary that matches it.

Special ids follow fairseq's dictionary (``<s>``=0, ``<pad>``=1, ``</s>``=2, ``<unk>``=3), as in
speech_to_text's ``gen_vocab``, so a piece's sentencepiece id is its fairseq id; ``dict.txt``
lists every other piece in id order (the layout of mBART's ``dict.txt`` too).
"""

import os
from typing import Iterable

SPECIAL_IDS = {"bos_id": 0, "pad_id": 1, "eos_id": 2, "unk_id": 3}


def train_sentencepiece(texts: Iterable[str], prefix: str, vocab_size: int, model_type: str = "unigram") -> str:
    """Train ``<prefix>.model`` on ``texts`` (one sentence each); ``vocab_size`` is a soft limit
    for small corpora. Returns the model's path."""
    import sentencepiece as sp

    text_path = prefix + ".train.txt"
    with open(text_path, "w", encoding="utf-8") as f:
        for t in texts:
            f.write(t.strip() + "\n")
    try:
        sp.SentencePieceTrainer.train(
            input=text_path, model_prefix=prefix, vocab_size=vocab_size, model_type=model_type,
            character_coverage=1.0, hard_vocab_limit=False, num_threads=1, minloglevel=2, **SPECIAL_IDS,
        )
    finally:
        os.remove(text_path)
    return prefix + ".model"


def write_fairseq_dict(spm_model: str, path: str) -> None:
    """``dict.txt`` for a sentencepiece model: its pieces in id order without the specials."""
    import sentencepiece as sp

    model = sp.SentencePieceProcessor(model_file=spm_model)
    with open(path, "w", encoding="utf-8") as f:
        for i in range(model.get_piece_size()):
            if not (model.is_control(i) or model.is_unknown(i)):
                f.write(f"{model.id_to_piece(i)} 1\n")
