"""The prepared frame store: what the model gets from it against the direct path, resuming,
random access, and refusals."""

import json
import os
import shutil

import numpy as np
import pytest
import torch
from fairseq.data import Dictionary

from fairseq_slt.data import SignDataConfig, SignVideoDatasetCreator
from fairseq_slt.data.frame_store import (
    FrameStore,
    FrameStoreError,
    Sentence,
    load_index,
    sentence_key,
    write_frame_store,
)
from fairseq_slt.data.transforms import resize_size
from fairseq_slt.data.video_io import VideoReadError, VideoSource


def copy_root(tiny_corpus, out, video_root=None, **video):
    """A data root with the tiny corpus's manifests; ``video`` overrides config.yaml's video keys."""
    out.mkdir()
    for split in ("train", "dev", "test"):
        shutil.copy(tiny_corpus / f"{split}.tsv", out / f"{split}.tsv")
    text = (tiny_corpus / "config.yaml").read_text().replace("video_root: .", f"video_root: {video_root or tiny_corpus}")
    text = text.replace("dict.txt", str(tiny_corpus / "dict.txt")).replace("spm.model", str(tiny_corpus / "spm.model"))
    for key, value in video.items():
        text = "\n".join(f"  {key}: {value}" if line.strip().startswith(f"{key}:") else line
                         for line in text.splitlines()) + "\n"
    (out / "config.yaml").write_text(text)
    return out


def sentences_of(root, cfg, splits=("train", "dev", "test")):
    out = []
    for split in splits:
        manifest = str(root / f"{split}.tsv")
        for row in SignVideoDatasetCreator.read_manifest(manifest):
            source, n, _, _ = SignVideoDatasetCreator._parse_row(manifest, row, cfg.video_root)
            out.append(Sentence(sentence_key(source, cfg.video_root), source, n))
    return out


def write(root, store="store", **kw):
    cfg = SignDataConfig(str(root / "config.yaml"))
    report = write_frame_store(sentences_of(root, cfg), str(root / store), cfg.resize,
                               resize_size(cfg.resize, cfg.crop), **kw)
    return cfg, report


def dataset(root, split, is_train=False, config="config.yaml"):
    cfg = SignDataConfig(str(root / config))
    d = Dictionary.load(str(cfg.vocab_filename))
    return SignVideoDatasetCreator.from_tsv(str(root), cfg, split, d, None, is_train=is_train)


@pytest.mark.parametrize("resize", ["64", "[48, 64]"])
def test_the_store_gives_the_direct_paths_pixels_within_jpeg_error(tiny_corpus, tmp_path, resize):
    """The model's input (eval and train transforms) from the store against the direct path: the
    JPEG coding of frames at the resize is the only difference."""
    root = copy_root(tiny_corpus, tmp_path / "data", resize=resize, crop=48)
    cfg, report = write(root, shard_sentences=5)
    assert report["failed"] == [] and report["frames"] == sum(s.n_frames for s in sentences_of(root, cfg))
    (root / "config_store.yaml").write_text((root / "config.yaml").read_text() + "frame_store: store\n")
    for split, train in (("test", False), ("train", True)):
        direct, store = dataset(root, split, train), dataset(root, split, train, "config_store.yaml")
        assert store.frame_store is not None and direct.frame_store is None
        errors = []
        for i in range(len(direct)):
            a, b = direct[i].source, store[i].source  # T x 3 x 48 x 48, normalised
            assert a.shape == b.shape
            std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
            errors.append(((a - b) * std * 255).abs())  # in grey levels
        err = torch.cat([e.flatten() for e in errors])
        # measured at quality 95 on these 48-64 px frames: mean 1.2-1.4 grey levels, 99.9% under 8-10
        assert float(err.mean()) < 2.0, float(err.mean())
        assert float(torch.quantile(err[:100000], 0.999)) < 20


def test_random_subsets_match_the_full_read_and_counts_are_checked(tiny_corpus, tmp_path):
    root = copy_root(tiny_corpus, tmp_path / "data")
    cfg, _ = write(root)
    store = FrameStore(str(root / "store"), cfg.video_root, cfg.resize)
    s = sentences_of(root, cfg, ("test",))[0]
    full = store.read(s.source, range(s.n_frames), s.n_frames)
    pick = [s.n_frames - 1, 0, 3, 3]
    assert torch.equal(store.read(s.source, pick, s.n_frames), full[pick])
    with pytest.raises(VideoReadError, match="n_frames=5: write the store again"):
        store.read(s.source, [0], 5)
    with pytest.raises(VideoReadError, match="is not in the frame store"):
        store.read(VideoSource(s.source.path, 0.0, 1.0), [0], s.n_frames)
    # one video by any spelling of its path
    same = VideoSource(os.path.join(os.path.dirname(s.source.path), ".", os.path.basename(s.source.path)))
    assert store.n_frames(same) == s.n_frames


def test_an_interrupted_store_is_completed_by_a_rerun(tiny_corpus, tmp_path):
    root = copy_root(tiny_corpus, tmp_path / "data")
    cfg, report = write(root, shard_sentences=4)
    full = load_index(str(root / "store"))
    shards = sorted(p for p in os.listdir(root / "store") if p.endswith(".idx.json"))
    # interrupted: the last shard's index never written, a temporary file left behind
    os.remove(root / "store" / shards[-1])
    os.rename(root / "store" / shards[-1].replace(".idx.json", ".bin"), root / "store" / "shard-99999.bin.tmp")
    _, again = write(root, shard_sentences=4)
    assert 0 < again["sentences"] < report["sentences"]  # only the missing ones
    assert not [p for p in os.listdir(root / "store") if p.endswith(".tmp")]
    resumed = load_index(str(root / "store"))
    assert resumed.keys() == full.keys()
    store = FrameStore(str(root / "store"), cfg.video_root, cfg.resize)
    for s in sentences_of(root, cfg)[:3]:
        assert store.read(s.source, range(s.n_frames), s.n_frames).shape[0] == s.n_frames


def test_a_store_of_other_settings_is_refused(tiny_corpus, tmp_path):
    root = copy_root(tiny_corpus, tmp_path / "data")
    write(root)
    other = copy_root(tiny_corpus, tmp_path / "other", resize=56)
    (other / "config.yaml").write_text((other / "config.yaml").read_text() + f"frame_store: {root / 'store'}\n")
    with pytest.raises(FrameStoreError, match=r"holds frames resized to 48 .* video.resize is 56"):
        dataset(other, "test")
    with pytest.raises(FrameStoreError, match="JPEG quality 95, not 80"):
        write(root, quality=80)
    with pytest.raises(FrameStoreError, match="not a frame store"):
        FrameStore(str(tmp_path), str(tmp_path), 48)


@pytest.mark.slow
def test_cli_writes_the_store_and_the_config(tiny_corpus, tmp_path):
    from helpers import run_cli

    root = copy_root(tiny_corpus, tmp_path / "data")
    log = run_cli(["fairseq-slt-frame-store", root, "--out", "frames", "--workers", "2", "--shard-sentences", "3"])
    assert "GB per 1,000 frames" in log
    report = json.loads((root / "frames" / "report.json").read_text())
    assert report["frames"] > 0 and report["failed"] == [] and report["gb_per_1000_frames"] > 0
    cfg = SignDataConfig(str(root / "config.yaml"))
    assert cfg.frame_store == str(root / "frames")
    ds = dataset(root, "dev")
    assert ds.frame_store is not None and ds[0].source.shape[1:] == (3, 48, 48)
    assert np.isfinite(ds[0].source.numpy()).all()


def test_video_size_centres_the_render_in_a_camera_frame():
    """``fairseq-slt-synth --video-size``: the render scaled to the height and centred; the data
    config's resize S + crop S gives the model the render back (bilinear round trip)."""
    import torchvision.transforms.v2.functional as F

    from fairseq_slt.synthetic.generate import fit_frame, parse_video_size

    y, x = np.mgrid[:32, :32]
    render = np.stack([4 * y, 4 * x, 2 * (x + y)], -1).astype(np.uint8)[None].repeat(3, 0)  # T x 32 x 32 x 3
    frame = fit_frame(render, 128, 72)
    assert frame.shape == (3, 72, 128, 3)
    assert (frame[:, :, 0] == frame[:, :, 28]).all() and (frame[:, :, -1] == frame[:, :, 99]).all()  # edge fill
    back = F.center_crop(F.resize(torch.from_numpy(frame).permute(0, 3, 1, 2), [32], antialias=True), [32, 32])
    assert float((back.permute(0, 2, 3, 1).float() - torch.from_numpy(render).float()).abs().mean()) < 2.0
    assert parse_video_size("1280x720") == (1280, 720)
    with pytest.raises(Exception, match="even sides"):
        parse_video_size("1281x720")
