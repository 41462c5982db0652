"""Logging set-up shared by the console scripts (library modules only call ``logging.getLogger``)."""

import logging
import os
from typing import Optional, Sequence

LOG_FORMAT = "%(asctime)s | %(levelname)s | %(name)s | %(message)s"  # fairseq_cli's format
# libraries that log per file or per request at DEBUG/INFO: PIL alone logs ~3 lines per png frame
# it opens (18,922 lines in one fairseq-slt-cache-features run at DEBUG)
THIRD_PARTY_LOGGERS = ("PIL", "matplotlib", "urllib3", "fsspec", "filelock", "h5py", "numba", "tensorboard")


def setup_logging(level: Optional[str] = None, third_party: Sequence[str] = THIRD_PARTY_LOGGERS,
                  third_party_level: int = logging.WARNING) -> None:
    """Logging to stderr in fairseq's format, for a console script's ``cli_main``.

    ``level``: by default fairseq's ``LOGLEVEL`` environment variable, as fairseq-train reads it,
    or INFO. The ``third_party`` loggers stay at ``third_party_level`` (WARNING) whatever the
    level, so a ``LOGLEVEL=DEBUG`` run shows this project's and fairseq's debug lines, not one line
    per decoded frame; a caller that wants theirs sets their level after this call (importing the
    plugin sets them to WARNING too: :func:`undo_fairseq_debug_root_logger`).

    ``force``: importing fairseq already logs through the root logger, which configures it with
    Python's default format, so a plain ``basicConfig`` would do nothing."""
    level = (level or os.environ.get("LOGLEVEL") or "INFO").upper()
    logging.basicConfig(format=LOG_FORMAT, level=level, force=True)
    for name in third_party:
        logging.getLogger(name).setLevel(third_party_level)


def undo_fairseq_debug_root_logger() -> None:
    """Undo the root logger's DEBUG level that importing fairseq sets.

    fairseq's ``fairseq/models/wav2vec/wav2vec2_classification.py`` calls
    ``logging.basicConfig(level=logging.DEBUG)`` when it is imported, which every import of
    ``fairseq.models`` does. fairseq-train formats its log before that, but fairseq-generate's
    own ``basicConfig`` then does nothing, so its log carried every library's DEBUG lines (PIL
    alone writes 2 lines per png frame it opens: 796 lines decoding 14 videos). Called once fairseq
    is imported (:func:`fairseq_slt.register`): the root logger goes back to ``LOGLEVEL`` (INFO
    by default) and the third-party loggers go to WARNING, as :func:`setup_logging` keeps them.
    """
    level = (os.environ.get("LOGLEVEL") or "INFO").upper()
    root = logging.getLogger()
    if root.level == logging.DEBUG and level != "DEBUG":
        root.setLevel(level)
    for name in THIRD_PARTY_LOGGERS:
        if logging.getLogger(name).level == logging.NOTSET:
            logging.getLogger(name).setLevel(logging.WARNING)


def _has_file_handler(logger: logging.Logger, filename: str) -> bool:
    """Whether ``logger`` already writes to ``filename`` through a ``logging.FileHandler``."""
    path = os.path.abspath(filename)  # what FileHandler stores as baseFilename
    return any(isinstance(h, logging.FileHandler) and h.baseFilename == path for h in logger.handlers)


def open_progress_log_file_once() -> None:
    """Make fairseq's ``progress_bar`` open ``--log-file`` once per process, not once per epoch.

    ``fairseq.logging.progress_bar.progress_bar`` adds a new ``logging.FileHandler`` for
    ``log_file`` to its module logger on every call, and fairseq-train calls it once per epoch
    (``fairseq_cli/train.py``'s ``train``). Every handler stays, so epoch N writes each json
    line of the log file N times (a 20-epoch stage 1 on the synthetic benchmark wrote its epoch-20
    lines 20 times) and the process holds one more open file per epoch (a run of about 1,000 epochs
    reaches the usual limit of 1,024 open files). Wrapped here: a call whose ``log_file`` that
    logger already writes to passes ``log_file=None``, so the first handler keeps writing every
    line, once. Idempotent; the console output is unchanged.
    """
    import functools
    import inspect

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
