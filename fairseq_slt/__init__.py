"""fairseq-slt: gloss-free sign language translation (FLa-LLM) as a fairseq plugin.

Load with ``fairseq-train --user-dir <path to fairseq_slt> --task sign_translation --arch slt_lightt``.

Importing the package registers the task, the models and the optimizer with fairseq and makes
its checkpoint patches (:func:`register`), as ``--user-dir`` expects. The one exception is a
process started by one of our own console scripts (``fairseq-slt-*``): most of them never touch
fairseq, and torch + fairseq take seconds to import, so there the package imports nothing heavy and
the code paths that need fairseq's registries call :func:`register` themselves (loading a
checkpoint, reading an ``--arch``'s defaults). A console script that hands ``--user-dir
fairseq_slt`` to fairseq in-process must call :func:`register` first: fairseq's
``import_user_module`` skips a package that is already imported.
"""

import importlib
import os
import sys

__version__ = "0.1.0"

_registered = False


def register() -> None:
    """Register the task (``sign_translation``), the models and archs (``slt_lightt``,
    ``slt_mbart``, ...), the optimizer (``adam_grouped``) and the criterion
    (``label_smoothed_cross_entropy_with_bow``) with fairseq, and patch fairseq's
    checkpoint handling (:mod:`fairseq_slt.checkpoint_safety`) and its ``--log-file`` handling
    (:func:`fairseq_slt.logging_utils.open_progress_log_file_once`). Idempotent."""
    global _registered
    if _registered:
        return
    from .checkpoint_safety import (
        allow_fairseq_checkpoint_globals,
        make_checkpoint_copies_atomic,
        make_failed_saves_clean_up,
        show_task_state_on_resume,
    )

    allow_fairseq_checkpoint_globals()
    make_checkpoint_copies_atomic()
    make_failed_saves_clean_up()
    show_task_state_on_resume()
    for package in ("criterions", "models", "optim", "tasks"):  # importing them registers the components
        importlib.import_module(f".{package}", __name__)
    from .logging_utils import open_progress_log_file_once, undo_fairseq_debug_root_logger

    undo_fairseq_debug_root_logger()  # fairseq's import leaves the root logger at DEBUG
    open_progress_log_file_once()  # --log-file: each json line once, not once per epoch so far

    _registered = True


def started_by_own_console_script() -> bool:
    """Whether this process runs one of the ``fairseq-slt-*`` console scripts (setup.py)."""
    argv = getattr(sys, "argv", None) or [""]
    return os.path.basename(argv[0]).startswith("fairseq-slt-")


if not started_by_own_console_script():
    register()
