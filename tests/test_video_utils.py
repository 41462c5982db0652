import numpy as np
import pytest
import torch

from fairseq_slt.data.video_utils import (
    VideoSource,
    lengths_to_padding_mask,
    list_frame_files,
    num_sampled_frames,
    parse_temporal_spec,
    read_frames,
    sample_indices,
    tconv_out_lengths,
    time_range_to_frames,
)


def psnr(a, b):
    mse = ((a - b) ** 2).mean()
    return float(10 * torch.log10(255.0**2 / mse))


def test_num_sampled_frames_ratio_and_cap():
    assert num_sampled_frames(100, 0.25, 300) == 25
    assert num_sampled_frames(10, 0.25, 300) == 3  # ceil(2.5)
    assert num_sampled_frames(1, 0.25, 300) == 1
    assert num_sampled_frames(2000, 0.25, 300) == 300  # capped
    assert num_sampled_frames(2000, 0.25, 0) == 500  # 0: no cap


def test_sample_indices_eval_is_uniform_and_deterministic():
    # k = 3 segments of 10/3 frames; the middle of each: floor(1.67), floor(5), floor(8.33)
    assert sample_indices(10, 0.25, 300, train=False).tolist() == [1, 5, 8]
    assert sample_indices(8, 0.5, 300, train=False).tolist() == [1, 3, 5, 7]
    assert sample_indices(3, 1.0, 300, train=False).tolist() == [0, 1, 2]
    # over-long video: capped, spread over the whole video
    idx = sample_indices(1000, 0.25, 10, train=False)
    assert idx.tolist() == [50, 150, 250, 350, 450, 550, 650, 750, 850, 950]


def test_sample_indices_train_random_sorted_unique():
    rng = np.random.default_rng(0)
    draws = [sample_indices(40, 0.25, 300, train=True, rng=rng) for _ in range(20)]
    for idx in draws:
        assert len(idx) == 10
        assert np.all(np.diff(idx) > 0) and idx.min() >= 0 and idx.max() < 40
    assert len({tuple(d) for d in draws}) > 1  # actually random
    again = sample_indices(40, 0.25, 300, train=True, rng=np.random.default_rng(5))
    assert again.tolist() == sample_indices(40, 0.25, 300, train=True, rng=np.random.default_rng(5)).tolist()


def test_temporal_spec_and_lengths():
    assert parse_temporal_spec("K5, P2") == [("K", 5), ("P", 2)]
    for bad in ("", "K", "C3", "K0", "K5;P2"):
        with pytest.raises(ValueError):
            parse_temporal_spec(bad)
    lengths = torch.tensor([10, 7, 1])
    assert tconv_out_lengths(lengths, "K5").tolist() == [10, 7, 1]
    assert tconv_out_lengths(lengths, "K4").tolist() == [9, 6, 1]  # even kernel loses one step
    assert tconv_out_lengths(lengths, "P2").tolist() == [5, 3, 1]
    assert tconv_out_lengths(lengths, "K5,P2,K5,P2").tolist() == [2, 1, 1]


def test_lengths_to_padding_mask():
    mask = lengths_to_padding_mask(torch.tensor([3, 1]), 4)
    assert mask.tolist() == [[False, False, False, True], [False, True, True, True]]


def test_list_frame_files_numeric_order(tmp_path):
    for name in ("images10.png", "images2.png", "images1.png", "notes.txt"):
        (tmp_path / name).write_bytes(b"")
    assert [p.split("/")[-1] for p in list_frame_files(str(tmp_path))] == [
        "images1.png", "images2.png", "images10.png",
    ]


def test_time_range_to_frames():
    assert time_range_to_frames(1.0, 2.0, 25.0) == range(25, 50)
    assert time_range_to_frames(0.5, 0.5, 25.0) == range(12, 12) or len(time_range_to_frames(0.5, 0.5, 25)) == 0


def test_mp4_and_frame_folder_give_the_same_frames(tiny_corpus):
    video = tiny_corpus / "videos" / "train" / "train_00000.mp4"
    folder = tiny_corpus / "frames" / "train" / "train_00000"
    n = len(list_frame_files(str(folder)))
    idx = sample_indices(n, 0.25, 300, train=False)
    a = read_frames(VideoSource(str(video)), idx, n).float()
    b = read_frames(VideoSource(str(folder)), idx, n).float()
    assert a.shape == b.shape == (len(idx), 48, 48, 3)
    assert psnr(a, b) > 26.0  # H.264 crf 12, 4:2:0 chroma on saturated 48 px figures; a wrong frame gives ~20


def test_time_range_reads_the_right_frames(tiny_corpus):
    video = tiny_corpus / "videos" / "train" / "train_00001.mp4"
    folder = tiny_corpus / "frames" / "train" / "train_00001"
    # frames [10, 20) of a 25 fps video are the time range [0.4, 0.8) s
    part = read_frames(VideoSource(str(video), 0.4, 0.8), [0, 5, 9], 10).float()
    ref = read_frames(VideoSource(str(folder)), [10, 15, 19], len(list_frame_files(str(folder)))).float()
    assert psnr(part, ref) > 26.0
    # each decoded frame is closest to the frame it should be, not to a neighbour
    full = read_frames(VideoSource(str(folder)), range(30), len(list_frame_files(str(folder)))).float()
    for j, want in enumerate([10, 15, 19]):
        assert max(range(30), key=lambda i: psnr(part[j], full[i])) == want


def test_decord_and_pyav_decode_the_same_frames(tmp_path):
    """decord reads 64 px wide videos itself; 48 px wide ones go through the PyAV fallback."""
    from fairseq_slt.data.video_utils import _decord_reader, _pyav_frames
    from fairseq_slt.synthetic.generate import write_mp4

    rng = np.random.default_rng(0)
    video = rng.integers(0, 255, (40, 32, 64, 3), dtype=np.uint8)
    video[:, :, :8] = np.arange(40, dtype=np.uint8)[:, None, None, None] * 6  # a per-frame marker
    path = str(tmp_path / "v.mp4")
    write_mp4(path, video)
    idx = [0, 3, 17, 39]
    by_decord = _decord_reader(path).get_batch(idx).asnumpy()
    by_pyav = _pyav_frames(path, idx, None)
    assert by_decord.shape == by_pyav.shape == (4, 32, 64, 3)
    assert np.abs(by_decord.astype(int) - by_pyav.astype(int)).max() <= 2
    # with a start time, PyAV seeks and counts frames from there
    assert np.array_equal(_pyav_frames(path, [0, 2], 0.4), _pyav_frames(path, [10, 12], None))
