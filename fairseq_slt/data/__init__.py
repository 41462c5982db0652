"""Data: the data config, manifests, video reading and the dataset.

The names below load their module on first use (PEP 562), so that the light parts (manifests,
``config.yaml``, video probing) can be used without importing torch and fairseq, which
:mod:`~fairseq_slt.data.sign_video_dataset` needs.
"""

import importlib

_EXPORTS = {
    "DataConfigError": "data_cfg",
    "SignDataConfig": "data_cfg",
    "ManifestError": "manifest_utils",
    "SignVideoDataset": "sign_video_dataset",
    "SignVideoDatasetCreator": "sign_video_dataset",
    "SignVideoDatasetItem": "sign_video_dataset",
    "collate_frames": "sign_video_dataset",
    "VideoReadError": "video_io",
    "VideoSource": "video_io",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))
