from .data_cfg import SignDataConfig
from .sign_video_dataset import (
    ManifestError,
    SignVideoDataset,
    SignVideoDatasetCreator,
    SignVideoDatasetItem,
    collate_frames,
)
from .video_io import VideoReadError, VideoSource

__all__ = [
    "ManifestError",
    "SignDataConfig",
    "SignVideoDataset",
    "SignVideoDatasetCreator",
    "SignVideoDatasetItem",
    "VideoReadError",
    "VideoSource",
    "collate_frames",
]
