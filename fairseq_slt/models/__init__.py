from . import slt_hf, slt_lightt, slt_mbart  # noqa: F401 (registers slt_lightt, slt_lightt_tiny, slt_mbart, slt_hf)
