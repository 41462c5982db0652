"""Training views of the feature cache (the paper's augmentation kept on the cache), streamed and
resumable writes, float16 storage, and the option checks of fairseq-slt-cache-features."""

import json
import logging
import os
from argparse import Namespace

import numpy as np
import pytest
import torch

import fairseq_slt.data.feature_cache as fc
from fairseq_slt import feature_cache_builder as cli
from fairseq_slt.data import SignVideoDatasetCreator
from fairseq_slt.data.feature_cache import (
    FeatureCache,
    FeatureCacheError,
    SplitWriter,
    cache_paths,
    eval_record,
    ids_path,
    progress_path,
    read_meta,
    write_meta,
    write_split,
)
from fairseq_slt.models.pretrained import load_stage1_visual_encoder
from fairseq_slt.tasks.sign_translation import SignTranslationConfig, SignTranslationTask
from helpers import LANGS, stage2_data_root

SEED = 3
K = 2


def cache_args(root, ckpt, **kw) -> Namespace:
    args = dict(data=str(root), stage1_checkpoint=str(ckpt), config_yaml="config.yaml", splits="train,dev",
                out="features", batch_size=5, train_views=K, seed=SEED, no_progress_bar=True)
    args.update(kw)
    return Namespace(**args)


def task_of(root, config="config.yaml"):
    return SignTranslationTask.setup_task(
        SignTranslationConfig(data=str(root), config_yaml=config, langs=LANGS, tgt_lang="en_XX", seed=SEED)
    )


def with_cache(root, cache, name="config_cache.yaml") -> str:
    text = (root / "config.yaml").read_text() + f"feature_cache: {cache}\n"
    (root / name).write_text(text)
    return name


@pytest.fixture(scope="module")
def views_root(tiny_corpus, mbart_dir, stage1_ckpt, tmp_path_factory):
    """A data root whose cache ``features`` holds K=2 training views of train (one DataLoader
    worker) and one evaluation view of dev."""
    root = stage2_data_root(tiny_corpus, mbart_dir, tmp_path_factory.mktemp("views") / "data")
    cli.main(cache_args(root, stage1_ckpt[0], num_workers=1))
    return root


def files_of(cache, split="train", views=K) -> dict:
    names = [ids_path(str(cache), split)] + [p for v in range(views) for p in cache_paths(str(cache), split, v)]
    return {os.path.basename(p): open(p, "rb").read() for p in names}


# --- what the views hold ------------------------------------------------------------------------


def test_view_v_is_live_training_in_epoch_v_plus_1(views_root, stage1_ckpt):
    cache_dir = views_root / "features"
    meta = read_meta(str(cache_dir))
    assert meta["format_version"] == 3 and meta["splits"] == ["train", "dev"]
    assert meta["split_views"]["train"] == {
        "views": K, "transforms": "train", "dtype": "float32", "precision": "fp32", "seed": SEED,
        "epochs": [1, 2], "augment": task_of(views_root).data_cfg.augment,
    }
    assert meta["split_views"]["dev"] == {"views": 1, "transforms": "eval", "dtype": "float32", "precision": "fp32"}
    assert not any(n.endswith((".partial", ".progress.json")) for n in os.listdir(cache_dir))
    visual, _ = load_stage1_visual_encoder(str(stage1_ckpt[0]))
    visual.eval()
    live = cli.split_dataset(task_of(views_root), "train", True, SEED)  # the dataset of live training
    cache = FeatureCache(str(cache_dir), "train", live.ids)
    assert cache.n_views == K and cache.transforms == "train"
    for view in range(K):
        live.set_epoch(view + 1)
        for index in (0, 7):
            frames = live[index].source
            with torch.no_grad():
                feats, lengths = visual(frames[None], torch.tensor([frames.size(0)]))
            torch.testing.assert_close(cache.get(index, view), feats[0, : lengths[0]], rtol=1e-4, atol=1e-5)
    # the views differ (augmentation and sampling are drawn anew), their lengths do not
    assert not torch.allclose(cache.get(0, 0), cache.get(0, 1))
    assert np.array_equal(cache.views[0][1], cache.views[1][1])


def test_dataset_reads_view_epoch_minus_one_mod_k(views_root, caplog):
    task = task_of(views_root, with_cache(views_root, "features"))
    cache = FeatureCache(str(views_root / "features"), "train", cli.split_dataset(task, "train", True, SEED).ids)
    with caplog.at_level(logging.INFO):
        task.load_dataset("train")
        dataset = task.datasets["train"]
        for epoch in (1, 2, 3, 4, 5):
            dataset.set_epoch(epoch)
            dataset.set_epoch(epoch)  # fairseq sets an epoch more than once: logged once
            assert dataset.cache_view == (epoch - 1) % K
            assert torch.equal(dataset[3].source, cache.get(3, (epoch - 1) % K))
    assert "stage 2 trains without augmentation" not in caplog.text
    assert caplog.text.count("train: epoch 3 reads view 0 of 2 (train) of the feature cache") == 1
    assert "train: epoch 4 reads view 1 of 2" in caplog.text
    # another --seed than the views': said at load
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        SignVideoDatasetCreator.from_tsv(str(views_root), task.data_cfg, "train", task.tgt_dict, task.bpe_tokenizer,
                                         is_train=True, seed=SEED + 1)
    assert f"the cached training views were drawn with seed {SEED}, this run has --seed {SEED + 1}" in caplog.text


def test_single_evaluation_view_of_train_warns_once(views_root, caplog):
    """A training split cached as one evaluation view (``--train-views 0``) warns at load, once."""
    task = task_of(views_root)
    ids = cli.split_dataset(task, "train", False, SEED).ids
    old = views_root / "old_cache"
    old.mkdir()
    dim = read_meta(str(views_root / "features"))["feature_dim"]
    write_split(str(old), "train", ids, [np.ones((2, dim), np.float32)] * len(ids))
    meta = dict(read_meta(str(views_root / "features")), splits=["train"], split_views={"train": eval_record()})
    write_meta(str(old), meta)
    task = task_of(views_root, with_cache(views_root, "old_cache", "config_old.yaml"))
    with caplog.at_level(logging.WARNING):
        task.load_dataset("train")
        for epoch in (1, 2, 3):
            task.datasets["train"].set_epoch(epoch)
    assert caplog.text.count(
        "holds one evaluation view per video: stage 2 trains without augmentation: rebuild with --train-views K "
        "or train live"
    ) == 1
    dataset = task.datasets["train"]
    assert dataset.feature_cache.n_views == 1 and dataset.cache_view == 0
    assert torch.equal(dataset[0].source, torch.ones(2, dim))
    caplog.clear()
    task = task_of(views_root, with_cache(views_root, "features"))
    with caplog.at_level(logging.WARNING):
        task.load_dataset("dev")  # one evaluation view of a split that is not trained on: no warning
    assert "without augmentation" not in caplog.text


# --- streamed, resumable writes -----------------------------------------------------------------


def test_resume_after_interruption_gives_the_same_bytes(views_root, stage1_ckpt, monkeypatch, caplog):
    monkeypatch.setattr(fc, "PROGRESS_INTERVAL_S", 0.0)  # record progress after every batch
    real_write = SplitWriter.write
    calls = []

    def killed_write(self, view, start, feats):
        calls.append(view)
        if view == 1 and calls.count(1) == 2:  # in the middle of view 1
            raise KeyboardInterrupt
        real_write(self, view, start, feats)

    monkeypatch.setattr(SplitWriter, "write", killed_write)
    args = cache_args(views_root, stage1_ckpt[0], out="resumed", splits="train")
    with pytest.raises(KeyboardInterrupt):
        cli.main(args)
    out = views_root / "resumed"
    assert read_meta(str(out))["splits"] == []  # not committed
    progress = json.loads(open(progress_path(str(out), "train")).read())
    assert progress["done"] == [12, 5]
    monkeypatch.setattr(SplitWriter, "write", real_write)
    with caplog.at_level(logging.INFO):
        cli.main(args)  # the same command again
    assert "train: resuming an interrupted run (12, 5 of 12 videos done per view" in caplog.text
    assert read_meta(str(out))["splits"] == ["train"]
    assert files_of(out) == files_of(views_root / "features")  # byte for byte
    assert sorted(os.listdir(out)) == sorted(["meta.json", "train.ids.txt"] + list(files_of(out))[1:])


def test_other_identity_restarts_a_partial_split(tmp_path, caplog):
    ids, lengths = ["a", "b", "c"], [np.array([2, 1, 3])]
    record = {"views": 1, "transforms": "eval", "dtype": "float32"}
    writer = SplitWriter(str(tmp_path), "test", ids, lengths, 4, record, {"visual_fingerprint": "A"})
    writer.write(0, 0, [np.ones((2, 4), np.float32)])
    writer.save_progress()
    writer.close()
    again = SplitWriter(str(tmp_path), "test", ids, lengths, 4, record, {"visual_fingerprint": "A"})
    assert again.done == [1]
    again.close()
    with caplog.at_level(logging.WARNING):
        other = SplitWriter(str(tmp_path), "test", ids, lengths, 4, record, {"visual_fingerprint": "B"})
    assert other.done == [0] and "is from a run with another encoder" in caplog.text and "restarting" in caplog.text
    with pytest.raises(ValueError, match=r"writing video 1 but 0 are done"):
        other.write(0, 1, [np.ones((1, 4), np.float32)])
    with pytest.raises(ValueError, match=r"video 1 \(id a\) has features of shape \(3, 4\) but 2 x 4 were expected"):
        other.write(0, 0, [np.ones((3, 4), np.float32)])
    with pytest.raises(ValueError, match=r"\[0\] of 3 videos done per view"):
        other.finish()
    other.close()


# --- float16 storage ----------------------------------------------------------------------------


def test_float16_storage_reads_back_close_and_decodes_the_same(views_root, stage1_ckpt, mbart_dir):
    from fairseq.dataclass.configs import GenerationConfig

    cli.main(cache_args(views_root, stage1_ckpt[0], out="half", splits="dev", dtype="float16"))
    half_dir, full_dir = views_root / "half", views_root / "features"
    assert read_meta(str(half_dir))["split_views"]["dev"]["dtype"] == "float16"
    assert np.load(cache_paths(str(half_dir), "dev")[0], mmap_mode="r").dtype == np.float16
    task = task_of(views_root, with_cache(views_root, "features"))
    task.load_dataset("dev")
    dataset = task.datasets["dev"]
    full = dataset.feature_cache
    half = FeatureCache(str(half_dir), "dev", dataset.ids)
    for i in range(len(dataset)):
        assert half.get(i).dtype == torch.float32
        torch.testing.assert_close(half.get(i), full.get(i), rtol=1e-3, atol=1e-3)
    model = task.build_model(Namespace(arch="slt_mbart", stage1_checkpoint=str(stage1_ckpt[0]),
                                       mbart_dir=str(mbart_dir), dropout=0.0))
    model.eval()
    generator = task.build_generator([model], GenerationConfig(beam=2, max_len_b=5))
    hypos = []
    for cache in (full, half):
        dataset.feature_cache = cache
        sample = dataset.collater([dataset[i] for i in range(len(dataset))])
        with torch.no_grad():
            out = generator.generate([model], sample)
        hypos.append([h[0]["tokens"].tolist() for h in out])
    assert hypos[0] == hypos[1]


# --- option checks ------------------------------------------------------------------------------


@pytest.mark.parametrize("option,match", [
    (dict(precision="fp16"), r"--precision fp16 needs --device cuda \(CPU autocast has no fp16\)"),
    (dict(train_views=-1), r"--train-views -1: give K >= 1 views per training video"),
    (dict(batch_size=0), r"--batch-size 0: give at least 1 video"),
    (dict(num_workers=-2), r"--num-workers -2: give 0"),
    (dict(dtype="float64"), r"--dtype 'float64': store features as one of float32, float16"),
    (dict(precision="int8"), r"--precision 'int8': use one of fp32, bf16, fp16"),
    (dict(device="tpu"), r"--device 'tpu'"),
])
def test_bad_option_values_are_refused_before_anything_is_loaded(tmp_path, option, match):
    args = cache_args(tmp_path / "no_data", tmp_path / "no_ckpt.pt", **option)
    with pytest.raises(ValueError, match=match):
        cli.main(args)


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is available here")
def test_cuda_without_a_gpu_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"--device cuda: no CUDA GPU is available here; use --device cpu"):
        cli.main(cache_args(tmp_path, tmp_path / "no_ckpt.pt", device="cuda"))


def test_reader_refuses_other_formats_and_bad_view_records(tmp_path):
    path = tmp_path / "c"
    path.mkdir()
    write_split(str(path), "test", ["a"], [np.ones((1, 4), np.float32)])
    meta = {"format_version": 4, "visual_fingerprint": "f", "feature_dim": 4, "splits": ["test"]}
    for version, update in ((4, "update fairseq-slt, or "), (2, "")):
        write_meta(str(path), dict(meta, format_version=version, split_views={"test": eval_record()}))
        with pytest.raises(FeatureCacheError, match=rf"has format {version} in meta.json, which this fairseq-slt does "
                           rf"not read \(it reads format 3\): {update}rebuild the cache"):
            FeatureCache(str(path), "test", ["a"])
    write_meta(str(path), dict(meta, format_version=3))
    with pytest.raises(FeatureCacheError, match=r"meta.json has no split_views entry of split test"):
        FeatureCache(str(path), "test", ["a"])
    for record, match in [
        ({"views": 0, "transforms": "train", "dtype": "float32"}, r"split_views.test.views is 0, not a count >= 1"),
        ({"views": 2, "transforms": "eval", "dtype": "float32"}, r"one 'eval' view or K 'train' views"),
        ({"views": 1, "transforms": "eval", "dtype": "int8"}, r"split_views.test.dtype is 'int8'"),
    ]:
        write_meta(str(path), dict(meta, format_version=3, split_views={"test": record}))
        with pytest.raises(FeatureCacheError, match=match):
            FeatureCache(str(path), "test", ["a"])
    # two training views listed, one on disk
    write_meta(str(path), dict(meta, format_version=3, split_views={"test": {"views": 2, "transforms": "train",
                                                                            "dtype": "float32"}}))
    with pytest.raises(FileNotFoundError, match=r"feature cache lacks .*test.view0.feats.npy: rebuild the cache"):
        FeatureCache(str(path), "test", ["a"])
