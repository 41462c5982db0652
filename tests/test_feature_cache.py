"""The stage-2 feature cache: its files checked when opened, atomic writes, and the check of the
frozen visual encoder against the cache wherever a model reads it (training, resuming, decoding)."""

import hashlib
import logging
import os
import shutil
import subprocess
from argparse import Namespace
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn as nn

from fairseq_slt.checkpoints import load_checkpoint_state
from fairseq_slt.data.feature_cache import (
    FORMAT_VERSION,
    FeatureCache,
    FeatureCacheError,
    atomic_write,
    cache_paths,
    fingerprint_matches,
    eval_record,
    ids_path,
    kept_splits,
    read_meta,
    visual_fingerprint,
    visual_fingerprints,
    write_meta,
    write_split,
)
from fairseq_slt.data.sampling import num_sampled_frames
from fairseq_slt.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from fairseq_slt.data.video_settings import RECORD_KEY as VIDEO_RECORD_KEY
from fairseq_slt.data.video_settings import SETTING_KEYS, MissingVideoSettingsError, VideoSettingsMismatchError
from fairseq_slt.models.pretrained import load_stage1_visual_encoder
from fairseq_slt.tasks.cache_checks import check_cache_matches
from fairseq_slt.tasks.sign_translation import SignTranslationConfig, SignTranslationTask
from helpers import LANGS, STAGE2_TASK, stage2_data_root, stage2_train_cmd

IDS = ["a", "b", "c"]
LENGTHS = [2, 3, 1]
DIM = 4
REBUILD = "rebuild the cache with fairseq-slt-cache-features DATA --stage1-checkpoint /ckpt/stage1.pt"


def cache_meta(**kw) -> dict:
    """A ``meta.json`` as the builder writes it: every split one float32 evaluation view."""
    meta = {
        "format_version": FORMAT_VERSION, "stage1_checkpoint": "/ckpt/stage1.pt", "visual_fingerprint": "f32",
        "visual_fingerprints": {"float32": "f32", "float16": "f16", "bfloat16": "bf16"}, "feature_dim": DIM,
        "temporal_module": "K5", "temporal_dim": DIM, "resize": 48, "crop": 48, "keep_ratio": 0.25,
        "max_frames": 300, "norm_mean": list(IMAGENET_MEAN), "norm_std": list(IMAGENET_STD), "splits": ["test"],
    }
    meta.update(kw)
    meta.setdefault("split_views", {split: eval_record() for split in meta["splits"]})
    return meta


def make_cache(path, ids=IDS, lengths=LENGTHS, **meta):
    """A cache folder with split ``test`` written by the library, and its features."""
    path.mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    feats = [rng.standard_normal((n, DIM)).astype(np.float32) for n in lengths]
    write_split(str(path), "test", ids, feats)
    write_meta(str(path), cache_meta(**meta))
    return feats


def open_test(path, ids=IDS):
    return FeatureCache(str(path), "test", ids, manifest="data/test.tsv")


# --- files and their checks -----------------------------------------------------------------


def test_written_cache_reads_back_and_leaves_no_temporary_files(tmp_path):
    feats = make_cache(tmp_path / "c")
    cache = open_test(tmp_path / "c")
    assert len(cache) == 3
    for i, f in enumerate(feats):
        torch.testing.assert_close(cache.get(i), torch.from_numpy(f), rtol=0, atol=0)
    names = ["meta.json", "test.feats.npy", "test.ids.txt", "test.lengths.npy"]
    assert sorted(os.listdir(tmp_path / "c")) == names
    assert (tmp_path / "c" / "test.ids.txt").read_text() == "a\nb\nc\n"
    # the size it reports is what is on disk
    files = (*cache_paths(str(tmp_path / "c"), "test"), ids_path(str(tmp_path / "c"), "test"))
    sizes = sum(os.path.getsize(p) for p in files)
    assert write_split(str(tmp_path / "c"), "test", IDS, feats) == sizes


def test_lengths_that_do_not_add_up_to_the_rows(tmp_path):
    make_cache(tmp_path / "c")
    np.save(tmp_path / "c" / "test.lengths.npy", np.array([2, 3, 2], dtype=np.int64))
    with pytest.raises(FeatureCacheError, match=r"test.lengths.npy adds up to 7 feature rows but .*test.feats.npy "
                       r"holds 6: .*" + REBUILD):
        open_test(tmp_path / "c")
    np.save(tmp_path / "c" / "test.lengths.npy", np.array([2, 3], dtype=np.int64))
    with pytest.raises(FeatureCacheError, match="holds 2 lengths for 3 videos"):
        open_test(tmp_path / "c")


def test_zero_length_video(tmp_path):
    make_cache(tmp_path / "c")
    np.save(tmp_path / "c" / "test.lengths.npy", np.array([2, 0, 4], dtype=np.int64))  # still 6 rows
    with pytest.raises(FeatureCacheError, match=r"test.lengths.npy: video 2 \(id b\) has length 0; every video "
                       r"needs >= 1 feature vector"):
        open_test(tmp_path / "c")
    # the writer refuses it too
    with pytest.raises(ValueError, match="video b has no sign-wise features"):
        write_split(str(tmp_path / "c"), "test", IDS, [np.zeros((2, DIM)), np.zeros((0, DIM)), np.zeros((1, DIM))])


def test_feature_width_differs_from_meta(tmp_path):
    make_cache(tmp_path / "c", feature_dim=8)
    with pytest.raises(FeatureCacheError, match=r"test.feats.npy holds features of width 4 but meta.json says "
                       r"feature_dim=8"):
        open_test(tmp_path / "c")


def test_feature_dtype(tmp_path):
    make_cache(tmp_path / "c")
    np.save(tmp_path / "c" / "test.feats.npy", np.zeros((6, DIM), dtype=np.float64))
    with pytest.raises(FeatureCacheError, match="test.feats.npy holds float64 features, not float32"):
        open_test(tmp_path / "c")
    make_cache(tmp_path / "c")
    np.save(tmp_path / "c" / "test.lengths.npy", np.array([2.0, 3.0, 1.0]))
    with pytest.raises(FeatureCacheError, match="test.lengths.npy holds a 1-d float64 array, not one integer"):
        open_test(tmp_path / "c")


def test_ids_that_differ_from_the_manifest(tmp_path):
    make_cache(tmp_path / "c")
    with pytest.raises(FeatureCacheError, match=r"test.ids.txt holds 3 videos but data/test.tsv has 2: the "
                       r"manifest changed after the cache was written; " + REBUILD):
        open_test(tmp_path / "c", ["a", "b"])
    with pytest.raises(FeatureCacheError, match=r"test.ids.txt line 3 is id c but video 3 of data/test.tsv is "
                       r"id d:"):
        open_test(tmp_path / "c", ["a", "b", "d"])
    with pytest.raises(FeatureCacheError, match=r"line 1 is id a but video 1 .* is id b \(the same ids in "
                       r"another order\)"):
        open_test(tmp_path / "c", ["b", "a", "c"])


def test_cache_without_ids_is_refused_with_the_rebuild_command(tmp_path):
    make_cache(tmp_path / "c")
    os.remove(ids_path(str(tmp_path / "c"), "test"))
    with pytest.raises(FileNotFoundError, match=r"feature cache lacks .*test.ids.txt: " + REBUILD):
        open_test(tmp_path / "c")


@pytest.mark.parametrize("version", [None, 2, 4])
def test_cache_of_another_format_is_refused_before_any_file_is_read(tmp_path, version):
    make_cache(tmp_path / "c")
    meta = cache_meta()
    if version is None:
        del meta["format_version"]
    else:
        meta["format_version"] = version
    write_meta(str(tmp_path / "c"), meta)
    for name in ("test.feats.npy", "test.lengths.npy", "test.ids.txt"):
        os.remove(tmp_path / "c" / name)
    found = "no format_version" if version is None else f"format {version}"
    update = "update fairseq-slt, or " if version == 4 else ""
    with pytest.raises(FeatureCacheError, match=rf"feature cache .*c has {found} in meta.json, which this "
                       rf"fairseq-slt does not read \(it reads format {FORMAT_VERSION}\): {update}" + REBUILD
                       + r" --out .*c --splits test$"):
        open_test(tmp_path / "c")
    # nor does the model check, and a rerun keeps none of its splits
    with pytest.raises(FeatureCacheError, match=rf"has {found} in meta.json"):
        check_cache_matches(StubModel(), str(tmp_path / "c"))
    assert kept_splits(str(tmp_path / "c"), cache_meta(splits=["dev"]), ["dev"]) == []


def test_split_without_its_split_views_entry_is_refused(tmp_path):
    make_cache(tmp_path / "c", split_views={})
    with pytest.raises(FeatureCacheError, match=r"c/meta.json has no split_views entry of split test \(how its "
                       r"features are stored\): " + REBUILD):
        open_test(tmp_path / "c")


@pytest.mark.parametrize("name,cut", [("test.feats.npy", 7), ("test.lengths.npy", 3), ("test.feats.npy", None)])
def test_truncated_file_is_named(tmp_path, name, cut):
    make_cache(tmp_path / "c")
    path = tmp_path / "c" / name
    data = path.read_bytes()
    path.write_bytes(data[:-cut] if cut else b"")
    with pytest.raises(FeatureCacheError, match=rf"{name} is truncated or corrupt \(.*\): " + REBUILD):
        open_test(tmp_path / "c")


def test_truncated_ids_and_meta(tmp_path):
    make_cache(tmp_path / "c")
    (tmp_path / "c" / "test.ids.txt").write_text("a\nb\nc")
    with pytest.raises(FeatureCacheError, match=r"test.ids.txt is truncated \(no line break at its end\)"):
        open_test(tmp_path / "c")
    (tmp_path / "c" / "meta.json").write_text('{"visual_fingerprint": "f3')
    with pytest.raises(FeatureCacheError, match=r"meta.json is not valid JSON \(.*\): rebuild the cache with "
                       "fairseq-slt-cache-features"):
        open_test(tmp_path / "c")


def test_split_missing_from_meta(tmp_path):
    make_cache(tmp_path / "c", splits=["train"])
    with pytest.raises(FeatureCacheError, match=r"holds no features of split test \(meta.json lists train: "):
        open_test(tmp_path / "c")


# --- writing ----------------------------------------------------------------------------------


def test_interrupted_write_leaves_the_old_file(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"old")

    def fail(f):
        f.write(b"half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(str(path), fail)
    assert path.read_bytes() == b"old" and os.listdir(tmp_path) == ["f.bin"]
    assert atomic_write(str(path), lambda f: f.write(b"new!")) == 4 and path.read_bytes() == b"new!"


def test_rerun_keeps_splits_of_the_same_encoder_only(tmp_path, caplog):
    make_cache(tmp_path / "c", splits=["train", "dev", "test"])
    same = cache_meta()
    assert kept_splits(str(tmp_path / "c"), same, ["test"]) == ["train", "dev"]
    assert kept_splits(str(tmp_path / "c"), cache_meta(keep_ratio=0.5), ["test"]) == []
    with caplog.at_level(logging.WARNING):
        assert kept_splits(str(tmp_path / "c"), cache_meta(visual_fingerprint="other"), ["test"]) == []
    assert "dropping splits train, dev from meta.json: they were computed from /ckpt/stage1.pt" in caplog.text
    assert kept_splits(str(tmp_path / "nothing"), same, ["test"]) == []


def test_rerun_compares_the_normalisation_and_keeps_only_splits_with_their_record(tmp_path):
    make_cache(tmp_path / "c", splits=["train", "test"])
    assert kept_splits(str(tmp_path / "c"), cache_meta(), ["test"]) == ["train"]
    assert kept_splits(str(tmp_path / "c"), cache_meta(norm_mean=[0.5] * 3), ["test"]) == []
    assert kept_splits(str(tmp_path / "c"), cache_meta(norm_std=[0.5] * 3), ["test"]) == []
    make_cache(tmp_path / "c", splits=["train", "dev", "test"], split_views={"test": eval_record()})
    assert kept_splits(str(tmp_path / "c"), cache_meta(), ["test"]) == []  # train, dev: no split_views entry


# --- fingerprints and the model check ----------------------------------------------------------


class TinyVisual(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv, self.bn = nn.Conv1d(3, DIM, 3), nn.BatchNorm1d(DIM)


class StubModel(nn.Module):
    """The encoder interface of our models: ``accepts_cached_features`` and ``visual_encoder``."""

    def __init__(self, accepts=True):
        super().__init__()
        self.encoder = nn.Module()
        self.encoder.visual_encoder = TinyVisual()
        self.encoder.accepts_cached_features = accepts


def write_meta_for(path, visual: nn.Module, **kw) -> None:
    path.mkdir(exist_ok=True)
    fps = visual_fingerprints(visual.state_dict())
    write_meta(str(path), cache_meta(visual_fingerprint=fps["float32"], visual_fingerprints=fps, **kw))


def test_fingerprint_of_float32_weights_is_unchanged_and_half_weights_match():
    torch.manual_seed(0)
    state = TinyVisual().state_dict()
    h = hashlib.sha256()
    for key in sorted(state):  # the fingerprint's formula, spelled out
        h.update(key.encode())
        h.update(state[key].detach().cpu().contiguous().numpy().tobytes())
    assert visual_fingerprint(state) == h.hexdigest() == visual_fingerprints(state)["float32"]
    meta = cache_meta(visual_fingerprints=visual_fingerprints(state))
    for dtype in (torch.float32, torch.float16, torch.bfloat16):  # fairseq's --fp16 / --bf16
        cast = {k: v.to(dtype) if v.is_floating_point() else v for k, v in state.items()}
        assert fingerprint_matches(meta, "c", cast)
    changed = dict(state, **{"bn.running_mean": state["bn.running_mean"] + 1e-3})
    assert not fingerprint_matches(meta, "c", changed)
    without = cache_meta(visual_fingerprints={"float32": visual_fingerprint(state)})
    assert fingerprint_matches(without, "c", state)
    with pytest.raises(FeatureCacheError, match=r"feature cache c stores no fingerprint of float16 weights in "
                       r"meta.json: rebuild the cache"):
        fingerprint_matches(without, "c", {k: v.half() if v.is_floating_point() else v for k, v in state.items()})


def test_check_cache_matches_names_the_cache_and_its_checkpoint(tmp_path):
    model = StubModel()
    write_meta_for(tmp_path / "c", model.encoder.visual_encoder)
    check_cache_matches(model, str(tmp_path / "c"))
    check_cache_matches(model.half(), str(tmp_path / "c"))  # fairseq-generate --fp16
    other = StubModel()
    with pytest.raises(ValueError, match=rf"the feature cache {tmp_path / 'c'} was computed from /ckpt/stage1.pt, "
                       r"whose visual encoder differs from this model's: rebuild it with "
                       r"fairseq-slt-cache-features"):
        check_cache_matches(other, str(tmp_path / "c"))
    with pytest.raises(ValueError, match="this model trains its visual encoder"):
        check_cache_matches(StubModel(accepts=False), str(tmp_path / "c"))


def stage2_task(root, mbart, cache):
    """A stage-2 task (the mBART folder ``mbart``'s vocabulary) whose config names ``cache``."""
    root.mkdir()
    (root / "config.yaml").write_text(
        f"video_root: {root}\nvocab_filename: {mbart / 'dict.txt'}\n"
        f"bpe_tokenizer: {{bpe: sentencepiece, sentencepiece_model: {mbart / 'sentence.bpe.model'}}}\n"
        f"video: {{resize: 48, crop: 48}}\nfeature_cache: {cache}\n"
    )
    return SignTranslationTask.setup_task(SignTranslationConfig(data=str(root), langs=LANGS, tgt_lang="en_XX"))


@pytest.fixture
def stage2_model(tmp_path, mbart_dir, stage1_ckpt):
    """``(task, model, cache)``: a stage-2 model built by the task as fairseq-train builds it,
    from a stage-1 checkpoint whose fingerprints ``cache``'s meta.json holds."""
    visual, _ = load_stage1_visual_encoder(str(stage1_ckpt[0]))
    cache = tmp_path / "c"
    write_meta_for(cache, visual, stage1_checkpoint=str(stage1_ckpt[0]))
    task = stage2_task(tmp_path / "data", mbart_dir, cache)
    args = Namespace(
        arch="slt_mbart", stage1_checkpoint=str(stage1_ckpt[0]), mbart_dir=str(mbart_dir), dropout=0.0
    )
    return task, task.build_model(args), cache  # build_model checks it against the cache


VISUAL_KEY = "encoder.visual.module.temporal.layers.0.0.weight"


def test_training_model_is_checked_again_when_a_checkpoint_is_loaded(stage2_model, stage1_ckpt):
    task, model, cache = stage2_model
    state = {k: v.clone() for k, v in model.state_dict().items()}
    model.load_state_dict(state)  # resuming from a checkpoint of the same stage-1 encoder
    model.half().load_state_dict({k: v.half() if v.is_floating_point() else v for k, v in state.items()})  # --fp16
    state[VISUAL_KEY] = state[VISUAL_KEY] + 0.01  # a checkpoint trained on another stage-1 encoder
    with pytest.raises(ValueError, match=rf"the feature cache {cache} was computed from {stage1_ckpt[0]}, whose "
                       r"visual encoder differs from this model's \(the weights it just loaded from a checkpoint: "
                       r"a run on another stage-1 checkpoint\? to start from --stage1-checkpoint instead, train "
                       r"into a new --save-dir\): rebuild it with fairseq-slt-cache-features"):
        model.float().load_state_dict(state)
    with pytest.raises(RuntimeError, match="Missing key"):  # torch's own error, not ours
        model.load_state_dict({k: v for k, v in state.items() if k != VISUAL_KEY})


def test_build_generator_checks_models_when_a_split_reads_the_cache(stage2_model):
    from fairseq.dataclass.configs import GenerationConfig

    task, model, cache = stage2_model
    model.eval()
    task.build_generator([model], GenerationConfig(beam=2))  # matches
    with torch.no_grad():  # weights changed without a load (the post-load check does not see it)
        model.encoder.visual_encoder.temporal.layers[0][0].weight.add_(0.01)
    # SignTranslator: no split loaded, the model reads videos, never the cache: not checked
    task.build_generator([model], GenerationConfig(beam=2))
    task.datasets["test"] = SimpleNamespace(feature_cache=object())  # fairseq-generate loaded a cached split
    with pytest.raises(ValueError, match=rf"the feature cache {cache} was computed from .*, whose visual encoder "
                       r"differs from this model's: rebuild it with fairseq-slt-cache-features DATA "
                       rf"--stage1-checkpoint <the stage-1 checkpoint of this model> --out {cache}"):
        task.build_generator([model], GenerationConfig(beam=2))


def cached_root(tiny_corpus, root, unrecorded=(), **cache_video):
    """A data root of the tiny corpus (resize 48, crop 48, keep_ratio 0.25, max_frames 300) whose
    feature cache of split test was computed with ``cache_video`` (meta.json's video settings),
    its meta.json without the keys ``unrecorded``."""
    root.mkdir()
    shutil.copy(tiny_corpus / "test.tsv", root / "test.tsv")
    (root / "config.yaml").write_text(
        f"video_root: {tiny_corpus}\nvocab_filename: {tiny_corpus / 'dict.txt'}\n"
        f"bpe_tokenizer: {{bpe: sentencepiece, sentencepiece_model: {tiny_corpus / 'spm.model'}}}\n"
        "video: {resize: 48, crop: 48, keep_ratio: 0.25, max_frames: 300}\nfeature_cache: features\n"
    )
    rows = [line.split("\t") for line in (root / "test.tsv").read_text().splitlines()[1:]]
    (root / "features").mkdir()
    write_split(str(root / "features"), "test", [r[0] for r in rows], [np.ones((2, DIM), np.float32)] * len(rows))
    meta = cache_meta(**cache_video)
    write_meta(str(root / "features"), {k: v for k, v in meta.items() if k not in unrecorded})
    return root, [int(r[2]) for r in rows]


def test_stage2_refuses_a_cache_of_other_video_settings(tiny_corpus, tmp_path):
    root, _ = cached_root(tiny_corpus, tmp_path / "data", crop=40, keep_ratio=0.5,
                          norm_mean=IMAGENET_MEAN, norm_std=IMAGENET_STD)
    task = SignTranslationTask.setup_task(SignTranslationConfig(data=str(root)))
    with pytest.raises(VideoSettingsMismatchError) as e:
        task.load_dataset("test")
    assert e.value.differences == [("crop", 40, 48), ("keep_ratio", 0.5, 0.25)]
    msg = str(e.value)
    assert msg.startswith(f"the feature cache {root / 'features'} was computed with video.crop 40, video.keep_ratio "
                          f"0.5, but the data config {root / 'config.yaml'} gives video.crop 48, video.keep_ratio 0.25")
    assert (f"{REBUILD} --out {root / 'features'} --config-yaml config.yaml, or use the data config it was computed "
            "with, or pass --allow-video-settings-change") in msg
    assert "test" not in task.datasets


def test_with_the_override_stage2_reads_the_cache_and_reports_and_records_its_settings(tiny_corpus, tmp_path, caplog):
    root, n_frames = cached_root(tiny_corpus, tmp_path / "data", crop=40, keep_ratio=0.5,
                                 norm_mean=IMAGENET_MEAN, norm_std=IMAGENET_STD)
    task = SignTranslationTask.setup_task(SignTranslationConfig(data=str(root), allow_video_settings_change=True))
    with caplog.at_level(logging.INFO):
        task.load_dataset("test")
    assert "going on as --allow-video-settings-change asks: stage 2 reads its features" in caplog.text
    dataset = task.dataset("test")
    assert dataset.src_sizes.tolist() == [num_sampled_frames(n, 0.5, 300) for n in n_frames]
    assert (f"test: {len(n_frames)} videos, {sum(dataset.src_sizes)} frames sampled when the cache was computed, "
            "with its settings (keep_ratio=0.5, shorter side 48 -> crop 40); 0 videos capped at max_frames=300"
            ) in caplog.text
    record = task.state_dict()[VIDEO_RECORD_KEY]  # what its checkpoints record: the cache's settings
    assert (record["crop"], record["keep_ratio"], record["resize"]) == (40, 0.5, 48)


def test_cache_without_some_settings_is_refused_naming_them_unless_allowed(tiny_corpus, tmp_path):
    root, _ = cached_root(tiny_corpus, tmp_path / "data", unrecorded=("norm_mean", "norm_std"))
    task = SignTranslationTask.setup_task(SignTranslationConfig(data=str(root)))
    with pytest.raises(MissingVideoSettingsError) as e:
        task.load_dataset("test")
    assert e.value.missing == ("norm_mean", "norm_std")
    assert str(e.value) == (
        f"the feature cache {root / 'features'} records no norm_mean, norm_std (which every checkpoint and feature "
        f"cache of this fairseq-slt records), so they cannot be checked against the data config "
        f"{root / 'config.yaml'}; {REBUILD} --out {root / 'features'} --config-yaml config.yaml, or pass "
        "--allow-video-settings-change to go on (stage 2 reads its features, made with its settings, and its "
        "checkpoints record those)"
    )
    assert "test" not in task.datasets
    # the override goes on; the keys the cache records are its, the others the data config's
    task = SignTranslationTask.setup_task(SignTranslationConfig(data=str(root), allow_video_settings_change=True))
    task.load_dataset("test")
    assert len(task.dataset("test")) == 5
    assert task.state_dict()[VIDEO_RECORD_KEY]["norm_mean"] == list(IMAGENET_MEAN)


def with_video_record(stage1_path, out, **video):
    """A copy of a stage-1 checkpoint whose task_state's video record says ``video`` (None: drop the key)."""
    state = load_checkpoint_state(str(stage1_path))
    record = state["task_state"][VIDEO_RECORD_KEY]
    record.update(video)
    state["task_state"][VIDEO_RECORD_KEY] = {k: v for k, v in record.items() if v is not None}
    torch.save(state, out)
    return out


def test_cache_features_refuses_a_stage1_checkpoint_of_other_video_settings(tmp_path, monkeypatch, mbart_dir,
                                                                            stage1_ckpt, caplog):
    import fairseq_slt.feature_cache_builder as cli

    root = tmp_path / "data"
    stage2_task(root, mbart_dir, "features")  # resize 48, crop 48

    def fake_cache_split(task, visual, split, out, *options):  # the real one reads videos
        n_bytes = write_split(out, split, IDS, [np.ones((n, visual.out_dim), np.float32) for n in LENGTHS])
        return len(IDS), sum(LENGTHS), n_bytes, {"views": 1, "transforms": "eval", "dtype": "float32"}

    monkeypatch.setattr(cli, "cache_split", fake_cache_split)
    ckpt = with_video_record(stage1_ckpt[0], tmp_path / "stage1.pt", crop=32, data_config="/runs/stage1/config.yaml")
    args = Namespace(data=str(root), stage1_checkpoint=str(ckpt), config_yaml="config.yaml", splits="test",
                     out="features", batch_size=2)
    with pytest.raises(VideoSettingsMismatchError) as e:
        cli.main(args)
    assert e.value.differences == [("crop", 32, 48)]
    assert str(e.value) == (
        f"the stage-1 checkpoint {ckpt} was trained with video.crop 32, but the data config {root / 'config.yaml'} "
        "gives video.crop 48 (the visual encoder would see frames made otherwise than then); cache with the data "
        "config it was trained with (/runs/stage1/config.yaml), --config-yaml, or pass "
        "--allow-video-settings-change to go on (the cache is computed with the data config's settings and records "
        "them)"
    )
    assert not (root / "features").exists()  # refused before anything is written
    with caplog.at_level(logging.WARNING):
        cli.main(Namespace(**dict(vars(args), allow_video_settings_change=True)))
    assert "gives video.crop 48; going on as --allow-video-settings-change asks" in caplog.text
    meta = read_meta(str(root / "features"))
    assert (meta["crop"], meta["norm_mean"], meta["norm_std"]) == (48, IMAGENET_MEAN, IMAGENET_STD)
    cli.main(Namespace(**dict(vars(args), stage1_checkpoint=str(stage1_ckpt[0]))))  # the same settings


def test_cache_features_refuses_a_stage1_checkpoint_without_the_video_record(tmp_path, monkeypatch, mbart_dir,
                                                                             stage1_ckpt):
    import fairseq_slt.feature_cache_builder as cli

    root = tmp_path / "data"
    stage2_task(root, mbart_dir, "features")

    def fake_cache_split(task, visual, split, out, *options):  # the real one reads videos
        n_bytes = write_split(out, split, IDS, [np.ones((n, visual.out_dim), np.float32) for n in LENGTHS])
        return len(IDS), sum(LENGTHS), n_bytes, {"views": 1, "transforms": "eval", "dtype": "float32"}

    monkeypatch.setattr(cli, "cache_split", fake_cache_split)
    partial = with_video_record(stage1_ckpt[0], tmp_path / "partial.pt", norm_mean=None, max_frames=None)
    state = load_checkpoint_state(str(stage1_ckpt[0]))
    del state["task_state"][VIDEO_RECORD_KEY]
    torch.save(state, tmp_path / "none.pt")
    args = Namespace(data=str(root), config_yaml="config.yaml", splits="test", out="features", batch_size=2)
    for ckpt, missing, named in [
        (partial, ("max_frames", "norm_mean"), "video.max_frames, norm_mean"),
        (tmp_path / "none.pt", SETTING_KEYS, "video settings"),
    ]:
        with pytest.raises(MissingVideoSettingsError) as e:
            cli.main(Namespace(**vars(args), stage1_checkpoint=str(ckpt)))
        assert e.value.missing == missing
        assert str(e.value) == (
            f"the stage-1 checkpoint {ckpt} records no {named} (which every checkpoint and feature cache of this "
            f"fairseq-slt records), so they cannot be checked against the data config {root / 'config.yaml'}; "
            "train stage 1 again with this fairseq-slt, or pass --allow-video-settings-change to go on (the cache "
            "is computed with the data config's settings and records them)"
        )
        assert not (root / "features").exists()  # refused before anything is written
    cli.main(Namespace(**vars(args), stage1_checkpoint=str(partial), allow_video_settings_change=True))
    assert read_meta(str(root / "features"))["max_frames"] == 300  # the data config's settings


def test_command_line_choices_and_defaults_are_the_builders():
    # the command takes them from a light module so that --help imports neither torch nor fairseq
    from fairseq_slt.cli.cache_features import get_parser
    from fairseq_slt.data.feature_cache import STORAGE_DTYPES
    from fairseq_slt.data.feature_cache_options import DEFAULTS, DTYPE_CHOICES, PRECISION_CHOICES
    from fairseq_slt.feature_cache_builder import PRECISIONS, with_defaults

    assert PRECISION_CHOICES == tuple(PRECISIONS) and DTYPE_CHOICES == tuple(STORAGE_DTYPES)
    args = get_parser().parse_args(["data", "--stage1-checkpoint", "stage1.pt"])
    assert {k: getattr(args, k) for k in DEFAULTS} == DEFAULTS
    assert vars(with_defaults(Namespace(data="data"))) == dict(DEFAULTS, data="data")


def test_interrupted_cache_run_leaves_its_split_unlisted(tmp_path, monkeypatch, mbart_dir, stage1_ckpt):
    import fairseq_slt.feature_cache_builder as cli

    root = tmp_path / "data"
    stage2_task(root, mbart_dir, "features")  # the data root (config.yaml, dictionary)
    killed = []

    def fake_cache_split(task, visual, split, out, batch_size, *options):  # the real one reads videos
        if split in killed:
            raise KeyboardInterrupt
        n_bytes = write_split(out, split, IDS, [np.ones((n, visual.out_dim), np.float32) for n in LENGTHS])
        return len(IDS), sum(LENGTHS), n_bytes, {"views": 1, "transforms": "eval", "dtype": "float32"}

    monkeypatch.setattr(cli, "cache_split", fake_cache_split)
    args = Namespace(data=str(root), stage1_checkpoint=str(stage1_ckpt[0]), config_yaml="config.yaml",
                     splits="train,test", out="features", batch_size=2)
    cli.main(args)
    cache = root / "features"
    assert read_meta(str(cache))["splits"] == ["train", "test"]
    killed.append("test")  # a second run, killed while it rewrites test
    with pytest.raises(KeyboardInterrupt):
        cli.main(Namespace(**dict(vars(args), splits="test")))
    assert read_meta(str(cache))["splits"] == ["train"]  # train is still valid, test is not
    assert len(FeatureCache(str(cache), "train", IDS)) == 3
    with pytest.raises(FeatureCacheError, match=r"holds no features of split test \(meta.json lists train: .* a "
                       r"run was interrupted\): rebuild the cache with fairseq-slt-cache-features"):
        FeatureCache(str(cache), "test", IDS)


# --- through the command lines ------------------------------------------------------------------


def run_failing(cmd) -> str:
    """Run a console script of this venv that must fail; its output."""
    from helpers import BIN_DIR

    proc = subprocess.run(
        [os.path.join(BIN_DIR, cmd[0])] + [str(c) for c in cmd[1:]], capture_output=True, text=True, timeout=600
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, f"{cmd[0]} exited 0:\n{out[-3000:]}"
    return out


def with_cache(root, cache) -> None:
    with open(root / "config.yaml", "a", encoding="utf-8") as f:
        f.write(f"feature_cache: {cache}\n")


@pytest.fixture(scope="module")
def stage2_on_cache(tiny_corpus, stage1_run, mbart_dir, tmp_path_factory):
    """Stage 2 trained 3 updates on a cache of stage 1 (``data_a``), and a data root ``data_b``
    whose cache comes from another stage-1 checkpoint of the same architecture."""
    from helpers import run_cli

    from fairseq_slt.feature_cache_builder import main as cache_main

    tmp = tmp_path_factory.mktemp("stage2_cache")
    ckpt_a = stage1_run[0] / "checkpoint_last.pt"
    state = load_checkpoint_state(str(ckpt_a))
    state["model"]["encoder.visual.temporal.layers.0.0.weight"] += 0.01  # another stage 1 run
    ckpt_b = tmp / "other_stage1.pt"
    torch.save(state, ckpt_b)
    data_a = stage2_data_root(tiny_corpus, mbart_dir, tmp / "data_a")
    cache_main(Namespace(data=str(data_a), stage1_checkpoint=str(ckpt_a), config_yaml="config.yaml",
                         splits="train,dev,test", out="features", batch_size=6))
    with_cache(data_a, "features")
    save_dir = tmp / "ckpt"
    run_cli(stage2_train_cmd(data_a, mbart_dir, save_dir, "--stage1-checkpoint", ckpt_a))
    data_b = stage2_data_root(tiny_corpus, mbart_dir, tmp / "data_b")
    log = run_cli(["fairseq-slt-cache-features", data_b, "--stage1-checkpoint", ckpt_b, "--out", "features",
                   "--batch-size", "6"])
    with_cache(data_b, "features")
    return SimpleNamespace(data_a=data_a, data_b=data_b, ckpt_a=ckpt_a, ckpt_b=ckpt_b, save_dir=save_dir,
                           cache_log=log)


@pytest.mark.slow
def test_generate_refuses_a_cache_from_another_stage1(stage2_on_cache, mbart_dir):
    from helpers import PLUGIN_DIR

    from fairseq import checkpoint_utils
    from fairseq.dataclass.configs import GenerationConfig

    s = stage2_on_cache
    cache_b = s.data_b / "features"
    assert read_meta(str(cache_b))["splits"] == ["train", "dev", "test"]
    assert f"feature cache {cache_b}: wrote " in s.cache_log and "KiB for split(s) train, dev, test" in s.cache_log
    ckpt = s.save_dir / "checkpoint_last.pt"
    out = run_failing([
        "fairseq-generate", s.data_b, "--user-dir", PLUGIN_DIR, *STAGE2_TASK, "--gen-subset", "test",
        "--path", ckpt, "--beam", "2", "--max-tokens", "400", "--max-len-b", "5",
    ])
    assert (f"ValueError: the feature cache {cache_b} was computed from {s.ckpt_b}, whose visual encoder differs "
            "from this model's: rebuild it with fairseq-slt-cache-features") in out
    # the cache it was trained on is accepted once the checkpoint is loaded, in float32 and fp16
    models, _, task = checkpoint_utils.load_model_ensemble_and_task(
        [str(ckpt)], arg_overrides={"data": str(s.data_a)}
    )
    task.load_dataset("test")
    assert task.dataset("test").feature_cache is not None
    task.build_generator(models, GenerationConfig(beam=2))
    task.build_generator([m.half() for m in models], GenerationConfig(beam=2))


@pytest.mark.slow
def test_resume_refuses_a_cache_from_another_stage1(stage2_on_cache, mbart_dir, tmp_path):
    s = stage2_on_cache
    save_dir = tmp_path / "ckpt"
    save_dir.mkdir()
    shutil.copy(s.save_dir / "checkpoint_last.pt", save_dir / "checkpoint_last.pt")
    # the new stage-1 checkpoint matches the new cache, so the model as built passes; the weights
    # resumed from checkpoint_last.pt (trained on the first stage 1) do not
    out = run_failing(stage2_train_cmd(s.data_b, mbart_dir, save_dir, "--stage1-checkpoint", s.ckpt_b,
                                       "--max-update", "5"))
    assert f"feature cache {s.data_b / 'features'} matches the frozen visual encoder" in out
    assert (f"ValueError: the feature cache {s.data_b / 'features'} was computed from {s.ckpt_b}, whose visual "
            "encoder differs from this model's (the weights it just loaded from a checkpoint") in out


@pytest.mark.slow
def test_cache_features_cli_refuses_other_video_settings_in_one_line(tiny_corpus, stage1_run, mbart_dir, tmp_path):
    data = stage2_data_root(tiny_corpus, mbart_dir, tmp_path / "data")
    config = (data / "config.yaml").read_text()
    (data / "config.yaml").write_text(config.replace("keep_ratio: 0.25", "keep_ratio: 0.5"))
    ckpt = stage1_run[0] / "checkpoint_last.pt"  # trained on the tiny corpus's keep_ratio 0.25
    from helpers import BIN_DIR

    proc = subprocess.run([os.path.join(BIN_DIR, "fairseq-slt-cache-features"), str(data), "--stage1-checkpoint",
                           str(ckpt), "--splits", "test", "--out", "features", "--no-progress-bar"],
                          capture_output=True, text=True, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out[-3000:]
    last = out.strip().splitlines()[-1]
    assert last.startswith(f"fairseq-slt-cache-features: error: the stage-1 checkpoint {ckpt} was trained with "
                           f"video.keep_ratio 0.25, but the data config {data / 'config.yaml'} gives video.keep_ratio "
                           f"0.5"), last
    assert f"cache with the data config it was trained with ({tiny_corpus / 'config.yaml'})" in last
    assert "Traceback" not in out and not (data / "features").exists()


@pytest.mark.slow
def test_generate_on_a_truncated_cache_names_the_file(stage2_on_cache, tmp_path):
    """A byte-truncated cache through the CLI a user runs: one error naming the file."""
    from helpers import PLUGIN_DIR

    s = stage2_on_cache
    data = tmp_path / "data"
    shutil.copytree(s.data_a, data)
    feats = data / "features" / "test.feats.npy"
    feats.write_bytes(feats.read_bytes()[:-100])
    out = run_failing([
        "fairseq-generate", data, "--user-dir", PLUGIN_DIR, *STAGE2_TASK, "--gen-subset", "test",
        "--path", s.save_dir / "checkpoint_last.pt", "--beam", "2", "--max-tokens", "400", "--max-len-b", "5",
    ])
    assert f"{feats} is truncated or corrupt" in out and "rebuild the cache with fairseq-slt-cache-features" in out
