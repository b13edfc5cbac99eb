"""Xen's domain heap: a buddy allocator over machine frames, split into zones.

Facts from Xen 3.1 (``xen/common/page_alloc.c``, reference §13):

- a frame's zone is ``fls(mfn) - 1``, so zone *z* holds MFNs ``[2**z, 2**(z+1))``
  (zone 19 is 2-4 GiB, zone 20 is 4-8 GiB); zone 0 is Xen's own heap;
- an allocation searches from the highest permitted zone down to the lowest,
  and inside a zone takes the smallest order that has a free block, halving it
  and keeping the upper half each time (so memory is handed out top-down);
- ``dma_bitsize`` is 32: an allocation with no address limit first tries only
  zones at or above 4 GiB, and falls back to the low ("DMA") zones only if they
  keep ``dma_emergency_pool`` pages afterwards;
- ``address_bits`` caps the top zone at ``address_bits - PAGE_SHIFT - 1``.

The model's one liberty: among free blocks of one order in one zone Xen takes
the head of a linked list; the model takes the block at the highest address
(deterministic, and the same top-down picture).

``lowmem_2g_4g=True`` is the 2007 behaviour of the story ("Xen's low mem
alloc implementation ... only allocates memory < 4G && > 2G"): a request with an
address limit at or below 4 GiB is served only from 2-4 GiB, and fails if that
zone is empty or the limit is below 4 GiB.

The free state lives in one byte per possible block per order (``np.zeros``
arrays, so a 64 GiB machine costs host memory only where blocks were split),
with per-(zone, order) counts so that empty lists are skipped.
"""

from __future__ import annotations

import numpy as np
from numba import njit

MAX_ORDER = 20              # page_alloc.c: largest buddy block (4 GiB)
NZONES = 41                 # zones 0..40 (a 40-bit machine address space)
MEMZONE_XEN = 0
DMA_BITSIZE = 32            # asm-x86/config.h CONFIG_DMA_BITSIZE
PAGE_SHIFT = 12

# Allocation failures.
NO_MEMORY = -1

# History ops.
OP_ALLOC = 1
OP_FREE = 2


@njit(cache=True)
def zone_of(mfn):
    """fls(mfn) - 1: the index of the highest set bit (-1 for MFN 0)."""
    z = -1
    while mfn > 0:
        mfn >>= 1
        z += 1
    return z


@njit(cache=True)
def _test(bits, offs, order, idx):
    return bits[offs[order] + idx] != 0


@njit(cache=True)
def _mark(bits, offs, counts, hint, order, mfn, free):
    """Mark the block at ``mfn`` of ``order`` free (or not) and keep the counts."""
    idx = mfn >> order
    z = zone_of(mfn)
    if free:
        bits[offs[order] + idx] = 1
        counts[z, order] += 1
        if idx > hint[z, order]:
            hint[z, order] = idx
    else:
        bits[offs[order] + idx] = 0
        counts[z, order] -= 1


@njit(cache=True)
def _find_top(bits, offs, hint, zone, order):
    """Highest free block of ``order`` in ``zone`` (the counts say one exists)."""
    lo = (np.int64(1) << zone) >> order
    i = hint[zone, order]
    base = offs[order]
    while i >= lo:
        if bits[base + i] != 0:
            hint[zone, order] = i
            return i
        i -= 1
    return np.int64(-1)


@njit(cache=True)
def heap_free(bits, offs, counts, hint, avail, mfn, order):
    """Return a block to the heap, merging with free buddies inside its zone."""
    z = zone_of(mfn)
    avail[z] += np.int64(1) << order
    while order < MAX_ORDER and order + 1 <= z:
        buddy = mfn ^ (np.int64(1) << order)
        if zone_of(buddy) != z or not _test(bits, offs, order, buddy >> order):
            break
        _mark(bits, offs, counts, hint, order, buddy, False)
        mfn = min(mfn, buddy)
        order += 1
    _mark(bits, offs, counts, hint, order, mfn, True)


@njit(cache=True)
def heap_add_range(bits, offs, counts, hint, avail, first, count):
    """Give frames [first, first+count) to the heap as the largest aligned blocks."""
    mfn = first
    end = first + count
    while mfn < end:
        if mfn == 0:
            mfn = 1
            continue
        z = zone_of(mfn)
        k = 0
        while (k + 1 <= MAX_ORDER and k + 1 <= z
               and (mfn & ((np.int64(1) << (k + 1)) - 1)) == 0
               and mfn + (np.int64(1) << (k + 1)) <= end):
            k += 1
        heap_free(bits, offs, counts, hint, avail, mfn, k)
        mfn += np.int64(1) << k


@njit(cache=True)
def heap_alloc_zones(bits, offs, counts, hint, avail, order, zone_lo, zone_hi):
    """alloc_heap_pages: highest zone first, smallest fitting order, upper halves."""
    for zone in range(zone_hi, zone_lo - 1, -1):
        if zone < 0 or zone >= counts.shape[0]:
            continue
        for j in range(order, MAX_ORDER + 1):
            if j > zone or counts[zone, j] == 0:
                continue
            idx = _find_top(bits, offs, hint, zone, j)
            if idx < 0:
                continue
            mfn = idx << j
            _mark(bits, offs, counts, hint, j, mfn, False)
            while j > order:
                j -= 1
                _mark(bits, offs, counts, hint, j, mfn, True)   # lower half stays free
                mfn += np.int64(1) << j
            avail[zone] -= np.int64(1) << order
            return mfn
    return np.int64(NO_MEMORY)


@njit(cache=True)
def heap_alloc_domheap(bits, offs, counts, hint, avail, order, bits_limit,
                       top_zone, dma_bitsize, emergency, lowmem_2g_4g):
    """__alloc_domheap_pages: the zone policy around :func:`heap_alloc_zones`."""
    zone_hi = top_zone
    if bits_limit != 0:
        if bits_limit <= PAGE_SHIFT + 1:
            return np.int64(NO_MEMORY)
        b = bits_limit - (PAGE_SHIFT + 1)
        if b < zone_hi:
            zone_hi = b
    dma_zone = dma_bitsize - PAGE_SHIFT          # first zone at/above 4 GiB
    if lowmem_2g_4g and bits_limit != 0 and zone_hi < dma_zone:
        # 2007: the constrained allocator knew only the 2-4 GiB pool.
        if zone_hi != dma_zone - 1:
            return np.int64(NO_MEMORY)
        return heap_alloc_zones(bits, offs, counts, hint, avail, order,
                                dma_zone - 1, dma_zone - 1)
    if zone_hi >= dma_zone:
        mfn = heap_alloc_zones(bits, offs, counts, hint, avail, order, dma_zone, zone_hi)
        if mfn >= 0:
            return mfn
        low = np.int64(0)
        for z in range(MEMZONE_XEN + 1, dma_zone):
            low += avail[z]
        if order > MAX_ORDER or low < emergency + (np.int64(1) << order):
            return np.int64(NO_MEMORY)
    return heap_alloc_zones(bits, offs, counts, hint, avail, order, MEMZONE_XEN + 1, zone_hi)


@njit(cache=True)
def heap_alloc_chunks(bits, offs, counts, hint, avail, total, top_zone, dma_bitsize,
                      emergency, out_mfn, out_order):
    """The dom0 builder's alloc_chunk loop: blocks of at most 2 MiB until ``total``
    pages are allocated; returns how many blocks (short if memory ran out)."""
    n = 0
    got = np.int64(0)
    while got < total and n < out_mfn.shape[0]:
        want = total - got
        if want > 512:
            want = 512
        order = 0
        while (np.int64(1) << (order + 1)) <= want:
            order += 1                    # floor(log2(want)), as alloc_chunk does
        mfn = np.int64(NO_MEMORY)
        while True:
            mfn = heap_alloc_domheap(bits, offs, counts, hint, avail, order, 0,
                                     top_zone, dma_bitsize, emergency, False)
            if mfn >= 0 or order == 0:
                break
            order -= 1
        if mfn < 0:
            break
        out_mfn[n] = mfn
        out_order[n] = order
        n += 1
        got += np.int64(1) << order
    return n


class Heap:
    """The machine frames Xen hands to domains, with an allocation history.

    ``alloc(order, address_bits=0, domid=...)`` returns the first MFN of a
    ``2**order`` block or ``None``; ``free(mfn, order)``; ``history()`` is a
    pandas DataFrame of every allocation and free in order.
    """

    def __init__(self, nframes: int, *, lowmem_2g_4g: bool = False,
                 dma_bitsize: int = DMA_BITSIZE, dma_emergency_pool: int = 0):
        self.nframes = int(nframes)
        self.lowmem_2g_4g = bool(lowmem_2g_4g)
        self.dma_bitsize = int(dma_bitsize)
        self.emergency = int(dma_emergency_pool)
        sizes = [(self.nframes >> k) + 2 for k in range(MAX_ORDER + 1)]
        self._offs = np.zeros(MAX_ORDER + 1, dtype=np.int64)
        self._offs[1:] = np.cumsum(sizes)[:-1]
        self._bits = np.zeros(int(sum(sizes)), dtype=np.uint8)
        self._counts = np.zeros((NZONES, MAX_ORDER + 1), dtype=np.int64)
        self._hint = np.zeros((NZONES, MAX_ORDER + 1), dtype=np.int64)
        self._avail = np.zeros(NZONES, dtype=np.int64)
        self.top_zone = int(zone_of(max(self.nframes - 1, 1)))
        self._hist: list[np.ndarray] = []
        self._seq = 0

    @property
    def arrays(self):
        return (self._bits, self._offs, self._counts, self._hint, self._avail)

    # -- set-up ----------------------------------------------------------------
    def add_range(self, first: int, count: int):
        """Hand frames to the heap (at boot: the RAM Xen does not keep)."""
        if count <= 0:
            return
        if first < 0 or first + count > self.nframes:
            raise ValueError(f"frames {first:#x}+{count:#x} are outside the heap's "
                             f"{self.nframes:#x} frames")
        heap_add_range(*self.arrays, first, count)

    # -- allocation ------------------------------------------------------------
    def alloc(self, order: int = 0, *, address_bits: int = 0, domid: int = -1,
              why: str = "") -> int | None:
        """One block of ``2**order`` frames; ``None`` if none fits the limits."""
        if not 0 <= order <= MAX_ORDER:
            return None
        mfn = int(heap_alloc_domheap(*self.arrays, order, int(address_bits), self.top_zone,
                                     self.dma_bitsize, self.emergency, self.lowmem_2g_4g))
        if mfn < 0:
            self._record(OP_ALLOC, -1, order, domid, address_bits)
            return None
        self._record(OP_ALLOC, mfn, order, domid, address_bits)
        return mfn

    def alloc_chunks(self, total: int, domid: int = 0):
        """Blocks of at most 2 MiB covering ``total`` frames (dom0's memory)."""
        parts_m, parts_o = [], []
        remaining = int(total)
        while remaining > 0:
            out_mfn = np.zeros(remaining // 512 + 1024, dtype=np.int64)
            out_order = np.zeros_like(out_mfn)
            n = int(heap_alloc_chunks(*self.arrays, remaining, self.top_zone,
                                      self.dma_bitsize, self.emergency, out_mfn, out_order))
            if n == 0:
                break
            parts_m.append(out_mfn[:n].copy())
            parts_o.append(out_order[:n].copy())
            remaining -= int((np.int64(1) << parts_o[-1]).sum())
        mfns = np.concatenate(parts_m) if parts_m else np.zeros(0, dtype=np.int64)
        orders = np.concatenate(parts_o) if parts_o else np.zeros(0, dtype=np.int64)
        self._record_many(OP_ALLOC, mfns, orders, domid)
        return mfns, orders

    def free(self, mfn: int, order: int = 0, domid: int = -1):
        heap_free(*self.arrays, int(mfn), int(order))
        self._record(OP_FREE, mfn, order, domid, 0)

    # -- facts ---------------------------------------------------------------------
    def avail(self, zone: int | None = None) -> int:
        """Free frames, in one zone or in all."""
        return int(self._avail.sum() if zone is None else self._avail[zone])

    def is_free(self, mfn: int) -> bool:
        """Is frame ``mfn`` inside some free block?"""
        for k in range(MAX_ORDER + 1):
            head = (mfn >> k) << k
            if head > 0 and self._bits[self._offs[k] + (head >> k)]:
                return True
        return False

    def free_blocks(self):
        """(mfn, order) of every free block, as two arrays (for checks and views)."""
        mfns, orders = [], []
        for k in range(MAX_ORDER + 1):
            n = (self.nframes >> k) + 1
            idx = np.flatnonzero(self._bits[self._offs[k]:self._offs[k] + n])
            mfns.append(idx.astype(np.int64) << k)
            orders.append(np.full(len(idx), k, dtype=np.int64))
        return np.concatenate(mfns), np.concatenate(orders)

    # -- history -------------------------------------------------------------------
    def _record(self, op, mfn, order, domid, bits):
        self._hist.append(np.array([[self._seq, op, mfn, order, domid, bits]], dtype=np.int64))
        self._seq += 1

    def _record_many(self, op, mfns, orders, domid):
        n = len(mfns)
        rows = np.empty((n, 6), dtype=np.int64)
        rows[:, 0] = np.arange(self._seq, self._seq + n)
        rows[:, 1] = op
        rows[:, 2] = mfns
        rows[:, 3] = orders
        rows[:, 4] = domid
        rows[:, 5] = 0
        self._seq += n
        self._hist.append(rows)

    def history(self):
        """Every alloc/free: seq, op, mfn (-1: failed), order, pages, zone, domid,
        address_bits, and the machine address range."""
        import pandas as pd
        rows = (np.concatenate(self._hist) if self._hist
                else np.zeros((0, 6), dtype=np.int64))
        mfn = rows[:, 2]
        zone = np.array([zone_of(int(m)) if m > 0 else -1 for m in mfn], dtype=np.int64) \
            if len(mfn) < 100_000 else _zones(mfn)
        return pd.DataFrame({
            "seq": rows[:, 0],
            "op": np.where(rows[:, 1] == OP_ALLOC, "alloc", "free"),
            "mfn": mfn, "order": rows[:, 3], "pages": 1 << rows[:, 3],
            "zone": zone, "domid": rows[:, 4], "address_bits": rows[:, 5],
            "maddr": np.where(mfn >= 0, mfn << PAGE_SHIFT, -1),
            "ok": mfn >= 0,
        })

    def zones_frame(self):
        """Free frames per zone with the zone's machine-address range."""
        import pandas as pd
        z = np.arange(1, self.top_zone + 1)
        return pd.DataFrame({"zone": z, "start": (1 << z) << PAGE_SHIFT,
                             "end": (2 << z) << PAGE_SHIFT, "free_frames": self._avail[z]})


def _zones(mfn: np.ndarray) -> np.ndarray:
    out = np.full(len(mfn), -1, dtype=np.int64)
    pos = mfn > 0
    out[pos] = np.floor(np.log2(mfn[pos].astype(np.float64))).astype(np.int64)
    return out
