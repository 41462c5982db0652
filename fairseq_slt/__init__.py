"""fairseq-slt: gloss-free sign language translation (FLa-LLM) as a fairseq plugin.

Load with ``fairseq-train --user-dir <path to fairseq_slt> --task sign_translation --arch slt_lightt``.

When it registers. :func:`register` registers the task, the models, the optimizer and the criterion
with fairseq and applies the plugin's patches of fairseq and torch (:mod:`fairseq_slt.patches`).
Importing the package calls it when fairseq is already imported, and only then:

* fairseq's own CLIs (fairseq-train, fairseq-generate, fairseq-interactive, ...) and hub loading
  (``from_pretrained(..., user_dir=...)``) import fairseq before ``--user-dir``'s
  ``import_user_module`` imports this package, so it registers, as ``--user-dir`` expects;
* the console scripts ``fairseq-slt-*`` import this package first; most of them never need fairseq
  (torch + fairseq take seconds to import, ``--help`` stays fast), and the code paths that do call
  :func:`register` themselves (loading a checkpoint, reading an ``--arch``'s defaults).

A program that imports this package before fairseq and then uses fairseq's registries (or hands
``--user-dir fairseq_slt`` to fairseq in-process: ``import_user_module`` skips a package that is
already imported) calls :func:`register` first. It is idempotent.
"""

import importlib
import sys

__version__ = "0.1.0"

_registered = False


def register() -> None:
    """Register the task (``sign_translation``), the models and archs (``slt_lightt``,
    ``slt_mbart``, ...), the optimizer (``adam_grouped``) and the criterion
    (``label_smoothed_cross_entropy_with_bow``) with fairseq, then apply
    :data:`fairseq_slt.patches.PATCHES`. Idempotent."""
    global _registered
    if _registered:
        return
    for package in ("criterions", "models", "optim", "tasks"):  # importing them registers the components
        importlib.import_module(f".{package}", __name__)
    from .patches import apply_patches

    apply_patches()
    _registered = True


if "fairseq" in sys.modules:
    register()
