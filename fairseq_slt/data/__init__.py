from .data_cfg import DataConfigError, SignDataConfig
from .sign_video_dataset import (
    ManifestError,
    SignVideoDataset,
    SignVideoDatasetCreator,
    SignVideoDatasetItem,
    collate_frames,
)
from .video_io import VideoReadError, VideoSource

__all__ = [
    "DataConfigError",
    "ManifestError",
    "SignDataConfig",
    "SignVideoDataset",
    "SignVideoDatasetCreator",
    "SignVideoDatasetItem",
    "VideoReadError",
    "VideoSource",
    "collate_frames",
]
