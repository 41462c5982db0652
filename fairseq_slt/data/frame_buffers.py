"""Frame and batch tensors from recycled huge-page memory mappings: the CPU loader's optional
fast path (``--frame-buffer-pool``; off by default).

A video's frames or a batch of them is tens to hundreds of MB, allocated afresh per video and per
batch. glibc serves such sizes with a new ``mmap`` each time, whose first write then takes one page
fault per 4 KiB while the kernel zeroes every page. A :class:`FrameBufferPool` hands out large
mappings advised ``MADV_HUGEPAGE`` instead, and recycles each once no tensor uses it.
``python benchmarks/loader.py --buffer-pool-ab`` measures the loader with and without it.
"""

import contextlib
import math
import mmap
import sys
import threading
from typing import List, Optional, Sequence

import torch

HUGEPAGE_MIN_BYTES = 4 << 20  # smaller tensors come from torch.empty
_HUGEPAGE = 2 << 20


class FrameBufferPool:
    """Large anonymous memory mappings, advised ``MADV_HUGEPAGE`` and recycled.

    A mapping is handed out as the buffer of one tensor (``torch.frombuffer``), whose storage keeps
    a reference to it; it is free again once that reference is gone, i.e. once no tensor uses its
    memory, so it can be reused without a page fault or the kernel zeroing it. At most
    ``max_maps`` mappings of ``max_bytes`` in all are kept; beyond that, fresh mappings are made and
    unmapped with their tensor. A pool belongs to one process: a copy sent to a DataLoader worker
    (pickled) starts empty.
    """

    def __init__(self, max_maps: int = 12, max_bytes: int = 1 << 30):
        self.max_maps, self.max_bytes = max_maps, max_bytes
        self.maps: List[mmap.mmap] = []
        self.lock = threading.Lock()

    def __getstate__(self) -> dict:
        return {"max_maps": self.max_maps, "max_bytes": self.max_bytes}

    def __setstate__(self, state: dict) -> None:
        self.__init__(**state)

    def _is_free(self, i: int) -> bool:
        return sys.getrefcount(self.maps[i]) <= 2  # the list's reference and the argument's

    def take(self, nbytes: int) -> mmap.mmap:
        size = -(-nbytes // _HUGEPAGE) * _HUGEPAGE
        with self.lock:
            free = [i for i in range(len(self.maps)) if self._is_free(i)]
            fits = [i for i in free if size <= len(self.maps[i]) <= 2 * size]
            if fits:
                return self.maps[min(fits, key=lambda i: len(self.maps[i]))]
            m = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
            with contextlib.suppress(OSError):  # THP disabled in this kernel: plain pages
                m.madvise(mmap.MADV_HUGEPAGE)
            for i in sorted(free, reverse=True):  # drop unused mappings to make room
                if size > self.max_bytes or len(self.maps) < self.max_maps and self._bytes() + size <= self.max_bytes:
                    break
                del self.maps[i]
            if len(self.maps) < self.max_maps and self._bytes() + size <= self.max_bytes:
                self.maps.append(m)
            return m

    def _bytes(self) -> int:
        return sum(len(m) for m in self.maps)


def empty_frames(
    shape: Sequence[int], dtype: torch.dtype = torch.float32, pool: Optional[FrameBufferPool] = None
) -> torch.Tensor:
    """``torch.empty(shape, dtype=dtype)`` (contiguous); with a ``pool``, tensors of at least
    ``HUGEPAGE_MIN_BYTES`` take one of its recycled mappings instead."""
    shape = tuple(int(n) for n in shape)
    numel = math.prod(shape)
    nbytes = numel * dtype.itemsize
    if pool is None or nbytes < HUGEPAGE_MIN_BYTES or not hasattr(mmap, "MADV_HUGEPAGE"):
        return torch.empty(shape, dtype=dtype)
    return torch.frombuffer(pool.take(nbytes), dtype=dtype, count=numel).view(shape)
