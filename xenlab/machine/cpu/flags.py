"""Arithmetic flags, computed lazily (SDM Vol. 1 §3.4.3.1, Appendix A).

A flag-setting instruction records its operation kind, operands and result
(LF_KIND, LF_A, LF_B, LF_RES, LF_C in the state; locals in the hot loop);
the flags are worked out only when something reads them, and a Jcc tests
its condition straight from the record.  ``LF_KIND == 0`` means RFLAGS
itself holds the arithmetic flags.  Kind = operation << 2 | size code.

Operations and what the record holds: ADD/ADC/SUB/SBB (a, b, result, carry
in), LOGIC (CF = OF = 0), INC/DEC (c is the CF they keep), SHL/SHR/SAR (a,
the count 1..63, result), MUL (a = 1 if the product overflowed).  Where the
SDM leaves a flag undefined: logic ops and shifts clear AF, shifts by more
than one compute OF by the one-bit rule, MUL sets SF ZF PF from the low half
(QEMU's choice).
"""

import numpy as np
from numba import njit

from .. import regs as R
from . import slots as S

K_ADD, K_ADC, K_SUB, K_SBB, K_LOGIC, K_INC, K_DEC, K_SHL, K_SHR, K_SAR, K_MUL = range(1, 12)
ARITH = R.FLAG_CF | R.FLAG_PF | R.FLAG_AF | R.FLAG_ZF | R.FLAG_SF | R.FLAG_OF
MIN = np.int64(-(1 << 63))

# PF is set when the low byte of the result has an even number of 1 bits.
PARITY = np.array([R.FLAG_PF if bin(i).count("1") % 2 == 0 else 0 for i in range(256)],
                  dtype=np.int64)
MASKS = np.array([0xFF, 0xFFFF, 0xFFFFFFFF, -1], dtype=np.int64)
SIGNS = np.array([0x80, 0x8000, 0x80000000, -(1 << 63)], dtype=np.int64)


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def ult(a, b):
    """Unsigned a < b on int64 words."""
    return (a ^ MIN) < (b ^ MIN)


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def carry_of(kind, a, b, res, c):
    """CF of a recorded operation."""
    op = kind >> 2
    bits = 8 << (kind & 3)
    m = MASKS[kind & 3]
    a &= m
    b &= m
    r = res & m
    if op == K_ADD:
        return ult(r, a)
    if op == K_SUB:
        return ult(a, b)
    if op == K_ADC:
        return ult(r, a) or (c != 0 and r == a)
    if op == K_SBB:
        return ult(a, b) or (c != 0 and a == b)
    if op == K_LOGIC:
        return False
    if op == K_SHL:
        return b <= bits and ((a >> (bits - b)) & 1) != 0
    if op == K_SHR:
        return b <= bits and ((a >> (b - 1)) & 1) != 0
    if op == K_SAR:
        s = 64 - bits
        return (((a << s) >> s) >> (b - 1 if b < bits else bits - 1)) & 1 != 0
    if op == K_MUL:
        return a != 0
    return c != 0                      # INC/DEC keep CF


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def compute(kind, a, b, res, c):
    """The six arithmetic flags of a recorded operation, as RFLAGS bits."""
    sz = kind & 3
    op = kind >> 2
    m = MASKS[sz]
    sign = SIGNS[sz]
    r = res & m
    f = PARITY[r & 0xFF]
    if r == 0:
        f |= R.FLAG_ZF
    if (r & sign) != 0:
        f |= R.FLAG_SF
    cf = carry_of(kind, a, b, res, c)
    if cf:
        f |= R.FLAG_CF
    if op == K_LOGIC or op == K_SAR:
        return f
    if op == K_SHL:
        return f | (R.FLAG_OF if ((r & sign) != 0) != cf else 0)
    if op == K_SHR:
        return f | (R.FLAG_OF if (a & sign) != 0 else 0)
    if op == K_MUL:
        return f | (R.FLAG_OF if cf else 0)
    a &= m
    b &= m
    if op == K_ADD or op == K_ADC:
        if ((a ^ r) & (b ^ r) & sign) != 0:
            f |= R.FLAG_OF
    elif op == K_SUB or op == K_SBB:
        if ((a ^ b) & (a ^ r) & sign) != 0:
            f |= R.FLAG_OF
    elif op == K_INC:
        if r == sign & m:
            f |= R.FLAG_OF
    elif op == K_DEC:
        if r == ((sign - 1) & m):
            f |= R.FLAG_OF
    f |= (a ^ b ^ r) & R.FLAG_AF
    return f


@njit(cache=True)
def get_flags(st):
    """RFLAGS with the arithmetic flags worked out."""
    k = st[S.LF_KIND]
    if k == 0:
        return st[R.RFLAGS]
    return (st[R.RFLAGS] & ~np.int64(ARITH)) | compute(k, st[S.LF_A], st[S.LF_B],
                                                        st[S.LF_RES], st[S.LF_C])


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def materialize(st):
    """Fold the lazy record into RFLAGS (before anything reads RFLAGS directly)."""
    if st[S.LF_KIND] != 0:
        st[R.RFLAGS] = get_flags(st)
        st[S.LF_KIND] = 0


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def set_arith(st, f):
    """Set the six arithmetic flags to ``f``'s, keeping the others."""
    materialize(st)
    st[R.RFLAGS] = (st[R.RFLAGS] & ~np.int64(ARITH)) | (f & ARITH)


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def carry_lazy(st, k, a, b, res, c):
    """The current CF as 0/1, from a record (RFLAGS when ``k`` is 0)."""
    if k == 0:
        return st[R.RFLAGS] & 1
    return 1 if carry_of(k, a, b, res, c) else 0


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def carry(st):
    """The current CF as 0/1."""
    return carry_lazy(st, st[S.LF_KIND], st[S.LF_A], st[S.LF_B], st[S.LF_RES], st[S.LF_C])


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def cond_flags(f, cc):
    """Condition ``cc`` (SDM Vol. 1 Appendix B) from an RFLAGS value."""
    c = cc >> 1
    if c == 0:
        t = (f & R.FLAG_OF) != 0
    elif c == 1:
        t = (f & R.FLAG_CF) != 0
    elif c == 2:
        t = (f & R.FLAG_ZF) != 0
    elif c == 3:
        t = (f & (R.FLAG_CF | R.FLAG_ZF)) != 0
    elif c == 4:
        t = (f & R.FLAG_SF) != 0
    elif c == 5:
        t = (f & R.FLAG_PF) != 0
    elif c == 6:
        t = ((f >> 7) & 1) != ((f >> 11) & 1)
    else:
        t = (f & R.FLAG_ZF) != 0 or ((f >> 7) & 1) != ((f >> 11) & 1)
    return t != ((cc & 1) != 0)


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def cond_lazy(st, k, a, b, res, c, cc):
    """Condition ``cc`` straight from a record where that is cheap: ZF, and the
    comparisons after SUB/CMP and after logic ops; anything else computes."""
    if k == 0:
        return cond_flags(st[R.RFLAGS], cc)
    cl = cc >> 1
    sz = k & 3
    m = MASKS[sz]
    neg = (cc & 1) != 0
    if cl == 2:
        return ((res & m) == 0) != neg
    op = k >> 2
    if op == K_SUB and cl != 0 and cl != 5:
        a &= m
        b &= m
        if cl == 1:
            t = ult(a, b)
        elif cl == 3:
            t = not ult(b, a)
        elif cl == 4:
            t = (res & SIGNS[sz]) != 0
        else:
            sh = 64 - (8 << sz)
            sa = (a << sh) >> sh
            sb = (b << sh) >> sh
            t = sa < sb if cl == 6 else sa <= sb
        return t != neg
    if op == K_LOGIC and cl != 5:
        s = (res & SIGNS[sz]) != 0
        if cl == 0 or cl == 1:
            t = False
        elif cl == 3:
            t = (res & m) == 0
        elif cl == 4 or cl == 6:
            t = s
        else:
            t = s or (res & m) == 0
        return t != neg
    return cond_flags(compute(k, a, b, res, c), cc)


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def cond(st, cc):
    """Condition ``cc`` of the current flags."""
    return cond_lazy(st, st[S.LF_KIND], st[S.LF_A], st[S.LF_B], st[S.LF_RES], st[S.LF_C], cc)


# -- the interpreter loop's fast cases (scalars only, inlined into the loop) --------

@njit(cache=True, inline="always")
def cf_fast(k, a, b, res, c):
    """CF of a record for the common kinds (operands masked, as the loop keeps
    them); -1 when the general ``carry_lazy`` must decide."""
    op = k >> 2
    if op == K_SUB:
        return np.int64(1) if (a ^ MIN) < (b ^ MIN) else np.int64(0)
    if op == K_ADD:
        return np.int64(1) if (res ^ MIN) < (a ^ MIN) else np.int64(0)
    if op == K_LOGIC:
        return np.int64(0)
    if op == K_INC or op == K_DEC:
        return c
    return np.int64(-1)


@njit(cache=True, inline="always")
def cond_fast(k, a, b, res, cc):
    """Condition ``cc`` from a record with masked operands: 1/0, or -1 when the
    general ``cond_lazy`` must decide (flags in RFLAGS, or a rarer case)."""
    if k == 0:
        return np.int64(-1)
    cl = cc >> 1
    neg = cc & 1
    if cl == 2:
        return (np.int64(1) if res == 0 else np.int64(0)) ^ neg
    op = k >> 2
    sh = 64 - (8 << (k & 3))
    if op == K_SUB:
        if cl == 1:
            t = (a ^ MIN) < (b ^ MIN)
        elif cl == 3:
            t = (a ^ MIN) <= (b ^ MIN)
        elif cl == 4:
            t = ((res << sh) >> sh) < 0
        elif cl == 6:
            t = ((a << sh) >> sh) < ((b << sh) >> sh)
        elif cl == 7:
            t = ((a << sh) >> sh) <= ((b << sh) >> sh)
        else:
            return np.int64(-1)
        return (np.int64(1) if t else np.int64(0)) ^ neg
    if op == K_LOGIC and (cl == 4 or cl == 6):
        return (np.int64(1) if ((res << sh) >> sh) < 0 else np.int64(0)) ^ neg
    return np.int64(-1)
