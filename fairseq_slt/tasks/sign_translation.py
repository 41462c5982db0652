"""The ``sign_translation`` task: sign language video -> spoken-language text.

Modelled on fairseq's ``speech_to_text`` task: the data root holds ``config.yaml`` (see
:class:`fairseq_slt.data.SignDataConfig`) and one TSV manifest per split.
"""

import logging
import os
from argparse import Namespace
from dataclasses import dataclass, field
from typing import Optional

from fairseq import metrics
from fairseq.data import Dictionary, encoders
from fairseq.dataclass import FairseqDataclass
from fairseq.tasks import FairseqTask, register_task
from omegaconf import II, MISSING

from ..data import DataConfigError, SignDataConfig, SignVideoDatasetCreator
from ..data.manifest_utils import is_train_split
from ..data.video_settings import video_settings
from ..hf import bpe as _hf_bpe  # noqa: F401 (registers bpe: hf_tokenizer)
from .cache_checks import cache_video_settings, check_cache_matches, watch_loaded_weights
from .checkpoint_records import check_records, split_records, watch_embedding_rows, with_records
from .decode_tally import DecodeTally, SplitCount, running_line, skip_summary
from .dictionary_check import dictionary_record
from .epoch_iterators import without_persistent_workers
from .norm_logging import log_last_layer_norms
from .target_dictionary import add_mbart_symbols, load_target_dictionary

logger = logging.getLogger(__name__)


@dataclass
class SignTranslationConfig(FairseqDataclass):
    data: str = field(
        default=MISSING,
        metadata={"help": "data root: config.yaml and <split>.tsv manifests (id, video, n_frames, tgt_text)"},
    )
    config_yaml: str = field(
        default="config.yaml", metadata={"help": "data config file, relative to the data root"}
    )
    max_source_positions: int = field(
        default=1024, metadata={"help": "max frames fed to the model per video (after sampling)"}
    )
    max_target_positions: int = field(
        default=1024, metadata={"help": "max target tokens per sentence"}
    )
    langs: Optional[str] = field(
        default=None,
        metadata={
            "help": "stage 2: comma-separated pre-training languages of mBART in their order (as "
            "translation_from_pretrained_bart's --langs), or 'cc25' for mBART-large-cc25's 25; the "
            "dictionary gets [lang] for each, then <mask>"
        },
    )
    tgt_lang: Optional[str] = field(
        default=None,
        metadata={
            "help": "stage 2: mBART code of the target language (e.g. de_DE); targets end with "
            "'</s> [tgt_lang]' and decoding starts from [tgt_lang], as in mBART fine-tuning"
        },
    )
    skip_bad_videos: bool = field(
        default=False,
        metadata={
            "help": "log and skip training/validation videos that cannot be read (missing, corrupt, "
            "wrong frame count) and report their number per epoch (skipped_videos); default: stop "
            "with an error naming the manifest row"
        },
    )
    allow_video_settings_change: bool = field(
        default=False,
        metadata={
            "help": "go on, with a warning, where the data config's video settings (video.resize, "
            "video.crop, video.keep_ratio, video.max_frames, the frames' normalisation) differ from those "
            "the checkpoint was trained with (decoding, resuming, --restore-file) or the feature cache was "
            "computed with, or where that checkpoint or cache does not record them all; default: stop with "
            "an error naming them"
        },
    )
    frame_buffer_pool: bool = field(
        default=False,
        metadata={
            "help": "CPU data loader: allocate frames and batches from recycled huge-page memory "
            "mappings instead of fresh ones (faster on the CPU, benchmarks/loader.py "
            "--buffer-pool-ab; not measured with a GPU); default: torch's allocator"
        },
    )
    log_norms_interval: int = field(
        default=0,
        metadata={
            "help": "every N updates, log the gradient and parameter norms of the last visual-encoder "
            "layer and the last LLM (decoder) layer as gnorm/pnorm_visual_last and gnorm/pnorm_llm_last "
            "(the paper's Figure 2); 0: off"
        },
    )
    seed: int = II("common.seed")


@register_task("sign_translation", dataclass=SignTranslationConfig)
class SignTranslationTask(FairseqTask):
    """Gloss-free sign language translation (FLa-LLM, Chen et al. 2024).

    What the models and the criterion read of the task, beside fairseq's interface (set in
    :meth:`build_model` only):

    * ``building_from_checkpoint``: True while :meth:`build_model` builds a model whose weights a
      checkpoint then overwrites (decoding, ``from_checkpoint=True``); the models then skip loading
      pre-trained parts (stage-1 encoder, mBART, ImageNet weights).
    * ``sign_feature_dim``: the width of the sign-wise features (the visual encoder's output) of the
      last model built, for a criterion's head; None for a model without a visual encoder.

    ``decode_tally``: the rows decoded and skipped so far (:class:`.decode_tally.DecodeTally`).
    """

    cfg: SignTranslationConfig

    def __init__(self, cfg: SignTranslationConfig, tgt_dict: Dictionary, data_cfg: SignDataConfig):
        super().__init__(cfg)
        self.tgt_dict = tgt_dict
        self.data_cfg = data_cfg
        self.bpe_tokenizer = self.build_bpe(None)
        self.building_from_checkpoint = False
        self.sign_feature_dim: Optional[int] = None
        self.decode_tally = DecodeTally()
        self._warned_tally = False
        # once a split reads the feature cache: the video settings its features were computed with
        self._cache_settings: Optional[dict] = None

    @classmethod
    def setup_task(cls, cfg: SignTranslationConfig, **kwargs):
        data_cfg = SignDataConfig(os.path.join(cfg.data, cfg.config_yaml))
        if data_cfg.max_frames > cfg.max_source_positions:  # fairseq would skip those samples
            raise DataConfigError(
                f"{data_cfg.yaml_path}: video.max_frames ({data_cfg.max_frames}) is larger than "
                f"--max-source-positions ({cfg.max_source_positions}): fairseq would skip every video "
                f"sampled to more than {cfg.max_source_positions} frames; lower video.max_frames to at "
                f"most {cfg.max_source_positions} or raise --max-source-positions"
            )
        tgt_dict, dict_path = load_target_dictionary(data_cfg)
        add_mbart_symbols(tgt_dict, cfg.langs, cfg.tgt_lang)
        logger.info(f"target dictionary: {len(tgt_dict)} types ({dict_path})")
        return cls(cfg, tgt_dict, data_cfg)

    def load_dataset(self, split: str, epoch: int = 1, combine: bool = False, **kwargs):
        is_train = is_train_split(split)
        cache = self.data_cfg.feature_cache
        if cache and self._cache_settings is None:
            self._cache_settings = cache_video_settings(
                cache, video_settings(self.data_cfg), str(self.data_cfg.yaml_path), self.cfg.config_yaml,
                self.cfg.allow_video_settings_change,
            )
        self.datasets[split] = SignVideoDatasetCreator.from_tsv(
            self.cfg.data, self.data_cfg, split, self.tgt_dict, self.bpe_tokenizer,
            is_train=is_train, seed=self.cfg.seed, append_tgt_id=self.tgt_lang_id,
            skip_bad_videos=self.cfg.skip_bad_videos, frame_buffer_pool=self.cfg.frame_buffer_pool,
        )

    def get_batch_iterator(self, dataset, *args, **kwargs):
        """fairseq's iterator, whose DataLoader workers end with their pass over the data
        (:mod:`.epoch_iterators`)."""
        return without_persistent_workers(super().get_batch_iterator(dataset, *args, **kwargs))

    @property
    def tgt_lang_id(self) -> Optional[int]:
        return self.tgt_dict.index(f"[{self.cfg.tgt_lang}]") if self.cfg.tgt_lang else None

    def build_model(self, cfg, from_checkpoint=False):
        """fairseq's model, checked: any weights loaded into it must fit the target dictionary, and
        with a feature cache, fairseq-train's model (``from_checkpoint=False``) is checked against
        the cache as built and once a checkpoint's weights are loaded (:mod:`.cache_checks`; a model
        restored for decoding is checked in :meth:`build_generator`)."""
        self.building_from_checkpoint = from_checkpoint
        try:
            model = super().build_model(cfg, from_checkpoint)
        finally:
            self.building_from_checkpoint = False
        self.sign_feature_dim = getattr(getattr(model.encoder, "visual_encoder", None), "out_dim", None)
        watch_embedding_rows(model, self.dictionary_record, self.data_cfg.yaml_path)
        cache = self.data_cfg.feature_cache
        if cache and not from_checkpoint:
            check_cache_matches(model, cache)
            watch_loaded_weights(model, cache)
        return model

    @property
    def dictionary_record(self) -> dict:
        """The target dictionary as :mod:`.dictionary_check` records it in checkpoints."""
        cfg = self.cfg
        return dictionary_record(
            self.tgt_dict, self.data_cfg.hf_tokenizer_dir or self.data_cfg.vocab_filename, cfg.data, cfg.config_yaml,
            cfg.langs, cfg.tgt_lang,
        )

    @property
    def video_settings(self) -> dict:
        """The video settings the model's inputs are made with, as checkpoints record them
        (:mod:`fairseq_slt.data.video_settings`): the data config's, or, once a split reads the
        feature cache, those its features were computed with; and the data config's path."""
        settings = self._cache_settings or video_settings(self.data_cfg)
        return dict(settings, data_config=str(self.data_cfg.yaml_path))

    def state_dict(self):
        """A checkpoint's ``task_state``: fairseq's, plus the records (:mod:`.checkpoint_records`)."""
        return with_records(super().state_dict(), self.dictionary_record, self.video_settings)

    def load_state_dict(self, state_dict):
        """fairseq's ``load_model_ensemble_and_task`` passes a checkpoint's ``task_state`` here
        before it builds the model: its records are checked (:meth:`check_task_state`)."""
        rest, dictionary, video = split_records(state_dict)
        self.check_task_state(dictionary, video)
        super().load_state_dict(rest)

    def check_resumed_state(self, task_state: dict, path: str) -> None:
        """fairseq-train about to load ``path`` to continue training shows its ``task_state`` here
        first (the ``task_state_on_resume`` patch of :mod:`fairseq_slt.patches`)."""
        _, dictionary, video = split_records(task_state)
        self.check_task_state(dictionary, video, checkpoint=f"{path} (the checkpoint fairseq-train continues from)")

    def check_task_state(self, dictionary: Optional[dict], video: Optional[dict],
                         checkpoint: str = "this checkpoint") -> None:
        """Check a checkpoint's records against this task's (:func:`.checkpoint_records.check_records`)."""
        check_records(dictionary, video, self.dictionary_record, self.video_settings, str(self.data_cfg.yaml_path),
                      self.cfg.allow_video_settings_change, checkpoint)

    def train_step(self, sample, model, criterion, optimizer, update_num, ignore_grad=False):
        loss, sample_size, logging_output = super().train_step(
            sample, model, criterion, optimizer, update_num, ignore_grad
        )
        logging_output["n_skipped"] = 0 if ignore_grad else sample.get("n_skipped", 0)
        return loss, sample_size, logging_output

    def optimizer_step(self, optimizer, model, update_num):
        log_last_layer_norms(model, optimizer, update_num, self.cfg.log_norms_interval)  # Figure 2
        super().optimizer_step(optimizer, model, update_num)

    def valid_step(self, sample, model, criterion):
        loss, sample_size, logging_output = super().valid_step(sample, model, criterion)
        logging_output["n_skipped"] = sample.get("n_skipped", 0)
        return loss, sample_size, logging_output

    def inference_step(self, generator, models, sample, prefix_tokens=None, constraints=None):
        hypos = super().inference_step(generator, models, sample, prefix_tokens, constraints)
        self.tally_decoded(sample)
        return hypos

    def tally_decoded(self, sample: dict) -> Optional[SplitCount]:
        """Count a decoded batch in :attr:`decode_tally` (:mod:`.decode_tally`) and log the count:
        with ``--skip-bad-videos`` after each batch, and once the split is done, which rows were
        skipped, i.e. left out of its BLEU. Returns the split's count; None for a batch not of a
        :class:`SignVideoDataset` or when several splits are loaded."""
        if "n_skipped" not in sample or "id" not in sample:  # not a batch of a SignVideoDataset
            return None
        if len(self.datasets) != 1:  # fairseq-generate loads the one split it decodes
            if not self._warned_tally:
                self._warned_tally = True
                logger.warning(f"decoding with {len(self.datasets)} splits loaded: no count of skipped rows")
            return None
        dataset = next(iter(self.datasets.values()))
        split = getattr(dataset, "split", next(iter(self.datasets)))
        row_ids = getattr(dataset, "ids", None)
        row_ids = [str(i) for i in range(len(dataset))] if row_ids is None else row_ids
        count = self.decode_tally.add(split, row_ids, sample["id"].tolist(), sample["n_skipped"])
        if self.cfg.skip_bad_videos:
            logger.info(running_line(count))
        if count.done:
            skipped = count.skipped_ids
            logger.log(logging.WARNING if skipped else logging.INFO, skip_summary(split, count.n_rows, skipped))
        return count

    def reduce_metrics(self, logging_outputs, criterion):
        super().reduce_metrics(logging_outputs, criterion)
        skipped = sum(log.get("n_skipped", 0) for log in logging_outputs)
        if self.cfg.skip_bad_videos:  # summed over the epoch: shown in its end-of-epoch line
            metrics.log_scalar_sum("skipped_videos", skipped, priority=900)

    def build_generator(self, models, args, seq_gen_cls=None, extra_gen_cls_kwargs=None, **kwargs):
        """fairseq-generate calls this with the checkpoint's weights loaded: each model is checked
        against the feature cache that a loaded split reads. (:class:`SignTranslator` loads no
        split: it reads videos, never the cache.)"""
        cache = self.data_cfg.feature_cache
        if cache and any(getattr(d, "feature_cache", None) is not None for d in self.datasets.values()):
            for model in models:
                check_cache_matches(model, cache)
        if self.tgt_lang_id is not None:  # mBART: [tgt_lang] starts and ends a hypothesis
            extra_gen_cls_kwargs = dict(extra_gen_cls_kwargs or {}, eos=self.tgt_lang_id)
        return super().build_generator(models, args, seq_gen_cls, extra_gen_cls_kwargs, **kwargs)

    @property
    def target_dictionary(self):
        return self.tgt_dict

    @property
    def source_dictionary(self):
        return None

    def max_positions(self):
        return self.cfg.max_source_positions, self.cfg.max_target_positions

    def build_bpe(self, args):
        """The data config's sentencepiece model (used by fairseq-generate to detokenize)."""
        bpe = self.data_cfg.bpe_tokenizer
        if bpe is None:
            return None
        logger.info(f"target tokenizer: {bpe}")
        return encoders.build_bpe(Namespace(**bpe))

    def build_tokenizer(self, args):
        return None
