"""Sparse machine memory, addressed by machine frame number (MFN).

A frame costs host memory only once something writes to it.  Three arrays do
the work, all plain numpy so the CPU, MMU and hypervisor kernels can use them
from ``@njit`` code:

``slot_of[mfn]`` (int32)
    0 for an untouched frame (it reads as zeros), ``s > 0`` for a frame held in
    slot ``s`` of the pool, and a negative value ``-(region + 1)`` for a frame
    that belongs to an MMIO region (devices answer those, not memory).  The
    array covers the whole machine address space; it is allocated with
    ``np.zeros``, whose pages the host kernel maps lazily, so untouched parts
    of a 1 TiB address space cost nothing.
``data`` (uint8, flat) and ``words`` (an int64 view of the same buffer)
    the pool: slot ``s`` holds bytes ``[s*4096, (s+1)*4096)``.  Slot 0 is a
    permanent zero frame.  Slots are handed out in first-touch order, so the
    slot number *is* the first-touched order.
``mfn_of_slot[s]``
    the inverse, used by snapshots and the pandas view.

The jitted kernels take these as one tuple, ``mem = Memory.arrays``; slot
allocation inside a kernel fails with :data:`POOL_FULL` when the pool has no
room, and the Python wrapper grows the pool and retries.  Wrappers keep
:data:`HEADROOM` free slots before each kernel call, so that case is rare.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from . import jitcache  # noqa: F401  (numba cache guard; must come before any kernel)

PAGE_SHIFT = 12
PAGE_SIZE = 1 << PAGE_SHIFT
PAGE_MASK = PAGE_SIZE - 1

# Index of each array in the ``mem`` tuple handed to kernels.
M_SLOT_OF, M_DATA, M_WORDS, M_DWORDS, M_MFN_OF_SLOT, M_META, M_SLOT_FLAGS = range(7)
# meta[] fields.  META_CODE_WRITES counts Python-side writes that hit frames
# holding cached decoded instructions (the CPU drops those caches on its next run).
META_USED, META_CAP, META_GEN, META_NMFN, META_CODE_WRITES = range(5)

POOL_FULL = -0x7FFFFFFF     # returned by slot allocation when the pool is full
HEADROOM = 4096             # free slots kept before a kernel call (16 MiB)

# slot_flags bits: set by the CPU when it caches decoded instructions from a
# frame, so stores to that frame must take the slow path and drop the cache.
SLOT_CODE = 1


# --------------------------------------------------------------------------
# jitted kernels (private; the Memory class below is the public face)
# --------------------------------------------------------------------------

@njit(cache=True)
def alloc_slot(mem, mfn):
    """Give frame ``mfn`` a slot in the pool; POOL_FULL if there is none."""
    meta = mem[M_META]
    used = meta[META_USED]
    if used >= meta[META_CAP]:
        return POOL_FULL
    meta[META_USED] = used + 1
    mem[M_SLOT_OF][mfn] = used
    mem[M_MFN_OF_SLOT][used] = mfn
    return used


@njit(cache=True)
def slot_for_write(mem, mfn):
    """Slot that holds ``mfn``, allocating on first write; <0 for MMIO/POOL_FULL."""
    s = mem[M_SLOT_OF][mfn]
    if s == 0:
        return alloc_slot(mem, mfn)
    return np.int64(s)


@njit(cache=True)
def load(mem, maddr, size):
    """Read ``size`` (1, 2, 4, 8) bytes little-endian at machine address ``maddr``.

    Untouched frames read as zeros; frames outside the address space read as
    all ones (nothing drives the bus).  MMIO frames are the caller's business.
    """
    mfn = maddr >> PAGE_SHIFT
    off = maddr & PAGE_MASK
    if mfn >= mem[M_META][META_NMFN] or maddr < 0:
        return np.int64(-1) if size == 8 else np.int64((1 << (8 * size)) - 1)
    if off + size > PAGE_SIZE:
        lo_n = PAGE_SIZE - off
        lo = load_small(mem, maddr, lo_n)
        hi = load_small(mem, maddr + lo_n, size - lo_n)
        return lo | (hi << (8 * lo_n))
    s = mem[M_SLOT_OF][mfn]
    if s <= 0:
        return np.int64(0)
    base = np.int64(s) * PAGE_SIZE + off
    if size == 8 and (off & 7) == 0:
        return mem[M_WORDS][base >> 3]
    if size == 4 and (off & 3) == 0:
        return np.int64(mem[M_DWORDS][base >> 2])
    if size == 1:
        return np.int64(mem[M_DATA][base])
    data = mem[M_DATA]
    v = np.int64(0)
    for i in range(size):
        v |= np.int64(data[base + i]) << (8 * i)
    return v


@njit(cache=True)
def load_small(mem, maddr, n):
    """Byte-wise read of ``n`` < 8 bytes that do not cross a page."""
    mfn = maddr >> PAGE_SHIFT
    if mfn >= mem[M_META][META_NMFN]:
        return np.int64((1 << (8 * n)) - 1)
    s = mem[M_SLOT_OF][mfn]
    if s <= 0:
        return np.int64(0)
    base = np.int64(s) * PAGE_SIZE + (maddr & PAGE_MASK)
    v = np.int64(0)
    data = mem[M_DATA]
    for i in range(n):
        v |= np.int64(data[base + i]) << (8 * i)
    return v


@njit(cache=True)
def store(mem, maddr, size, value):
    """Write ``size`` bytes of ``value`` at ``maddr``; False if the pool is full.

    Stores outside the address space are dropped, like a write nobody decodes.
    """
    mfn = maddr >> PAGE_SHIFT
    off = maddr & PAGE_MASK
    if mfn >= mem[M_META][META_NMFN] or maddr < 0:
        return True
    if off + size > PAGE_SIZE:
        lo_n = PAGE_SIZE - off
        if not store_small(mem, maddr, lo_n, value):
            return False
        return store_small(mem, maddr + lo_n, size - lo_n, value >> (8 * lo_n))
    s = slot_for_write(mem, mfn)
    if s < 0:
        return s != POOL_FULL
    base = s * PAGE_SIZE + off
    if size == 8 and (off & 7) == 0:
        mem[M_WORDS][base >> 3] = value
        return True
    if size == 4 and (off & 3) == 0:
        mem[M_DWORDS][base >> 2] = np.uint32(value & 0xFFFFFFFF)
        return True
    data = mem[M_DATA]
    for i in range(size):
        data[base + i] = np.uint8((value >> (8 * i)) & 0xFF)
    return True


@njit(cache=True)
def store_small(mem, maddr, n, value):
    mfn = maddr >> PAGE_SHIFT
    if mfn >= mem[M_META][META_NMFN]:
        return True
    s = slot_for_write(mem, mfn)
    if s < 0:
        return s != POOL_FULL
    base = s * PAGE_SIZE + (maddr & PAGE_MASK)
    data = mem[M_DATA]
    for i in range(n):
        data[base + i] = np.uint8((value >> (8 * i)) & 0xFF)
    return True


@njit(cache=True)
def read_into(mem, maddr, out):
    """Copy ``len(out)`` bytes starting at ``maddr`` into ``out`` (uint8)."""
    n = out.shape[0]
    done = 0
    nmfn = mem[M_META][META_NMFN]
    data = mem[M_DATA]
    while done < n:
        a = maddr + done
        mfn = a >> PAGE_SHIFT
        off = a & PAGE_MASK
        chunk = PAGE_SIZE - off if PAGE_SIZE - off < n - done else n - done
        if mfn >= nmfn:
            out[done:done + chunk] = 0xFF
        else:
            s = mem[M_SLOT_OF][mfn]
            if s <= 0:
                out[done:done + chunk] = 0
            else:
                base = np.int64(s) * PAGE_SIZE + off
                out[done:done + chunk] = data[base:base + chunk]
        done += chunk


@njit(cache=True)
def write_from(mem, maddr, src):
    """Copy ``src`` (uint8) to machine memory at ``maddr``.

    Returns the number of bytes written; fewer than ``len(src)`` means the
    pool filled up (the wrapper grows it and continues from there).
    """
    n = src.shape[0]
    done = 0
    nmfn = mem[M_META][META_NMFN]
    data = mem[M_DATA]
    while done < n:
        a = maddr + done
        mfn = a >> PAGE_SHIFT
        off = a & PAGE_MASK
        chunk = PAGE_SIZE - off if PAGE_SIZE - off < n - done else n - done
        if mfn < nmfn:
            s = slot_for_write(mem, mfn)
            if s == POOL_FULL:
                return done
            if s > 0:
                base = s * PAGE_SIZE + off
                for i in range(chunk):           # (a loop: slice assignment costs compile time)
                    data[base + i] = src[done + i]
        done += chunk
    return done


@njit(cache=True)
def fill_frames(mem, mfn0, count, value):
    """Set ``count`` frames from ``mfn0`` to the byte ``value``.

    Zero-filling an untouched frame allocates nothing: it already reads as
    zeros.  Returns frames done (short if the pool filled up).
    """
    data = mem[M_DATA]
    for i in range(count):
        mfn = mfn0 + i
        if value == 0:
            s = np.int64(mem[M_SLOT_OF][mfn])
            if s > 0:
                data[s * PAGE_SIZE:(s + 1) * PAGE_SIZE] = 0
            continue
        s = slot_for_write(mem, mfn)
        if s == POOL_FULL:
            return i
        if s > 0:
            data[s * PAGE_SIZE:(s + 1) * PAGE_SIZE] = value
    return count


@njit(cache=True)
def nonzero_bytes(mem, used):
    """Per slot, how many of its 4096 bytes are non-zero."""
    out = np.zeros(used, dtype=np.int64)
    data = mem[M_DATA]
    for s in range(1, used):
        base = s * PAGE_SIZE
        c = 0
        for i in range(PAGE_SIZE):
            if data[base + i] != 0:
                c += 1
        out[s] = c
    return out


@njit(cache=True)
def forget_slots(slot_of, mfn_of_slot, first, last):
    """Make the frames in slots [first, last) untouched again."""
    for s in range(first, last):
        slot_of[mfn_of_slot[s]] = 0


# --------------------------------------------------------------------------
# Python face
# --------------------------------------------------------------------------

class MemoryError_(Exception):
    """A machine-memory request that cannot be honoured (bad address, MMIO)."""


@dataclass(frozen=True)
class MemorySnapshot:
    """The touched frames at one moment; restoring costs what they cost."""

    used: int
    data: np.ndarray
    mfns: np.ndarray
    mmio: dict


class Memory:
    """Sparse machine memory of ``addr_bits`` physical-address bits.

    >>> m = Memory()
    >>> m.write64(0x1000, 0x1122334455667788); hex(m.read32(0x1004))
    '0x11223344'
    >>> m.touched_frames
    1
    """

    def __init__(self, addr_bits: int = 40, initial_frames: int = 1024):
        if not 32 <= addr_bits <= 40:
            raise ValueError(
                f"addr_bits={addr_bits}: machine memory supports 32..40 address bits "
                "(4 GiB to 1 TiB of machine address space)")
        self.addr_bits = addr_bits
        self.nmfn = 1 << (addr_bits - PAGE_SHIFT)
        self._slot_of = np.zeros(self.nmfn, dtype=np.int32)
        self._meta = np.zeros(8, dtype=np.int64)
        self._meta[META_USED] = 1           # slot 0: the zero frame
        self._meta[META_NMFN] = self.nmfn
        self._mmio: dict[int, tuple[int, int]] = {}   # region -> (first mfn, count)
        self._alloc_pool(max(initial_frames, 2))

    # -- pool management -------------------------------------------------
    def _alloc_pool(self, cap: int, old: tuple | None = None):
        data = np.zeros(cap * PAGE_SIZE, dtype=np.uint8)
        mfn_of_slot = np.zeros(cap, dtype=np.int64)
        flags = np.zeros(cap, dtype=np.uint8)
        if old is not None:
            used = int(self._meta[META_USED])
            data[:used * PAGE_SIZE] = old[0][:used * PAGE_SIZE]
            mfn_of_slot[:used] = old[1][:used]
            flags[:used] = old[2][:used]
        self._data = data
        self._mfn_of_slot = mfn_of_slot
        self._flags = flags
        self._meta[META_CAP] = cap
        self.arrays = (self._slot_of, self._data, self._data.view(np.int64),
                       self._data.view(np.uint32), self._mfn_of_slot, self._meta,
                       self._flags)

    def reserve(self, frames: int = HEADROOM):
        """Make sure at least ``frames`` more frames can be touched without growing."""
        used, cap = int(self._meta[META_USED]), int(self._meta[META_CAP])
        if cap - used < frames:
            new_cap = max(cap * 2, used + frames)
            self._alloc_pool(new_cap, (self._data, self._mfn_of_slot, self._flags))

    # -- facts -------------------------------------------------------------
    @property
    def touched_frames(self) -> int:
        """Frames that hold data (have been written at least once)."""
        return int(self._meta[META_USED]) - 1

    @property
    def capacity_frames(self) -> int:
        return int(self._meta[META_CAP]) - 1

    @property
    def generation(self) -> int:
        """Bumped by every restore, so caches keyed on slots know to drop."""
        return int(self._meta[META_GEN])

    def is_touched(self, mfn: int) -> bool:
        return int(self._slot_of[mfn]) > 0

    def _check(self, maddr: int, n: int = 1):
        if maddr < 0 or maddr + n > (self.nmfn << PAGE_SHIFT):
            raise MemoryError_(
                f"machine address {maddr:#x} (+{n}) is outside the {self.addr_bits}-bit "
                f"machine address space (0..{(self.nmfn << PAGE_SHIFT) - 1:#x})")
        first, last = maddr >> PAGE_SHIFT, (maddr + max(n, 1) - 1) >> PAGE_SHIFT
        for mfn in (first, last):
            if self._slot_of[mfn] < 0:
                raise MemoryError_(
                    f"machine address {maddr:#x} is in MMIO frame {mfn:#x}; "
                    "device registers are reached through the machine's bus, not RAM")

    # -- reads and writes ----------------------------------------------------
    def read(self, maddr: int, size: int) -> int:
        """Read an unsigned little-endian integer of 1, 2, 4 or 8 bytes."""
        if size not in (1, 2, 4, 8):
            raise ValueError(f"size={size}: reads are 1, 2, 4 or 8 bytes")
        self._check(maddr, size)
        return int(load(self.arrays, maddr, size)) & ((1 << (8 * size)) - 1)

    def write(self, maddr: int, size: int, value: int):
        """Write ``value`` as a little-endian integer of 1, 2, 4 or 8 bytes."""
        if size not in (1, 2, 4, 8):
            raise ValueError(f"size={size}: writes are 1, 2, 4 or 8 bytes")
        self._check(maddr, size)
        value &= (1 << (8 * size)) - 1
        if value >= 1 << 63:
            value -= 1 << 64
        self.reserve(2)
        store(self.arrays, maddr, size, value)
        self._code_written(maddr, size)

    def _code_written(self, maddr: int, n: int):
        """Writes from Python to frames holding decoded code: clear SLOT_CODE and
        bump META_CODE_WRITES so every vCPU drops those decoded instructions."""
        first, last = maddr >> PAGE_SHIFT, (maddr + max(n, 1) - 1) >> PAGE_SHIFT
        if first == last:
            s = int(self._slot_of[first])
            if s > 0 and self._flags[s] & SLOT_CODE:
                self._flags[s] &= np.uint8(~SLOT_CODE & 0xFF)
                self._meta[META_CODE_WRITES] += 1
            return
        slots = self._slot_of[first:last + 1]
        slots = slots[slots > 0]
        hit = slots[(self._flags[slots] & SLOT_CODE) != 0]
        if len(hit):
            self._flags[hit] &= np.uint8(~SLOT_CODE & 0xFF)
            self._meta[META_CODE_WRITES] += 1

    def read8(self, a): return self.read(a, 1)
    def read16(self, a): return self.read(a, 2)
    def read32(self, a): return self.read(a, 4)
    def read64(self, a): return self.read(a, 8)
    def write8(self, a, v): self.write(a, 1, v)
    def write16(self, a, v): self.write(a, 2, v)
    def write32(self, a, v): self.write(a, 4, v)
    def write64(self, a, v): self.write(a, 8, v)

    def read_bytes(self, maddr: int, n: int) -> bytes:
        return self.read_array(maddr, n).tobytes()

    def read_array(self, maddr: int, n: int) -> np.ndarray:
        self._check(maddr, n)
        out = np.empty(n, dtype=np.uint8)
        read_into(self.arrays, maddr, out)
        return out

    def write_bytes(self, maddr: int, data) -> None:
        src = np.frombuffer(bytes(data), dtype=np.uint8) if not isinstance(
            data, np.ndarray) else np.ascontiguousarray(data, dtype=np.uint8).ravel()
        self._check(maddr, len(src))
        done = 0
        while done < len(src):
            self.reserve(min((len(src) - done) // PAGE_SIZE + 2, 1 << 20))
            done += write_from(self.arrays, maddr + done, src[done:])
        self._code_written(maddr, len(src))

    def fill(self, mfn: int, count: int, value: int = 0):
        """Set whole frames to one byte value (0 frees nothing but allocates nothing)."""
        self._check(mfn << PAGE_SHIFT, count << PAGE_SHIFT)
        done = 0
        while done < count:
            if value:
                self.reserve(min(count - done, 1 << 20))
            done += fill_frames(self.arrays, mfn + done, count - done, value)
        self._code_written(mfn << PAGE_SHIFT, count << PAGE_SHIFT)

    # -- MMIO ---------------------------------------------------------------
    def map_mmio(self, mfn: int, count: int, region: int):
        """Mark frames as belonging to MMIO region ``region`` (>= 0)."""
        if region < 0:
            raise ValueError(f"region={region}: MMIO region numbers are >= 0")
        sl = self._slot_of[mfn:mfn + count]
        if (sl > 0).any():
            bad = mfn + int(np.argmax(sl > 0))
            raise MemoryError_(f"MFN {bad:#x} holds RAM data; it cannot become MMIO")
        sl[:] = -(region + 1)
        self._mmio[region] = (mfn, count)

    def unmap_mmio(self, region: int):
        mfn, count = self._mmio.pop(region)
        self._slot_of[mfn:mfn + count] = 0

    def mmio_region(self, mfn: int) -> int | None:
        s = int(self._slot_of[mfn])
        return -s - 1 if s < 0 else None

    # -- snapshots ------------------------------------------------------------
    def snapshot(self) -> MemorySnapshot:
        used = int(self._meta[META_USED])
        return MemorySnapshot(used, self._data[:used * PAGE_SIZE].copy(),
                              self._mfn_of_slot[:used].copy(), dict(self._mmio))

    def restore(self, snap: MemorySnapshot):
        used = int(self._meta[META_USED])
        for region in list(self._mmio):
            self.unmap_mmio(region)
        forget_slots(self._slot_of, self._mfn_of_slot, 1, used)
        self.reserve(max(snap.used - used, 0))
        self._slot_of[snap.mfns[1:]] = np.arange(1, snap.used, dtype=np.int32)
        self._mfn_of_slot[:snap.used] = snap.mfns
        self._data[:snap.used * PAGE_SIZE] = snap.data
        self._data[snap.used * PAGE_SIZE:used * PAGE_SIZE] = 0
        self._flags[:] = 0
        self._meta[META_USED] = snap.used
        self._meta[META_GEN] += 1
        for region, (mfn, count) in snap.mmio.items():
            self.map_mmio(mfn, count, region)

    # -- views ----------------------------------------------------------------
    def frame(self):
        """pandas DataFrame of populated frames: mfn, first-touched order, non-zero bytes."""
        import pandas as pd

        used = int(self._meta[META_USED])
        nz = nonzero_bytes(self.arrays, used)
        return pd.DataFrame({
            "mfn": self._mfn_of_slot[1:used].copy(),
            "order": np.arange(used - 1, dtype=np.int64),
            "nonzero_bytes": nz[1:],
        })

    def __repr__(self):
        return (f"<Memory {self.addr_bits}-bit, {self.touched_frames} frames touched "
                f"({self.touched_frames * PAGE_SIZE / 2**20:.1f} MiB)>")
