import os
import shutil

import numpy as np
import pytest
import torch
from fairseq.data import Dictionary

from fairseq_slt.data import (
    ManifestError,
    SignDataConfig,
    SignVideoDatasetCreator,
    SignVideoDatasetItem,
    VideoReadError,
)
from fairseq_slt.data.manifest_utils import write_manifest
from fairseq_slt.tasks.sign_translation import SignTranslationConfig, SignTranslationTask


def make_task(root):
    return SignTranslationTask.setup_task(SignTranslationConfig(data=str(root), seed=1))


def copy_corpus(src, dst):
    """A private copy of the tiny corpus whose manifests a test may break."""
    shutil.copytree(src, dst)
    return dst


def read_rows(path):
    return SignVideoDatasetCreator.read_manifest(str(path))


def rewrite(path, rows, columns=None):
    clean = [{k: v for k, v in r.items() if k != "_row"} for r in rows]
    write_manifest(str(path), clean, columns)


def test_dataset_item_shapes_and_sampling(tiny_corpus):
    task = make_task(tiny_corpus)
    task.load_dataset("train")
    task.load_dataset("test")
    train, test = task.dataset("train"), task.dataset("test")
    n = train.n_frames[0]
    item = train[0]
    assert item.source.shape == (int(np.ceil(n * 0.25)), 3, 48, 48)
    assert item.source.dtype == torch.float32
    assert item.target[-1].item() == task.tgt_dict.eos()
    assert train.num_tokens(0) == item.source.size(0)
    # eval is deterministic; training is seeded by (seed, epoch, index)
    assert torch.equal(test[1].source, test[1].source)
    a = train[2].source
    assert torch.equal(a, train[2].source)
    train.set_epoch(2)
    assert not torch.equal(a, train[2].source)


def test_frame_buffer_pool_is_off_by_default_and_changes_no_batch(tiny_corpus):
    """--frame-buffer-pool only changes where the frames are allocated: the same batches."""
    batches = {}
    for pooled in (False, True):
        task = SignTranslationTask.setup_task(SignTranslationConfig(data=str(tiny_corpus), seed=1,
                                                                    frame_buffer_pool=pooled))
        task.load_dataset("train")
        ds = task.dataset("train")
        assert (ds.frame_buffers is not None) == pooled
        batches[pooled] = ds.collater([ds[i] for i in range(3)])
    assert batches[False]["net_input"]["src_tokens"].shape == batches[True]["net_input"]["src_tokens"].shape
    assert torch.equal(batches[False]["net_input"]["src_tokens"], batches[True]["net_input"]["src_tokens"])
    assert torch.equal(batches[False]["target"], batches[True]["target"])


def test_collater_matches_hand_written_tensors():
    d = Dictionary()
    for w in "abc":
        d.add_symbol(w)
    a, b, c, eos, pad = d.index("a"), d.index("b"), d.index("c"), d.eos(), d.pad()

    class Stub:  # collater only needs tgt_dict and the frame buffer pool (none: the default)
        tgt_dict = d
        frame_buffers = None

    from fairseq_slt.data.sign_video_dataset import SignVideoDataset

    v0 = torch.full((2, 3, 2, 2), 1.0)
    v1 = torch.full((3, 3, 2, 2), 2.0)
    samples = [
        SignVideoDatasetItem(index=5, source=v0, target=torch.tensor([a, b, eos])),
        SignVideoDatasetItem(index=9, source=v1, target=torch.tensor([c, eos])),
    ]
    out = SignVideoDataset.collater(Stub(), samples)
    # sorted by source length, longest first
    assert out["id"].tolist() == [9, 5]
    assert out["net_input"]["src_lengths"].tolist() == [3, 2]
    frames = out["net_input"]["src_tokens"]
    expected = torch.zeros(2, 3, 3, 2, 2)
    expected[0] = 2.0
    expected[1, :2] = 1.0
    assert torch.equal(frames, expected)
    assert out["target"].tolist() == [[c, eos, pad], [a, b, eos]]
    assert out["net_input"]["prev_output_tokens"].tolist() == [[eos, c, pad], [eos, a, b]]
    assert out["target_lengths"].tolist() == [2, 3]
    assert out["ntokens"] == 5 and out["nsentences"] == 2


def test_batching_keeps_every_sample(tiny_corpus):
    """fairseq drops a last batch that is not a multiple of --required-batch-size-multiple."""
    task = make_task(tiny_corpus)
    task.load_dataset("test")
    ds = task.dataset("test")  # 5 samples
    for kwargs in ({"max_sentences": 3}, {"max_tokens": 10_000}):
        itr = task.get_batch_iterator(
            ds, required_batch_size_multiple=8, max_positions=(1024, 1024), **kwargs
        ).next_epoch_itr(shuffle=False)
        ids = sorted(i for batch in itr for i in batch["id"].tolist())
        assert ids == list(range(len(ds)))


def test_max_frames_caps_long_videos(tiny_corpus, tmp_path):
    root = copy_corpus(tiny_corpus, tmp_path / "c")
    cfg_path = root / "config.yaml"
    cfg_path.write_text(cfg_path.read_text().replace("max_frames: 300", "max_frames: 4"))
    task = make_task(root)
    task.load_dataset("test")
    ds = task.dataset("test")
    assert ds.src_sizes.max() == 4
    assert ds[0].source.size(0) == 4


# --- bad input: each a clear error naming the manifest row or column -------------------------


def test_missing_required_column(tiny_corpus, tmp_path):
    root = copy_corpus(tiny_corpus, tmp_path / "c")
    rows = read_rows(root / "test.tsv")
    rewrite(root / "test.tsv", rows, columns=["id", "video", "tgt_text"])
    with pytest.raises(ManifestError, match=r"test\.tsv: missing required column\(s\) n_frames"):
        make_task(root).load_dataset("test")


def test_empty_target_text(tiny_corpus, tmp_path):
    root = copy_corpus(tiny_corpus, tmp_path / "c")
    rows = read_rows(root / "test.tsv")
    rows[2]["tgt_text"] = " "
    rewrite(root / "test.tsv", rows)
    with pytest.raises(ManifestError, match=r"test\.tsv row 4 \(id test_00002\): empty tgt_text"):
        make_task(root).load_dataset("test")


def test_missing_video(tiny_corpus, tmp_path):
    root = copy_corpus(tiny_corpus, tmp_path / "c")
    os.remove(root / "videos" / "test" / "test_00001.mp4")
    with pytest.raises(ManifestError, match=r"row 3 \(id test_00001\): video not found: .*test_00001\.mp4"):
        make_task(root).load_dataset("test")


def test_empty_frame_folder(tiny_corpus, tmp_path):
    root = copy_corpus(tiny_corpus, tmp_path / "c")
    rows = read_rows(root / "test.tsv")
    for r in rows:
        r["video"] = f"frames/test/{r['id']}"
    rewrite(root / "test.tsv", rows)
    folder = root / "frames" / "test" / "test_00003"
    for f in folder.iterdir():
        f.unlink()
    with pytest.raises(ManifestError, match=r"row 5 \(id test_00003\): frame folder .* has no png/jpg frames"):
        make_task(root).load_dataset("test")


def test_unreadable_video_names_the_row(tiny_corpus, tmp_path):
    root = copy_corpus(tiny_corpus, tmp_path / "c")
    (root / "videos" / "test" / "test_00002.mp4").write_bytes(b"this is not a video" * 10)
    task = make_task(root)
    task.load_dataset("test")
    ds = task.dataset("test")
    with pytest.raises(VideoReadError, match=r"test\.tsv row 4 \(id test_00002\): cannot decode video"):
        ds[2]


def test_wrong_frame_count_is_an_error(tiny_corpus, tmp_path):
    root = copy_corpus(tiny_corpus, tmp_path / "c")
    rows = read_rows(root / "test.tsv")
    rows[0]["n_frames"] = str(int(rows[0]["n_frames"]) + 7)
    rewrite(root / "test.tsv", rows)
    task = make_task(root)
    task.load_dataset("test")
    with pytest.raises(VideoReadError, match=r"row 2 \(id test_00000\).*re-run the data preparation"):
        task.dataset("test")[0]


def test_duplicate_id(tiny_corpus, tmp_path):
    root = copy_corpus(tiny_corpus, tmp_path / "c")
    rows = read_rows(root / "test.tsv")
    rows[3]["id"] = rows[0]["id"]
    rewrite(root / "test.tsv", rows)
    with pytest.raises(ManifestError, match=r"row 5: duplicate id test_00000 \(first at row 2\)"):
        make_task(root).load_dataset("test")


def test_time_range_past_the_end(tiny_corpus, tmp_path):
    root = copy_corpus(tiny_corpus, tmp_path / "c")
    rows = read_rows(root / "test.tsv")
    for r in rows:
        r["start"], r["end"] = "", ""
    rows[1]["start"], rows[1]["end"], rows[1]["n_frames"] = "0.4", "90.0", str(int(89.6 * 25))
    rewrite(root / "test.tsv", rows)
    task = make_task(root)
    task.load_dataset("test")
    with pytest.raises(VideoReadError, match=r"row 3 \(id test_00001\).*past the end"):
        task.dataset("test")[1]


def test_missing_config(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.yaml"):
        SignDataConfig(str(tmp_path / "config.yaml"))


def test_data_loader_workers_end_with_their_epoch(tiny_corpus):
    """A new iterator every epoch (the dataset cannot reuse one): fairseq's default persistent
    workers of a finished one stayed alive until the garbage collector freed its iterator (about
    2 GB each in a long run). Now they end with the pass, as fairseq-train reads it: through
    its data buffer (``--data-buffer-size``, default 10), whose thread lets go of the DataLoader's
    iterator when the pass ends. The collector is off here, so it cannot hide a leak."""
    import gc
    import multiprocessing
    import time

    task = make_task(tiny_corpus)
    task.load_dataset("train")
    before = set(multiprocessing.active_children())

    def workers_left(timeout: float = 10.0) -> set:
        deadline = time.monotonic() + timeout
        while (left := set(multiprocessing.active_children()) - before) and time.monotonic() < deadline:
            time.sleep(0.05)
        return left

    seen, alive = [], []
    gc.disable()
    try:
        for epoch in (1, 2, 3):
            epoch_itr = task.get_batch_iterator(task.dataset("train"), max_tokens=200, num_workers=1,
                                                epoch=epoch, data_buffer_size=10)
            assert epoch_itr.persistent_workers is False
            seen.append(sum(len(batch["id"]) for batch in epoch_itr.next_epoch_itr(shuffle=True)))
            alive.append(workers_left())
    finally:
        gc.enable()
    assert seen == [12, 12, 12]  # every video, every epoch
    assert alive == [set(), set(), set()], alive  # no worker outlives its epoch
