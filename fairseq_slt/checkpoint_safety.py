"""The import-time patches of fairseq's checkpoint handling that the plugin makes (see docs/fairseq.md).

1. Let torch >= 2.6's ``weights_only`` loader read fairseq checkpoints, and nothing more.

fairseq's ``checkpoint_utils.load_checkpoint_to_cpu`` calls ``torch.load`` without
``weights_only``, which defaults to True since torch 2.6. A fairseq checkpoint pickles an
``argparse.Namespace`` (legacy ``args``) and numpy scalars (best validation loss, meter state), so
loading fails in ``fairseq-generate`` and when resuming training. We allow-list exactly those
globals; the weights-only check itself stays on, so a checkpoint holding any other pickled object
is still refused. The project's own loaders (:func:`fairseq_slt.checkpoints.load_checkpoint_state`)
do not rely on this: they pass ``weights_only=True`` and the same list in a ``safe_globals`` context.

2. fairseq writes the first checkpoint of a save atomically (``.tmp`` + rename) but then
``PathManager.copy``-es it to the others (``checkpoint_last.pt``, ``checkpoint_best.pt``) with a
plain ``shutil.copyfile``: a job killed during that copy leaves a half-written
``checkpoint_last.pt`` and the restart fails. Local copies are made atomic the same way; the log
says so once, at the first copy.

3. A save that fails (a full disk, a directory where the checkpoint should go) leaves no
``<checkpoint>.tmp`` behind: fairseq's ``torch_persistent_save`` and the atomic copy remove their
temporary file before the error goes on.

4. fairseq hands a checkpoint's ``task_state`` to the task when it loads a model to decode
(``load_model_ensemble_and_task``), but not when fairseq-train loads one to continue training
(``Trainer.load_checkpoint``: ``checkpoint_last.pt``, ``--restore-file``, ``--finetune-from-model``),
so the task could not check that the run still uses the dictionary and the video settings the
checkpoint was trained with. A task that defines ``check_resumed_state(task_state, path)`` is
now shown it first, read without the weights (:func:`fairseq_slt.checkpoints.load_task_state`).
"""

import argparse
import functools
import logging
import os
import shutil

import numpy as np
import torch

logger = logging.getLogger(__name__)


def fairseq_checkpoint_globals() -> list:
    """The non-tensor globals found in fairseq checkpoints."""
    if int(np.__version__.split(".")[0]) >= 2:
        from numpy._core.multiarray import scalar
    else:
        from numpy.core.multiarray import scalar
    dtypes = [type(np.dtype(t)) for t in ("float64", "float32", "int64", "int32", "bool")]
    return [argparse.Namespace, scalar, np.dtype, *dtypes]


def allow_fairseq_checkpoint_globals() -> None:
    add = getattr(torch.serialization, "add_safe_globals", None)
    if add is None:  # torch < 2.4 loads without the weights-only restriction by default
        return
    add(fairseq_checkpoint_globals())


def remove_quietly(path: str) -> None:
    """Remove the file ``path`` if it is there (a temporary file of a failed write)."""
    try:
        if os.path.isfile(path):
            os.remove(path)
    except OSError:
        logger.warning(f"could not remove {path} after a failed write")


def atomic_copy(src_path: str, dst_path: str, overwrite: bool = False) -> bool:
    """Copy to ``<dst>.tmp`` in the destination folder, then rename over ``dst``; a copy that
    fails leaves ``dst`` as it was and no ``.tmp``."""
    if os.path.exists(dst_path) and not overwrite:
        return False
    tmp = dst_path + ".tmp"
    try:
        shutil.copyfile(src_path, tmp)
        os.replace(tmp, dst_path)
    except BaseException:
        remove_quietly(tmp)
        raise
    return True


def make_checkpoint_copies_atomic() -> None:
    from fairseq.file_io import PathManager

    original = PathManager.copy
    if getattr(original, "_fairseq_slt_atomic", False):
        return

    announced = []

    def copy(src_path: str, dst_path: str, overwrite: bool = False) -> bool:
        if "://" in src_path or "://" in dst_path:  # remote storage: fairseq's own handling
            return original(src_path, dst_path, overwrite)
        if not announced:
            announced.append(True)
            logger.info(
                "fairseq-slt: checkpoint copies are atomic (fairseq's PathManager.copy writes a .tmp "
                "file and renames it; see docs/fairseq.md)"
            )
        return atomic_copy(src_path, dst_path, overwrite)

    copy._fairseq_slt_atomic = True
    PathManager.copy = staticmethod(copy)


def make_failed_saves_clean_up() -> None:
    """Wrap fairseq's ``checkpoint_utils.torch_persistent_save`` (what ``Trainer.save_checkpoint``
    calls): when it fails, its ``<filename>.tmp`` is removed before the error goes on."""
    from fairseq import checkpoint_utils

    original = checkpoint_utils.torch_persistent_save
    if getattr(original, "_fairseq_slt_clean", False):
        return

    def torch_persistent_save(obj, filename, async_write: bool = False):
        try:
            return original(obj, filename, async_write)
        except BaseException:
            if isinstance(filename, str) and "://" not in filename:
                remove_quietly(filename + ".tmp")
            raise

    torch_persistent_save._fairseq_slt_clean = True
    checkpoint_utils.torch_persistent_save = torch_persistent_save
def show_task_state_on_resume() -> None:
    """Wrap ``Trainer.load_checkpoint``: a task with ``check_resumed_state`` sees the checkpoint's
    ``task_state`` (and its path) before any weight is loaded; it refuses by raising."""
    from fairseq.file_io import PathManager
    from fairseq.trainer import Trainer

    original = Trainer.load_checkpoint
    if getattr(original, "_fairseq_slt_task_state", False):
        return

    @functools.wraps(original)
    def load_checkpoint(self, filename, *args, **kwargs):
        check = getattr(self.task, "check_resumed_state", None)
        if check is not None and PathManager.isfile(filename):
            from .checkpoints import load_task_state

            check(load_task_state(PathManager.get_local_path(filename)), filename)
        return original(self, filename, *args, **kwargs)

    load_checkpoint._fairseq_slt_task_state = True
    Trainer.load_checkpoint = load_checkpoint
