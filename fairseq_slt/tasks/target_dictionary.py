"""The task's target dictionary: the data config's ``vocab_filename`` or a Hugging Face
tokenizer's vocabulary, then, for mBART, its language tokens and ``<mask>``."""

import os
from typing import Optional, Tuple

from fairseq.data import Dictionary

from ..data import SignDataConfig
from ..mbart import parse_langs


def load_target_dictionary(data_cfg: SignDataConfig) -> Tuple[Dictionary, str]:
    """The target dictionary and where it comes from: ``vocab_filename``, or the tokenizer of a
    Hugging Face model folder (``bpe: hf_tokenizer``, :func:`fairseq_slt.hf.vocab.hf_dictionary`)."""
    if data_cfg.hf_tokenizer_dir:
        from ..hf.vocab import hf_dictionary

        return hf_dictionary(data_cfg.hf_tokenizer_dir), data_cfg.hf_tokenizer_dir
    dict_path = data_cfg.vocab_filename
    if not os.path.isfile(dict_path):
        raise FileNotFoundError(f"target dictionary not found: {dict_path} (vocab_filename in config.yaml)")
    return Dictionary.load(dict_path), dict_path


def add_mbart_symbols(tgt_dict: Dictionary, langs: Optional[str], tgt_lang: Optional[str]) -> None:
    """Append ``[lang]`` for every pre-training language, then ``<mask>``, exactly as fairseq's
    ``translation_from_pretrained_bart`` builds mBART's dictionary."""
    if not langs:
        if tgt_lang:
            raise ValueError("--tgt-lang needs --langs (mBART's pre-training languages, in order)")
        return
    names = parse_langs(langs)
    if tgt_lang and tgt_lang not in names:
        raise ValueError(f"--tgt-lang {tgt_lang} is not one of --langs ({', '.join(names)})")
    for lang in names:
        tgt_dict.add_symbol(f"[{lang}]")
    tgt_dict.add_symbol("<mask>")
