from . import adam_grouped  # noqa: F401 (registers --optimizer adam_grouped)
