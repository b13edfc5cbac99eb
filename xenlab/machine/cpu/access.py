"""Slow paths of guest memory access, the external-access log and the code cache.

The interpreter loop reads and writes memory in place on a TLB hit; every
other access comes here: TLB misses (a page walk), accesses that straddle a
page, MMIO frames (an ``mmio`` exit), stores to pages with cached decoded
instructions (the cache for that page is dropped: self-modifying code), and
faults (``st[STATUS]`` gets the encoded #PF/#GP and ``st[FAULT_ADDR]`` the
address).

Exits that need the caller (port and MMIO accesses) go through one log,
``X_*`` in the state: an instruction that meets its k-th external access
exits unless the log already holds it, in which case the recorded value is
used.  The next ``run()`` re-executes the instruction with the log filled in,
so an instruction completes after as many exits as it has device accesses.

The code cache ``dc`` is a tuple shared by the vCPUs of one memory:
``dec`` (int64[(npages)*4096, 3]: info, disp, imm per byte offset of a cached
code page; page 0 is scratch for instructions that are never cached),
``page_of_slot`` (int32 per memory slot), ``slot_of_page``, ``dmeta``, a walk
trace and fetch/decode scratch buffers.
"""

import numpy as np
from numba import njit

from .. import memory as M
from .. import regs as R
from ..mmu import (ACC_FETCH, ACC_WRITE, T_INFO, T_SLOT, TI_VALID, fault_vector,
                   make_fault, tlb_drop_slot, tlb_flush_all, tlb_lookup, translate_slow)
from ..pte import VEC_PF
from . import slots as S

# dc tuple indices
DC_DEC, DC_PAGE_OF_SLOT, DC_SLOT_OF_PAGE, DC_META, DC_TRACE, DC_FBUF, DC_DOUT, DC_SAVE = range(8)
# dmeta fields
DM_NEXT, DM_NPAGES, DM_CODE_GEN, DM_MEM_GEN, DM_CODEW = range(5)
META_CODE_WRITES = 4      # memory meta[] field bumped by Python-side writes to code frames

PAGE = 4096


@njit(cache=True)
def xlate(mem, st, tlb, dc, va, acc):
    """Machine address of ``va`` for access kind ``acc``, or < 0 with STATUS set."""
    r = tlb_lookup(tlb, va, acc)
    if r >= 0:
        return r
    r = translate_slow(mem, tlb, st, va, acc, dc[DC_TRACE])
    if r < 0:
        st[S.STATUS] = r
        if fault_vector(r) == VEC_PF:
            st[S.FAULT_ADDR] = va
    return r


@njit(cache=True)
def external(st, xi, kind, addr, size, write, value, va):
    """The next external (port or MMIO) access of this instruction.

    Returns the logged value if the access was already done by the caller,
    else sets up an exit and returns 0 with STATUS = kind.
    """
    idx = st[S.X_SEEN]
    st[S.X_SEEN] = idx + 1
    if idx < st[S.X_NDONE]:
        return st[S.X_VAL0 + idx]
    if idx >= S.X_MAX:
        st[S.STATUS] = S.EXIT_INTERNAL
        xi[S.XI_A] = 2
        return 0
    xi[S.XI_REASON] = kind
    xi[S.XI_A] = addr
    xi[S.XI_B] = size
    xi[S.XI_C] = 1 if write else 0
    xi[S.XI_D] = value if write else 0
    xi[S.XI_E] = va
    xi[S.XI_F] = 0
    st[S.X_VAL0 + idx] = -1 if size == 8 else (np.int64(1) << (8 * size)) - 1
    st[S.X_PENDING] = 1
    st[S.X_RIP] = st[R.RIP]
    st[S.STATUS] = kind
    return 0


@njit(cache=True)
def phys_read(mem, st, xi, ma, size, va):
    mfn = ma >> 12
    if mfn < mem[M.M_META][M.META_NMFN] and mem[M.M_SLOT_OF][mfn] < 0:
        return external(st, xi, np.int64(S.EXIT_MMIO), ma, size, np.bool_(False), np.int64(0), va)
    v = M.load(mem, ma, size)
    return v


@njit(cache=True)
def phys_write(mem, st, tlb, dc, xi, ma, size, value, va):
    mfn = ma >> 12
    if mfn < mem[M.M_META][M.META_NMFN]:
        s = mem[M.M_SLOT_OF][mfn]
        if s < 0:
            m = -1 if size == 8 else (np.int64(1) << (8 * size)) - 1
            external(st, xi, np.int64(S.EXIT_MMIO), ma, size, np.bool_(True), value & m, va)
            return
        if s > 0 and (mem[M.M_SLOT_FLAGS][s] & M.SLOT_CODE) != 0:
            code_invalidate(mem, dc, s)
    if not M.store(mem, ma, size, value):
        st[S.STATUS] = S.EXIT_POOL


@njit(cache=True)
def vread(mem, st, tlb, dc, xi, va, size, acc):
    """Read ``size`` bytes at linear ``va``; on fault or exit STATUS != 0."""
    off = va & 0xFFF
    if off + size <= PAGE:
        ma = xlate(mem, st, tlb, dc, va, acc)
        if ma < 0:
            return np.int64(0)
        return phys_read(mem, st, xi, ma, size, va)
    lo = PAGE - off
    ma1 = xlate(mem, st, tlb, dc, va, acc)
    if ma1 < 0:
        return np.int64(0)
    ma2 = xlate(mem, st, tlb, dc, va + lo, acc)
    if ma2 < 0:
        return np.int64(0)
    v = np.int64(0)
    for i in range(size):
        a = ma1 + i if i < lo else ma2 + (i - lo)
        b = phys_read(mem, st, xi, a, np.int64(1), va + i)
        if st[S.STATUS] != 0:
            return np.int64(0)
        v |= (b & 0xFF) << (8 * i)
    return v


@njit(cache=True)
def vwrite(mem, st, tlb, dc, xi, va, size, value, acc):
    """Write ``size`` bytes at linear ``va``; both pages are checked before a split write."""
    acc |= ACC_WRITE
    off = va & 0xFFF
    if off + size <= PAGE:
        ma = xlate(mem, st, tlb, dc, va, acc)
        if ma < 0:
            return
        phys_write(mem, st, tlb, dc, xi, ma, size, value, va)
        return
    lo = PAGE - off
    ma1 = xlate(mem, st, tlb, dc, va, acc)
    if ma1 < 0:
        return
    ma2 = xlate(mem, st, tlb, dc, va + lo, acc)
    if ma2 < 0:
        return
    for i in range(size):
        a = ma1 + i if i < lo else ma2 + (i - lo)
        phys_write(mem, st, tlb, dc, xi, a, np.int64(1), (value >> (8 * i)) & 0xFF, va + i)
        if st[S.STATUS] != 0:
            return


@njit(cache=True)
def probe_write(mem, st, tlb, dc, va, size, acc):
    """Check that ``va`` is writable (INS checks before it reads the port)."""
    acc |= ACC_WRITE
    if xlate(mem, st, tlb, dc, va, acc) < 0:
        return False
    off = va & 0xFFF
    if off + size > PAGE and xlate(mem, st, tlb, dc, va + PAGE - off, acc) < 0:
        return False
    return True


# -- the code cache ---------------------------------------------------------------

@njit(cache=True)
def clear_page(dc, p):
    dec = dc[DC_DEC]
    dec[p * PAGE:(p + 1) * PAGE, :] = 0


@njit(cache=True)
def code_invalidate(mem, dc, s):
    """A store hit slot ``s``, which holds cached code: drop that page's cache."""
    pos = dc[DC_PAGE_OF_SLOT]
    p = np.int64(pos[s]) if s < pos.shape[0] else np.int64(0)
    if p > 0:
        clear_page(dc, p)
        pos[s] = 0
        dc[DC_SLOT_OF_PAGE][p] = 0
    mem[M.M_SLOT_FLAGS][s] &= ~np.uint8(M.SLOT_CODE)


@njit(cache=True)
def alloc_page(mem, st, tlb, dc, s):
    """Give slot ``s`` a cache page (round robin eviction) and mark it as code."""
    meta = dc[DC_META]
    p = meta[DM_NEXT]
    meta[DM_NEXT] = p + 1 if p + 1 < meta[DM_NPAGES] else 1
    sop = dc[DC_SLOT_OF_PAGE]
    old = sop[p]
    if old > 0:
        clear_page(dc, p)
        dc[DC_PAGE_OF_SLOT][old] = 0
        mem[M.M_SLOT_FLAGS][old] &= ~np.uint8(M.SLOT_CODE)
    sop[p] = s
    dc[DC_PAGE_OF_SLOT][s] = p
    mem[M.M_SLOT_FLAGS][s] |= np.uint8(M.SLOT_CODE)
    tlb_drop_slot(tlb, s)
    meta[DM_CODE_GEN] += 1
    st[S.CODE_GEN_SEEN] = meta[DM_CODE_GEN]
    return p


@njit(cache=True)
def enter_page(mem, st, tlb, dc, xi, rip, acc):
    """Start fetching from the page holding ``rip``: (cache base, pool base) or (-1, 0)."""
    ma = xlate(mem, st, tlb, dc, rip, acc | ACC_FETCH)
    if ma < 0:
        return np.int64(-1), np.int64(0)
    mfn = ma >> 12
    if mfn >= mem[M.M_META][M.META_NMFN]:
        st[S.STATUS] = S.EXIT_INTERNAL
        xi[S.XI_A] = S.INTERNAL_FETCH_MMIO
        return np.int64(-1), np.int64(0)
    s = np.int64(mem[M.M_SLOT_OF][mfn])
    if s < 0:
        st[S.STATUS] = S.EXIT_INTERNAL
        xi[S.XI_A] = S.INTERNAL_FETCH_MMIO
        return np.int64(-1), np.int64(0)
    if s == 0:
        s = M.slot_for_write(mem, mfn)
        if s < 0:
            st[S.STATUS] = S.EXIT_POOL
            return np.int64(-1), np.int64(0)
    p = np.int64(dc[DC_PAGE_OF_SLOT][s])
    if p == 0:
        p = alloc_page(mem, st, tlb, dc, s)
    return p * PAGE, s * PAGE


@njit(cache=True)
def sync_caches(mem, st, tlb, dc):
    """At run entry: catch up with memory restores, Python writes to code frames
    and code pages other vCPUs made (their stores must miss this vCPU's TLB)."""
    meta = dc[DC_META]
    mmeta = mem[M.M_META]
    flags = mem[M.M_SLOT_FLAGS]
    if meta[DM_MEM_GEN] != mmeta[M.META_GEN]:
        sop = dc[DC_SLOT_OF_PAGE]
        for p in range(1, meta[DM_NPAGES]):
            if sop[p] != 0:
                clear_page(dc, p)
                sop[p] = 0
        dc[DC_PAGE_OF_SLOT][:] = 0
        meta[DM_MEM_GEN] = mmeta[M.META_GEN]
    if st[S.MEM_GEN_SEEN] != mmeta[M.META_GEN]:
        tlb_flush_all(tlb)
        st[S.MEM_GEN_SEEN] = mmeta[M.META_GEN]
    if meta[DM_CODEW] != mmeta[META_CODE_WRITES]:
        sop = dc[DC_SLOT_OF_PAGE]
        for p in range(1, meta[DM_NPAGES]):
            s = sop[p]
            if s != 0 and (flags[s] & M.SLOT_CODE) == 0:
                clear_page(dc, p)
                dc[DC_PAGE_OF_SLOT][s] = 0
                sop[p] = 0
        meta[DM_CODEW] = mmeta[META_CODE_WRITES]
    if st[S.CODE_GEN_SEEN] != meta[DM_CODE_GEN]:
        wbits = np.int64((1 << ACC_WRITE) | (1 << (ACC_WRITE | 4)))
        for i in range(tlb.shape[0]):
            if (tlb[i, T_INFO] & TI_VALID) != 0 and (tlb[i, T_INFO] & wbits) != 0:
                s = tlb[i, T_SLOT]
                if s > 0 and (flags[s] & M.SLOT_CODE) != 0:
                    tlb[i, T_INFO] &= ~wbits
        st[S.CODE_GEN_SEEN] = meta[DM_CODE_GEN]


@njit(cache=True)
def fetch_bytes(mem, st, tlb, dc, rip, acc, buf):
    """Copy up to 15 instruction bytes at ``rip`` into ``buf``; returns how many
    could be fetched (a fault on the second page stops the copy, STATUS kept
    clear: the decoder decides whether it needed those bytes)."""
    n = 0
    va = rip
    while n < 15:
        ma = tlb_lookup(tlb, va, acc | ACC_FETCH)
        if ma < 0:
            ma = translate_slow(mem, tlb, st, va, acc | ACC_FETCH, dc[DC_TRACE])
            if ma < 0:
                return n, ma, va
        mfn = ma >> 12
        if mfn < mem[M.M_META][M.META_NMFN] and mem[M.M_SLOT_OF][mfn] < 0:
            return n, make_fault(np.int64(0), np.int64(0)), va
        take = min(15 - n, PAGE - (va & 0xFFF))
        for i in range(take):
            buf[n + i] = np.uint8(M.load(mem, ma + i, np.int64(1)))
        n += take
        va += take
    return n, np.int64(0), va
