"""Logging set-up shared by the console scripts (library modules only call ``logging.getLogger``)."""

import logging

LOG_FORMAT = "%(asctime)s | %(levelname)s | %(name)s | %(message)s"  # fairseq_cli's format


def setup_logging() -> None:
    """INFO logging to stderr in fairseq's format, for a console script's ``cli_main``.

    ``force``: importing fairseq already logs through the root logger, which configures it with
    Python's default format, so a plain ``basicConfig`` would do nothing."""
    logging.basicConfig(format=LOG_FORMAT, level=logging.INFO, force=True)
