"""Target vocabularies: a sentencepiece model and the fairseq dictionary that matches it.

Special ids follow fairseq's dictionary (``<s>``=0, ``<pad>``=1, ``</s>``=2, ``<unk>``=3), as in
speech_to_text's ``gen_vocab``, so a piece's sentencepiece id is its fairseq id; ``dict.txt``
lists every other piece in id order (the layout of mBART's ``dict.txt`` too).
"""

import logging
import os
from typing import Iterable, List

logger = logging.getLogger(__name__)

SPECIAL_IDS = {"bos_id": 0, "pad_id": 1, "eos_id": 2, "unk_id": 3}


def train_sentencepiece(texts: Iterable[str], prefix: str, vocab_size: int, model_type: str = "unigram") -> str:
    """Train ``<prefix>.model`` on ``texts`` (one sentence each); ``vocab_size`` is a soft limit
    for small corpora. Returns the model's path."""
    import sentencepiece as sp

    texts = [t.strip() for t in texts]
    text_path = prefix + ".train.txt"
    with open(text_path, "w", encoding="utf-8") as f:
        for t in texts:
            f.write(t + "\n")
    try:
        sp.SentencePieceTrainer.train(
            input=text_path, model_prefix=prefix, vocab_size=vocab_size, model_type=model_type,
            character_coverage=1.0, hard_vocab_limit=False, num_threads=1, minloglevel=2, **SPECIAL_IDS,
        )
    finally:
        os.remove(text_path)
    report_segmentation(prefix + ".model", texts, vocab_size, model_type)
    return prefix + ".model"


def pieces_per_word(spm_model: str, texts: List[str]) -> float:
    """Mean sentencepiece pieces per whitespace-separated word of ``texts``."""
    import sentencepiece as sp

    model = sp.SentencePieceProcessor(model_file=spm_model)
    n_words = sum(len(t.split()) for t in texts)
    return sum(len(model.encode(t)) for t in texts) / max(1, n_words)


def report_segmentation(spm_model: str, texts: List[str], vocab_size: int, model_type: str) -> float:
    """Log the vocabulary's size and mean pieces per word; warn when a soft-limited unigram model
    came out as near-character pieces (sentencepiece does this on small corpora: 600 sentences of
    ~60 word types gave 48 pieces, 3.8 per word, for ``--vocab-size 3000``), since targets then
    get several times longer than the words."""
    import sentencepiece as sp

    size = sp.SentencePieceProcessor(model_file=spm_model).get_piece_size()
    ratio = pieces_per_word(spm_model, texts)
    logger.info(f"{spm_model}: {model_type} vocabulary of {size} pieces, {ratio:.2f} pieces per word")
    if model_type == "unigram" and size < vocab_size and ratio > 2.0:
        n_types = len({w for t in texts for w in t.split()})
        logger.warning(
            f"{spm_model}: the corpus ({len(texts)} sentences, {n_types} word types) is too small for a "
            f"unigram vocabulary of {vocab_size}: it came out as {size} near-character pieces, "
            f"{ratio:.2f} per word; pass --spm-type bpe (a BPE model keeps whole words here) or a "
            "smaller --vocab-size"
        )
    return ratio


def write_fairseq_dict(spm_model: str, path: str) -> None:
    """``dict.txt`` for a sentencepiece model: its pieces in id order without the specials."""
    import sentencepiece as sp

    model = sp.SentencePieceProcessor(model_file=spm_model)
    with open(path, "w", encoding="utf-8") as f:
        for i in range(model.get_piece_size()):
            if not (model.is_control(i) or model.is_unknown(i)):
                f.write(f"{model.id_to_piece(i)} 1\n")
