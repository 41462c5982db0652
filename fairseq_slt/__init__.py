"""fairseq-slt: gloss-free sign language translation (FLa-LLM) as a fairseq plugin.

Load with ``fairseq-train --user-dir <path to fairseq_slt> --task sign_translation --arch slt_lightt``.
"""

from .checkpoint_safety import allow_fairseq_checkpoint_globals, make_checkpoint_copies_atomic

allow_fairseq_checkpoint_globals()
make_checkpoint_copies_atomic()

from . import data, models, optim, tasks  # noqa: E402,F401  (registers task, archs, optimizer)

__version__ = "0.1.0"
