"""A Hugging Face model folder on local disk: checks, a fingerprint of its weights, loading.

Everything is read from the folder itself (``local_files_only``): nothing is downloaded. A
folder that cannot be used (no ``config.json``, malformed JSON, a truncated ``.safetensors``
file, no weights) is refused with one line naming the file and what to do.
"""

import hashlib
import json
import logging
import os
import struct
from typing import List

import torch

logger = logging.getLogger(__name__)

CONFIG = "config.json"
SAFETENSORS_INDEX = "model.safetensors.index.json"
WEIGHT_NAMES = ("model.safetensors", "pytorch_model.bin")
BIN_INDEX = "pytorch_model.bin.index.json"
# the fingerprint reads this many evenly spaced blocks of each weight file, and its first block
FINGERPRINT_BLOCKS, FINGERPRINT_BLOCK_BYTES = 64, 1 << 16


def first_line(e: BaseException) -> str:
    """The first line of an exception's message (at most 300 characters), or its type's name."""
    text = str(e).strip()
    return text.splitlines()[0][:300] if text else type(e).__name__


def read_json(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            value = json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e}); restore the file (save_pretrained writes it)") from e
    if not isinstance(value, dict):
        raise ValueError(f"{path}: expected a JSON object, got {type(value).__name__}")
    return value


def read_config(folder: str) -> dict:
    """``config.json`` of a model folder, checked for existence and syntax."""
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"Hugging Face model folder not found: {folder} (give the folder that "
                                "save_pretrained wrote: config.json, weights, tokenizer files)")
    path = os.path.join(folder, CONFIG)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{folder}: no {CONFIG}; give the folder that save_pretrained wrote")
    return read_json(path)


def weight_files(folder: str) -> List[str]:
    """The weight files of the folder (the shards of an index, or the single file)."""
    for index in (SAFETENSORS_INDEX, BIN_INDEX):
        path = os.path.join(folder, index)
        if os.path.isfile(path):
            shards = sorted(set(read_json(path).get("weight_map", {}).values()))
            missing = [s for s in shards if not os.path.isfile(os.path.join(folder, s))]
            if missing:
                raise FileNotFoundError(f"{path} names shards that are not in the folder: {missing[:3]}")
            return [os.path.join(folder, s) for s in shards]
    for name in WEIGHT_NAMES:
        path = os.path.join(folder, name)
        if os.path.isfile(path):
            return [path]
    raise FileNotFoundError(f"{folder}: no weights ({', '.join(WEIGHT_NAMES)} or a sharded index); "
                            "give the folder that save_pretrained wrote")


def check_safetensors(path: str) -> None:
    """A ``.safetensors`` file is as long as its header says (a truncated copy is not)."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise ValueError(f"{path}: truncated ({size} bytes, no header); copy the file again")
        (n,) = struct.unpack("<Q", head)
        if n > size - 8:
            raise ValueError(f"{path}: truncated or not a safetensors file (header of {n} bytes in a file of "
                             f"{size}); copy the file again")
        try:
            header = json.loads(f.read(n))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ValueError(f"{path}: not a safetensors file (unreadable header: {e}); copy the file again") from e
    end = max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"), default=0)
    if 8 + n + end != size:
        raise ValueError(f"{path}: truncated ({size} bytes; its header needs {8 + n + end}); copy the file again")


def check_folder(folder: str, weights: bool = True) -> List[str]:
    """Check ``config.json`` (and, with ``weights``, the weight files); returns the weight files."""
    read_config(folder)
    if not weights:
        return []
    files = weight_files(folder)
    for path in files:
        if path.endswith(".safetensors"):
            check_safetensors(path)
    return files


def weights_fingerprint(folder: str) -> str:
    """A fingerprint of the folder's weights that costs milliseconds, not a read of gigabytes:
    sha256 over each weight file's name, size, its first block and :data:`FINGERPRINT_BLOCKS`
    evenly spaced blocks. Any fine-tune, another model or another precision changes it."""
    h = hashlib.sha256()
    for path in check_folder(folder):
        size = os.path.getsize(path)
        h.update(f"{os.path.basename(path)}\0{size}\0".encode())
        with open(path, "rb") as f:
            for k in range(FINGERPRINT_BLOCKS + 1):
                f.seek(0 if k == 0 else size * k // (FINGERPRINT_BLOCKS + 1))
                h.update(f.read(FINGERPRINT_BLOCK_BYTES))
    return h.hexdigest()


def is_encoder_decoder(folder: str) -> bool:
    return bool(read_config(folder).get("is_encoder_decoder", False))


def load_llm(folder: str, dtype: torch.dtype = torch.float32) -> torch.nn.Module:
    """The folder's model with its language-modelling head: ``AutoModelForSeq2SeqLM`` for an
    encoder-decoder (mBART, T5, ...), ``AutoModelForCausalLM`` otherwise (Llama, Qwen2, GPT-2,
    XGLM, ...), in ``dtype``, from local files only."""
    from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM

    check_folder(folder)
    auto = AutoModelForSeq2SeqLM if is_encoder_decoder(folder) else AutoModelForCausalLM
    try:
        model = auto.from_pretrained(folder, local_files_only=True, dtype=dtype)
    except Exception as e:  # transformers raises many types for files it cannot use
        raise ValueError(f"{folder}: transformers cannot load it as {auto.__name__} ({first_line(e)})") from e
    return model
