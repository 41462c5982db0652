import numpy as np

from fairseq_slt.data.sampling import num_sampled_frames, sample_indices


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
