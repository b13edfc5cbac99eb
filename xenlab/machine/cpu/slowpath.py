"""The general path, as one unit the interpreter loop calls: execute one
instruction in full generality (cached or fetched and decoded here), turn a
fault into an exit or an IDT delivery, and the work at the start of a run
(caches, completing an instruction that exited for a device, injected
events, the interrupt window).

``slow(..., kind, info, disp, imm, maxel)`` returns the exit reason (0: go
on) and leaves the number of instructions it retired in ``st[STEP_N]``.
"""

import numpy as np
from numba import njit

from .. import memory as M
from .. import regs as R
from ..mmu import fault_code, fault_vector, make_fault
from . import slots as S
from . import units as U
from .access import fetch_bytes, sync_caches
from .cache import C_CODE_GEN, C_CODEW, C_DOUT, C_FBUF, C_FP, C_MEM_GEN
from .decoder import DECODE_ARGS
from .exceptions import EVENT_ARGS, KIND_EXC, KIND_EXT, KIND_INJECT, KIND_SOFT, has_error_code
from .execute import step

K_ENTRY, K_CACHED, K_UNCACHED = 0, 1, 2
SLOW_ARGS = (U.MEM_T, U.I64A, U.TLB_T, U.DC_T, U.I16A, U.I64, U.I64, U.I64, U.I64, U.I64)

call_decode = U.caller(U.I64, DECODE_ARGS)
call_event = U.caller(U.I64, EVENT_ARGS)


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def raise_event(mem, st, tlb, dc, vec, err, kind, ret_rip, fault_rip, addr):
    return call_event(dc[0][C_FP + U.U_EVENT],
                      (mem, st, tlb, dc, vec, err, kind, ret_rip, fault_rip, addr))


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def handle_fault(mem, st, tlb, dc, rip):
    """STATUS holds a fault or software interrupt raised at ``rip``: exit or deliver.
    Returns the exit reason, 0 if a handler was entered."""
    r = st[S.STATUS]
    soft = st[S.SOFT_INT] != 0
    st[S.SOFT_INT] = 0
    vec = fault_vector(r)
    code = fault_code(r)
    err = code if (not soft and has_error_code(vec)) else np.int64(-1)
    ret = st[S.SOFT_NEXT] if soft else rip
    st[S.STATUS] = 0
    return raise_event(mem, st, tlb, dc, vec, err, KIND_SOFT if soft else KIND_EXC,
                       ret, rip, st[S.FAULT_ADDR])


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def fetch_decode(mem, st, tlb, dc):
    """Fetch and decode the instruction at RIP into the decoder output words;
    False with STATUS set (#UD, a fetch fault, or code in MMIO)."""
    cc = dc[0]
    fb = cc[C_FBUF]
    buf = cc[fb:fb + 16]
    do = cc[C_DOUT]
    out = cc[do:do + 3]
    uacc = 4 if st[R.CPL] == 3 else 0
    nb, err, va = fetch_bytes(mem, st, tlb, dc, st[R.RIP], uacc, buf)
    n = call_decode(cc[C_FP + U.U_DECODE],
                    (buf, nb, st[R.CSBASE_MODE] == R.MODE_LONG64, out))
    if n > 0:
        return True
    if n == 0:
        st[S.STATUS] = make_fault(np.int64(6), np.int64(0))       # #UD
    elif err < 0:
        st[S.STATUS] = err
        st[S.FAULT_ADDR] = va
    else:
        st[S.STATUS] = S.EXIT_INTERNAL
        st[S.XI + S.XI_A] = S.INTERNAL_FETCH_MMIO
    return False


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def finish(mem, st, tlb, dc, rip):
    """After an instruction: its exit reason, or the fault it raised handled."""
    r = st[S.STATUS]
    if r == 0:
        return np.int64(0)
    if r < 0:
        return handle_fault(mem, st, tlb, dc, rip)
    st[S.STATUS] = 0
    if st[S.XI + S.XI_REASON] == 0:
        st[S.XI + S.XI_REASON] = r
    return r


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def execute_one(mem, st, tlb, dc, owner, kind, info, disp, imm, maxel):
    """Execute the instruction at RIP (decoded already when ``kind`` is K_CACHED)."""
    rip = st[R.RIP]
    if kind == K_UNCACHED:
        if not fetch_decode(mem, st, tlb, dc):
            return finish(mem, st, tlb, dc, rip)
        cc = dc[0]
        do = cc[C_DOUT]
        info = cc[do]
        disp = cc[do + 1]
        imm = cc[do + 2]
    st[S.STEP_N] = step(mem, st, tlb, dc, owner, info, disp, imm, maxel)
    return finish(mem, st, tlb, dc, rip)


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def complete_port_exit(st, fast):
    """Finish an IN/OUT whose exit the hot loop set up (hot.port_exit): an IN
    writes the value into AL/AX/EAX (EAX zero-extends into RAX, as any 32-bit
    register write in 64-bit mode), and RIP moves past the instruction."""
    if (fast & S.XF_OUT) == 0:
        szc = (fast >> S.XF_SZ_SHIFT) & 3
        v = st[S.X_VAL0]
        if szc == 2:
            st[R.RAX] = v & 0xFFFFFFFF
        else:
            m = (np.int64(1) << (8 << szc)) - 1
            st[R.RAX] = (st[R.RAX] & ~m) | (v & m)
    st[R.RIP] = st[R.RIP] + (fast & S.XF_LEN_MASK)
    st[S.X_NDONE] = 0
    st[S.X_SEEN] = 0


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def begin_run(st):
    """The bookkeeping every run starts with: no exit details yet, a read that
    exited counts as done, and it is forgotten if RIP was moved meanwhile."""
    for i in range(S.NEXIT):
        st[S.XI + i] = 0
    st[S.STATUS] = 0
    st[S.X_SEEN] = 0
    if st[S.X_PENDING] != 0:
        st[S.X_NDONE] += 1
        st[S.X_PENDING] = 0
    if st[S.X_NDONE] != 0 and st[R.RIP] != st[S.X_RIP]:
        st[S.X_NDONE] = 0
    fast = st[S.X_FAST]
    st[S.X_FAST] = 0
    return fast


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def quick_entry(meta, st, cc):
    """The start of a run when there is nothing for :func:`run_entry` to do but
    finish a port exit the hot loop took: caches in step, no event, no
    interrupt waiting.  Returns the instructions retired (0 or 1), or -1 when
    the run needs the general entry (then nothing was changed)."""
    g = meta[M.META_GEN]
    if (cc[C_MEM_GEN] != g or st[S.MEM_GEN_SEEN] != g or cc[C_CODEW] != meta[M.META_CODE_WRITES]
            or st[S.CODE_GEN_SEEN] != cc[C_CODE_GEN] or st[S.PEND_EVENT] != 0
            or st[S.IRQ_PENDING] != 0):
        return np.int64(-1)
    if st[S.X_PENDING] != 0:
        if st[S.X_FAST] == 0 or st[R.RIP] != st[S.X_RIP]:
            return np.int64(-1)
    elif st[S.X_NDONE] != 0:
        return np.int64(-1)
    fast = begin_run(st)
    if fast == 0:
        return np.int64(0)
    complete_port_exit(st, fast)
    st[S.INT_SHADOW] = 0
    st[S.BP_SKIP] = -1
    return np.int64(1)


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def run_entry(mem, st, tlb, dc, owner, budget):
    """The start of a run: catch up with the caches, finish an instruction that
    exited for a port or MMIO access, deliver an injected event, and open the
    interrupt window unless an STI / MOV SS shadow covers the next instruction."""
    fast = begin_run(st)
    sync_caches(mem, st, tlb, dc)
    shadow = st[S.INT_SHADOW] != 0
    done = np.int64(0)
    reason = np.int64(0)
    if st[S.X_NDONE] != 0 and fast != 0:
        complete_port_exit(st, fast)
        done = np.int64(1)
        shadow = False
        st[S.BP_SKIP] = -1
    elif st[S.X_NDONE] != 0:
        reason = execute_one(mem, st, tlb, dc, owner, np.int64(K_UNCACHED), np.int64(0),
                             np.int64(0), np.int64(0), np.int64(1))
        n = st[S.STEP_N]
        if reason != S.EXIT_IO and reason != S.EXIT_MMIO and reason != S.EXIT_INTERNAL \
                and reason != S.EXIT_POOL:
            st[S.X_NDONE] = 0
            st[S.X_SEEN] = 0
        done += n
        if n > 0:
            shadow = False
        st[S.BP_SKIP] = -1
    if reason == 0 and st[S.PEND_EVENT] != 0:
        ev = st[S.PEND_EVENT]
        st[S.PEND_EVENT] = 0
        kind = KIND_INJECT if (ev >> 8) == S.EV_EXCEPTION else KIND_EXT
        reason = raise_event(mem, st, tlb, dc, ev & 0xFF, st[S.PEND_ERROR], kind, st[R.RIP],
                             st[R.RIP], st[R.CR2])
        shadow = False
        st[S.BP_SKIP] = -1
    if reason == 0 and not shadow and st[S.IRQ_PENDING] != 0 and \
            (st[R.RFLAGS] & R.FLAG_IF) != 0:
        reason = S.EXIT_IRQ
        st[S.XI + S.XI_REASON] = reason
    st[S.INT_SHADOW] = 1 if shadow else 0
    st[S.STEP_N] = done
    return reason


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def slow(mem, st, tlb, dc, owner, kind, info, disp, imm, maxel):
    """Unit U_SLOW: see the module docstring."""
    st[S.STEP_N] = 0
    if kind == K_ENTRY:
        return run_entry(mem, st, tlb, dc, owner, maxel)
    return execute_one(mem, st, tlb, dc, owner, kind, info, disp, imm, maxel)


U.register(U.U_SLOW, slow, SLOW_ARGS)
