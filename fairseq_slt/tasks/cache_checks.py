"""The checks of a feature cache (``feature_cache`` in ``config.yaml``) against the model and the data config.

A cache is valid only for the frozen visual encoder it was computed with (``meta.json``'s
fingerprints, :func:`check_cache_matches`) and holds features made with the video settings
its ``meta.json`` records (:func:`cache_video_settings`). The task checks a model when it is built
from ``--stage1-checkpoint``, again once fairseq-train loads a checkpoint's weights into it
(:func:`watch_loaded_weights`), and a model restored for decoding in ``build_generator``.
"""

import logging
from typing import Dict

from ..data.feature_cache import fingerprint_matches, read_meta, rebuild_command
from ..data.video_settings import check_video_settings, recorded_settings

logger = logging.getLogger(__name__)


def check_cache_matches(model, cache_dir: str, loaded: bool = False) -> None:
    """Refuse a model whose frozen visual encoder is not the one the cache was computed with.
    ``loaded``: the model's weights were just loaded from a checkpoint (fairseq-train resuming)."""
    encoder = model.encoder
    if not encoder.accepts_cached_features:
        raise ValueError(
            f"config.yaml names the feature cache {cache_dir}, but this model trains its visual "
            "encoder (stage 1 or --train-visual-encoder): remove feature_cache from config.yaml"
        )
    meta = read_meta(cache_dir)
    # the weights as they are: float32, or cast by fairseq's --fp16 / --bf16 (meta.json has both)
    if not fingerprint_matches(meta, cache_dir, encoder.visual_encoder.state_dict()):
        loaded_from = (
            " (the weights it just loaded from a checkpoint: a run on another stage-1 checkpoint? "
            "to start from --stage1-checkpoint instead, train into a new --save-dir)" if loaded else ""
        )
        raise ValueError(
            f"the feature cache {cache_dir} was computed from {meta.get('stage1_checkpoint')}, whose "
            f"visual encoder differs from this model's{loaded_from}: rebuild it with "
            "fairseq-slt-cache-features DATA --stage1-checkpoint <the stage-1 checkpoint of this model> "
            f"--out {cache_dir}"
        )
    logger.info(f"feature cache {cache_dir} matches the frozen visual encoder")


def watch_loaded_weights(model, cache_dir: str) -> None:
    """Check the model against the cache again whenever a checkpoint's weights are loaded into it
    (fairseq-train resuming from ``checkpoint_last.pt``, ``--restore-file``, ``--finetune-from-model``)."""

    def check_loaded_weights(module, incompatible_keys):
        # missing / unexpected keys: torch's strict load names them, our check would not
        if not (incompatible_keys.missing_keys or incompatible_keys.unexpected_keys):
            check_cache_matches(module, cache_dir, loaded=True)

    model.register_load_state_dict_post_hook(check_loaded_weights)


def cache_video_settings(cache_dir: str, config_settings: Dict, yaml_path: str, config_yaml: str,
                         allow_change: bool) -> Dict:
    """The video settings of the features in ``cache_dir``: a data config (``yaml_path``, giving
    ``config_settings``) with others, or a cache that does not record them all, is refused, or, with
    ``allow_change`` (``--allow-video-settings-change``), the cache's are returned, the data config's
    for those it lacks (and checkpoints record those)."""
    meta = read_meta(cache_dir)
    recorded = recorded_settings(meta)
    check_video_settings(
        recorded, config_settings, f"the feature cache {cache_dir}", yaml_path, allow_change, made="computed",
        fix=f"{rebuild_command(cache_dir, meta)} --config-yaml {config_yaml}, or use the data config "
        "it was computed with",
        remake=f"{rebuild_command(cache_dir, meta)} --config-yaml {config_yaml}",
        going_on="stage 2 reads its features, made with its settings, and its checkpoints record those",
    )
    return dict(config_settings, **recorded)
