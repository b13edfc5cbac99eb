"""The MMU: x86-64 4-level and PAE 3-level paging, a software TLB, page walks.

One jitted walker (:func:`walk_kernel`) implements the rules of Intel SDM Vol. 3
chapter 4 and is used everywhere: by the CPU on a TLB miss, by the Python
:func:`walk` that the widgets draw, by the batch translator, and by the tests.
So the widget can never show a walk the CPU would not do.

A linear address in 4-level paging (SDM §4.5, Figure 4-8):

    63..48   47..39   38..30   29..21   20..12   11..0
    sign     PML4     PDPT     PD       PT       offset
             index    index    index    index

and in PAE paging (SDM §4.4, Figure 4-5): bits 31:30 pick one of four PDPTE
registers (loaded by MOV CR3), then a PD index (29:21) and a PT index (20:12).

The TLB is direct-mapped over 4 KiB virtual page numbers.  It is flushed only
as the hardware flushes it: MOV CR3 (keeping global entries), INVLPG, a change
of CR4.PGE/PAE/PSE/SMEP or CR0.PG/WP (everything), so a kernel that forgets an
INVLPG after editing a PTE keeps using the stale translation, as on metal.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numba import njit

from . import memory as _mem
from . import regs as R
from .memory import store

from .pte import (PF_ID, PF_P, PF_RSVD, PF_US, PF_WR, PTE_A, PTE_D, PTE_G,
                  PTE_P, PTE_PS, PTE_RW, PTE_US, VEC_GP, VEC_PF, decode_flags,
                  decode_pf_error, u64)

# -- access kinds (bit i of a TLB entry's `allow` mask says access i is allowed)
ACC_READ = 0
ACC_WRITE = 1
ACC_FETCH = 2
ACC_USER = 4          # or'd in for a user-mode (CPL 3) access

# -- TLB layout: int64[NTLB, 4]
NTLB = 4096
T_TAG, T_MFN, T_SLOT, T_INFO = range(4)
TI_VALID = 1 << 8
TI_GLOBAL = 1 << 9
TI_SIZE_SHIFT = 10     # log2 of the page size that produced the entry (12/21/30)
TI_ALLOW_MASK = 0xFF   # bits 0..7: allowed access kinds

ADDR_52 = ((1 << 52) - 1) & ~0xFFF
NX_INT = np.int64(-(1 << 63))
# Constant arguments for kernel calls: a literal (``True``, ``4``) would make numba
# compile a separate copy of the callee for that value.
YES, NO = np.bool_(True), np.bool_(False)

# Walk results are >= 0 (a machine address) or a fault, encoded as
# -(1 + (vector << 32) + error_code).
WALK_TRACE_ROWS = 5   # rows 0..3: (entry maddr, raw) per level used; row 4: count

# Walk options.
WALK_SET_AD = 1       # set accessed/dirty bits as the hardware does
WALK_CHECK = 2        # apply the access-rights checks of SDM §4.6
WALK_TRACE = 4        # record each level in `trace` (implied by WALK_SET_AD)


@njit(cache=True)
def load_entry(mem, ea):
    """An aligned 8-byte paging-structure entry (untouched frames read 0)."""
    mfn = ea >> 12
    if mfn >= mem[_mem.M_META][_mem.META_NMFN]:
        return np.int64(-1)
    return mem[_mem.M_WORDS][np.int64(mem[_mem.M_SLOT_OF][mfn]) * 512 + ((ea & 0xFFF) >> 3)]


@njit(cache=True)
def make_fault(vector, code):
    return -(np.int64(1) + (np.int64(vector) << 32) + code)


@njit(cache=True)
def fault_vector(r):
    return (-r - 1) >> 32


@njit(cache=True)
def fault_code(r):
    return (-r - 1) & 0xFFFFFFFF


@njit(cache=True)
def maxphy_mask(st):
    """Address bits 51:MAXPHYADDR, reserved in every paging-structure entry."""
    m = st[R.MAXPHYADDR]
    return ((np.int64(1) << 52) - 1) ^ ((np.int64(1) << m) - 1)


@njit(cache=True)
def is_canonical(va):
    return ((va << 16) >> 16) == va


@njit(cache=True)
def paging_mode(st):
    """0: paging off; 3: PAE 3-level; 4: 4-level (long mode)."""
    if (st[R.CR0] & R.CR0_PG) == 0:
        return 0
    if (st[R.EFER] & R.EFER_LMA) != 0:
        return 4
    if (st[R.CR4] & R.CR4_PAE) != 0:
        return 3
    return 2   # 32-bit 2-level paging: not modelled (see docs)


@njit(cache=True)
def rsvd_mask(st, mode):
    """Bits reserved in every present entry of this walk (SDM §4.4.2, §4.5.4).

    4-level paging reserves address bits 51:MAXPHYADDR, PAE paging 62:MAXPHYADDR;
    both reserve XD (bit 63) unless IA32_EFER.NXE = 1.
    """
    m = st[R.MAXPHYADDR]
    top = 52 if mode == 4 else 63
    mask = ((np.int64(1) << top) - 1) ^ ((np.int64(1) << m) - 1)
    if (st[R.EFER] & R.EFER_NXE) == 0:
        mask |= NX_INT
    return mask


@njit(cache=True)
def large_page_rsvd(level, e, page1gb):
    """A PS=1 entry: PS is reserved in a PML4E, and in a PDPTE without 1 GiB
    pages; the address bits below the page size (except PAT, bit 12) are
    reserved too: 29:13 for 1 GiB, 20:13 for 2 MiB."""
    if level == 4:
        return True
    if level == 3:
        return not page1gb or (e & 0x3FFFE000) != 0
    return (e & 0x1FE000) != 0


@njit(cache=True)
def pdpte_rsvd(st, e):
    """PAE PDPTE reserved bits: 2:1, 8:5 and 63:MAXPHYADDR (SDM §4.4.1)."""
    m = st[R.MAXPHYADDR]
    if e < 0:
        return True
    if (e & 0x1E6) != 0:
        return True
    return (e & ~((np.int64(1) << m) - 1) & ((np.int64(1) << 63) - 1)) != 0


@njit(cache=True)
def load_pdptes(mem, st):
    """MOV CR3 in PAE mode loads the four PDPTE registers; False means #GP(0)."""
    base = st[R.CR3] & 0xFFFFFFE0
    for i in range(4):
        e = load_entry(mem, base + 8 * i)
        if (e & PTE_P) != 0 and pdpte_rsvd(st, e):
            return False
        st[R.PDPTE0 + i] = e
    return True


@njit(cache=True)
def id_bit(st):
    """The I/D error-code bit exists only with SMEP, or PAE/4-level paging with NXE."""
    if (st[R.CR4] & R.CR4_SMEP) != 0:
        return True
    return (st[R.CR4] & R.CR4_PAE) != 0 and (st[R.EFER] & R.EFER_NXE) != 0


@njit(cache=True)
def pf_code(st, access, present, rsvd):
    code = np.int64(0)
    if present:
        code |= PF_P
    if (access & ACC_WRITE) != 0:
        code |= PF_WR
    if (access & ACC_USER) != 0:
        code |= PF_US
    if rsvd:
        code |= PF_RSVD | PF_P
    if (access & ACC_FETCH) != 0 and id_bit(st):
        code |= PF_ID
    return code


@njit(cache=True)
def allowed(st, access, rw_all, us_all, xd_any):
    """Access rights of SDM §4.6 for one access kind, from the combined walk bits."""
    write = (access & ACC_WRITE) != 0
    fetch = (access & ACC_FETCH) != 0
    if (access & ACC_USER) != 0:
        if not us_all:
            return False
        if write and not rw_all:
            return False
    else:
        if write and not rw_all and (st[R.CR0] & R.CR0_WP) != 0:
            return False
        if fetch and us_all and (st[R.CR4] & R.CR4_SMEP) != 0:
            return False
    if fetch and xd_any and (st[R.EFER] & R.EFER_NXE) != 0:
        return False
    return True


@njit(cache=True)
def walk_kernel(mem, st, va, access, opts, trace):
    """Translate ``va`` for ``access``; returns a machine address or a fault.

    ``opts``: WALK_CHECK (access rights), WALK_SET_AD (accessed/dirty flags:
    A on every entry of a walk that succeeds, D on the leaf of a successful
    write), WALK_TRACE: ``trace`` (int64[5, 2]) then receives (entry address,
    raw entry) for each level read, top level first, ``trace[4, 0]`` the
    number of levels read and ``trace[4, 1]`` the log2 page size found.
    """
    if (opts & WALK_SET_AD) != 0:
        opts |= WALK_TRACE
    mode = paging_mode(st)
    if mode == 4:
        if not is_canonical(va):
            return make_fault(np.int64(VEC_GP), np.int64(0))
        table = st[R.CR3] & ADDR_52 & ~maxphy_mask(st)
        return walk_levels(mem, st, va, access, opts, trace, table, np.int64(4), np.int64(4))
    if mode == 3:
        return walk_pae(mem, st, va & 0xFFFFFFFF, access, opts, trace)
    if mode == 0:
        if (opts & WALK_TRACE) != 0:
            trace[4, 0] = 0
            trace[4, 1] = 12
        if (st[R.EFER] & R.EFER_LMA) != 0:
            return va
        return va & 0xFFFFFFFF
    return make_fault(np.int64(VEC_GP), np.int64(0))      # 32-bit 2-level paging is not modelled


@njit(cache=True)
def walk_pae(mem, st, va, access, opts, trace):
    """PAE: bits 31:30 pick a PDPTE register, then a 2-level walk (SDM §4.4)."""
    e = st[R.PDPTE0 + ((va >> 30) & 3)]
    if (opts & WALK_TRACE) != 0:
        trace[0, 0] = (st[R.CR3] & 0xFFFFFFE0) + 8 * ((va >> 30) & 3)
        trace[0, 1] = e
        trace[4, 0] = 1
        trace[4, 1] = 12
    if (e & PTE_P) == 0:
        return make_fault(np.int64(VEC_PF), pf_code(st, access, NO, NO))
    return walk_levels(mem, st, va, access, opts, trace, e & ADDR_52, np.int64(2), np.int64(3))


@njit(cache=True)
def walk_levels(mem, st, va, access, opts, trace, table, top, mode):
    """The walk proper from a level-``top`` table (4: PML4 in 4-level paging,
    2: a page directory under PAE), with the checks of SDM §4.4-§4.6."""
    tracing = (opts & WALK_TRACE) != 0
    n = 1 if mode == 3 else 0
    if tracing:
        trace[4, 0] = n
        trace[4, 1] = 12
    rsvd = rsvd_mask(st, mode)
    page1gb = (st[R.FEATURES] & R.FEAT_PAGE1GB) != 0
    and_bits = np.int64(PTE_RW | PTE_US)    # RW and US must hold at every level
    or_bits = np.int64(0)                   # XD counts if set at any level
    e = np.int64(0)
    size_log2 = 12
    for level in range(top, 0, -1):
        shift = 12 + 9 * (level - 1)
        eaddr = table + ((va >> shift) & 511) * 8
        e = load_entry(mem, eaddr)
        if tracing:
            trace[n, 0] = eaddr
            trace[n, 1] = e
            trace[4, 0] = n + 1
        n += 1
        if (e & PTE_P) == 0:
            return make_fault(np.int64(VEC_PF), pf_code(st, access, NO, NO))
        if (e & rsvd) != 0:
            return make_fault(np.int64(VEC_PF), pf_code(st, access, YES, YES))
        and_bits &= e
        or_bits |= e
        if level == 1:
            break
        if (e & PTE_PS) != 0:
            if large_page_rsvd(level, e, page1gb):
                return make_fault(np.int64(VEC_PF), pf_code(st, access, YES, YES))
            size_log2 = shift
            break
        table = e & ADDR_52
    if tracing:
        trace[4, 1] = size_log2
    if (opts & WALK_CHECK) != 0 and not allowed(
            st, access, (and_bits & PTE_RW) != 0, (and_bits & PTE_US) != 0, or_bits < 0):
        return make_fault(np.int64(VEC_PF), pf_code(st, access, YES, NO))
    if (opts & WALK_SET_AD) != 0:
        set_accessed_dirty(mem, trace, n, 1 if mode == 3 else 0, (access & ACC_WRITE) != 0)
    page_mask = (np.int64(1) << size_log2) - 1
    return (e & ADDR_52 & ~page_mask) | (va & page_mask)


@njit(cache=True)
def set_accessed_dirty(mem, trace, n, first, write):
    """Set A in each entry the walk used (from ``first``; PAE's PDPTE registers
    have none) and D in the leaf of a write (SDM §4.8)."""
    for i in range(first, n):
        raw = trace[i, 1]
        new = raw | PTE_A
        if i == n - 1 and write:
            new |= PTE_D
        if new != raw:
            store(mem, trace[i, 0], np.int64(8), new)
            trace[i, 1] = new


@njit(cache=True)
def tlb_fill(mem, tlb, st, va, access, trace):
    """Walk ``va`` and, if it translates, cache the 4 KiB slice in the TLB."""
    r = walk_kernel(mem, st, va, access, np.int64(WALK_SET_AD | WALK_CHECK | WALK_TRACE), trace)
    if r < 0 or paging_mode(st) == 0:
        return r
    n = trace[4, 0]
    mode = paging_mode(st)
    rw_all = YES
    us_all = YES
    xd_any = NO
    first = 1 if mode == 3 else 0   # PDPTE registers carry no RW/US/XD in PAE
    for i in range(first, n):
        e = trace[i, 1]
        rw_all = rw_all and (e & PTE_RW) != 0
        us_all = us_all and (e & PTE_US) != 0
        xd_any = xd_any or e < 0
    leaf = trace[n - 1, 1]
    dirty = (leaf & PTE_D) != 0
    mfn = r >> 12
    slot = np.int64(0)
    if mfn < mem[_mem.M_META][_mem.META_NMFN]:
        slot = np.int64(mem[_mem.M_SLOT_OF][mfn])
    if slot == 0 and mfn < mem[_mem.M_META][_mem.META_NMFN]:
        # The CPU addresses the frame through its slot, so give it one now:
        # a page the CPU uses costs a frame even if it is only read.
        slot = _mem.slot_for_write(mem, mfn)
        if slot == _mem.POOL_FULL:
            return r                      # not cached; the caller grows the pool
    code_page = slot > 0 and (mem[_mem.M_SLOT_FLAGS][slot] & _mem.SLOT_CODE) != 0
    allow = 0
    for a in range(8):
        if (a & 3) == 3:
            continue                      # write+fetch is not an access kind
        if not allowed(st, a, rw_all, us_all, xd_any):
            continue
        if (a & ACC_WRITE) != 0 and (not dirty or code_page):
            continue                      # first write re-walks to set D
        allow |= 1 << a
    vpn = va >> 12
    i = vpn & (NTLB - 1)
    tlb[i, T_TAG] = vpn
    tlb[i, T_MFN] = mfn
    tlb[i, T_SLOT] = slot
    info = allow | TI_VALID | (trace[4, 1] << TI_SIZE_SHIFT)
    if (leaf & PTE_G) != 0 and (st[R.CR4] & R.CR4_PGE) != 0:
        info |= TI_GLOBAL
    tlb[i, T_INFO] = info
    return r


@njit(cache=True)
def tlb_lookup(tlb, va, access):
    """A TLB hit: the machine address; a miss or a denied access: -1.

    An entry's allow bits are only set on a valid entry, and the TLB is empty
    while paging is off (turning PG off flushes it), so one tag compare and
    one bit test decide.  Kept tiny and with one array argument so LLVM
    inlines it into hot loops: a call that passes the ``mem`` tuple costs
    ~50 ns in numba, twenty times the hit itself (see docs/performance.md).
    """
    vpn = va >> 12
    i = vpn & (NTLB - 1)
    if tlb[i, T_TAG] == vpn and ((tlb[i, T_INFO] >> access) & 1) != 0:
        return (tlb[i, T_MFN] << 12) | (va & 0xFFF)
    return np.int64(-1)


@njit(cache=True)
def tlb_host(tlb, va, access):
    """A TLB hit on RAM: the byte index of ``va`` in the memory pool
    (``slot * 4096 + offset``), so a hot loop reads ``data``/``words``
    directly; -1 for a miss, a denied access or an MMIO frame."""
    vpn = va >> 12
    i = vpn & (NTLB - 1)
    if tlb[i, T_TAG] == vpn and ((tlb[i, T_INFO] >> access) & 1) != 0 and tlb[i, T_SLOT] > 0:
        return (tlb[i, T_SLOT] << 12) | (va & 0xFFF)
    return np.int64(-1)


@njit(cache=True)
def translate(mem, tlb, st, va, access, trace):
    """The CPU's address translation: machine address, or a fault (< 0).

    Hot loops should call :func:`tlb_lookup` themselves and this only on -1.
    """
    r = tlb_lookup(tlb, va, access)
    if r >= 0:
        return r
    return translate_slow(mem, tlb, st, va, access, trace)


@njit(cache=True)
def translate_slow(mem, tlb, st, va, access, trace):
    """TLB miss, denied access (maybe a first write that must set D), or paging off."""
    if paging_mode(st) == 0:
        return walk_kernel(mem, st, va, access, np.int64(0), trace)
    return tlb_fill(mem, tlb, st, va, access, trace)


@njit(cache=True)
def tlb_flush_all(tlb):
    for i in range(tlb.shape[0]):
        tlb[i, T_INFO] = 0


@njit(cache=True)
def tlb_flush_nonglobal(tlb):
    for i in range(tlb.shape[0]):
        if (tlb[i, T_INFO] & TI_GLOBAL) == 0:
            tlb[i, T_INFO] = 0


@njit(cache=True)
def tlb_invlpg(tlb, va):
    """INVLPG: drop every entry for the page holding ``va``, whatever its size."""
    vpn = va >> 12
    for i in range(tlb.shape[0]):
        info = tlb[i, T_INFO]
        if (info & TI_VALID) == 0:
            continue
        size = (info >> TI_SIZE_SHIFT) & 63
        sh = size - 12
        if (tlb[i, T_TAG] >> sh) == (vpn >> sh):
            tlb[i, T_INFO] = 0


@njit(cache=True)
def tlb_drop_slot(tlb, slot):
    """Forget write permission for entries that map ``slot`` (a page became code)."""
    for i in range(tlb.shape[0]):
        if tlb[i, T_SLOT] == slot and (tlb[i, T_INFO] & TI_VALID) != 0:
            tlb[i, T_INFO] &= ~np.int64((1 << ACC_WRITE) | (1 << (ACC_WRITE | ACC_USER)))


@njit(cache=True)
def translate_batch(mem, tlb, st, vas, access, out):
    """Translate every address in ``vas`` through the TLB (with A/D side effects)."""
    trace = np.zeros((WALK_TRACE_ROWS, 2), dtype=np.int64)
    for k in range(vas.shape[0]):
        r = tlb_lookup(tlb, vas[k], access)
        if r < 0:
            r = translate_slow(mem, tlb, st, vas[k], access, trace)
        out[k] = r


@njit(cache=True)
def walk_batch(mem, st, vas, out):
    """Walk every address with no TLB and no side effects (a debugger's ::vtop).

    A first pass walks the common case (4-level paging, 4 KiB pages, present,
    no reserved bits) in a lean loop whose iterations the host CPU overlaps,
    marking anything else; a second pass gives those to :func:`walk_kernel`.
    """
    trace = np.zeros((WALK_TRACE_ROWS, 2), dtype=np.int64)
    slow = np.zeros(vas.shape[0], dtype=np.bool_)
    if paging_mode(st) == 4:
        lean_walk4(mem[_mem.M_SLOT_OF], mem[_mem.M_WORDS], mem[_mem.M_META][_mem.META_NMFN],
                   st[R.CR3] & ADDR_52 & ~maxphy_mask(st), rsvd_mask(st, 4) | PTE_PS, vas,
                   out, slow)
    else:
        slow[:] = True
    for k in range(vas.shape[0]):
        if slow[k]:
            out[k] = walk_kernel(mem, st, vas[k], np.int64(0), np.int64(0), trace)


@njit(cache=True)
def lean_walk4(slot_of, words, nmfn, root, bad_bits, vas, out, slow):
    """4-level walks of 4 KiB mappings only; flags in ``slow`` what it cannot do.

    ``bad_bits`` are the reserved bits plus PS (bit 7 is PAT, harmless, in a
    PTE, so the last level masks it out).
    """
    for k in range(vas.shape[0]):
        va = vas[k]
        t = root
        ok = ((va << 16) >> 16) == va
        for shift in (39, 30, 21, 12):
            if not ok:
                break
            ea = t + ((va >> shift) & 511) * 8
            mfn = ea >> 12
            if mfn >= nmfn:
                ok = False
                break
            e = words[np.int64(slot_of[mfn]) * 512 + ((ea & 0xFFF) >> 3)]
            bad = bad_bits if shift != 12 else bad_bits & ~np.int64(PTE_PS)
            if (e & PTE_P) == 0 or (e & bad) != 0:
                ok = False
                break
            t = e & ADDR_52
        out[k] = t | (va & 0xFFF)
        slow[k] = not ok


# -- page-table dump --------------------------------------------------------

@njit(cache=True)
def _count_tree(mem, st, root, top):
    """Entries the dump will list (present entries at every level)."""
    return _dump_tree(mem, st, root, top, np.zeros((0, 6), dtype=np.int64), False)


@njit(cache=True)
def _dump_tree(mem, st, root, top, out, write):
    """Depth-first over a 4-level tree: rows (level, index, va, raw, target mfn, leaf).

    Uses an explicit stack, visits each table once per reference, and never
    writes to machine memory.
    """
    stack_tab = np.zeros(64, dtype=np.int64)
    stack_lvl = np.zeros(64, dtype=np.int64)
    stack_va = np.zeros(64, dtype=np.int64)
    stack_idx = np.zeros(64, dtype=np.int64)
    sp = 0
    stack_tab[0] = root
    stack_lvl[0] = top
    stack_va[0] = 0
    stack_idx[0] = 0
    n = 0
    mask = ADDR_52 & ~maxphy_mask(st)
    while sp >= 0:
        idx = stack_idx[sp]
        if idx >= 512:
            sp -= 1
            continue
        stack_idx[sp] = idx + 1
        level = stack_lvl[sp]
        e = load_entry(mem, stack_tab[sp] + idx * 8)
        if (e & PTE_P) == 0:
            continue
        shift = 12 + 9 * (level - 1)
        va = stack_va[sp] + (idx << shift)
        if level == 4 and va >= (np.int64(1) << 47):
            va = va - (np.int64(1) << 48)            # sign-extend the upper half
        leaf = level == 1 or (level <= 3 and (e & PTE_PS) != 0)
        if write:
            out[n, 0] = level
            out[n, 1] = idx
            out[n, 2] = va
            out[n, 3] = e
            out[n, 4] = (e & mask) >> 12
            out[n, 5] = 1 if leaf else 0
        n += 1
        if not leaf and sp < 63:
            sp += 1
            stack_tab[sp] = e & mask
            stack_lvl[sp] = level - 1
            stack_va[sp] = va
            stack_idx[sp] = 0
    return n


# --------------------------------------------------------------------------
# Python face
# --------------------------------------------------------------------------

class PageFault(Exception):
    """A translation failed: #PF with its error code, or #GP for a bad address."""

    def __init__(self, va: int, vector: int, code: int):
        self.va, self.vector, self.code = va, vector, code
        if vector == VEC_PF:
            msg = f"#PF at {u64(va):#x}, error code {code:#x} ({decode_pf_error(code)})"
        else:
            msg = f"#GP({code}) translating {u64(va):#x} (non-canonical or unsupported mode)"
        super().__init__(msg)


LEVEL_NAMES = {4: "PML4E", 3: "PDPTE", 2: "PDE", 1: "PTE"}


@dataclass
class WalkStep:
    level: int
    name: str
    index: int
    entry_maddr: int
    raw: int
    flags: list[str]
    frame: int


@dataclass
class Walk:
    """Every level of one page walk, as a widget draws it."""

    va: int
    steps: list[WalkStep] = field(default_factory=list)
    maddr: int | None = None
    page_size: int = 4096
    fault: PageFault | None = None

    @property
    def ok(self) -> bool:
        return self.fault is None

    def frame(self):
        import pandas as pd
        return pd.DataFrame([s.__dict__ for s in self.steps])

    def __repr__(self):
        lines = [f"walk of {u64(self.va):#018x}"]
        for s in self.steps:
            lines.append(f"  {s.name:5} [{s.index:3}] @ {s.entry_maddr:#x} = "
                         f"{u64(s.raw):#018x} {' '.join(s.flags)}")
        lines.append(f"  -> {self.maddr:#x}" if self.ok else f"  -> {self.fault}")
        return "\n".join(lines)


def _state_for(cr3: int, mode: int, maxphyaddr: int, nxe: bool, features: int):
    st = R.new_state(maxphyaddr, features)
    st[R.CR0] |= R.CR0_PG | R.CR0_PE
    st[R.CR4] = R.CR4_PAE
    st[R.CR3] = cr3
    if mode == 4:
        st[R.EFER] = R.EFER_LME | R.EFER_LMA
    if nxe:
        st[R.EFER] |= R.EFER_NXE
    return st


def _steps_from_trace(va: int, trace: np.ndarray, mode: int) -> list[WalkStep]:
    steps = []
    n = int(trace[4, 0])
    levels = [4, 3, 2, 1] if mode == 4 else [3, 2, 1]
    for i in range(n):
        level = levels[i]
        shift = 12 + 9 * (level - 1)
        idx = (va >> shift) & (3 if (mode == 3 and level == 3) else 511)
        raw = int(trace[i, 1])
        steps.append(WalkStep(level, LEVEL_NAMES[level], int(idx), int(trace[i, 0]), raw,
                              decode_flags(raw, level), (u64(raw) & ADDR_52) >> 12))
    return steps


def walk(memory, cr3: int, va: int, *, mode: int = 4, state=None, access: int = ACC_READ,
         check: bool = False, set_ad: bool = False, maxphyaddr: int = 40,
         nxe: bool = True, features: int = R.FEAT_DEFAULT) -> Walk:
    """Walk ``va`` from ``cr3`` and return every level's entry, without side effects.

    ``mode`` is 4 (4-level) or 3 (PAE); pass a vCPU ``state`` vector instead to
    walk exactly as that vCPU would (its CR0/CR4/EFER and PDPTE registers).
    """
    from .pte import s64
    va = s64(va)
    if state is None:
        st = _state_for(cr3, mode, maxphyaddr, nxe, features)
        if mode == 3:
            load_pdptes(memory.arrays, st)
    else:
        st = state
        mode = int(paging_mode(st))
    trace = np.zeros((WALK_TRACE_ROWS, 2), dtype=np.int64)
    opts = WALK_TRACE | (WALK_CHECK if check else 0) | (WALK_SET_AD if set_ad else 0)
    if set_ad:
        memory.reserve(8)
    r = int(walk_kernel(memory.arrays, st, va, access, opts, trace))
    w = Walk(va, _steps_from_trace(va, trace, mode))
    if r >= 0:
        w.maddr = r
        w.page_size = 1 << int(trace[4, 1])
    else:
        w.fault = PageFault(va, int(fault_vector(r)), int(fault_code(r)))
    return w


class Mmu:
    """One vCPU's MMU: its state vector (CR0/CR3/CR4/EFER/CPL...) and its TLB.

    The CPU shares ``state`` and ``tlb`` with this object; the methods here are
    what the hardware does on the matching instruction.
    """

    def __init__(self, memory, state=None):
        self.memory = memory
        self.state = R.new_state() if state is None else state
        self.tlb = np.zeros((NTLB, 4), dtype=np.int64)
        self._trace = np.zeros((WALK_TRACE_ROWS, 2), dtype=np.int64)

    # -- what MOV CRn / INVLPG do ----------------------------------------------
    def write_cr3(self, value: int):
        """MOV CR3: new root; non-global TLB entries go; PAE reloads PDPTEs."""
        st = self.state
        st[R.CR3] = value
        if paging_mode(st) == 3 and not load_pdptes(self.memory.arrays, st):
            raise PageFault(value, VEC_GP, 0)
        tlb_flush_nonglobal(self.tlb)

    def write_cr0(self, value: int):
        old = int(self.state[R.CR0])
        self.state[R.CR0] = value
        self._long_mode_activation()
        if (old ^ value) & (R.CR0_PG | R.CR0_WP):
            tlb_flush_all(self.tlb)
            if paging_mode(self.state) == 3:
                load_pdptes(self.memory.arrays, self.state)

    def write_cr4(self, value: int):
        old = int(self.state[R.CR4])
        self.state[R.CR4] = value
        if (old ^ value) & (R.CR4_PGE | R.CR4_PAE | R.CR4_PSE | R.CR4_SMEP):
            tlb_flush_all(self.tlb)

    def write_efer(self, value: int):
        st = self.state
        keep_lma = int(st[R.EFER]) & R.EFER_LMA
        st[R.EFER] = (value & ~R.EFER_LMA) | keep_lma
        self._long_mode_activation()
        tlb_flush_all(self.tlb)

    def _long_mode_activation(self):
        """EFER.LMA = EFER.LME && CR0.PG (SDM Vol. 3 §9.8.5)."""
        st = self.state
        if (st[R.CR0] & R.CR0_PG) and (st[R.EFER] & R.EFER_LME):
            st[R.EFER] |= R.EFER_LMA
        else:
            st[R.EFER] &= ~R.EFER_LMA

    def invlpg(self, va: int):
        from .pte import s64
        tlb_invlpg(self.tlb, s64(va))

    def flush(self):
        tlb_flush_all(self.tlb)

    # -- translation -------------------------------------------------------------
    def access_kind(self, write=False, fetch=False, user=None) -> int:
        if user is None:
            user = int(self.state[R.CPL]) == 3
        return (ACC_WRITE if write else 0) | (ACC_FETCH if fetch else 0) | (
            ACC_USER if user else 0)

    def translate(self, va: int, *, write=False, fetch=False, user=None) -> int:
        """Machine address of ``va`` as an access by this vCPU would see it.

        Uses and fills the TLB and sets A/D bits; raises :class:`PageFault`.
        """
        from .pte import s64
        va = s64(va)
        self.memory.reserve(8)
        r = int(translate(self.memory.arrays, self.tlb, self.state, va,
                          self.access_kind(write, fetch, user), self._trace))
        if r < 0:
            vector = int(fault_vector(r))
            if vector == VEC_PF:
                self.state[R.CR2] = va        # the hardware latches the address
            raise PageFault(va, vector, int(fault_code(r)))
        return r

    def walk(self, va: int) -> Walk:
        """Side-effect-free walk with this vCPU's control registers."""
        return walk(self.memory, int(self.state[R.CR3]), va, state=self.state)

    def translate_batch(self, vas, *, write=False, user=None) -> np.ndarray:
        """Translate an array of addresses through the TLB; faults come back < 0."""
        vas = np.ascontiguousarray(vas, dtype=np.int64)
        out = np.empty_like(vas)
        access = self.access_kind(write, False, user)
        # reads never allocate (present entries live in touched frames);
        # a write may touch one new frame per address
        step = 1 << 16
        for i in range(0, len(vas), step):
            self.memory.reserve(min(step, len(vas) - i) + 8 if write else 8)
            translate_batch(self.memory.arrays, self.tlb, self.state, vas[i:i + step],
                            access, out[i:i + step])
        return out

    def tlb_frame(self):
        """The valid TLB entries as a DataFrame (vpn, mfn, page size, allowed, global)."""
        import pandas as pd
        t = self.tlb
        v = (t[:, T_INFO] & TI_VALID) != 0
        info = t[v, T_INFO]
        return pd.DataFrame({
            "va": t[v, T_TAG] << 12, "mfn": t[v, T_MFN],
            "page_size": 1 << ((info >> TI_SIZE_SHIFT) & 63),
            "allow": info & TI_ALLOW_MASK, "global": (info & TI_GLOBAL) != 0,
        })


def walk_many(memory, cr3: int, vas, *, mode: int = 4, state=None, maxphyaddr: int = 40):
    """Side-effect-free batch walk: machine addresses, or < 0 for faults."""
    st = state if state is not None else _state_for(cr3, mode, maxphyaddr, True,
                                                    R.FEAT_DEFAULT)
    if state is None and mode == 3:
        load_pdptes(memory.arrays, st)
    vas = np.ascontiguousarray(vas, dtype=np.int64)
    out = np.empty_like(vas)
    walk_batch(memory.arrays, st, vas, out)
    return out


def pagetable_frame(memory, cr3: int, *, maxphyaddr: int = 40):
    """Every present entry of a 4-level tree as a DataFrame.

    Columns: level, index, va (start of the range the entry maps), va_end,
    raw, target_mfn, leaf, bits (the set flags by name, e.g. "P RW US A").  Built by one jitted pass
    that counts and one that fills, so millions of entries stay quick.
    """
    import pandas as pd
    st = _state_for(cr3, 4, maxphyaddr, True, R.FEAT_DEFAULT)
    root = cr3 & ADDR_52 & ~((1 << 52) - (1 << maxphyaddr))
    n = int(_count_tree(memory.arrays, st, root, 4))
    out = np.zeros((n, 6), dtype=np.int64)
    _dump_tree(memory.arrays, st, root, 4, out, True)
    level = out[:, 0]
    span = np.left_shift(np.int64(1), 12 + 9 * (level - 1))
    df = pd.DataFrame({
        "level": level, "index": out[:, 1], "va": out[:, 2],
        "va_end": out[:, 2] + span, "raw": out[:, 3],
        "target_mfn": out[:, 4], "leaf": out[:, 5].astype(bool),
    })
    df["bits"] = _flag_strings(out[:, 3], level)
    return df


def _flag_strings(raw: np.ndarray, level: np.ndarray):
    """Flag names per row, decoding each distinct (flags, is-PTE) pair only once."""
    flag_bits = np.int64(0xFFF) | NX_INT
    key = (raw & flag_bits) | (level == 1).astype(np.int64) << 12
    uniq, inverse = np.unique(key, return_inverse=True)
    names = np.array([" ".join(decode_flags(int(k) & ~(1 << 12), 1 if (int(k) >> 12) & 1 else 2))
                      for k in uniq], dtype=object)
    return names[inverse]
