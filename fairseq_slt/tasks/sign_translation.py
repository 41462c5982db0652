"""The ``sign_translation`` task: sign language video -> spoken-language text.

Modelled on fairseq's ``speech_to_text`` task: the data root holds ``config.yaml`` (see
:class:`fairseq_slt.data.SignDataConfig`) and one TSV manifest per split.
"""

import logging
import os
from argparse import Namespace
from dataclasses import dataclass, field
from typing import Dict, Optional, Tuple

from fairseq import metrics
from fairseq.data import Dictionary, encoders
from fairseq.dataclass import FairseqDataclass
from fairseq.tasks import FairseqTask, register_task
from omegaconf import II, MISSING

from ..data import DataConfigError, SignDataConfig, SignVideoDatasetCreator
from ..data.feature_cache import fingerprint_matches, read_meta, rebuild_command
from ..data.video_settings import RECORD_KEY as VIDEO_RECORD_KEY
from ..data.video_settings import check_video_settings, recorded_settings, video_settings
from ..hf import bpe as _hf_bpe  # noqa: F401 (registers bpe: hf_tokenizer)
from ..mbart import parse_langs
from .dictionary_check import (
    RECORD_KEY,
    check_dictionary_record,
    check_embedding_rows,
    describe,
    dictionary_record,
)
from .norm_logging import last_layer_norms

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
            "computed with; default: stop with an error naming them"
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
    """Gloss-free sign language translation (FLa-LLM, Chen et al. 2024)."""

    cfg: SignTranslationConfig

    def __init__(self, cfg: SignTranslationConfig, tgt_dict: Dictionary, data_cfg: SignDataConfig):
        super().__init__(cfg)
        self.tgt_dict = tgt_dict
        self.data_cfg = data_cfg
        self.bpe_tokenizer = self.build_bpe(None)
        # True while build_model restores a checkpoint: the models then skip loading pre-trained
        # parts (stage-1 encoder, mBART, ImageNet weights) that the checkpoint overwrites
        self.building_from_checkpoint = False
        # decoding: per split, the rows decoded and skipped so far (see tally_decoded)
        self._decode_tallies: Dict[str, dict] = {}
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
        is_train = split.startswith("train")
        if self.data_cfg.feature_cache:
            self.check_feature_cache_settings()
        self.datasets[split] = SignVideoDatasetCreator.from_tsv(
            self.cfg.data, self.data_cfg, split, self.tgt_dict, self.bpe_tokenizer,
            is_train=is_train, seed=self.cfg.seed, append_tgt_id=self.tgt_lang_id,
            skip_bad_videos=self.cfg.skip_bad_videos, frame_buffer_pool=self.cfg.frame_buffer_pool,
        )

    def get_batch_iterator(self, dataset, *args, **kwargs):
        """fairseq's iterator, with DataLoader workers that end with their pass over the data.

        Our datasets cannot reuse an epoch iterator (``can_reuse_epoch_itr_across_epochs`` is
        False: frame sampling and augmentation depend on the epoch, which persistent workers,
        forked once, would never see), so fairseq builds a new iterator, and a new DataLoader, for
        every epoch and every validation. fairseq makes their workers persistent by default; a
        finished iterator's workers then live until the garbage collector breaks its reference
        cycles, each holding a copy-on-write image of the trainer. Measured: 17 such processes,
        about 2 GB each, after 16 epochs of a 2-core joint run with ``--num-workers 1``, until
        memory ran out. Non-persistent workers are shut down as soon as their DataLoader iterator
        is let go of, which fairseq's data buffer (``--data-buffer-size``) does when the pass ends;
        a reference cycle no longer keeps them alive."""
        epoch_iter = super().get_batch_iterator(dataset, *args, **kwargs)
        epoch_iter.persistent_workers = False  # read when the iterator builds its DataLoader
        return epoch_iter

    @property
    def tgt_lang_id(self) -> Optional[int]:
        return self.tgt_dict.index(f"[{self.cfg.tgt_lang}]") if self.cfg.tgt_lang else None

    def build_model(self, cfg, from_checkpoint=False):
        """With a feature cache, fairseq-train's model (``from_checkpoint=False``) is checked
        against it twice: as built (from ``--stage1-checkpoint``) and once a checkpoint's weights
        are loaded into it (resuming from ``checkpoint_last.pt``, ``--restore-file``,
        ``--finetune-from-model``). A model that fairseq restores for decoding is checked in
        :meth:`build_generator`, after its weights are loaded. Any weights loaded into the model
        must fit the target dictionary (:meth:`load_state_dict` compares the dictionaries
        themselves where the checkpoint records its own)."""
        self.building_from_checkpoint = from_checkpoint
        try:
            model = super().build_model(cfg, from_checkpoint)
        finally:
            self.building_from_checkpoint = False
        # the width of the sign-wise features (the visual encoder's output), for a criterion's head
        visual = getattr(model.encoder, "visual_encoder", None)
        self.sign_feature_dim = getattr(visual, "out_dim", None)

        def check_dictionary_size(module, state_dict, prefix, *args):
            # any checkpoint's weights (decoding, resuming): the output layer fits the dictionary
            check_embedding_rows(state_dict, self.dictionary_record, self.data_cfg.yaml_path, prefix)

        model.register_load_state_dict_pre_hook(check_dictionary_size)
        cache = self.data_cfg.feature_cache
        if cache and not from_checkpoint:
            check_cache_matches(model, cache)

            def check_loaded_weights(module, incompatible_keys):
                # missing / unexpected keys: torch's strict load names them, our check would not
                if not (incompatible_keys.missing_keys or incompatible_keys.unexpected_keys):
                    check_cache_matches(module, cache, loaded=True)

            model.register_load_state_dict_post_hook(check_loaded_weights)
        return model

    @property
    def dictionary_record(self) -> dict:
        """The target dictionary as :mod:`.dictionary_check` records it in checkpoints."""
        cfg = self.cfg
        return dictionary_record(
            self.tgt_dict, self.data_cfg.hf_tokenizer_dir or self.data_cfg.vocab_filename, cfg.data, cfg.config_yaml, cfg.langs, cfg.tgt_lang
        )

    @property
    def video_settings(self) -> dict:
        """The video settings the model's inputs are made with, as checkpoints record them
        (:mod:`fairseq_slt.data.video_settings`): the data config's, or, once a split reads the
        feature cache, those its features were computed with; and the data config's path."""
        settings = self._cache_settings or video_settings(self.data_cfg)
        return dict(settings, data_config=str(self.data_cfg.yaml_path))

    def check_feature_cache_settings(self) -> None:
        """Stage 2 on a feature cache reads features computed with the video settings its
        ``meta.json`` records: a data config that gives others is refused, or, with
        ``--allow-video-settings-change``, the cache's are used (in the log and in checkpoints)."""
        if self._cache_settings is not None:
            return
        cache = self.data_cfg.feature_cache
        meta = read_meta(cache)
        recorded = recorded_settings(meta)
        config = video_settings(self.data_cfg)
        check_video_settings(
            recorded, config, f"the feature cache {cache}", str(self.data_cfg.yaml_path),
            self.cfg.allow_video_settings_change, made="computed",
            fix=f"{rebuild_command(cache, meta)} --config-yaml {self.cfg.config_yaml}, or use the data config "
            "it was computed with",
            going_on="stage 2 reads its features, made with its settings, and its checkpoints record those",
        )
        self._cache_settings = dict(config, **recorded)

    def state_dict(self):
        """A checkpoint's ``task_state``: fairseq's, plus the records of the target dictionary and of
        the video settings."""
        return dict(
            super().state_dict(), **{RECORD_KEY: self.dictionary_record, VIDEO_RECORD_KEY: self.video_settings}
        )

    def load_state_dict(self, state_dict):
        """fairseq's ``load_model_ensemble_and_task`` (fairseq-generate, :class:`SignTranslator`)
        passes a checkpoint's ``task_state`` here before it builds the model: a checkpoint trained
        with another target dictionary is refused, naming both, and one trained with other video
        settings unless ``--allow-video-settings-change`` (:meth:`check_task_state`)."""
        state_dict = dict(state_dict)
        self.check_task_state(state_dict.pop(RECORD_KEY, None), state_dict.pop(VIDEO_RECORD_KEY, None))
        super().load_state_dict(state_dict)

    def check_resumed_state(self, task_state: dict, path: str) -> None:
        """fairseq-train about to load ``path`` to continue training (``checkpoint_last.pt``,
        ``--restore-file``, ``--finetune-from-model``) shows its ``task_state`` here first (see
        :func:`fairseq_slt.checkpoint_safety.show_task_state_on_resume`): the same checks as decoding."""
        self.check_task_state(
            task_state.get(RECORD_KEY), task_state.get(VIDEO_RECORD_KEY),
            checkpoint=f"{path} (the checkpoint fairseq-train continues from)",
        )

    def check_task_state(self, dictionary: Optional[dict], video: Optional[dict],
                         checkpoint: str = "this checkpoint") -> None:
        """Check a checkpoint's records of its target dictionary and video settings against this
        task's. One written before a record existed is accepted with a warning: the dictionary is
        then checked by size only (when its weights load), the video settings not at all."""
        current = self.dictionary_record
        yaml_path = str(self.data_cfg.yaml_path)
        if dictionary is None:
            logger.warning(
                f"{checkpoint} stores no record of its target dictionary (written before fairseq-slt "
                f"recorded it): only its size can be checked against {describe(current)}; use it with the "
                "data config it was trained with"
            )
        else:
            check_dictionary_record(dictionary, current, yaml_path, checkpoint)
            logger.info(f"target dictionary {describe(current)} is the checkpoint's")
        trained_with = f" ({video['data_config']})" if video and video.get("data_config") else ""
        check_video_settings(
            video, self.video_settings, checkpoint, yaml_path, self.cfg.allow_video_settings_change,
            fix=f"pass the data config it was trained with{trained_with}",
        )

    def train_step(self, sample, model, criterion, optimizer, update_num, ignore_grad=False):
        loss, sample_size, logging_output = super().train_step(
            sample, model, criterion, optimizer, update_num, ignore_grad
        )
        logging_output["n_skipped"] = 0 if ignore_grad else sample.get("n_skipped", 0)
        return loss, sample_size, logging_output

    def optimizer_step(self, optimizer, model, update_num):
        n = self.cfg.log_norms_interval
        if n > 0 and update_num % n == 0:  # before the step: the gradient it applies
            for key, value in last_layer_norms(model, optimizer).items():
                metrics.log_scalar(key, value, weight=0, round=4)
        super().optimizer_step(optimizer, model, update_num)

    def valid_step(self, sample, model, criterion):
        loss, sample_size, logging_output = super().valid_step(sample, model, criterion)
        logging_output["n_skipped"] = sample.get("n_skipped", 0)
        return loss, sample_size, logging_output

    def inference_step(self, generator, models, sample, prefix_tokens=None, constraints=None):
        hypos = super().inference_step(generator, models, sample, prefix_tokens, constraints)
        self.tally_decoded(sample)
        return hypos

    def tally_decoded(self, sample: dict) -> None:
        """Count the rows of the decoded split that a batch decoded and those its collater skipped
        (``n_skipped``, ``--skip-bad-videos``). fairseq-generate has no end-of-run hook: once every
        row of the split is accounted for, log which rows were skipped, i.e. left out of its BLEU.

        A batch whose videos were all skipped never reaches ``inference_step`` (the collater returns
        ``{}``); its rows are then never accounted for and only the running count is logged.
        """
        if "n_skipped" not in sample or "id" not in sample:  # not a batch of a SignVideoDataset
            return
        if len(self.datasets) != 1:  # fairseq-generate loads the one split it decodes
            if not self._warned_tally:
                self._warned_tally = True
                logger.warning(
                    f"decoding with {len(self.datasets)} splits loaded: no count of skipped rows"
                )
            return
        dataset = next(iter(self.datasets.values()))
        split = getattr(dataset, "split", next(iter(self.datasets)))
        tallies = self._decode_tallies
        tally = tallies.setdefault(split, {"decoded": set(), "skipped": 0})
        tally["decoded"].update(sample["id"].tolist())
        tally["skipped"] += int(sample["n_skipped"])
        n_rows = len(dataset)
        n_seen = len(tally["decoded"]) + tally["skipped"]
        if self.cfg.skip_bad_videos:
            logger.info(
                f"{split}: {n_seen} of {n_rows} rows so far, {tally['skipped']} skipped "
                "(unreadable videos)"
            )
        if n_seen >= n_rows:  # the split is done; a later batch of it starts a new count
            del tallies[split]
            ids = getattr(dataset, "ids", None)
            skipped = [
                str(ids[i]) if ids is not None else str(i)
                for i in range(n_rows)
                if i not in tally["decoded"]
            ]
            logger.log(
                logging.WARNING if skipped else logging.INFO,
                self.skip_summary(split, n_rows, skipped),
            )

    @staticmethod
    def skip_summary(split: str, n_rows: int, skipped_ids: list[str], max_ids: int = 20) -> str:
        """The end-of-decoding line: how many (and which) of the split's rows are not in the BLEU."""
        n = len(skipped_ids)
        if n == 0:
            return (
                f"{split}: 0 of {n_rows} rows skipped (unreadable videos); "
                f"the BLEU below covers all {n_rows} rows"
            )
        shown = ", ".join(skipped_ids[:max_ids]) + (f" and {n - max_ids} more" if n > max_ids else "")
        return (
            f"{split}: {n} of {n_rows} rows skipped (unreadable videos), ids: {shown}; "
            f"the BLEU below covers {n_rows - n} of {n_rows} rows"
        )

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


def load_target_dictionary(data_cfg: SignDataConfig) -> Tuple[Dictionary, str]:
    """The target dictionary and where it comes from: ``vocab_filename``, or the tokenizer of a
    Hugging Face model folder (``bpe: hf_tokenizer``, :func:`fairseq_slt.hf.vocab.hf_dictionary`)."""
    if data_cfg.hf_tokenizer_dir:
        from ..hf.vocab import hf_dictionary

        return hf_dictionary(data_cfg.hf_tokenizer_dir), data_cfg.hf_tokenizer_dir
    dict_path = data_cfg.vocab_filename
    if not os.path.isfile(dict_path):
        raise FileNotFoundError(f"target dictionary not found: {dict_path} (vocab_filename in config.yaml)")
    return Dictionary.load(dict_path), dict_path


def add_mbart_symbols(tgt_dict: Dictionary, langs: Optional[str], tgt_lang: Optional[str]) -> None:
    """Append ``[lang]`` for every pre-training language, then ``<mask>``, exactly as fairseq's
    ``translation_from_pretrained_bart`` builds mBART's dictionary."""
    if not langs:
        if tgt_lang:
            raise ValueError("--tgt-lang needs --langs (mBART's pre-training languages, in order)")
        return
    names = parse_langs(langs)
    if tgt_lang and tgt_lang not in names:
        raise ValueError(f"--tgt-lang {tgt_lang} is not one of --langs ({', '.join(names)})")
    for lang in names:
        tgt_dict.add_symbol(f"[{lang}]")
    tgt_dict.add_symbol("<mask>")


def check_cache_matches(model, cache_dir: str, loaded: bool = False) -> None:
    """A feature cache is only valid for the frozen visual encoder it was computed with.
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
