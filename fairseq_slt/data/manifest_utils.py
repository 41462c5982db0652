"""Writing a data root: TSV manifests, sentencepiece model + dictionary, ``config.yaml``.

Used by the synthetic corpus generator and the dataset prep scripts (as fairseq's
``examples/speech_to_text/data_utils.py`` is by its prep scripts).
"""

import csv
import os
from typing import Dict, Iterable, List, Optional

import yaml

MANIFEST_COLUMNS = ["id", "video", "n_frames", "tgt_text"]


def write_manifest(path: str, rows: List[Dict[str, object]], columns: Optional[List[str]] = None) -> None:
    """Write a tab-separated manifest; values must not contain tabs or newlines."""
    columns = columns or MANIFEST_COLUMNS + [c for c in rows[0] if c not in MANIFEST_COLUMNS]
    for row in rows:
        for c in columns:
            if any(ch in str(row.get(c, "")) for ch in "\t\n\r"):
                raise ValueError(f"row {row.get('id')}: column {c} holds a tab or newline")
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, delimiter="\t", quoting=csv.QUOTE_NONE, escapechar="\\", lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow([row.get(c, "") for c in columns])
    os.replace(tmp, path)


def gen_vocab(texts: Iterable[str], out_dir: str, vocab_size: int, model_type: str = "unigram",
              prefix: str = "spm") -> None:
    """Train a sentencepiece model on ``texts`` and write ``<prefix>.model`` and ``dict.txt``.

    Special ids follow fairseq's dictionary (``<s>``=0, ``<pad>``=1, ``</s>``=2, ``<unk>``=3),
    as in S2T's ``gen_vocab``; ``vocab_size`` is a soft limit for small corpora.
    """
    import sentencepiece as sp

    text_path = os.path.join(out_dir, f"{prefix}.train.txt")
    with open(text_path, "w", encoding="utf-8") as f:
        for t in texts:
            f.write(t.strip() + "\n")
    sp.SentencePieceTrainer.train(
        input=text_path,
        model_prefix=os.path.join(out_dir, prefix),
        vocab_size=vocab_size,
        model_type=model_type,
        character_coverage=1.0,
        hard_vocab_limit=False,
        bos_id=0, pad_id=1, eos_id=2, unk_id=3,
        num_threads=1,
        minloglevel=2,
    )
    os.remove(text_path)
    model = sp.SentencePieceProcessor(model_file=os.path.join(out_dir, f"{prefix}.model"))
    specials = {"<s>", "<pad>", "</s>", "<unk>"}
    with open(os.path.join(out_dir, "dict.txt"), "w", encoding="utf-8") as f:
        for i in range(model.get_piece_size()):
            piece = model.id_to_piece(i)
            if piece not in specials:
                f.write(f"{piece} 1\n")


def gen_config_yaml(out_dir: str, video_root: str, resize: int = 256, crop: int = 224,
                    keep_ratio: float = 0.25, max_frames: int = 300,
                    augment: Optional[Dict[str, float]] = None,
                    spm_model: str = "spm.model", vocab: str = "dict.txt") -> None:
    """Write ``config.yaml`` (see :class:`fairseq_slt.data.SignDataConfig` for the keys); the
    defaults are the paper's: resize 256 / crop 224, 25% of the frames, at most 300 of them."""
    config = {
        "video_root": video_root,
        "vocab_filename": vocab,
        "bpe_tokenizer": {"bpe": "sentencepiece", "sentencepiece_model": spm_model},
        "video": {"resize": resize, "crop": crop, "keep_ratio": keep_ratio, "max_frames": max_frames},
        "augment": augment or {"rotate": 30.0, "scale": 0.2, "translate": 10.0, "p": 0.5},
    }
    with open(os.path.join(out_dir, "config.yaml"), "w", encoding="utf-8") as f:
        yaml.safe_dump(config, f, sort_keys=False)
