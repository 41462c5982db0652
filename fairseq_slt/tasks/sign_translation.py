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

from ..data import SignDataConfig, SignVideoDatasetCreator
from ..data.feature_cache import read_meta, visual_fingerprint
from ..mbart import parse_langs
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

    @classmethod
    def setup_task(cls, cfg: SignTranslationConfig, **kwargs):
        data_cfg = SignDataConfig(os.path.join(cfg.data, cfg.config_yaml))
        dict_path = data_cfg.vocab_filename
        if not os.path.isfile(dict_path):
            raise FileNotFoundError(f"target dictionary not found: {dict_path} (vocab_filename in config.yaml)")
        tgt_dict = Dictionary.load(dict_path)
        add_mbart_symbols(tgt_dict, cfg.langs, cfg.tgt_lang)
        logger.info(f"target dictionary: {len(tgt_dict)} types ({dict_path})")
        return cls(cfg, tgt_dict, data_cfg)

    def load_dataset(self, split: str, epoch: int = 1, combine: bool = False, **kwargs):
        is_train = split.startswith("train")
        self.datasets[split] = SignVideoDatasetCreator.from_tsv(
            self.cfg.data, self.data_cfg, split, self.tgt_dict, self.bpe_tokenizer,
            is_train=is_train, seed=self.cfg.seed, append_tgt_id=self.tgt_lang_id,
            skip_bad_videos=self.cfg.skip_bad_videos,
        )

    @property
    def tgt_lang_id(self) -> Optional[int]:
        return self.tgt_dict.index(f"[{self.cfg.tgt_lang}]") if self.cfg.tgt_lang else None

    def build_model(self, cfg, from_checkpoint=False):
        self.building_from_checkpoint = from_checkpoint
        try:
            model = super().build_model(cfg, from_checkpoint)
        finally:
            self.building_from_checkpoint = False
        if self.data_cfg.feature_cache and not from_checkpoint:
            check_cache_matches(model, self.data_cfg.feature_cache)
        return model

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

    def reduce_metrics(self, logging_outputs, criterion):
        super().reduce_metrics(logging_outputs, criterion)
        skipped = sum(log.get("n_skipped", 0) for log in logging_outputs)
        if self.cfg.skip_bad_videos:  # summed over the epoch: shown in its end-of-epoch line
            metrics.log_scalar_sum("skipped_videos", skipped, priority=900)

    def build_generator(self, models, args, seq_gen_cls=None, extra_gen_cls_kwargs=None, **kwargs):
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


def check_cache_matches(model, cache_dir: str) -> None:
    """A feature cache is only valid for the frozen visual encoder it was computed with."""
    encoder = model.encoder
    if not encoder.accepts_cached_features:
        raise ValueError(
            f"config.yaml names the feature cache {cache_dir}, but this model trains its visual "
            "encoder (stage 1 or --train-visual-encoder): remove feature_cache from config.yaml"
        )
    meta = read_meta(cache_dir)
    if meta["visual_fingerprint"] != visual_fingerprint(encoder.visual_encoder.state_dict()):
        raise ValueError(
            f"the feature cache {cache_dir} was computed from {meta['stage1_checkpoint']}, whose "
            "visual encoder differs from this model's: rebuild it with fairseq-slt-cache-features"
        )
    logger.info(f"feature cache {cache_dir} matches the frozen visual encoder")
