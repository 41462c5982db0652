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
    plugin sets them to WARNING too: :func:`fairseq_slt.patches.undo_fairseq_debug_root_logger`).

    ``force``: importing fairseq already logs through the root logger, which configures it with
    Python's default format, so a plain ``basicConfig`` would do nothing."""
    level = (level or os.environ.get("LOGLEVEL") or "INFO").upper()
    logging.basicConfig(format=LOG_FORMAT, level=level, force=True)
    for name in third_party:
        logging.getLogger(name).setLevel(third_party_level)
