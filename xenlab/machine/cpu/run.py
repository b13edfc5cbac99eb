"""The run loop: runs a vCPU until an exit, like KVM_RUN.

It finds the cached block for RIP (one compare while RIP stays on the same
code page, one load in the page's block map), translating code it has not
seen (translate.py), and hands runs of blocks to the hot loop (hot.py).
Whatever the hot loop does not handle itself -- a TLB miss, an unaligned or
device access, a privileged or system instruction, a fault -- goes to the
general path (slowpath.py).  Between those it keeps the budget, the
breakpoints, the STI/MOV SS interrupt shadow and the interrupt window.  The
exit reason is returned and its details are in ``st[XI:]`` (slots.XI_*).
"""

import numpy as np
from numba import njit

from .. import regs as R
from ..memory import HEADROOM, META_CAP, META_USED
from ..mmu import ACC_FETCH, ACC_USER
from . import flags as F
from . import slots as S
from . import units as U
from .access import call_page
from .cache import C_BMAP, C_ENT, C_FP, C_GEN, ENT_WORDS, PAGE
from .hot import HOT_ARGS, HOT_EXIT, HOT_SLOW, host
from .slowpath import K_CACHED, K_ENTRY, K_UNCACHED, SLOW_ARGS, quick_entry
from .translate import TRANSLATE_ARGS

call_slow = U.caller(U.I64, SLOW_ARGS)
call_translate = U.caller(U.I64, TRANSLATE_ARGS)
call_hot = U.caller(U.I64, HOT_ARGS)

# "no page entered": not a virtual page number (those are sign-extended 36-bit
# values, so kernel pages in the upper half are negative)
NO_PAGE = np.int64(1) << 62
OFF_MASK = np.int64(0xFFF)


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def page_has_bp(bps, vpn):
    for i in range(bps.shape[0]):
        if (bps[i] >> 12) == vpn:
            return True
    return False


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def bp_hit(bps, rip):
    for i in range(bps.shape[0]):
        if bps[i] == rip:
            return True
    return False


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def irq_ready(st):
    return st[S.IRQ_PENDING] != 0 and (st[R.RFLAGS] & R.FLAG_IF) != 0


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def io_fast(st):
    """Port I/O may be answered in the hot loop: no exit-all switch, and CPL <=
    IOPL or CR0.PE clear, so no TSS bitmap to consult."""
    if (st[S.OPTIONS] & S.OPT_IO_EXIT_ALL) != 0:
        return False
    return (st[R.CR0] & R.CR0_PE) == 0 or st[R.CPL] <= ((st[R.RFLAGS] >> R.FLAG_IOPL_SHIFT) & 3)


@njit(cache=True)
def run_loop(slot_of, data, mfn_of_slot, meta, slot_flags, st, tlb, cc, pos, owner, bps, budget):
    """Run until an exit; returns the exit reason (details in ``st[XI:]``).  Takes
    the memory arrays one by one (fewer to unbox per call: ``words`` and
    ``dwords`` are views of ``data`` made here).  Exits "pool" at once, with
    nothing done, unless HEADROOM free frames are in the pool."""
    if meta[META_CAP] - meta[META_USED] < HEADROOM:
        st[S.XI + S.XI_REASON] = S.EXIT_POOL
        st[S.XI + S.XI_COUNT] = 0
        return S.EXIT_POOL
    words = data.view(np.int64)
    mem = (slot_of, data, words, data.view(np.uint32), mfn_of_slot, meta, slot_flags)
    dc = (cc, pos)
    tf = tlb.reshape(-1)
    fslow = cc[C_FP + U.U_SLOW]
    icount0 = st[R.ICOUNT]
    done = quick_entry(meta, st, cc)
    if done < 0:
        reason = call_slow(fslow, (mem, st, tlb, dc, owner, K_ENTRY, 0, 0, 0, budget))
        done = st[S.STEP_N]
    else:
        reason = np.int64(0)
    left = budget - done
    shadow = st[S.INT_SHADOW] != 0
    st[S.INT_SHADOW] = 0
    skip = st[S.BP_SKIP]
    st[S.BP_SKIP] = -1
    nbp = bps.shape[0]
    rip = st[R.RIP]
    uacc = ACC_USER if st[R.CPL] == 3 else 0
    st[S.UACC] = uacc
    mode64 = st[R.CSBASE_MODE] == R.MODE_LONG64
    st[S.IOFAST] = 1 if io_fast(st) else 0
    fhot = cc[C_FP + U.U_HOT]
    cur_vpn = NO_PAGE
    cp = np.int64(0)
    pb = np.int64(0)
    has_bp = False
    while reason == 0:
        if left <= 0:
            reason = S.EXIT_BUDGET
            st[S.XI + S.XI_REASON] = reason
            break
        kind = K_UNCACHED
        sj = np.int64(0)
        if mode64:
            vpn = rip >> 12
            if vpn != cur_vpn:
                hf = host(tf, rip, uacc | ACC_FETCH)
                cp = np.int64(pos[hf >> 12]) if hf >= 0 else np.int64(0)
                if cp == 0:
                    cp = call_page(cc[C_FP + U.U_PAGE], (mem, st, tlb, dc, rip, uacc))
                    if st[S.STATUS] == S.EXIT_POOL:
                        reason = S.EXIT_POOL
                        break
                    st[S.STATUS] = 0
                if cp > 0:
                    cur_vpn = vpn
                    pb = cc[C_BMAP] + cp * PAGE
                    st[S.PAGEVA] = vpn << 12
                    st[S.HOT_PB] = pb
                    has_bp = nbp > 0 and page_has_bp(bps, vpn)
            if cur_vpn == vpn:
                if has_bp and rip != skip and bp_hit(bps, rip):
                    reason = S.EXIT_BREAKPOINT
                    st[S.XI + S.XI_REASON] = reason
                    st[S.XI + S.XI_A] = rip
                    st[S.BP_SKIP] = rip
                    break
                bi = cc[pb + (rip & OFF_MASK)]
                if bi == 0:
                    bi = call_translate(cc[C_FP + U.U_TRANSLATE], (mem, dc, cp, rip))
                if bi > 0:
                    st[R.RIP] = rip
                    n = call_hot(fhot, (words, st, tf, cc, owner,
                                        1 if (shadow or has_bp) else left))
                    left -= n
                    done += n
                    rip = st[R.RIP]
                    if n > 0:
                        skip = -1
                        if shadow:
                            shadow = False
                            if irq_ready(st):
                                reason = S.EXIT_IRQ
                                st[S.XI + S.XI_REASON] = reason
                                break
                    if st[S.HOT_STOP] == HOT_EXIT:
                        reason = S.EXIT_IO           # details in st[XI:] already
                        break
                    if st[S.HOT_STOP] != HOT_SLOW:
                        continue
                    sj = st[S.HOT_SJ]
                    kind = K_CACHED
        # -- the general path: write the state back, execute, read it again -------------
        info = np.int64(0)
        disp = np.int64(0)
        imm = np.int64(0)
        if kind == K_CACHED:
            g = cc[C_GEN] + 3 * ((sj - cc[C_ENT]) // ENT_WORDS)
            info = cc[g]
            disp = cc[g + 1]
            imm = cc[g + 2]
        elif nbp > 0 and rip != skip and bp_hit(bps, rip):
            reason = S.EXIT_BREAKPOINT
            st[S.XI + S.XI_REASON] = reason
            st[S.XI + S.XI_A] = rip
            st[S.BP_SKIP] = rip
            break
        skip = -1
        st[R.RIP] = rip
        st[R.ICOUNT] = icount0 + done
        r = call_slow(fslow, (mem, st, tlb, dc, owner, kind, info, disp, imm, left))
        n = st[S.STEP_N]
        left -= n
        done += n
        rip = st[R.RIP]
        uacc = ACC_USER if st[R.CPL] == 3 else 0
        st[S.UACC] = uacc
        mode64 = st[R.CSBASE_MODE] == R.MODE_LONG64
        st[S.IOFAST] = 1 if io_fast(st) else 0
        cur_vpn = NO_PAGE
        # An STI / MOV SS shadow covers exactly the next instruction: once that
        # one retired (HLT included, even as it exits) the window is open.
        if st[S.INT_SHADOW] != 0:
            st[S.INT_SHADOW] = 0
            shadow = True
        elif shadow and n > 0:
            shadow = False
        if r != 0:
            reason = r
            break
        if not shadow and irq_ready(st):
            reason = S.EXIT_IRQ
            st[S.XI + S.XI_REASON] = reason
    st[R.RIP] = rip
    F.materialize(st)
    st[S.INT_SHADOW] = 1 if shadow else 0
    st[R.ICOUNT] = icount0 + done
    st[S.XI + S.XI_COUNT] = done
    st[S.LAST_ICOUNT] = done
    return reason
