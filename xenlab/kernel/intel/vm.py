"""The kernel's memory: physical pages, kernel virtual arenas, kmem.

* :class:`PageAllocator` -- ``page_create``/``page_free`` over the frames the
  kernel owns (illumos keeps ``page_t`` free lists; here one bit per frame).
  Under Xen a "frame" is a pseudo-physical frame number (PFN) of dom0: every
  PFN past the boot region Xen built; natively a physical page of an E820 RAM
  range past what dboot and the boot loader used.  Pages are handed out from
  the top PFN down (deterministic; under Xen the top PFNs are the lowest
  machine frames dom0 got, see docs/kernel.md).
* :class:`Arena` -- a range of kernel virtual addresses handed out page by page
  (``segkmem``'s heap, the device arena of ``hat_devload`` mappings).
* ``Kmem`` -- ``kmem_alloc`` / ``kmem_zalloc`` / ``kmem_free``: pages from the
  allocator mapped into the heap arena by the HAT, written through the vCPU.
"""

from __future__ import annotations

import numpy as np

PAGESIZE = 4096
PAGESHIFT = 12

# Kernel virtual address layout (L4 slots of the 4-level tree, both platforms).
# 508: kmem (heap, DMA memory), 509: device registers; 511: the kernel image
# (and, under Xen, the whole boot region).  Slots 256-271 are Xen's hole.
KMEM_BASE = 0xFFFFFE0000000000
KMEM_SIZE = 1 << 39
DEVICE_BASE = 0xFFFFFE8000000000
DEVICE_SIZE = 1 << 39


class OutOfMemory(Exception):
    """No free page fits the request."""


class PageAllocator:
    """Free frames as a bitmap; allocation scans from the top down."""

    def __init__(self, npages: int, free_ranges, *, name: str = "pages"):
        self.name = name
        self.npages = int(npages)
        self.free = np.zeros(self.npages, dtype=np.bool_)
        for first, end in free_ranges:
            first, end = max(0, int(first)), min(self.npages, int(end))
            if end > first:
                self.free[first:end] = True
        self.total = int(self.free.sum())
        self.cursor = self.npages           # pages at or above are (mostly) used
        self.allocated = 0
        self.history: list[tuple[str, int, int]] = []    # (op, first pfn, count)

    @property
    def nfree(self) -> int:
        return self.total - self.allocated

    def is_free(self, pfn: int) -> bool:
        return 0 <= pfn < self.npages and bool(self.free[pfn])

    def _scan_down(self, n: int) -> np.ndarray:
        """The highest ``n`` free frames below the cursor (fewer if none)."""
        out = []
        hi = self.cursor
        while hi > 0 and sum(len(x) for x in out) < n:
            lo = max(0, hi - 65536)
            idx = np.flatnonzero(self.free[lo:hi])
            if len(idx):
                need = n - sum(len(x) for x in out)
                out.append((idx[::-1][:need] + lo))
            hi = lo
        return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)

    def page_create(self, n: int = 1) -> list[int]:
        """``n`` free pages (not necessarily contiguous): the highest free PFNs,
        in ascending order (so a fresh range is usually PFN-contiguous)."""
        got = self._scan_down(n)
        if len(got) < n:
            raise OutOfMemory(f"{self.name}: wanted {n} pages, {self.nfree} free")
        self.free[got] = False
        self.allocated += n
        self.cursor = int(got.min())
        got = np.sort(got)
        self.history.append(("alloc", int(got[0]), n))
        return [int(p) for p in got]

    def page_create_run(self, n: int, limit: int | None = None, *, align: int = 1,
                        lowest: bool = False) -> int:
        """``n`` free pages with consecutive PFNs (the highest such run below
        ``limit``, or the lowest with ``lowest``), aligned to ``align`` pages;
        returns the first PFN.  Searched a window at a time."""
        hi = self.npages if limit is None else min(self.npages, int(limit))
        if n <= 0 or hi < n:
            raise OutOfMemory(f"{self.name}: no run of {n} pages below pfn {hi:#x}")
        win = max(65536, 4 * n)
        starts = range(0, hi, win) if lowest else range(max(0, hi - win), -win, -win)
        for lo in starts:
            lo = max(0, lo)
            end = min(hi, lo + win + n - 1)          # windows overlap by n - 1
            free = self.free[lo:end]
            if len(free) < n:
                continue
            c = np.concatenate([[0], np.cumsum(free, dtype=np.int64)])
            ok = np.flatnonzero(c[n:] - c[:-n] == n) + lo
            if align > 1:
                ok = ok[ok % align == 0]
            if len(ok):
                first = int(ok[0] if lowest else ok[-1])
                self.free[first:first + n] = False
                self.allocated += n
                self.history.append(("alloc", first, n))
                return first
            if lo == 0 and not lowest:
                break
        raise OutOfMemory(f"{self.name}: no run of {n} free pages below pfn {hi:#x}")

    def take(self, pfn: int) -> bool:
        """page_numtopp_alloc: claim one particular free page."""
        if not self.is_free(pfn):
            return False
        self.free[pfn] = False
        self.allocated += 1
        self.history.append(("take", int(pfn), 1))
        return True

    def page_free(self, pfns):
        for p in pfns:
            p = int(p)
            if not 0 <= p < self.npages:
                raise ValueError(f"page_free: pfn {p:#x} is not a page of this kernel "
                                 f"({self.npages:#x} pages)")
            if self.free[p]:
                raise ValueError(f"page_free: pfn {p:#x} is already free")
            self.free[p] = True
            self.allocated -= 1
            self.cursor = max(self.cursor, p + 1)
        if len(pfns):
            self.history.append(("free", int(pfns[0]), len(pfns)))


class Arena:
    """Kernel virtual addresses handed out in pages (a bump allocator)."""

    def __init__(self, name: str, base: int, size: int):
        self.name, self.base, self.size = name, base, size
        self.next = base

    def alloc(self, npages: int, align_pages: int = 1) -> int:
        va = (self.next + align_pages * PAGESIZE - 1) & ~(align_pages * PAGESIZE - 1)
        if va + npages * PAGESIZE > self.base + self.size:
            raise OutOfMemory(f"{self.name} arena exhausted")
        self.next = va + npages * PAGESIZE
        return va

    def __contains__(self, va: int) -> bool:
        return self.base <= va < self.base + self.size


class Kmem:
    """kmem_alloc: whole pages mapped into the heap arena (no slab layer)."""

    def __init__(self, kernel):
        self.k = kernel
        self.arena = Arena("kmem", KMEM_BASE, KMEM_SIZE)
        self.blocks: dict[int, list[int]] = {}       # va -> pfns

    def alloc(self, nbytes: int, *, zero: bool = True, nosync: bool = False) -> int:
        n = max(1, (nbytes + PAGESIZE - 1) // PAGESIZE)
        pfns = self.k.pages.page_create(n)
        va = self.map_pages(pfns, nosync=nosync)
        if zero:
            self.k.kcpu.write(va, bytes(n * PAGESIZE))
        return va

    def map_pages(self, pfns, *, nosync: bool = False) -> int:
        """Map pages (any PFNs) at consecutive heap addresses."""
        va = self.arena.alloc(len(pfns))
        self.k.hat.memload_many(va, list(pfns), nosync=nosync)
        self.blocks[va] = list(pfns)
        return va

    def unmap_pages(self, va: int) -> list:
        """Undo ``map_pages``: unmap, and return the PFNs (still the caller's)."""
        pfns = self.blocks.pop(va, None)
        if pfns is None:
            raise ValueError(f"unmap_pages: {va:#x} was not mapped by map_pages")
        self.k.hat.unload(va, len(pfns))
        return pfns

    def free(self, va: int):
        """kmem_free: unmap, then give each page back by the PFN its PTE names
        (hat_getpfnum), as the segkmem layer does."""
        pfns = self.blocks.pop(va, None)
        if pfns is None:
            raise ValueError(f"kmem_free: {va:#x} was not allocated by kmem_alloc")
        got = [self.k.hat.getpfnum(va + i * PAGESIZE) for i in range(len(pfns))]
        self.k.hat.unload(va, len(pfns))
        self.k.page_free(got)
