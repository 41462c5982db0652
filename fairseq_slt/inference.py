"""Translate your own sign videos with a trained stage-1 or stage-2 checkpoint.

    from fairseq_slt.inference import SignTranslator

    translator = SignTranslator.from_checkpoint("checkpoints/stage2/checkpoint_best.pt", beam=5)
    print(translator.translate("signer.mp4", start=12.0, end=17.5).hypothesis)

The checkpoint names its data root (``--data`` at training time), whose ``config.yaml`` gives the
dictionary, the sentencepiece model and the evaluation transforms (resize, crop, 25% temporal
sampling, frame cap); ``data=`` points elsewhere when the data root has moved. Inputs are video
files or frame folders, each optionally restricted to a ``[start, end)`` time range in seconds.
The frames go through exactly the evaluation path of ``fairseq-generate`` (deterministic
sampling, centre crop) and fairseq's own beam search.
"""

import logging
import os
from argparse import Namespace
from dataclasses import dataclass
from typing import Iterable, Iterator, List, Optional, Sequence

import torch

from .checkpoints import (
    CheckpointError,
    checkpoint_arch,
    checkpoint_model_args,
    checkpoint_task_field,
    load_checkpoint_state,
    registered_model_of_arch,
)
from .data.sampling import sample_indices
from .data.source_checks import video_stream_problem
from .data.transforms import build_video_transform
from .data.video_io import (
    VideoReadError,
    VideoSource,
    checked_time_range,
    list_frame_files,
    probe_timing,
    read_frames,
)
from .models.packed_linear import pack_linears
from .models.visual_frontend import fuse_batchnorm

logger = logging.getLogger(__name__)

OUR_MODELS = ("slt_lightt", "slt_mbart", "slt_hf")  # registered models; their archs come from fairseq's registry
PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
OUR_TASK = "sign_translation"


class NotOurCheckpointError(ValueError):
    """The file is not a checkpoint trained with ``--task sign_translation`` and our models."""


@dataclass(frozen=True)
class VideoInput:
    """One video file or frame folder, optionally a ``[start, end)`` range in seconds."""

    path: str
    start: Optional[float] = None
    end: Optional[float] = None

    def __post_init__(self):
        if (self.start is None) != (self.end is None):
            raise ValueError(f"{self.path}: give both start and end of the time range, or neither")
        if self.start is not None and not 0 <= self.start < self.end:
            raise ValueError(f"{self.path}: time range [{self.start}, {self.end}) is empty or negative")


@dataclass
class Translation:
    video: VideoInput
    hypothesis: str  # detokenized text
    score: float  # fairseq's hypothesis score: log-probability (natural log) / length**lenpen
    tokens: List[int]


def check_our_checkpoint(state: dict, path: str) -> Namespace:
    """The model args of one of our checkpoints; any other file is a clear error."""
    if not isinstance(state, dict) or "model" not in state or (state.get("cfg") is None and "args" not in state):
        raise NotOurCheckpointError(
            f"{path} is not a fairseq checkpoint (no model weights and configuration): give the "
            "checkpoint_best.pt / checkpoint_last.pt that fairseq-train wrote for stage 1 or stage 2"
        )
    args = checkpoint_model_args(state)
    arch = checkpoint_arch(state)
    task = checkpoint_task_field(state, "_name")
    if registered_model_of_arch(arch) not in OUR_MODELS or task != OUR_TASK:
        raise NotOurCheckpointError(
            f"{path} is a fairseq checkpoint of --task {task} --arch {arch}, not a fairseq-slt model "
            f"(--task {OUR_TASK} with an arch of {' / '.join(OUR_MODELS)})"
        )
    return args


def fuse_visual_batchnorm(model) -> None:
    """Fold the ResNet-18's BatchNorm layers into its convolutions (the model only translates)."""
    visual = model.encoder.visual_encoder
    visual.backbone.eval()
    fuse_batchnorm(visual.backbone)


def frame_range(video: VideoInput, fps: float) -> tuple:
    """``(VideoSource, first frame, frames in the source, frames in the range)`` of an input (a
    frame folder's time range is converted with ``fps``; a video file's by its frames' timestamps,
    :func:`~.data.video_io.probe_timing`)."""
    if not os.path.exists(video.path):
        raise VideoReadError(f"video not found: {video.path}")
    if os.path.isdir(video.path):
        n_total = len(list_frame_files(video.path))
        if n_total == 0:
            raise VideoReadError(f"frame folder has no png/jpg frames: {video.path}")
        if video.start is None:
            return VideoSource(video.path), 0, n_total, n_total
        frames = checked_time_range(video.path, video.start, video.end, fps, n_total)
        return VideoSource(video.path), frames.start, n_total, len(frames)
    try:
        timing = probe_timing(video.path)
    except Exception as e:
        why = video_stream_problem(video.path) or e
        raise VideoReadError(f"cannot open {video.path} as a video: {why}") from e
    n_total = timing.n_frames
    if video.start is None:
        return VideoSource(video.path), 0, n_total, n_total
    frames = checked_time_range(video.path, video.start, video.end, timing.fps, n_total, timing.slots)
    return VideoSource(video.path, video.start, video.end), 0, len(frames), len(frames)


class SignTranslator:
    """A loaded model, its task (dictionary, tokenizer, data config) and a beam-search generator."""

    def __init__(
        self, model, task, generator, device: torch.device, fps: float = 25.0, precision: str = "fp32",
        pack_weights: bool = True,
    ):
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision}")
        if precision == "fp16" and device.type != "cuda":
            raise ValueError("fp16 inference needs a GPU; on CPU use bf16")
        self.model, self.task, self.generator = model, task, generator
        self.device = device
        self.fps = fps
        self.precision = precision
        fuse_visual_batchnorm(model)
        packable = getattr(model.decoder, "packable", True)  # a Hugging Face LLM keeps its own layers
        if pack_weights and packable and device.type == "cpu" and precision == "fp32":  # beam steps read every decoder weight
            n = pack_linears(model.decoder, rows=max(1, int(getattr(generator, "beam_size", 5))))
            logger.info(
                f"decoder: {n} linear layers use oneDNN pre-packed copies of their weights (CPU, fp32; "
                "a second copy in memory, --no-packed-weights leaves them as they are)"
            )
        cfg = task.data_cfg
        self.keep_ratio, self.max_frames = cfg.keep_ratio, cfg.max_frames
        self.transform = build_video_transform(cfg.resize, cfg.crop, train=False)
        self.strip = {generator.eos} | set(getattr(generator, "symbols_to_strip_from_output", set()))

    @classmethod
    def from_checkpoint(
        cls,
        path: str,
        data: Optional[str] = None,
        beam: int = 5,
        max_len_a: float = 0.0,
        max_len_b: int = 200,
        lenpen: float = 1.0,
        device: Optional[str] = None,
        fps: float = 25.0,
        precision: str = "fp32",
        pack_weights: bool = True,
        allow_video_settings_change: bool = False,
    ) -> "SignTranslator":
        """Load a checkpoint of ``slt_lightt`` / ``slt_mbart``; ``data`` overrides its data root.
        ``pack_weights``: on the CPU in fp32, beam search multiplies with oneDNN pre-packed copies of
        the decoder's weights (:mod:`fairseq_slt.models.packed_linear`; faster, a second copy in memory).
        A data root whose ``config.yaml`` gives other video settings than the checkpoint was trained
        with is refused, unless ``allow_video_settings_change`` (then its settings are used, with a
        warning); the same for the data root of its training run itself."""
        from fairseq import checkpoint_utils
        from fairseq.dataclass.configs import GenerationConfig

        from . import register

        register()  # the task and models, and fairseq's checkpoint loader's allow-list

        if not os.path.isfile(path):
            raise FileNotFoundError(f"checkpoint not found: {path}")
        try:
            state = load_checkpoint_state(path)
        except CheckpointError as e:  # already one line naming the file
            raise NotOurCheckpointError(f"cannot be loaded as a torch checkpoint: {e}") from e
        check_our_checkpoint(state, path)
        data = data or checkpoint_task_field(state, "data")
        if not data or not os.path.isfile(os.path.join(data, "config.yaml")):
            raise FileNotFoundError(
                f"the data root of {path} ({data}) has no config.yaml: pass the data root (config.yaml, "
                "dictionary, sentencepiece model) with --data"
            )
        from .data.video_settings import VideoSettingsMismatchError, mismatch_error
        from .tasks.dictionary_check import DictionaryMismatchError, mismatch_message

        # the checkpoint's task options, but an override of the video settings only where asked for now
        overrides = {"data": data, "allow_video_settings_change": allow_video_settings_change}
        try:
            models, _, task = checkpoint_utils.load_model_ensemble_and_task([path], arg_overrides=overrides)
        except VideoSettingsMismatchError as e:  # say what to pass to this command
            trained_with = e.recorded.get("data_config")
            root = f" ({os.path.dirname(trained_with)})" if trained_with else ""
            fix = f"pass --data with the data root it was trained with{root}"
            raise mismatch_error(e.differences, path, e.yaml_path, e.recorded, fix) from e
        except DictionaryMismatchError as e:  # say what to pass to this command
            if e.saved is None:
                raise
            fix = (
                f"pass --data with the data root it was trained with ({e.saved['data']}), whose "
                f"{e.saved['config_yaml']} names that dictionary"
            )
            raise DictionaryMismatchError(
                mismatch_message(e.saved, e.current, e.yaml_path, fix, checkpoint=path), e.saved, e.current,
                e.yaml_path,
            ) from e
        device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        model = models[0].to(device).eval()
        gen_cfg = GenerationConfig(beam=beam, max_len_a=max_len_a, max_len_b=max_len_b, lenpen=lenpen)
        generator = task.build_generator([model], gen_cfg)
        logger.info(f"loaded {path} (data root {data}) on {device}, beam {beam}")
        return cls(model, task, generator, device, fps, precision, pack_weights)

    def load_frames(self, video: VideoInput) -> torch.Tensor:
        """``T x 3 x crop x crop`` model input of one video (evaluation sampling and transforms)."""
        source, first, n_total, n = frame_range(video, self.fps)
        idx = sample_indices(n, self.keep_ratio, self.max_frames, train=False)
        frames = read_frames(source, [first + int(i) for i in idx], n_total, min_size=self.transform.min_size)
        return self.transform(frames)

    def _sample(self, frames: List[torch.Tensor]) -> dict:
        from .data.sign_video_dataset import collate_frames

        lengths = torch.tensor([f.size(0) for f in frames], dtype=torch.long)
        src = collate_frames(frames)  # B x T x 3 x H x W
        return {
            "id": torch.arange(len(frames)),
            "net_input": {"src_tokens": src.to(self.device), "src_lengths": lengths.to(self.device)},
        }

    def decode(self, tokens: torch.Tensor) -> str:
        text = self.task.target_dictionary.string(tokens.int().cpu(), extra_symbols_to_ignore=self.strip)
        bpe = self.task.bpe_tokenizer
        return bpe.decode(text) if bpe is not None else text

    @torch.no_grad()
    def translate_batch(self, videos: Sequence[VideoInput]) -> List[Translation]:
        frames = [self.load_frames(v) for v in videos]
        with torch.autocast(self.device.type, dtype=PRECISIONS[self.precision], enabled=self.precision != "fp32"):
            hypos = self.task.inference_step(self.generator, [self.model], self._sample(frames))
        out = []
        for video, nbest in zip(videos, hypos):
            best = nbest[0]
            out.append(Translation(video, self.decode(best["tokens"]), float(best["score"]), best["tokens"].tolist()))
        return out

    def translate(self, video, start: Optional[float] = None, end: Optional[float] = None) -> Translation:
        """Translate one video file or frame folder (optionally ``[start, end)`` seconds)."""
        if not isinstance(video, VideoInput):
            video = VideoInput(str(video), start, end)
        return self.translate_batch([video])[0]

    def translate_all(self, videos: Iterable[VideoInput], batch_size: int = 1) -> Iterator[Translation]:
        """Translations in input order, ``batch_size`` videos per beam search."""
        batch = []
        for video in videos:
            batch.append(video)
            if len(batch) == batch_size:
                yield from self.translate_batch(batch)
                batch = []
        if batch:
            yield from self.translate_batch(batch)
