"""Arithmetic of the integer instructions: ALU ops with lazy flags, shifts,
rotates, multiply and divide (SDM Vol. 2 instruction pages)."""

import numpy as np
from numba import njit

from .. import regs as R
from . import flags as F
from . import ops as O
from . import slots as S
from .regfile import MASKS, sext

SIGNS = F.SIGNS


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def alu(st, sub, szc, a, b):
    """``a sub b`` at size ``szc`` (operands zero-extended); records the flags."""
    m = MASKS[szc]
    a &= m
    b &= m
    if sub == O.ADD:
        r = a + b
        k = F.K_ADD
    elif sub == O.OR:
        r = a | b
        k = F.K_LOGIC
    elif sub == O.ADC:
        c = F.carry(st)
        st[S.LF_C] = c
        r = a + b + c
        k = F.K_ADC
    elif sub == O.SBB:
        c = F.carry(st)
        st[S.LF_C] = c
        r = a - b - c
        k = F.K_SBB
    elif sub == O.AND or sub == O.TEST:
        r = a & b
        k = F.K_LOGIC
    elif sub == O.XOR:
        r = a ^ b
        k = F.K_LOGIC
    else:
        r = a - b
        k = F.K_SUB
    r &= m
    st[S.LF_KIND] = k * 4 + szc
    st[S.LF_A] = a
    st[S.LF_B] = b
    st[S.LF_RES] = r
    return r


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def incdec(st, dec, szc, a):
    m = MASKS[szc]
    c = F.carry(st)
    st[S.LF_C] = c
    a &= m
    r = (a - 1 if dec else a + 1) & m
    st[S.LF_KIND] = (F.K_DEC if dec else F.K_INC) * 4 + szc
    st[S.LF_A] = a
    st[S.LF_B] = 1
    st[S.LF_RES] = r
    return r


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def szp(szc, r):
    """SF, ZF and PF of a result (for eagerly computed flags)."""
    m = MASKS[szc]
    r &= m
    f = F.PARITY[r & 0xFF]
    if r == 0:
        f |= R.FLAG_ZF
    if (r & SIGNS[szc]) != 0:
        f |= R.FLAG_SF
    return f


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def shift(st, sub, szc, a, count):
    """ROL ROR RCL RCR SHL SHR SAL SAR (SDM Vol. 2 "SAL/SAR/SHL/SHR", "RCL/RCR/ROL/ROR").

    A masked count of 0 changes nothing, flags included.  Undefined flags:
    OF for counts > 1 follows the count-1 rule; AF is cleared.
    """
    bits = 8 << szc
    m = MASKS[szc]
    sign = SIGNS[szc]
    c = count & (63 if szc == 3 else 31)
    a &= m
    if c == 0:
        return a
    f = F.get_flags(st)
    cf = f & 1
    of = 0
    if sub == 0 or sub == 1:           # ROL / ROR
        k = c % bits
        if k == 0:
            r = a
        elif sub == 0:
            r = ((a << k) | ((a >> (bits - k)) & ((np.int64(1) << k) - 1))) & m
        else:
            r = (((a >> k) & ((np.int64(1) << (bits - k)) - 1)) | (a << (bits - k))) & m
        if sub == 0:
            cf = r & 1
            of = (1 if (r & sign) != 0 else 0) ^ cf
        else:
            cf = 1 if (r & sign) != 0 else 0
            of = cf ^ ((r >> (bits - 2)) & 1)
        nf = (f & ~np.int64(R.FLAG_CF | R.FLAG_OF)) | cf | (of << 11)
    elif sub == 2 or sub == 3:         # RCL / RCR through CF
        k = c % (bits + 1) if szc < 2 else c
        r = a
        for _ in range(k):
            if sub == 2:
                out = 1 if (r & sign) != 0 else 0
                r = ((r << 1) | cf) & m
                cf = out
            else:
                out = r & 1
                r = ((r >> 1) & (m & ~sign)) | (sign if cf else 0)
                cf = out
        if sub == 2:
            of = (1 if (r & sign) != 0 else 0) ^ cf
        else:
            of = (1 if (r & sign) != 0 else 0) ^ ((r >> (bits - 2)) & 1)
        nf = (f & ~np.int64(R.FLAG_CF | R.FLAG_OF)) | cf | (of << 11)
    else:
        if sub == 4 or sub == 6:       # SHL / SAL
            r = (a << c) & m if c < 64 else np.int64(0)
            cf = (a >> (bits - c)) & 1 if c <= bits else 0
            of = (1 if (r & sign) != 0 else 0) ^ cf
        elif sub == 5:                 # SHR
            r = ((a >> c) & (m >> (c - 1) >> 1)) if c < bits else np.int64(0)
            if szc == 3:
                r = (a >> c) & ((np.int64(1) << (64 - c)) - 1) if c > 0 else a
            cf = (a >> (c - 1)) & 1 if c <= bits else 0
            of = 1 if (a & sign) != 0 else 0
        else:                          # SAR
            sa = sext(a, szc)
            cc = c if c < bits else bits - 1
            r = (sa >> cc) & m
            cf = (sa >> (c - 1 if c - 1 < bits else bits - 1)) & 1
            of = 0
        nf = (f & ~np.int64(F.ARITH)) | szp(szc, r) | cf | (of << 11)
    F.set_arith(st, nf)
    return r


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def shxd(st, right, szc, a, b, count):
    """SHLD / SHRD: shift ``a``, filling from ``b``; count 0 changes nothing."""
    bits = 8 << szc
    m = MASKS[szc]
    c = count & (63 if szc == 3 else 31)
    a &= m
    b &= m
    if c == 0:
        return a
    f = F.get_flags(st)
    if szc == 1 and c > 16:            # undefined: model as a shift of the 32-bit pair
        c = c & 15 if (c & 15) != 0 else 16
    if not right:
        r = ((a << c) | (((b >> (bits - c)) & ((np.int64(1) << c) - 1)) if c < bits else b)) & m
        cf = (a >> (bits - c)) & 1
    else:
        lo = (a >> c) & ((np.int64(1) << (bits - c)) - 1) if c < bits else np.int64(0)
        r = (lo | (b << (bits - c))) & m
        cf = (a >> (c - 1)) & 1
    of = 1 if ((r ^ a) & F.SIGNS[szc]) != 0 else 0
    F.set_arith(st, (f & ~np.int64(F.ARITH)) | szp(szc, r) | cf | (of << 11))
    return r


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def mulu64(a, b):
    """Unsigned 64x64 -> 128 product as (low, high) int64 words."""
    m32 = np.int64(0xFFFFFFFF)
    a0 = a & m32
    a1 = (a >> 32) & m32
    b0 = b & m32
    b1 = (b >> 32) & m32
    p00 = a0 * b0
    p01 = a0 * b1
    p10 = a1 * b0
    p11 = a1 * b1
    mid = ((p00 >> 32) & m32) + (p01 & m32) + (p10 & m32)
    lo = (p00 & m32) | (mid << 32)
    hi = p11 + ((p01 >> 32) & m32) + ((p10 >> 32) & m32) + ((mid >> 32) & m32)
    return lo, hi


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def muls64(a, b):
    """Signed 64x64 -> 128 product as (low, high)."""
    lo, hi = mulu64(a, b)
    if a < 0:
        hi -= b
    if b < 0:
        hi -= a
    return lo, hi


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def divu128(hi, lo, d):
    """Unsigned (hi:lo) / d -> (quotient, remainder, overflow) by long division."""
    if not F.ult(hi, d):
        return np.int64(0), np.int64(0), True
    q = np.int64(0)
    r = hi
    for i in range(63, -1, -1):
        top = r < 0                      # bit 63 set before the shift
        r = (r << 1) | ((lo >> i) & 1)
        q <<= 1
        if top or not F.ult(r, d):
            r -= d
            q |= 1
    return q, r, False


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def set_mul_flags(st, szc, lo, overflow):
    """CF = OF = overflow; SF, ZF, PF from the low half, AF clear (undefined by the
    SDM; these are the values QEMU and unicorn produce)."""
    f = szp(szc, lo)
    if overflow:
        f |= R.FLAG_CF | R.FLAG_OF
    F.set_arith(st, f)


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def imul_trunc(st, szc, a, b):
    """Two/three-operand IMUL: the truncated product, CF=OF when it did not fit."""
    if szc == 3:
        lo, hi = muls64(a, b)
        ovf = hi != (lo >> 63)
        r = lo
    else:
        sa = sext(a, szc)
        sb = sext(b, szc)
        p = sa * sb
        r = p & MASKS[szc]
        ovf = sext(r, szc) != p
    set_mul_flags(st, szc, r, ovf)
    return r & MASKS[szc]


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def muldiv(st, sub, szc, src):
    """F6/F7 /4-/7: MUL IMUL DIV IDIV on the accumulator; False means #DE."""
    m = MASKS[szc]
    src &= m
    if szc == 0:
        a = st[R.RAX] & 0xFF
        if sub == 4 or sub == 5:
            if sub == 4:
                p = a * src
                ovf = (p >> 8) != 0
            else:
                p = sext(a, np.int64(0)) * sext(src, np.int64(0))
                ovf = sext(p & 0xFF, np.int64(0)) != p
            st[R.RAX] = (st[R.RAX] & ~np.int64(0xFFFF)) | (p & 0xFFFF)
            set_mul_flags(st, np.int64(0), p, ovf)
            return True
        n = st[R.RAX] & 0xFFFF
        if src == 0:
            return False
        if sub == 6:
            q = n // src
            r = n % src
            if q > 0xFF:
                return False
        else:
            sn = sext(n, np.int64(1))
            sd = sext(src, np.int64(0))
            q = (sn if sn >= 0 else -sn) // (sd if sd >= 0 else -sd)
            if (sn < 0) != (sd < 0):
                q = -q
            r = sn - q * sd
            if q < -128 or q > 127:
                return False
        st[R.RAX] = (st[R.RAX] & ~np.int64(0xFFFF)) | (q & 0xFF) | ((r & 0xFF) << 8)
        return True
    bits = 8 << szc
    a = st[R.RAX] & m
    if sub == 4 or sub == 5:
        if szc == 3:
            lo, hi = mulu64(a, src) if sub == 4 else muls64(a, src)
            ovf = hi != 0 if sub == 4 else hi != (lo >> 63)
        else:
            if sub == 4:
                p = a * src
            else:
                p = sext(a, szc) * sext(src, szc)
            lo = p & m
            hi = (p >> bits) & m
            ovf = hi != 0 if sub == 4 else sext(lo, szc) != p
        write_pair(st, szc, lo, hi)
        set_mul_flags(st, szc, lo, ovf)
        return True
    if src == 0:
        return False
    d_hi = st[R.RDX] & m
    if szc == 3:
        if sub == 6:
            q, r, ovf = divu128(d_hi, a, src)
            if ovf:
                return False
        else:
            neg_n = d_hi < 0
            nlo = a
            nhi = d_hi
            if neg_n:
                nlo = -a
                nhi = ~d_hi + (1 if a == 0 else 0)
            dd = -src if src < 0 else src
            q, r, ovf = divu128(nhi, nlo, dd)
            if ovf:
                return False
            neg_q = neg_n != (src < 0)
            if neg_q:
                if F.ult(np.int64(-(1 << 63)), q):
                    return False
                q = -q
            elif q < 0:
                return False
            if neg_n:
                r = -r
        write_pair(st, szc, q, r)
        return True
    n = (d_hi << bits) | a
    if sub == 6:
        if szc == 2:
            qq, rr, ovf = divu128(np.int64(0), n, src)
            q, r = qq, rr
        else:
            q = n // src
            r = n % src
        if q > m or q < 0:
            return False
    else:
        sn = sext(n, szc + 1) if szc == 1 else n
        sd = sext(src, szc)
        q = (sn if sn >= 0 else -sn) // (sd if sd >= 0 else -sd)
        if (sn < 0) != (sd < 0):
            q = -q
        r = sn - q * sd
        lim = np.int64(1) << (bits - 1)
        if q < -lim or q >= lim:
            return False
    write_pair(st, szc, q & m, r & m)
    return True


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def write_pair(st, szc, lo, hi):
    """rAX = lo, rDX = hi at the operand size (16: merge, 32: zero-extend)."""
    if szc == 3:
        st[R.RAX] = lo
        st[R.RDX] = hi
    elif szc == 2:
        st[R.RAX] = lo & 0xFFFFFFFF
        st[R.RDX] = hi & 0xFFFFFFFF
    else:
        st[R.RAX] = (st[R.RAX] & ~np.int64(0xFFFF)) | (lo & 0xFFFF)
        st[R.RDX] = (st[R.RDX] & ~np.int64(0xFFFF)) | (hi & 0xFFFF)
