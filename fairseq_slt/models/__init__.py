from . import slt_lightt  # noqa: F401 (registers slt_lightt, slt_lightt_tiny)
