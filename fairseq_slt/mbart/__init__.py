"""mBART directories in the layout of fairseq's ``mbart.cc25`` archive, and their languages.

A directory holds ``model.pt`` (a fairseq checkpoint), ``dict.txt`` (the sentencepiece pieces in
fairseq's order, without the 4 specials) and ``sentence.bpe.model``. The full dictionary of the
model is ``dict.txt`` plus one ``[lang]`` per pre-training language, in order, plus ``<mask>``
(fairseq's ``translation_from_pretrained_bart``).
"""

import os
from typing import List, Optional

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
