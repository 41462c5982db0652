"""The options of building a feature cache (:mod:`fairseq_slt.feature_cache_builder`): their
choices and the defaults of those a caller of its ``main()`` may leave out.

Light (no torch, no fairseq), so that ``fairseq-slt-cache-features --help`` imports neither; the
builder's ``PRECISIONS`` and :data:`~fairseq_slt.data.feature_cache.STORAGE_DTYPES` are keyed by
these choices.
"""

# autocast precision of the visual encoder
PRECISION_CHOICES = ("fp32", "bf16", "fp16")
# storage dtype of the features
DTYPE_CHOICES = ("float32", "float16")
# options a caller of fairseq_slt.feature_cache_builder.main() may leave out (the command line sets them)
DEFAULTS = dict(
    train_views=4, seed=1, device="cpu", precision="fp32", num_workers=0, dtype="float32",
    no_progress_bar=False, allow_video_settings_change=False,
)
