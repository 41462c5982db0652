"""The video settings a model's inputs are made with, as checkpoints and feature caches record them.

A visual encoder learns from frames resized, cropped, sampled in time and normalised in one way
(``video`` in ``config.yaml``: ``resize``, ``crop``, ``keep_ratio``, ``max_frames``; the
normalisation of :mod:`.transforms`). Fed frames made otherwise, it runs without an error and
translates worse. So every checkpoint fairseq-train writes records them (the task's
``task_state``, beside the record of its dictionary) and so does every feature cache
(``meta.json``); whatever loads either compares the record with its data config
(:func:`check_video_settings`): fairseq-generate and :class:`fairseq_slt.inference.SignTranslator`
(decoding), fairseq-train (resuming, ``--restore-file``, ``--finetune-from-model``),
fairseq-slt-cache-features (the stage-1 checkpoint it encodes with) and stage 2 on a feature cache.
A difference is refused naming the key, both values and :data:`OVERRIDE_FLAG`, which goes on with a
warning. A source that records none or only some of the keys (:data:`SETTING_KEYS`) was not written
by this fairseq-slt, whose checkpoints and caches record them all: it is refused naming the keys it
lacks (:class:`MissingVideoSettingsError`); :data:`OVERRIDE_FLAG` also lets it through, with a
warning, and the keys it has are still compared.
"""

import json
import logging
from typing import Any, Dict, List, Optional, Tuple

from .transforms import IMAGENET_MEAN, IMAGENET_STD

logger = logging.getLogger(__name__)

# the entry of the task's state (a checkpoint's ``task_state``) that records the video settings
RECORD_KEY = "video_settings"
OVERRIDE_FLAG = "--allow-video-settings-change"
# the data config's ``video`` keys, then the normalisation of the frames (``.transforms``)
VIDEO_KEYS = ("resize", "crop", "keep_ratio", "max_frames")
NORM_KEYS = ("norm_mean", "norm_std")
SETTING_KEYS = VIDEO_KEYS + NORM_KEYS

# (key, recorded value, data config's value)
Difference = Tuple[str, Any, Any]


def video_settings(data_cfg) -> Dict[str, Any]:
    """The settings of a :class:`~fairseq_slt.data.SignDataConfig`, as JSON stores them (a
    ``[height, width]`` resize is a list)."""
    resize = data_cfg.resize
    return {
        "resize": list(resize) if isinstance(resize, tuple) else resize,
        "crop": data_cfg.crop,
        "keep_ratio": data_cfg.keep_ratio,
        "max_frames": data_cfg.max_frames,
        "norm_mean": list(IMAGENET_MEAN),
        "norm_std": list(IMAGENET_STD),
    }


def recorded_settings(record: Dict[str, Any]) -> Dict[str, Any]:
    """The setting keys a record (a checkpoint's, a cache's ``meta.json``) holds."""
    return {key: record[key] for key in SETTING_KEYS if key in record}


def canonical(key: str, value: Any) -> Any:
    """``value`` of ``key`` in one form (lists, not tuples; floats for ratios and normalisation),
    for comparing a record (pickled or JSON) with a config."""
    if isinstance(value, (list, tuple)):
        return [float(v) if key in NORM_KEYS else v for v in value]
    return float(value) if key == "keep_ratio" else value


def differences(recorded: Dict[str, Any], current: Dict[str, Any]) -> List[Difference]:
    """The keys ``recorded`` holds whose values differ from ``current``'s."""
    return [
        (key, recorded[key], current[key])
        for key in SETTING_KEYS
        if key in recorded and canonical(key, recorded[key]) != canonical(key, current[key])
    ]


def label(key: str) -> str:
    """``video.crop`` for a data config key, ``norm_mean`` for the normalisation."""
    return f"video.{key}" if key in VIDEO_KEYS else key


def show(value: Any) -> str:
    return json.dumps(list(value) if isinstance(value, tuple) else value)


def describe(settings: Dict[str, Any], keys=SETTING_KEYS) -> str:
    """``video.resize 256, video.crop 224, ...`` for the ``keys`` that ``settings`` holds."""
    return ", ".join(f"{label(k)} {show(settings[k])}" for k in keys if k in settings)


class VideoSettingsMismatchError(ValueError):
    """A checkpoint or feature cache used with a data config whose video settings differ from its
    record. ``differences``: ``(key, recorded, current)`` of each; ``source``: what recorded them;
    ``recorded``: its whole record; ``yaml_path``: the data config."""

    def __init__(self, message: str, differences: List[Difference], source: str, yaml_path: str,
                 recorded: Dict[str, Any]):
        super().__init__(message)
        self.differences, self.source, self.yaml_path, self.recorded = differences, source, yaml_path, recorded


class MissingVideoSettingsError(ValueError):
    """A checkpoint or feature cache that records none or only some of the video settings.
    ``missing``: the keys it lacks; ``source``: what was read; ``yaml_path``: the data config."""

    def __init__(self, message: str, missing: Tuple[str, ...], source: str, yaml_path: str):
        super().__init__(message)
        self.missing, self.source, self.yaml_path = missing, source, yaml_path


def missing_keys(recorded: Optional[Dict[str, Any]]) -> Tuple[str, ...]:
    """The setting keys that ``recorded`` (None: no record) lacks."""
    return tuple(key for key in SETTING_KEYS if key not in (recorded or {}))


def missing_message(missing: Tuple[str, ...], source: str, yaml_path: str) -> str:
    """``<source> records no video.crop, norm_mean (which every checkpoint and feature cache of this
    fairseq-slt records), so they cannot be checked against the data config <yaml>``."""
    what = "video settings" if missing == SETTING_KEYS else ", ".join(map(label, missing))
    return (
        f"{source} records no {what} (which every checkpoint and feature cache of this fairseq-slt records), "
        f"so they cannot be checked against the data config {yaml_path}"
    )


def mismatch_message(diffs: List[Difference], source: str, yaml_path: str, made: str = "trained") -> str:
    """``<source> was trained with video.crop 224, but the data config <yaml> gives video.crop 112``."""
    keys = [key for key, _, _ in diffs]
    recorded = {key: value for key, value, _ in diffs}
    current = {key: value for key, _, value in diffs}
    return (
        f"{source} was {made} with {describe(recorded, keys)}, but the data config {yaml_path} gives "
        f"{describe(current, keys)}"
    )


def mismatch_error(diffs: List[Difference], source: str, yaml_path: str, recorded: Dict[str, Any], fix: str,
                   made: str = "trained", going_on: str = "the data config's settings are used"
                   ) -> VideoSettingsMismatchError:
    """The one-line refusal: the keys and both values, then ``fix`` and :data:`OVERRIDE_FLAG`."""
    return VideoSettingsMismatchError(
        f"{mismatch_message(diffs, source, yaml_path, made)} (the visual encoder would see frames made "
        f"otherwise than then); {fix}, or pass {OVERRIDE_FLAG} to go on ({going_on})",
        diffs, source, yaml_path, recorded,
    )


def check_video_settings(recorded: Optional[Dict[str, Any]], current: Dict[str, Any], source: str,
                         yaml_path: str, allow: bool, fix: str, remake: str, made: str = "trained",
                         going_on: str = "the data config's settings are used") -> List[Difference]:
    """Compare the settings ``source`` recorded (None: it records none) with the data config's
    (``current``, from ``yaml_path``). A record without some of :data:`SETTING_KEYS` is refused
    naming them and ``remake`` (how to write the source again with this fairseq-slt); a difference
    is refused (:func:`mismatch_error`) naming ``fix``. With ``allow`` (:data:`OVERRIDE_FLAG`) each
    is a warning saying what happens instead (``going_on``) and the keys the record has are
    compared. Returns the differences."""
    missing = missing_keys(recorded)
    if missing:
        message = missing_message(missing, source, yaml_path)
        if not allow:
            raise MissingVideoSettingsError(
                f"{message}; {remake}, or pass {OVERRIDE_FLAG} to go on ({going_on})", missing, source, yaml_path,
            )
        logger.warning(f"{message}; going on as {OVERRIDE_FLAG} asks: {going_on}")
    diffs = differences(recorded or {}, current)
    if not diffs:
        if not missing:
            logger.info(f"video settings of the data config {yaml_path} are those {source} was {made} with")
        return []
    if not allow:
        raise mismatch_error(diffs, source, yaml_path, recorded, fix, made, going_on)
    logger.warning(
        f"{mismatch_message(diffs, source, yaml_path, made)}; going on as {OVERRIDE_FLAG} asks: {going_on}"
    )
    return diffs
