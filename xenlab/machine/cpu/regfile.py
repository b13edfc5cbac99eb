"""Register-file helpers shared by the interpreter loop and the general executor.

Tiny functions over the state vector only, so LLVM inlines them (see
docs/performance.md).
"""

import numpy as np
from numba import njit

from .. import regs as R
from ..mmu import ACC_USER, make_fault
from . import ops as O
from . import slots as S

MASKS = np.array([0xFF, 0xFFFF, 0xFFFFFFFF, -1], dtype=np.int64)


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def rget(st, r, szc):
    """Register ``r`` (16-19: AH CH DH BH) at operand size code ``szc``, zero-extended."""
    if r >= 16:
        return (st[r - 16] >> 8) & 0xFF
    if szc == 3:
        return st[r]
    return st[r] & MASKS[szc]


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def rset(st, r, szc, v):
    """Write a register as the hardware does: 32-bit writes zero the upper half,
    8- and 16-bit writes merge (SDM Vol. 1 §3.4.1.1)."""
    if szc == 3:
        st[r] = v
    elif szc == 2:
        st[r] = v & 0xFFFFFFFF
    elif szc == 1:
        st[r] = (st[r] & ~np.int64(0xFFFF)) | (v & 0xFFFF)
    elif r >= 16:
        st[r - 16] = (st[r - 16] & ~np.int64(0xFF00)) | ((v & 0xFF) << 8)
    else:
        st[r] = (st[r] & ~np.int64(0xFF)) | (v & 0xFF)


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def sext(v, szc):
    """Sign-extend the low ``8 << szc`` bits of ``v``."""
    s = 64 - (8 << szc)
    return (v << s) >> s


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def ea_of(st, info, disp, rip_next):
    """Effective (linear) address of the memory operand (SDM Vol. 1 §3.7.5)."""
    ea = disp
    b = (info >> O.I_M_SHIFT) & 31
    if b < 16:
        ea += st[b]
    elif b == O.REG_RIP:
        ea += rip_next
    x = (info >> O.I_X_SHIFT) & 31
    if x < 16:
        ea += st[x] << ((info >> O.I_SC_SHIFT) & 3)
    if (info & O.I_A32) != 0:
        ea &= 0xFFFFFFFF
    seg = (info >> O.I_SEG_SHIFT) & 3
    if seg == 1:
        ea += st[R.FS_BASE]
    elif seg == 2:
        ea += st[R.GS_BASE]
    return ea


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def user_acc(st):
    """ACC_USER for a CPL-3 data access, else 0."""
    return ACC_USER if st[R.CPL] == 3 else 0


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def canonical(v):
    return ((v << 16) >> 16) == v


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def gp(st, code):
    st[S.STATUS] = make_fault(np.int64(13), code)


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def fault(st, vector, code):
    st[S.STATUS] = make_fault(vector, code)


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def stack_fault(st, va):
    """A stack reference (PUSH/POP and friends, or an operand based on RSP/RBP)
    to a non-canonical address is #SS(0), not #GP(0) (SDM Vol. 3 §6.15,
    "Interrupt 12"); True when it raised that fault."""
    if st[R.CSBASE_MODE] == R.MODE_LONG64 and ((va << 16) >> 16) != va:
        st[S.STATUS] = make_fault(np.int64(12), np.int64(0))
        return True
    return False


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def stack_based(info):
    """The memory operand is based on RSP or RBP without an FS/GS override, so
    it refers to the stack segment."""
    b = (info >> O.I_M_SHIFT) & 31
    return (b == R.RSP or b == R.RBP) and ((info >> O.I_SEG_SHIFT) & 3) == 0
