"""Every change the plugin makes to fairseq's and torch's global state, in one list.

:func:`apply_patches` applies :data:`PATCHES` in order; :func:`fairseq_slt.register` calls it, once
per process, after importing the task and the models. Each patch is idempotent and marks what
it wraps, so a second call changes nothing. Nothing else in the package changes fairseq or torch.

``allow_fairseq_checkpoint_globals``
    torch >= 2.6's ``torch.load`` defaults to ``weights_only=True``, and fairseq's
    ``checkpoint_utils.load_checkpoint_to_cpu`` calls it without the argument. A fairseq checkpoint
    pickles an ``argparse.Namespace`` and numpy scalars, so fairseq-generate and resuming would fail.
    Exactly those globals are allow-listed (:func:`fairseq_slt.checkpoints.fairseq_checkpoint_globals`);
    the weights-only check stays on, so a checkpoint holding any other pickled object is refused.
    The project's own loaders pass the same list for their own call and do not rely on this patch.

``atomic_checkpoint_copies``
    fairseq writes the first checkpoint of a save atomically (``.tmp`` + rename) and then
    ``PathManager.copy``-es it to the others (``checkpoint_last.pt``, ``checkpoint_best.pt``) with a
    plain ``shutil.copyfile``: a job killed during that copy leaves a half-written
    ``checkpoint_last.pt`` that the restart cannot read. Local copies are made atomic the same way
    (:func:`atomic_copy`); remote paths (``://``) keep fairseq's handling.

``failed_saves_clean_up``
    A save that fails (a full disk, a directory where the checkpoint should go) leaves a
    ``<checkpoint>.tmp`` behind. fairseq's ``checkpoint_utils.torch_persistent_save`` is wrapped to
    remove it before the error goes on.

``task_state_on_resume``
    fairseq hands a checkpoint's ``task_state`` to the task when it loads a model to decode
    (``load_model_ensemble_and_task``), but not when fairseq-train loads one to continue training
    (``Trainer.load_checkpoint``: ``checkpoint_last.pt``, ``--restore-file``,
    ``--finetune-from-model``). ``Trainer.load_checkpoint`` is wrapped: a task that defines
    ``check_resumed_state(task_state, path)`` is shown the ``task_state`` first, read without the
    weights (:func:`fairseq_slt.checkpoints.load_task_state`), and refuses by raising.

``log_file_opened_once``
    ``fairseq.logging.progress_bar.progress_bar`` adds a ``logging.FileHandler`` for ``--log-file``
    on every call, and fairseq-train calls it once per epoch: epoch N wrote each json line N times
    and the process held one more open file per epoch. A call for a file that the progress bar's
    logger already writes to passes ``log_file=None``; the first handler writes every line, once.

``root_logger_not_debug``
    Importing ``fairseq.models`` imports ``wav2vec2_classification``, which calls
    ``logging.basicConfig(level=logging.DEBUG)``; fairseq-generate's own ``basicConfig`` then does
    nothing, and its log carried every library's DEBUG lines (PIL's per png frame). The root logger
    goes back to ``LOGLEVEL`` (INFO by default) and the third-party loggers of
    :data:`fairseq_slt.logging_utils.THIRD_PARTY_LOGGERS` to WARNING where nobody set them.
"""

import functools
import inspect
import logging
import os
import shutil
from dataclasses import dataclass
from typing import Callable, Tuple

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Patch:
    """One change to fairseq's or torch's global state: what it changes and why (the module
    docstring has the details under ``name``)."""

    name: str
    changes: str
    why: str
    apply: Callable[[], None]


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


def allow_fairseq_checkpoint_globals() -> None:
    import torch

    from .checkpoints import fairseq_checkpoint_globals

    add = getattr(torch.serialization, "add_safe_globals", None)
    if add is None:  # torch < 2.4 loads without the weights-only restriction by default
        return
    add(fairseq_checkpoint_globals())


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


def _has_file_handler(logger_: logging.Logger, filename: str) -> bool:
    """Whether ``logger_`` already writes to ``filename`` through a ``logging.FileHandler``."""
    path = os.path.abspath(filename)  # what FileHandler stores as baseFilename
    return any(isinstance(h, logging.FileHandler) and h.baseFilename == path for h in logger_.handlers)


def open_progress_log_file_once() -> None:
    from fairseq.logging import progress_bar as module

    original = module.progress_bar
    if getattr(original, "_fairseq_slt_log_file_once", False):
        return
    signature = inspect.signature(original)

    @functools.wraps(original)
    def progress_bar(*args, **kwargs):
        bound = signature.bind(*args, **kwargs)
        log_file = bound.arguments.get("log_file")
        if log_file is not None and _has_file_handler(module.logger, log_file):
            bound.arguments["log_file"] = None
        return original(*bound.args, **bound.kwargs)

    progress_bar._fairseq_slt_log_file_once = True
    module.progress_bar = progress_bar


def undo_fairseq_debug_root_logger() -> None:
    from .logging_utils import THIRD_PARTY_LOGGERS

    level = (os.environ.get("LOGLEVEL") or "INFO").upper()
    root = logging.getLogger()
    if root.level == logging.DEBUG and level != "DEBUG":
        root.setLevel(level)
    for name in THIRD_PARTY_LOGGERS:
        if logging.getLogger(name).level == logging.NOTSET:
            logging.getLogger(name).setLevel(logging.WARNING)


PATCHES: Tuple[Patch, ...] = (
    Patch("allow_fairseq_checkpoint_globals", "torch.serialization's safe globals",
          "fairseq's checkpoint loader under torch >= 2.6's weights-only default",
          allow_fairseq_checkpoint_globals),
    Patch("atomic_checkpoint_copies", "fairseq.file_io.PathManager.copy",
          "a job killed while copying checkpoint_last.pt leaves a half-written file",
          make_checkpoint_copies_atomic),
    Patch("failed_saves_clean_up", "fairseq.checkpoint_utils.torch_persistent_save",
          "a failed save leaves <checkpoint>.tmp behind", make_failed_saves_clean_up),
    Patch("task_state_on_resume", "fairseq.trainer.Trainer.load_checkpoint",
          "the task checks the dictionary and video settings of a checkpoint it continues from",
          show_task_state_on_resume),
    Patch("log_file_opened_once", "fairseq.logging.progress_bar.progress_bar",
          "--log-file got each line once per epoch so far", open_progress_log_file_once),
    Patch("root_logger_not_debug", "the root logger's level, third-party loggers' levels",
          "importing fairseq.models sets the root logger to DEBUG", undo_fairseq_debug_root_logger),
)


def apply_patches() -> None:
    """Apply every patch of :data:`PATCHES`, in order (idempotent)."""
    for patch in PATCHES:
        patch.apply()
