"""Let torch >= 2.6's ``weights_only`` loader read fairseq checkpoints, and nothing more.

fairseq's ``checkpoint_utils.load_checkpoint_to_cpu`` calls ``torch.load`` without
``weights_only``, which defaults to True since torch 2.6. A fairseq checkpoint pickles an
``argparse.Namespace`` (legacy ``args``) and numpy scalars (best validation loss, meter state), so
loading fails in ``fairseq-generate`` and when resuming training. We allow-list exactly those
globals; the weights-only check itself stays on, so a checkpoint holding any other pickled object
is still refused.
"""

import argparse
import logging

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
