"""The machine-to-physical table (M2P) in machine memory, and bulk P2M/M2P fills.

Xen keeps ``machine_to_phys_mapping[mfn] = pfn`` as an array of 8-byte
entries in frames it owns, and maps it read-only into every 64-bit PV guest
at MACH2PHYS_VIRT_START (L4 slot 256, xen-x86_64.h).  The model allocates it
the way Xen 3.1's ``paging_init`` does: in 2 MiB chunks, so that
``XENMEM_machphys_mfn_list`` can report one MFN per chunk.

Entries Xen never wrote read as 0 here (Xen 3.1 fills the table with a 0x55
debug pattern at boot; the model leaves it untouched so a 64 GiB machine does
not pay 128 MiB before a domain exists); frames leaving a domain get
``INVALID_M2P_ENTRY``.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..machine import memory as _mem

ENTRIES_PER_CHUNK = (2 << 20) // 8      # one 2 MiB chunk holds 262144 entries
CHUNK_SHIFT = 18


@njit(cache=True)
def m2p_fill_blocks(mem, chunks, mfns, counts, pfn0s):
    """M2P[mfns[i] + k] = pfn0s[i] + k for each block; False if the pool filled."""
    words = mem[_mem.M_WORDS]
    for b in range(mfns.shape[0]):
        mfn = mfns[b]
        pfn = pfn0s[b]
        left = counts[b]
        while left > 0:
            # the run of entries that share one M2P frame
            chunk = chunks[mfn >> CHUNK_SHIFT]
            ent = mfn & (ENTRIES_PER_CHUNK - 1)
            frame = chunk + (ent >> 9)
            slot = _mem.slot_for_write(mem, frame)
            if slot == _mem.POOL_FULL:
                return False
            first = ent & 511
            n = min(512 - first, left)
            base = slot * 512 + first
            for k in range(n):
                words[base + k] = pfn + k
            mfn += n
            pfn += n
            left -= n
    return True


@njit(cache=True)
def fill_words(mem, mfn0, values):
    """Write int64 ``values`` into consecutive frames from ``mfn0`` (the P2M list)."""
    words = mem[_mem.M_WORDS]
    n = values.shape[0]
    done = 0
    frame = mfn0
    while done < n:
        slot = _mem.slot_for_write(mem, frame)
        if slot == _mem.POOL_FULL:
            return False
        k = min(512, n - done)
        base = slot * 512
        for i in range(k):
            words[base + i] = values[done + i]
        done += k
        frame += 1
    return True


@njit(cache=True)
def expand_blocks(mfns, orders, out):  # out: int32 or int64
    """The frames of blocks (mfns[i], 2**orders[i]) in order, into ``out``."""
    j = 0
    for i in range(mfns.shape[0]):
        n = np.int64(1) << orders[i]
        for k in range(n):
            out[j] = mfns[i] + k
            j += 1
    return j


class M2P:
    """machine_to_phys_mapping: chunks of 2 MiB of Xen-owned frames."""

    def __init__(self, memory, chunks: np.ndarray, nframes: int):
        self.memory = memory
        self.chunks = np.asarray(chunks, dtype=np.int64)
        self.nframes = nframes

    def maddr(self, mfn: int) -> int:
        return (int(self.chunks[mfn >> CHUNK_SHIFT]) << 12) + (mfn & (ENTRIES_PER_CHUNK - 1)) * 8

    def get(self, mfn: int) -> int:
        """M2P[mfn] as a signed value (-1 = INVALID_M2P_ENTRY)."""
        if not 0 <= mfn < self.nframes:
            return -1
        v = self.memory.read64(self.maddr(mfn))
        return v - (1 << 64) if v >> 63 else v

    def set(self, mfn: int, pfn: int, write=None):
        if not 0 <= mfn < self.nframes:
            return
        data = (pfn & ((1 << 64) - 1)).to_bytes(8, "little")
        if write is None:
            self.memory.write_bytes(self.maddr(mfn), data)
        else:
            write(self.maddr(mfn), data)

    def set_blocks(self, mfns, counts, pfn0s):
        mfns = np.asarray(mfns, dtype=np.int64)
        counts = np.asarray(counts, dtype=np.int64)
        pfn0s = np.asarray(pfn0s, dtype=np.int64)
        self.memory.reserve(int(counts.sum()) // 512 + 2 * len(mfns) + 16)
        ok = m2p_fill_blocks(self.memory.arrays, self.chunks, mfns, counts, pfn0s)
        assert ok, "memory pool reservation was too small for the M2P fill"

    def get_many(self, mfns) -> np.ndarray:
        """Vectorised read of many entries (for checks and views)."""
        mfns = np.asarray(mfns, dtype=np.int64)
        slot_of, words = self.memory.arrays[_mem.M_SLOT_OF], self.memory.arrays[_mem.M_WORDS]
        ent = mfns & (ENTRIES_PER_CHUNK - 1)
        frame = self.chunks[mfns >> CHUNK_SHIFT] + (ent >> 9)
        return words[slot_of[frame].astype(np.int64) * 512 + (ent & 511)]
