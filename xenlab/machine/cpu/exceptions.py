"""Exceptions and interrupts: exit to the hypervisor, or delivery through the
long-mode IDT (SDM Vol. 3 §6.14 "Exception and Interrupt Handling in 64-bit Mode").

Delivery reads the 16-byte gate, checks it, switches to TSS.RSPn when the
handler runs at a more privileged level (or to an IST stack), aligns the
stack to 16 bytes, pushes SS, RSP, RFLAGS, CS, RIP and the error code, and
enters the handler.  A fault while delivering becomes a double fault by the
rules of SDM Vol. 3 Table 6-5; a fault while delivering a double fault is a
triple fault, which shuts the vCPU down (a "shutdown" exit).
"""

import numpy as np
from numba import njit

from .. import regs as R
from ..mmu import fault_code, fault_vector
from . import flags as F
from . import slots as S
from . import units as U
from .access import vwrite, vread
from .regfile import canonical, fault, gp
from .system import code_mode, read_descriptor

KIND_EXC, KIND_SOFT, KIND_EXT, KIND_INJECT = 0, 1, 2, 3
# raise_event(mem, st, tlb, dc, vec, err, kind, ret_rip, fault_rip, addr) -> exit reason
EVENT_ARGS = (U.MEM_T, U.I64A, U.TLB_T, U.DC_T, U.I64, U.I64, U.I64, U.I64, U.I64, U.I64)


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def has_error_code(vec):
    """Vectors that push an error code (SDM Vol. 3 Table 6-1)."""
    return vec == 8 or vec == 10 or vec == 11 or vec == 12 or vec == 13 or vec == 14 \
        or vec == 17 or vec == 21 or vec == 29 or vec == 30


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def intercepted(st, vec):
    return ((st[S.INTERCEPT0 + (vec >> 6)] >> (vec & 63)) & 1) != 0


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def fault_class(vec):
    """0 benign, 1 contributory, 2 page fault, 3 double fault (Table 6-4)."""
    if vec == 0 or vec == 10 or vec == 11 or vec == 12 or vec == 13:
        return 1
    if vec == 14:
        return 2
    if vec == 8:
        return 3
    return 0


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def deliver(mem, st, tlb, dc, vec, err, kind, ret_rip):
    """Enter the IDT handler for ``vec``; False with STATUS set if that faults."""
    if (st[R.EFER] & R.EFER_LMA) == 0:
        st[S.STATUS] = S.EXIT_SHUTDOWN    # protected-mode IDT delivery is not modelled
        st[S.XI + S.XI_A] = 2
        return False
    ext = 1 if kind != KIND_SOFT else 0
    gate_err = vec * 8 + 2 + ext           # error code naming an IDT entry
    if vec * 16 + 15 > st[R.IDTR_LIMIT]:
        gp(st, gate_err)
        return False
    lo = vread(mem, st, tlb, dc, st[R.IDTR_BASE] + vec * 16, np.int64(8), np.int64(0))
    if st[S.STATUS] != 0:
        return False
    hi = vread(mem, st, tlb, dc, st[R.IDTR_BASE] + vec * 16 + 8, np.int64(8), np.int64(0))
    if st[S.STATUS] != 0:
        return False
    typ = (lo >> 40) & 0xF
    dpl = (lo >> 45) & 3
    cpl = st[R.CPL]
    if typ != 0xE and typ != 0xF:
        gp(st, gate_err)
        return False
    if kind == KIND_SOFT and cpl > dpl:
        gp(st, gate_err)
        return False
    if ((lo >> 47) & 1) == 0:
        fault(st, np.int64(11), gate_err)
        return False
    sel = (lo >> 16) & 0xFFFF
    target = (lo & 0xFFFF) | (((lo >> 48) & 0xFFFF) << 16) | ((hi & 0xFFFFFFFF) << 32)
    ist = (lo >> 32) & 7
    if (sel & 0xFFFC) == 0:
        gp(st, ext)
        return False
    d = read_descriptor(mem, st, tlb, dc, sel)
    if st[S.STATUS] != 0:
        return False
    new_cpl = (d >> 45) & 3
    if ((d >> 40) & 0x18) != 0x18 or code_mode(st, d) != R.MODE_LONG64 or new_cpl > cpl:
        gp(st, (sel & 0xFFFC) + ext)
        return False
    if ((d >> 47) & 1) == 0:
        fault(st, np.int64(11), (sel & 0xFFFC) + ext)
        return False
    if (d >> 42) & 1:                       # conforming: stays at CPL
        new_cpl = cpl
    if not canonical(target):
        gp(st, ext)
        return False
    old_rsp = st[R.RSP]
    old_ss = st[R.SS]
    if ist != 0:
        rsp = vread(mem, st, tlb, dc, st[R.TR_BASE] + 0x24 + (ist - 1) * 8, np.int64(8), np.int64(0))
    elif new_cpl < cpl:
        rsp = vread(mem, st, tlb, dc, st[R.TR_BASE] + 4 + new_cpl * 8, np.int64(8), np.int64(0))
    else:
        rsp = old_rsp
    if st[S.STATUS] != 0:
        return False
    rsp &= ~np.int64(15)
    flags = F.get_flags(st)
    n = 6 if err >= 0 else 5
    acc = np.int64(4) if new_cpl == 3 else np.int64(0)
    cs = st[R.CS]
    for i in range(n):        # the frame, top down: SS, RSP, RFLAGS, CS, RIP, error code
        v = old_ss if i == 0 else (old_rsp if i == 1 else (flags if i == 2 else (
            cs if i == 3 else (ret_rip if i == 4 else err))))
        vwrite(mem, st, tlb, dc, rsp - 8 * (i + 1), np.int64(8), v, acc)
        if st[S.STATUS] != 0:
            return False
    F.materialize(st)
    newf = st[R.RFLAGS] & ~np.int64(R.FLAG_TF | R.FLAG_NT | R.FLAG_RF | R.FLAG_VM)
    if typ == 0xE:
        newf &= ~np.int64(R.FLAG_IF)
    st[R.RFLAGS] = newf
    if new_cpl < cpl:
        st[R.SS] = new_cpl                  # null selector with RPL = new CPL
    st[R.RSP] = rsp - 8 * n
    st[R.CS] = (sel & 0xFFFC) | new_cpl
    st[R.CPL] = new_cpl
    st[R.CSBASE_MODE] = R.MODE_LONG64
    st[R.RIP] = target
    st[S.INT_SHADOW] = 0
    return True


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def raise_event(mem, st, tlb, dc, vec, err, kind, ret_rip, fault_rip, addr):
    """Unit U_EVENT.  An event at an instruction boundary: exit if intercepted, else deliver,
    turning nested faults into #DF or a triple-fault shutdown.  Returns the exit
    reason (EXIT_NONE when the handler was entered)."""
    cur_vec = vec
    cur_err = err
    cur_kind = kind
    cur_ret = ret_rip
    first_class = -1
    while True:
        if (cur_kind == KIND_EXC or cur_kind == KIND_SOFT) and intercepted(st, cur_vec):
            st[S.STATUS] = 0
            if cur_vec == 14:
                st[R.CR2] = addr
            st[S.XI + S.XI_REASON] = S.EXIT_BREAKPOINT if (cur_vec == 3 and cur_kind == KIND_SOFT) \
                else S.EXIT_EXCEPTION
            st[S.XI + S.XI_A] = cur_vec
            st[S.XI + S.XI_B] = cur_err
            st[S.XI + S.XI_C] = addr if cur_vec == 14 else 0
            st[S.XI + S.XI_E] = fault_rip
            st[R.RIP] = fault_rip
            return st[S.XI + S.XI_REASON]
        if cur_vec == 14 and (cur_kind == KIND_EXC or cur_kind == KIND_INJECT):
            st[R.CR2] = addr
        st[S.STATUS] = 0
        if deliver(mem, st, tlb, dc, cur_vec, cur_err, cur_kind, cur_ret):
            return S.EXIT_NONE
        r = st[S.STATUS]
        if r > 0:
            return r                        # shutdown (no IDT delivery in this mode)
        nvec = fault_vector(r)
        ncode = fault_code(r)
        if nvec == 14:
            addr = st[S.FAULT_ADDR]
        c1 = fault_class(cur_vec) if (cur_kind == KIND_EXC or cur_kind == KIND_INJECT) else 0
        c2 = fault_class(nvec)
        if c1 == 3:
            st[S.STATUS] = S.EXIT_SHUTDOWN
            st[S.XI + S.XI_REASON] = S.EXIT_SHUTDOWN
            st[S.XI + S.XI_A] = S.SHUT_TRIPLE_FAULT
            st[R.RIP] = fault_rip
            return S.EXIT_SHUTDOWN
        if (c1 == 1 and c2 == 1) or (c1 == 2 and (c2 == 1 or c2 == 2)):
            cur_vec = 8
            cur_err = 0
        else:
            cur_vec = nvec
            cur_err = ncode if has_error_code(nvec) else -1
        cur_kind = KIND_EXC
        cur_ret = fault_rip
        first_class = c1


U.register(U.U_EVENT, raise_event, EVENT_ARGS)
