"""What the task records in every checkpoint (``task_state``) and the checks when one is loaded.

Every checkpoint fairseq-train writes with the ``sign_translation`` task holds two records beside
fairseq's own task state: the target dictionary (:mod:`.dictionary_check`, under
:data:`DICTIONARY_KEY`) and the video settings of the model's inputs
(:mod:`fairseq_slt.data.video_settings`, under :data:`VIDEO_KEY`). They are checked against the
task's own when fairseq hands a checkpoint's ``task_state`` to the task: decoding
(``load_model_ensemble_and_task``: fairseq-generate, fairseq-interactive,
:class:`fairseq_slt.inference.SignTranslator`) and continuing training (the ``task_state_on_resume``
patch of :mod:`fairseq_slt.patches`). A ``task_state`` without the records was not written by this
task and is refused. Any weights loaded into a model must also fit the target dictionary
(:func:`watch_embedding_rows`).
"""

import logging
from typing import Dict, Optional, Tuple

from ..data.video_settings import RECORD_KEY as VIDEO_KEY
from ..data.video_settings import check_video_settings
from .dictionary_check import RECORD_KEY as DICTIONARY_KEY
from .dictionary_check import check_dictionary_record, check_embedding_rows, describe

logger = logging.getLogger(__name__)


class MissingRecordsError(ValueError):
    """A checkpoint's ``task_state`` without the records (``missing``: their names)."""

    def __init__(self, message: str, missing: Tuple[str, ...]):
        super().__init__(message)
        self.missing = missing


def with_records(task_state: Dict, dictionary: Dict, video: Dict) -> Dict:
    """fairseq's ``task_state`` plus the two records."""
    return dict(task_state, **{DICTIONARY_KEY: dictionary, VIDEO_KEY: video})


def split_records(task_state: Dict) -> Tuple[Dict, Optional[Dict], Optional[Dict]]:
    """``(fairseq's task_state, dictionary record, video settings record)``; None for a missing record."""
    rest = dict(task_state)
    return rest, rest.pop(DICTIONARY_KEY, None), rest.pop(VIDEO_KEY, None)


def check_records(dictionary: Optional[Dict], video: Optional[Dict], current_dictionary: Dict,
                  current_video: Dict, yaml_path: str, allow_video_settings_change: bool,
                  checkpoint: str = "this checkpoint") -> None:
    """Check a checkpoint's records against the task's (``current_*``, from the data config
    ``yaml_path``): another dictionary is refused, naming both; other video settings unless
    ``allow_video_settings_change``; a checkpoint without the records is refused, and one whose video
    record lacks some keys unless ``allow_video_settings_change``."""
    if dictionary is None or video is None:
        missing = tuple(name for name, record in (("target dictionary", dictionary), ("video settings", video))
                        if record is None)
        raise MissingRecordsError(
            f"{checkpoint} stores no record of its {' and '.join(missing)}, which every checkpoint fairseq-train "
            f"writes with the sign_translation task holds: it was not trained with this task, so it cannot be "
            f"checked against {describe(current_dictionary)} (the data config {yaml_path})", missing,
        )
    check_dictionary_record(dictionary, current_dictionary, yaml_path, checkpoint)
    logger.info(f"target dictionary {describe(current_dictionary)} is the checkpoint's")
    trained_with = f" ({video['data_config']})" if video.get("data_config") else ""
    check_video_settings(
        video, current_video, checkpoint, yaml_path, allow_video_settings_change,
        fix=f"pass the data config it was trained with{trained_with}",
        remake="train it again with this fairseq-slt",
    )


def watch_embedding_rows(model, current_dictionary: Dict, yaml_path: str) -> None:
    """Refuse any weights loaded into ``model`` (decoding, resuming) whose output layer does not
    fit the target dictionary."""

    def check_dictionary_size(module, state_dict, prefix, *args):
        check_embedding_rows(state_dict, current_dictionary, yaml_path, prefix)

    model.register_load_state_dict_pre_hook(check_dictionary_size)
