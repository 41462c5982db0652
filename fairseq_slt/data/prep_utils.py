"""Helpers shared by the dataset preparation scripts in ``examples/<dataset>/``.

A prep script reads a release as it is on disk, builds one list of manifest rows per split and
calls :func:`write_data_root`, which writes the manifests, the stage-1 sentencepiece model and
dictionary, ``config.yaml`` and, given an mBART directory, the trimmed mBART and
``config_stage2.yaml``. Every file is written atomically, so re-running is safe.
"""

import argparse
import logging
import os
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from tqdm import tqdm

from ..logging_utils import setup_logging
from .manifest_utils import derive_config_yaml, gen_config_yaml, gen_vocab, write_manifest
from .video_io import list_frame_files

logger = logging.getLogger(__name__)


def require(path: str, what: str) -> str:
    """``path`` must exist: otherwise say which expected file of the release is missing."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"expected {what} at {path}: is the dataset root the release's top folder?")
    return path


def count_folder_frames(folders: List[str], desc: str) -> Dict[str, int]:
    """Number of png/jpg frames of each folder (0 when missing), with a progress bar."""
    counts = {}
    for folder in tqdm(folders, desc=desc, unit="video", mininterval=1.0):
        counts[folder] = len(list_frame_files(folder)) if os.path.isdir(folder) else 0
    return counts


def write_dropped(out_dir: str, split: str, dropped: List[Tuple[str, str]]) -> Optional[str]:
    """List the rows a prep script dropped (id and reason) in ``<out>/dropped_<split>.tsv``."""
    path = os.path.join(out_dir, f"dropped_{split}.tsv")
    if not dropped:
        if os.path.exists(path):
            os.remove(path)
        return None
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write("id\treason\n")
        for sid, reason in dropped:
            f.write(f"{sid}\t{reason}\n")
    os.replace(tmp, path)
    logger.warning(f"{split}: dropped {len(dropped)} rows, listed in {path}")
    return path


def write_data_root(
    out_dir: str,
    splits: Dict[str, List[dict]],
    video_root: str,
    vocab_size: int,
    spm_type: str = "unigram",
    mbart_dir: Optional[str] = None,
    **config,
) -> None:
    """Manifests, stage-1 vocabulary, ``config.yaml``; with ``mbart_dir`` also the trimmed mBART
    (``<out>/mbart.trimmed``) and ``config_stage2.yaml`` that uses its tokenizer and dictionary."""
    os.makedirs(out_dir, exist_ok=True)
    for split, rows in splits.items():
        if not rows:
            raise ValueError(f"{split}: no usable rows; check the dataset root")
        write_manifest(os.path.join(out_dir, f"{split}.tsv"), rows)
        logger.info(f"{split}: {len(rows)} rows -> {os.path.join(out_dir, split + '.tsv')}")
    train_text = [r["tgt_text"] for r in splits["train"]]
    gen_vocab(train_text, out_dir, vocab_size=vocab_size, model_type=spm_type)
    gen_config_yaml(out_dir, video_root=video_root, **config)
    if mbart_dir:
        from ..mbart.trim import trim

        trimmed = os.path.join(out_dir, "mbart.trimmed")
        trim(mbart_dir, train_text, trimmed)
        # inside the data root, so written as mbart.trimmed/dict.txt, mbart.trimmed/sentence.bpe.model
        derive_config_yaml(out_dir, "config.yaml", "config_stage2.yaml", mbart_dir=trimmed)


def run_prep(process: Callable, description: str, root_help: str, vocab_size: int,
             argv: Optional[Sequence[str]] = None) -> None:
    """The command line every prep script shares: ``--root --out [--vocab-size] [--mbart-dir]``."""
    setup_logging()
    p = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--root", required=True, help=root_help)
    p.add_argument("--out", required=True, help="data root to write (re-running overwrites it safely)")
    p.add_argument("--vocab-size", type=int, default=vocab_size, help="stage-1 sentencepiece vocabulary (soft limit)")
    p.add_argument("--mbart-dir", help="mBART directory (mbart.cc25 layout) to trim for stage 2")
    process(p.parse_args(argv))
