"""The paper's settings, in one table: FLa-LLM (Chen et al., "Factorized Learning Assisted with
Large Language Model for Gloss-free Sign Language Translation", LREC-COLING 2024, arXiv
2403.12556), and GFSLT-VLP (Zhou et al., ICCV 2023: the same group's code, which the paper builds
on) for the frame settings and augmentation the paper does not state.

Used by the audit (:mod:`fairseq_slt.audit`), the prep options and the data config's defaults
(:mod:`fairseq_slt.data.data_cfg`), and printed as ``PAPER_<NAME>=value`` lines for the recipes
by ``fairseq-slt-audit --paper-settings`` (:func:`shell_lines`). Light: no imports beyond the
standard library.
"""

import shlex
from dataclasses import dataclass
from typing import Any, Dict, List

PAPER = "Chen et al., LREC-COLING 2024"
GFSLT = "GFSLT-VLP (Zhou et al., ICCV 2023), the code the paper builds on"
IMPLEMENTATION = f"{PAPER}, Sec. 4.2"
LIGHTT_TABLE = f"{PAPER}, Sec. 4.2 / Table 6"


@dataclass(frozen=True)
class PaperSetting:
    """One setting: its value, where it is stated and what it is."""

    value: Any
    source: str
    what: str


SETTINGS: Dict[str, PaperSetting] = {
    # frames
    "RESIZE": PaperSetting((256, 256), GFSLT, "height, width the whole frame is resized to (aspect ratio squashed)"),
    "CROP": PaperSetting(224, IMPLEMENTATION, "square crop: random in training, centre in evaluation"),
    "KEEP_RATIO": PaperSetting(0.25, IMPLEMENTATION, "fraction of the frames fed to the model (T/4)"),
    "MAX_FRAMES": PaperSetting(300, GFSLT, "most frames fed to the model per video"),
    # training augmentation, each with probability AUGMENT_P, on the original frames
    "AUGMENT_ROTATE": PaperSetting(30.0, GFSLT, "rotation, degrees"),
    "AUGMENT_SCALE": PaperSetting(0.2, GFSLT, "resize, +- fraction"),
    "AUGMENT_TRANSLATE": PaperSetting(10.0, GFSLT, "shift, pixels"),
    "AUGMENT_P": PaperSetting(0.5, GFSLT, "probability of each augmentation"),
    # both stages
    "LABEL_SMOOTHING": PaperSetting(0.2, IMPLEMENTATION, "label smoothing of the cross-entropy, both stages"),
    "LR_SCHEDULER": PaperSetting("cosine", IMPLEMENTATION, "learning rate schedule, both stages"),
    "BEAM": PaperSetting(5, IMPLEMENTATION, "beam size of decoding"),
    # stage 1: visual encoder + Light-T
    "LIGHTT_BASE": PaperSetting((3, 8, 512, 2048), LIGHTT_TABLE,
                                "Light-T Base: layers (encoder and decoder each), heads, width, FFN"),
    "LIGHTT_TINY": PaperSetting((1, 4, 256, 1024), LIGHTT_TABLE, "Light-T Tiny: layers, heads, width, FFN"),
    "STAGE1_OPTIMIZER": PaperSetting("sgd", IMPLEMENTATION, "stage-1 optimizer"),
    "STAGE1_MOMENTUM": PaperSetting(0.9, IMPLEMENTATION, "stage-1 SGD momentum"),
    "STAGE1_LR": PaperSetting(1e-2, IMPLEMENTATION, "stage-1 learning rate"),
    "STAGE1_BATCH": PaperSetting(8, IMPLEMENTATION, "stage-1 global batch (videos per update)"),
    "STAGE1_EPOCHS": PaperSetting(75, IMPLEMENTATION, "stage-1 epochs"),
    # stage 2: frozen visual encoder + LLM-Adapter + mBART
    "STAGE2_OPTIMIZER": PaperSetting("adam", IMPLEMENTATION, "stage-2 optimizer"),
    "STAGE2_LR_ADAPTER": PaperSetting(1e-3, IMPLEMENTATION, "stage-2 learning rate of the LLM-Adapter"),
    "STAGE2_LR_LLM": PaperSetting(1e-5, IMPLEMENTATION, "stage-2 learning rate of mBART"),
    "STAGE2_BATCH": PaperSetting(16, IMPLEMENTATION, "stage-2 global batch (videos per update)"),
}


def paper_value(name: str) -> Any:
    """The paper's value of the setting ``name`` (a key of :data:`SETTINGS`)."""
    return SETTINGS[name].value


def fmt_lr(x: float) -> str:
    """A learning rate as the paper writes it: ``1e-2``, ``1.5e-3``."""
    mantissa, exponent = f"{x:e}".split("e")
    mantissa = mantissa.rstrip("0").rstrip(".")
    return f"{mantissa}e{int(exponent)}"


def shell_value(name: str, value: Any) -> str:
    """``value`` as a command line takes it: ``256,256``, ``1e-2``, ``0.9``, ``75``."""
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value)
    if isinstance(value, float):
        return fmt_lr(value) if "_LR" in name else f"{value:g}"
    return str(value)


def shell_lines() -> List[str]:
    """``PAPER_<NAME>=value`` for every setting (shell-quoted, for ``eval``), plus
    ``PAPER_STAGE2_LLM_LR_SCALE``: mBART's learning rate as a multiple of the adapter's
    (``adam_grouped``'s ``--group-lr-scales llm:<scale>`` with ``--lr`` the adapter's)."""
    lines = [f"PAPER_{name}={shlex.quote(shell_value(name, s.value))}" for name, s in SETTINGS.items()]
    scale = paper_value("STAGE2_LR_LLM") / paper_value("STAGE2_LR_ADAPTER")
    lines.append(f"PAPER_STAGE2_LLM_LR_SCALE={scale:g}")
    return lines
