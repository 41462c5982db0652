"""Wrapper of a data root's ``config.yaml`` (modelled on fairseq's ``S2TDataConfig``).

Example::

    video_root: videos                 # relative to the data root, or absolute
    vocab_filename: dict.txt
    bpe_tokenizer: {bpe: sentencepiece, sentencepiece_model: spm.model}
    video: {resize: 256, crop: 224, keep_ratio: 0.25, max_frames: 300}
    augment: {rotate: 30, scale: 0.2, translate: 10, p: 0.5}
"""

import os
from pathlib import Path
from typing import Any, Dict, Optional

import yaml


class SignDataConfig:
    """Read-only view of ``config.yaml``; every key has a documented default."""

    def __init__(self, yaml_path: str):
        self.yaml_path = Path(yaml_path)
        self.root = self.yaml_path.parent
        if not self.yaml_path.is_file():
            raise FileNotFoundError(
                f"data config not found: {self.yaml_path} (the data root must hold config.yaml, "
                "see README 'Data')"
            )
        with open(self.yaml_path, encoding="utf-8") as f:
            self.config: Dict[str, Any] = yaml.safe_load(f) or {}

    def _path(self, value: Optional[str]) -> Optional[str]:
        if value is None:
            return None
        return value if os.path.isabs(value) else str(self.root / value)

    def _section(self, name: str) -> Dict[str, Any]:
        return self.config.get(name) or {}

    @property
    def video_root(self) -> str:
        """Folder the manifests' ``video`` paths are relative to (default: the data root)."""
        return self._path(self.config.get("video_root", "."))

    @property
    def vocab_filename(self) -> str:
        """Target dictionary (fairseq ``dict.txt`` format)."""
        return self._path(self.config.get("vocab_filename", "dict.txt"))

    @property
    def bpe_tokenizer(self) -> Optional[Dict[str, Any]]:
        """fairseq BPE config, e.g. ``{bpe: sentencepiece, sentencepiece_model: spm.model}``;
        relative model paths are resolved against the data root."""
        bpe = dict(self.config.get("bpe_tokenizer") or {})
        if not bpe:
            return None
        if "sentencepiece_model" in bpe:
            bpe["sentencepiece_model"] = self._path(bpe["sentencepiece_model"])
        return bpe

    @property
    def resize(self) -> int:
        """Shorter side of a frame before cropping (paper/GFSLT: 256)."""
        return int(self._section("video").get("resize", 256))

    @property
    def crop(self) -> int:
        """Side of the square crop fed to the backbone (paper/GFSLT: 224)."""
        return int(self._section("video").get("crop", 224))

    @property
    def keep_ratio(self) -> float:
        """Fraction of frames kept by temporal down-sampling (paper: 0.25)."""
        return float(self._section("video").get("keep_ratio", 0.25))

    @property
    def max_frames(self) -> int:
        """Cap on frames fed to the model per video after down-sampling (0: no cap).
        Longer videos are sampled over their whole length down to this many frames."""
        return int(self._section("video").get("max_frames", 300))

    @property
    def augment(self) -> Dict[str, float]:
        """Training augmentation: rotation (degrees), scale (+-fraction), translation (pixels),
        each applied with probability ``p`` (GFSLT: 30, 0.2, 10, 0.5)."""
        aug = {"rotate": 30.0, "scale": 0.2, "translate": 10.0, "p": 0.5}
        aug.update({k: float(v) for k, v in self._section("augment").items()})
        return aug

    @property
    def feature_cache(self) -> Optional[str]:
        """Folder of cached sign-wise features (``fairseq-slt-cache-features``); when set, stage 2
        trains and decodes on them instead of decoding videos. Relative to the data root."""
        return self._path(self.config.get("feature_cache"))
