from . import label_smoothed_ce_with_bow  # noqa: F401 (registers --criterion label_smoothed_cross_entropy_with_bow)
