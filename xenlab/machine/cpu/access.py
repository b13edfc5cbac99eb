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

The code cache ``dc = (cc, page_of_slot)`` is described in cache.py.
"""

import numpy as np
from numba import njit

from .. import memory as M
from .. import regs as R
from ..mmu import (ACC_FETCH, ACC_WRITE, NO, T_INFO, T_SLOT, TI_VALID, YES, fault_vector,
                   tlb_drop_slot, tlb_flush_all, tlb_lookup, translate_slow)
from ..pte import VEC_PF
from . import slots as S
from . import units as U
from .cache import (C_BMAP, C_CODE_GEN, C_CODEW, C_ENT_NEXT, C_FP, C_MEM_GEN, C_NEXT,
                    C_NPAGES, C_SOP, C_TRACE, PAGE, TRACE_WORDS)

XLATE_ARGS = (U.MEM_T, U.I64A, U.TLB_T, U.DC_T, U.I64, U.I64)
PAGE_ARGS = (U.MEM_T, U.I64A, U.TLB_T, U.DC_T, U.I64, U.I64)
call_xlate = U.caller(U.I64, XLATE_ARGS)
call_page = U.caller(U.I64, PAGE_ARGS)


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def xlate_slow(mem, st, tlb, dc, va, acc):
    """Unit U_XLATE: walk ``va`` (TLB miss or denied); a machine address, or
    < 0 with STATUS (and FAULT_ADDR for a #PF) set."""
    cc = dc[0]
    t = cc[C_TRACE]
    trace = cc[t:t + TRACE_WORDS].reshape((5, 2))
    r = translate_slow(mem, tlb, st, va, acc, trace)
    if r < 0:
        st[S.STATUS] = r
        if fault_vector(r) == VEC_PF:
            st[S.FAULT_ADDR] = va
    return r


U.register(U.U_XLATE, xlate_slow, XLATE_ARGS)


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def xlate(mem, st, tlb, dc, va, acc):
    """Machine address of ``va`` for access kind ``acc``, or < 0 with STATUS set."""
    r = tlb_lookup(tlb, va, acc)
    if r >= 0:
        return r
    return call_xlate(dc[0][C_FP + U.U_XLATE], (mem, st, tlb, dc, va, acc))


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def external(st, kind, addr, size, write, value, va):
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
        st[S.XI + S.XI_A] = 2
        return 0
    x = S.XI
    st[x + S.XI_REASON] = kind
    st[x + S.XI_A] = addr
    st[x + S.XI_B] = size
    st[x + S.XI_C] = 1 if write else 0
    st[x + S.XI_D] = value if write else 0
    st[x + S.XI_E] = va
    st[x + S.XI_F] = 0
    st[x + S.XI_SLOT] = S.X_VAL0 + idx
    st[S.X_VAL0 + idx] = -1 if size == 8 else (np.int64(1) << (8 * size)) - 1
    st[S.X_PENDING] = 1
    st[S.X_RIP] = st[R.RIP]
    st[S.STATUS] = kind
    return 0


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def phys_read(mem, st, ma, size, va):
    mfn = ma >> 12
    if mfn < mem[M.M_META][M.META_NMFN] and mem[M.M_SLOT_OF][mfn] < 0:
        return external(st, np.int64(S.EXIT_MMIO), ma, size, NO, np.int64(0), va)
    return M.load(mem, ma, size)


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def phys_write(mem, st, dc, ma, size, value, va):
    mfn = ma >> 12
    if mfn < mem[M.M_META][M.META_NMFN]:
        s = mem[M.M_SLOT_OF][mfn]
        if s < 0:
            m = -1 if size == 8 else (np.int64(1) << (8 * size)) - 1
            external(st, np.int64(S.EXIT_MMIO), ma, size, YES, value & m, va)
            return
        if s > 0 and (mem[M.M_SLOT_FLAGS][s] & M.SLOT_CODE) != 0:
            code_invalidate(mem, dc, s)
    if not M.store(mem, ma, size, value):
        st[S.STATUS] = S.EXIT_POOL


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def vread(mem, st, tlb, dc, va, size, acc):
    """Read ``size`` bytes at linear ``va``; on fault or exit STATUS != 0."""
    off = va & 0xFFF
    if off + size <= PAGE:
        ma = xlate(mem, st, tlb, dc, va, acc)
        if ma < 0:
            return np.int64(0)
        return phys_read(mem, st, ma, size, va)
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
        b = phys_read(mem, st, a, np.int64(1), va + i)
        if st[S.STATUS] != 0:
            return np.int64(0)
        v |= (b & 0xFF) << (8 * i)
    return v


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def vwrite(mem, st, tlb, dc, va, size, value, acc):
    """Write ``size`` bytes at linear ``va``; both pages are checked before a split write."""
    acc |= ACC_WRITE
    off = va & 0xFFF
    if off + size <= PAGE:
        ma = xlate(mem, st, tlb, dc, va, acc)
        if ma < 0:
            return
        phys_write(mem, st, dc, ma, size, value, va)
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
        phys_write(mem, st, dc, a, np.int64(1), (value >> (8 * i)) & 0xFF, va + i)
        if st[S.STATUS] != 0:
            return


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
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

@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def clear_page(cc, p):
    """Forget the blocks of cache page ``p``."""
    b = cc[C_BMAP] + p * PAGE
    cc[b:b + PAGE] = 0


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def code_invalidate(mem, dc, s):
    """A store hit slot ``s``, which holds cached code: drop that page's blocks."""
    cc, pos = dc
    p = np.int64(pos[s]) if s < pos.shape[0] else np.int64(0)
    if p > 0:
        clear_page(cc, p)
        pos[s] = 0
        cc[cc[C_SOP] + p] = 0
    mem[M.M_SLOT_FLAGS][s] &= ~np.uint8(M.SLOT_CODE)


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def alloc_page(mem, st, tlb, dc, s):
    """Give slot ``s`` a cache page (round robin eviction) and mark it as code."""
    cc, pos = dc
    p = cc[C_NEXT]
    cc[C_NEXT] = p + 1 if p + 1 < cc[C_NPAGES] else 1
    sop = cc[C_SOP]
    old = cc[sop + p]
    if old > 0:
        clear_page(cc, p)
        pos[old] = 0
        mem[M.M_SLOT_FLAGS][old] &= ~np.uint8(M.SLOT_CODE)
    cc[sop + p] = s
    pos[s] = p
    mem[M.M_SLOT_FLAGS][s] |= np.uint8(M.SLOT_CODE)
    tlb_drop_slot(tlb, s)
    cc[C_CODE_GEN] += 1
    st[S.CODE_GEN_SEEN] = cc[C_CODE_GEN]
    return p


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def enter_page(mem, st, tlb, dc, rip, acc):
    """Unit U_PAGE: the cache page for the code page holding ``rip`` (allocated
    if need be), or -1: a fetch fault (STATUS set) or code in MMIO (STATUS clear;
    the general path reports it)."""
    ma = xlate(mem, st, tlb, dc, rip, acc | ACC_FETCH)
    if ma < 0:
        return np.int64(-1)
    mfn = ma >> 12
    if mfn >= mem[M.M_META][M.META_NMFN]:
        return np.int64(-1)
    s = np.int64(mem[M.M_SLOT_OF][mfn])
    if s < 0:
        return np.int64(-1)
    if s == 0:
        s = M.slot_for_write(mem, mfn)
        if s < 0:
            st[S.STATUS] = S.EXIT_POOL
            return np.int64(-1)
    p = np.int64(dc[1][s])
    if p == 0:
        p = alloc_page(mem, st, tlb, dc, s)
    return p


U.register(U.U_PAGE, enter_page, PAGE_ARGS)


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def flush_code(mem, dc):
    """Forget every cached block and page (entries ran out, or memory was restored)."""
    cc, pos = dc
    sop = cc[C_SOP]
    flags = mem[M.M_SLOT_FLAGS]
    for p in range(1, cc[C_NPAGES]):
        s = cc[sop + p]
        if s != 0:
            clear_page(cc, p)
            cc[sop + p] = 0
            if s < pos.shape[0]:
                pos[s] = 0
            if s < flags.shape[0]:
                flags[s] &= ~np.uint8(M.SLOT_CODE)
    cc[C_ENT_NEXT] = 1
    cc[C_NEXT] = 1


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def sync_caches(mem, st, tlb, dc):
    """At run entry: catch up with memory restores, Python writes to code frames
    and code pages other vCPUs made (their stores must miss this vCPU's TLB)."""
    cc, pos = dc
    mmeta = mem[M.M_META]
    flags = mem[M.M_SLOT_FLAGS]
    if cc[C_MEM_GEN] != mmeta[M.META_GEN]:
        sop = cc[C_SOP]
        for p in range(1, cc[C_NPAGES]):
            if cc[sop + p] != 0:
                clear_page(cc, p)
                cc[sop + p] = 0
        pos[:] = 0
        cc[C_ENT_NEXT] = 1
        cc[C_MEM_GEN] = mmeta[M.META_GEN]
    if st[S.MEM_GEN_SEEN] != mmeta[M.META_GEN]:
        tlb_flush_all(tlb)
        st[S.MEM_GEN_SEEN] = mmeta[M.META_GEN]
    if cc[C_CODEW] != mmeta[M.META_CODE_WRITES]:
        sop = cc[C_SOP]
        for p in range(1, cc[C_NPAGES]):
            s = cc[sop + p]
            if s != 0 and (flags[s] & M.SLOT_CODE) == 0:
                clear_page(cc, p)
                pos[s] = 0
                cc[sop + p] = 0
        cc[C_CODEW] = mmeta[M.META_CODE_WRITES]
    if st[S.CODE_GEN_SEEN] != cc[C_CODE_GEN]:
        wbits = np.int64((1 << ACC_WRITE) | (1 << (ACC_WRITE | 4)))
        for i in range(tlb.shape[0]):
            if (tlb[i, T_INFO] & TI_VALID) != 0 and (tlb[i, T_INFO] & wbits) != 0:
                s = tlb[i, T_SLOT]
                if s > 0 and (flags[s] & M.SLOT_CODE) != 0:
                    tlb[i, T_INFO] &= ~wbits
        st[S.CODE_GEN_SEEN] = cc[C_CODE_GEN]


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def fetch_bytes(mem, st, tlb, dc, rip, acc, buf):
    """Copy up to 15 instruction bytes at ``rip`` into ``buf``; returns (how many
    could be fetched, a fault (< 0), 1 for MMIO or 0, the address it stopped at).  A fault on the
    second page stops the copy with STATUS clear: the decoder decides whether it
    needed those bytes."""
    n = 0
    va = rip
    while n < 15:
        ma = tlb_lookup(tlb, va, acc | ACC_FETCH)
        if ma < 0:
            ma = xlate(mem, st, tlb, dc, va, acc | ACC_FETCH)
            if ma < 0:
                r = st[S.STATUS]
                st[S.STATUS] = 0
                return n, r, va
        mfn = ma >> 12
        slot = np.int64(mem[M.M_SLOT_OF][mfn]) if mfn < mem[M.M_META][M.META_NMFN] else np.int64(0)
        if slot < 0:
            return n, np.int64(1), va           # code in an MMIO frame
        take = 15 - n
        if take > PAGE - (va & 0xFFF):
            take = PAGE - (va & 0xFFF)
        data = mem[M.M_DATA]
        base = slot * PAGE + (ma & 0xFFF)       # slot 0 is the all-zero frame
        for i in range(take):
            buf[n + i] = data[base + i]
        n += take
        va += take
    return n, np.int64(0), va
