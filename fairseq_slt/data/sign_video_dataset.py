"""Video -> text dataset for sign language translation (modelled on fairseq's S2T dataset).

A split is one TSV manifest with the columns ``id, video, n_frames, tgt_text`` and optionally
``signer`` and ``start``/``end`` (seconds, a sentence cut out of a longer video by reference).
``video`` is relative to the config's ``video_root`` and names a video file or a frame folder.
"""

import logging
import os
from dataclasses import dataclass
from typing import Dict, List, Optional

import numpy as np
import torch
from fairseq.data import Dictionary, FairseqDataset, data_utils as fairseq_data_utils

from .data_cfg import SignDataConfig
from .feature_cache import FeatureCache
from .frame_store import FrameStore
from .manifest_utils import ManifestError, parse_time_range, read_split_manifest
from .transforms import build_video_transform, describe_resize
from .frame_buffers import FrameBufferPool, empty_frames
from .sampling import num_sampled_frames, sample_indices
from .video_io import VideoReadError, VideoSource, is_frame_file, read_frames
from .video_settings import recorded_settings, video_settings

logger = logging.getLogger(__name__)


@dataclass
class SignVideoDatasetItem:
    index: int
    source: torch.Tensor  # T x 3 x H x W, normalised
    target: torch.Tensor  # L (with EOS)


def collate_frames(frames: List[torch.Tensor], pool: Optional[FrameBufferPool] = None) -> torch.Tensor:
    """Zero-pad ``T_i x 3 x H x W`` videos into ``B x T_max x 3 x H x W`` (a new tensor, from
    ``pool`` where one is given)."""
    max_len = max(v.size(0) for v in frames)
    out = empty_frames((len(frames), max_len) + tuple(frames[0].shape[1:]), frames[0].dtype, pool)
    for i, v in enumerate(frames):  # one write per element: the frames, then zeros in the padding
        out[i, : v.size(0)] = v
        out[i, v.size(0):] = 0
    return out


class SignVideoDataset(FairseqDataset):
    """Decodes, samples and transforms the frames of each video on the fly.

    ``num_tokens(i)`` is the number of frames fed to the model, so ``--max-tokens`` batches by
    frames. Random temporal sampling (training) is seeded by ``(seed, epoch, index)``: the same
    seed gives the same frames.
    """

    def __init__(
        self,
        split: str,
        is_train: bool,
        cfg: SignDataConfig,
        manifest: str,
        ids: List[str],
        sources: List[VideoSource],
        n_frames: List[int],
        tgt_texts: List[str],
        tgt_tokens: List[torch.Tensor],
        tgt_dict: Dictionary,
        rows: List[int],
        seed: int = 1,
        use_feature_cache: bool = True,
        skip_bad_videos: bool = False,
        unavailable: Optional[Dict[int, str]] = None,
        frame_buffer_pool: bool = False,
    ):
        self.skip_bad_videos = skip_bad_videos
        # --frame-buffer-pool: frames and batches in recycled huge-page mappings (CPU loader speed-up)
        self.frame_buffers = FrameBufferPool() if frame_buffer_pool else None
        # index -> why its video cannot be read (found at load, --skip-bad-videos): such a row is
        # skipped by every epoch's batches and counted in ``n_skipped`` like an unreadable video
        self.unavailable = dict(unavailable or {})
        self.split, self.is_train, self.cfg, self.manifest = split, is_train, cfg, manifest
        self.ids, self.sources, self.n_frames = ids, sources, n_frames
        self.tgt_texts, self.tgt_tokens, self.tgt_dict = tgt_texts, tgt_tokens, tgt_dict
        self.rows, self.seed = rows, seed
        self.n_samples = len(ids)
        for name in ("sources", "n_frames", "tgt_texts", "tgt_tokens", "rows"):
            assert len(getattr(self, name)) == self.n_samples, name
        self.tgt_sizes = np.array([len(t) for t in tgt_tokens], dtype=np.int64)
        self.epoch = 1
        self.feature_cache = None
        self.cache_view = 0  # the cached view this epoch reads (training views: (epoch - 1) mod K)
        self._logged_view = None
        # the settings the model's inputs are made with: with a feature cache, those it recorded
        # (the task checks them against the data config's)
        video = video_settings(cfg)
        if use_feature_cache and cfg.feature_cache:
            self.feature_cache = FeatureCache(cfg.feature_cache, split, self.ids, manifest)
            video.update(recorded_settings(self.feature_cache.meta))
            record = self.feature_cache.record
            logger.info(
                f"{split}: sign-wise features from the cache {cfg.feature_cache} ({self.feature_cache.n_views} "
                f"{record['transforms']} view(s), stored as {record['dtype']})"
            )
            if is_train and self.feature_cache.transforms == "eval":
                logger.warning(
                    f"{split}: the feature cache {cfg.feature_cache} holds one evaluation view per video: "
                    "stage 2 trains without augmentation: rebuild with --train-views K or train live"
                )
            elif is_train and record.get("seed") != seed:
                logger.warning(
                    f"{split}: the cached training views were drawn with seed {record.get('seed')}, this run "
                    f"has --seed {seed}: they are what live training draws with seed {record.get('seed')}"
                )
        self.frame_store = None
        if cfg.frame_store and self.feature_cache is None:
            self.frame_store = FrameStore(cfg.frame_store, cfg.video_root, cfg.resize)
            logger.info(f"{split}: frames from the frame store {cfg.frame_store} ({len(self.frame_store)} "
                        f"sentences, resized to {self.frame_store.meta['resize']} when written)")
        self.src_sizes = np.array(
            [num_sampled_frames(n, video["keep_ratio"], video["max_frames"]) for n in n_frames], dtype=np.int64
        )
        aug = cfg.augment if is_train else {}
        self.transform = build_video_transform(cfg.resize, cfg.crop, train=is_train, pool=self.frame_buffers, **aug)
        n_capped = sum(1 for n in n_frames if n * video["keep_ratio"] > video["max_frames"])
        fed = "fed to the model"
        if self.feature_cache is not None:
            fed = "sampled when the cache was computed, with its settings"
        logger.info(
            f"{split}: {self.n_samples} videos, {int(self.src_sizes.sum())} frames {fed} "
            f"(keep_ratio={video['keep_ratio']}, {describe_resize(video['resize'], video['crop'])}); {n_capped} "
            f"videos capped at max_frames={video['max_frames']}"
        )

    def __len__(self):
        return self.n_samples

    @property
    def can_reuse_epoch_itr_across_epochs(self):
        return False  # random temporal sampling depends on the epoch

    def set_epoch(self, epoch):
        self.epoch = epoch
        if self.feature_cache is not None and self.is_train:
            self.cache_view = (epoch - 1) % self.feature_cache.n_views
            if self._logged_view != (epoch, self.cache_view):  # fairseq may set an epoch twice
                self._logged_view = (epoch, self.cache_view)
                logger.info(
                    f"{self.split}: epoch {epoch} reads view {self.cache_view} of "
                    f"{self.feature_cache.n_views} ({self.feature_cache.transforms}) of the feature cache"
                )

    def describe(self, index: int) -> str:
        return f"{self.manifest} row {self.rows[index]} (id {self.ids[index]})"

    def __getitem__(self, index: int) -> Optional[SignVideoDatasetItem]:
        if index in self.unavailable:
            return None  # logged once at load; counted per batch by the collater
        if self.feature_cache is not None:  # T' x C features of the frozen visual encoder
            source = self.feature_cache.get(index, self.cache_view)
            return SignVideoDatasetItem(index=index, source=source, target=self.tgt_tokens[index])
        rng = np.random.default_rng([self.seed, self.epoch, index]) if self.is_train else None
        idx = sample_indices(
            self.n_frames[index], self.cfg.keep_ratio, self.cfg.max_frames, self.is_train, rng
        )
        try:
            if self.frame_store is not None:
                frames = self.frame_store.read(self.sources[index], idx, self.n_frames[index])
            else:
                frames = read_frames(
                    self.sources[index], idx, self.n_frames[index], min_size=self.transform.min_size
                )
        except VideoReadError as e:
            if self.skip_bad_videos:  # the user chose to go on: log it, count it in the batch
                logger.warning(f"skipping {self.describe(index)}: {e}")
                return None
            raise VideoReadError(f"{self.describe(index)}: {e}") from e
        if self.is_train:  # augmentation drawn from the same (seed, epoch, index), privately
            source = self.transform(frames, torch.Generator().manual_seed(int(rng.integers(2**31))))
        else:
            source = self.transform(frames)
        return SignVideoDatasetItem(index=index, source=source, target=self.tgt_tokens[index])

    def collater(self, samples: List[SignVideoDatasetItem]) -> Dict:
        """Frames (``B x T x 3 x H x W``) or cached features (``B x T' x C``), zero-padded.
        Skipped videos (``None``, with ``--skip-bad-videos``) are counted in ``n_skipped``."""
        n_skipped = sum(1 for x in samples if x is None)
        samples = [x for x in samples if x is not None]
        if len(samples) == 0:
            if n_skipped:
                logger.warning(f"{self.split}: every video of a batch was skipped ({n_skipped})")
            return {}
        indices = torch.tensor([x.index for x in samples], dtype=torch.long)
        src_lengths = torch.tensor([x.source.size(0) for x in samples], dtype=torch.long)
        src_lengths, order = src_lengths.sort(descending=True)
        indices = indices.index_select(0, order)
        frames = collate_frames([samples[i].source for i in order.tolist()], self.frame_buffers)
        targets = [samples[i].target for i in order.tolist()]
        pad, eos = self.tgt_dict.pad(), self.tgt_dict.eos()
        target = fairseq_data_utils.collate_tokens(targets, pad, eos, left_pad=False)
        prev_output_tokens = fairseq_data_utils.collate_tokens(
            targets, pad, eos, left_pad=False, move_eos_to_beginning=True
        )
        target_lengths = torch.tensor([t.size(0) for t in targets], dtype=torch.long)
        return {
            "id": indices,
            "net_input": {
                "src_tokens": frames,  # B x T x 3 x H x W (or B x T' x C cached features)
                "src_lengths": src_lengths,  # B
                "prev_output_tokens": prev_output_tokens,  # B x L
            },
            "target": target,  # B x L
            "target_lengths": target_lengths,
            "ntokens": int(target_lengths.sum()),
            "nsentences": len(samples),
            "n_skipped": n_skipped,
        }

    def num_tokens(self, index):
        return int(self.src_sizes[index])

    def size(self, index):
        return int(self.src_sizes[index]), int(self.tgt_sizes[index])

    @property
    def sizes(self):
        return self.src_sizes

    def ordered_indices(self):
        if self.is_train:
            order = [np.random.permutation(len(self))]
        else:
            order = [np.arange(len(self))]
        order.append(-self.src_sizes)  # longest first
        return np.lexsort(order)

    def batch_by_size(self, indices, max_tokens=None, max_sentences=None, required_batch_size_multiple=1):
        """fairseq's batching, keeping every sample.

        fairseq main (and fairseq-fixed) drops the last batch when its size is not a multiple of
        ``--required-batch-size-multiple`` (default 8). Our indices are sorted by length, so that
        would silently leave the shortest videos out of every training epoch and out of
        ``fairseq-generate``'s output. The dropped batch is the tail of ``indices``; put it back.
        """
        batches = super().batch_by_size(indices, max_tokens, max_sentences, required_batch_size_multiple)
        covered = sum(len(b) for b in batches)
        if covered < len(indices):
            batches = list(batches) + [np.asarray(indices[covered:], dtype=np.int64)]
        return batches


class SignVideoDatasetCreator:
    """Builds a :class:`SignVideoDataset` from ``<data>/<split>.tsv``."""

    KEY_ID, KEY_VIDEO, KEY_N_FRAMES, KEY_TGT_TEXT = "id", "video", "n_frames", "tgt_text"
    KEY_SIGNER, KEY_START, KEY_END = "signer", "start", "end"
    REQUIRED = (KEY_ID, KEY_VIDEO, KEY_N_FRAMES, KEY_TGT_TEXT)

    @classmethod
    def read_manifest(cls, path: str) -> List[Dict[str, str]]:
        """Rows of a plain TSV manifest (:func:`~fairseq_slt.data.manifest_utils.read_split_manifest`),
        each with its line number under ``_row``; the required columns must be there."""
        return read_split_manifest(path, cls.REQUIRED)

    @classmethod
    def _parse_row(cls, path: str, row: Dict, video_root: str) -> tuple:
        """``(VideoSource, n_frames, text, problem)`` of a manifest row. A malformed row is a
        :class:`ManifestError`; ``problem`` says why its video cannot be read (missing, empty
        frame folder), None if it can: the caller fails or, with ``--skip-bad-videos``, skips."""
        where = f"{path} row {row['_row']} (id {row.get(cls.KEY_ID)})"
        text = row[cls.KEY_TGT_TEXT].strip()
        if not text:
            raise ManifestError(f"{where}: empty tgt_text; fix or remove the row")
        try:
            n_frames = int(row[cls.KEY_N_FRAMES])
        except ValueError:
            raise ManifestError(f"{where}: n_frames {row[cls.KEY_N_FRAMES]!r} is not an integer")
        if n_frames < 1:
            raise ManifestError(f"{where}: n_frames={n_frames}; the video has no frames")
        start, end = _time_range(where, row.get(cls.KEY_START) or None, row.get(cls.KEY_END) or None)
        video = os.path.join(video_root, row[cls.KEY_VIDEO])
        if not os.path.exists(video):
            problem = (
                f"video not found: {video} (paths are relative to video_root {video_root} in config.yaml)"
            )
            return VideoSource(video, start, end), n_frames, text, problem
        if os.path.isdir(video):
            if start is not None:
                raise ManifestError(
                    f"{where}: start/end given for the frame folder {video}; a frame folder holds one "
                    "sentence: cut its frames, or leave start and end empty"
                )
            if not _has_image(video):
                return VideoSource(video), n_frames, text, f"frame folder {video} has no png/jpg frames"
        return VideoSource(video, start, end), n_frames, text, None

    @classmethod
    def from_tsv(
        cls,
        root: str,
        cfg: SignDataConfig,
        split: str,
        tgt_dict: Dictionary,
        bpe_tokenizer,
        is_train: bool,
        seed: int = 1,
        append_tgt_id: Optional[int] = None,
        use_feature_cache: bool = True,
        skip_bad_videos: bool = False,
        frame_buffer_pool: bool = False,
    ) -> SignVideoDataset:
        """``append_tgt_id`` (mBART's ``[tgt_lang]``) is appended after EOS to every target;
        ``use_feature_cache=False`` reads the videos even where config.yaml names a cache;
        ``frame_buffer_pool``: frames and batches from a :class:`~.frame_buffers.FrameBufferPool`."""
        manifest = os.path.join(root, f"{split}.tsv")
        rows = cls.read_manifest(manifest)
        ids, sources, n_frames, texts, tokens, line_nums = [], [], [], [], [], []
        seen = {}
        unavailable = {}
        for row in rows:
            source, n, text, problem = cls._parse_row(manifest, row, cfg.video_root)
            sid = row[cls.KEY_ID]
            if sid in seen:
                raise ManifestError(
                    f"{manifest} row {row['_row']}: duplicate id {sid} (first at row {seen[sid]})"
                )
            seen[sid] = row["_row"]
            if problem is not None:
                where = f"{manifest} row {row['_row']} (id {sid})"
                if not skip_bad_videos:
                    raise ManifestError(f"{where}: {problem}; or pass --skip-bad-videos to skip it")
                logger.warning(f"skipping {where}: {problem} (--skip-bad-videos: counted in skipped_videos)")
                unavailable[len(ids)] = problem
            pieces = bpe_tokenizer.encode(text) if bpe_tokenizer is not None else text
            toks = tgt_dict.encode_line(pieces, add_if_not_exist=False, append_eos=True).long()
            if append_tgt_id is not None:
                toks = torch.cat([toks, toks.new_tensor([append_tgt_id])])
            ids.append(sid)
            sources.append(source)
            n_frames.append(n)
            texts.append(text)
            tokens.append(toks)
            line_nums.append(row["_row"])
        return SignVideoDataset(
            split, is_train, cfg, manifest, ids, sources, n_frames, texts, tokens, tgt_dict,
            line_nums, seed=seed, use_feature_cache=use_feature_cache,
            skip_bad_videos=skip_bad_videos, unavailable=unavailable, frame_buffer_pool=frame_buffer_pool,
        )


def _time_range(where: str, start: Optional[str], end: Optional[str]) -> tuple:
    """``start``/``end`` seconds of a manifest row, checked by
    :func:`~fairseq_slt.data.manifest_utils.parse_time_range` (both or neither, plain numbers,
    ``0 <= start < end``: decord wraps negative frame indices around to the video's end)."""
    try:
        return parse_time_range(start, end)
    except ValueError as e:
        raise ManifestError(f"{where}: {e}") from None


def _has_image(folder: str) -> bool:
    with os.scandir(folder) as it:
        return any(is_frame_file(e.name) for e in it)
