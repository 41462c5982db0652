"""The loader's fast path: recycled frame buffers (``--frame-buffer-pool``), fused normalisation,
and the transforms still computing what torchvision's straightforward pipeline computes."""

import gc

import pytest
import torch

from fairseq_slt.data import collate_frames
from fairseq_slt.data.frame_buffers import HUGEPAGE_MIN_BYTES, FrameBufferPool, empty_frames
from fairseq_slt.data.transforms import build_video_transform, normalize_frames
from helpers import reference_normalise, reference_train_transform

BIG = (12, 3, 224, 224)  # 7 MiB of float32: above HUGEPAGE_MIN_BYTES


@pytest.mark.parametrize("pooled", [False, True])
def test_empty_frames_shapes_and_small_fallback(pooled):
    assert torch.Size(BIG).numel() * 4 >= HUGEPAGE_MIN_BYTES
    pool = FrameBufferPool() if pooled else None
    for shape, dtype in ((BIG, torch.float32), ((2, 3, 8, 8), torch.float32), (BIG, torch.uint8)):
        x = empty_frames(shape, dtype, pool)
        assert x.shape == shape and x.dtype == dtype and x.is_contiguous()
        x.fill_(3)
        assert float(x.sum()) == 3 * x.numel()
    if pooled:  # the float32 BIG only: the other two are under HUGEPAGE_MIN_BYTES (torch.empty)
        assert len(pool.maps) == 1


def test_pooled_buffer_is_not_reused_while_any_view_lives():
    pool = FrameBufferPool()
    a = empty_frames(BIG, pool=pool)
    a.fill_(1)
    view = a[2:4]
    ptr = a.data_ptr()
    del a
    gc.collect()
    b = empty_frames(BIG, pool=pool)  # the first mapping is still used by `view`
    assert b.data_ptr() != ptr
    b.fill_(2)
    assert torch.all(view == 1)
    ptrs = {ptr, b.data_ptr()}
    del view, b
    gc.collect()
    c = empty_frames(BIG, pool=pool)  # both free now: one of them is recycled
    assert c.data_ptr() in ptrs
    assert len(pool.maps) == 2 <= pool.max_maps


def test_pool_caps_its_mappings():
    pool = FrameBufferPool(max_maps=2, max_bytes=8 << 20)
    a, b, c = pool.take(3 << 20), pool.take(3 << 20), pool.take(3 << 20)  # 4 MiB each (2 MiB pages)
    assert len(a) == 4 << 20 and len(pool.maps) == 2 and all(m is not c for m in pool.maps)
    del a, c
    assert pool.take(2 << 20) in pool.maps  # the free 4 MiB mapping is recycled
    big = pool.take(5 << 20)  # 6 MiB: the free one is too small and dropped; 4 + 6 MiB > max_bytes
    assert len(big) == 6 << 20 and len(pool.maps) == 1 and pool.maps[0] is b
    huge = pool.take(64 << 20)  # over max_bytes: not pooled, and the pool is left alone
    assert len(huge) == 64 << 20 and len(pool.maps) == 1


def test_collate_zeroes_padding_in_recycled_buffers():
    pool = FrameBufferPool()
    stale = collate_frames([torch.full((10, 3, 224, 224), 7.0)] * 2, pool)
    ptr = stale.data_ptr()
    del stale
    gc.collect()
    out = collate_frames([torch.ones(10, 3, 224, 224), torch.ones(4, 3, 224, 224)], pool)
    assert out.data_ptr() == ptr  # the stale batch's mapping, recycled
    assert out.shape == (2, 10, 3, 224, 224)
    assert torch.all(out[0] == 1) and torch.all(out[1, :4] == 1) and torch.all(out[1, 4:] == 0)


def test_a_pickled_pool_starts_empty():
    """A pool sent to a DataLoader worker keeps its caps and none of the parent's mappings."""
    import pickle

    pool = FrameBufferPool(max_maps=3, max_bytes=64 << 20)
    keep = empty_frames(BIG, pool=pool)
    copy = pickle.loads(pickle.dumps(pool))
    assert len(pool.maps) == 1 and copy.maps == [] and (copy.max_maps, copy.max_bytes) == (3, 64 << 20)
    assert empty_frames(BIG, pool=copy).shape == BIG and len(copy.maps) == 1
    del keep


def test_normalize_frames_any_layout():
    frames = torch.randint(0, 256, (5, 20, 16, 3), dtype=torch.uint8)
    x = frames.permute(0, 3, 1, 2)  # channels-last strides, as the resize returns them
    out = normalize_frames(x)
    assert out.is_contiguous() and out.dtype == torch.float32
    torch.testing.assert_close(out, reference_normalise(x), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("seed", range(4))
def test_train_transform_matches_straightforward_torchvision(seed):
    """resize -> crop -> affine on uint8 -> float -> normalise (the pipeline before the fast
    path), same draws."""
    frames = torch.randint(0, 256, (3, 52, 42, 3), dtype=torch.uint8)
    fast = build_video_transform(48, 40, train=True, rotate=30, scale=0.2, translate=4, p=0.7)
    got = fast(frames, torch.Generator().manual_seed(seed))

    ref = reference_train_transform(frames, [48], 40, seed, rotate=30, scale=0.2, translate=4, p=0.7)
    torch.testing.assert_close(got, ref, atol=1e-5, rtol=1e-5)


def test_collated_batch_crosses_dataloader_worker():
    """Pooled tensors go through a worker's shared-memory hand-over intact."""

    class Videos(torch.utils.data.Dataset):
        pool = FrameBufferPool()

        def __len__(self):
            return 4

        def __getitem__(self, i):
            return empty_frames(BIG, pool=self.pool).fill_(i)

        def collate(self, frames):
            return collate_frames(frames, self.pool)

    videos = Videos()
    loader = torch.utils.data.DataLoader(videos, batch_size=2, num_workers=1, collate_fn=videos.collate)
    batches = [b[:, :, 0, 0, 0].clone() for b in loader]
    assert [b[:, 0].tolist() for b in batches] == [[0.0, 1.0], [2.0, 3.0]]
