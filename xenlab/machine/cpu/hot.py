"""The hot loop proper: run cached blocks back to back on one code page.

The entries of a block lie next to each other, so the host fetches the next
one while it works on this one.  Each entry's hot word (ops.py) says what to
do: its memory operand, if any, is computed and checked in the TLB first
(one tag compare) and loaded into the TMP slot, the handler works on
register slots, and TMP is stored back if the instruction writes memory.
Arithmetic flags stay lazy in locals.

This is a unit (units.py) of its own, called by the run loop (run.py)
through its address: kept apart, its loop gets the host registers to itself
instead of sharing them with the page, translation and slow-path logic
around it.  It returns when RIP leaves the page or reaches code that is not
translated yet, when an instruction needs the general executor, at the
budget (a budget of 1 is how the run loop single-steps).
"""

import numpy as np
from numba import njit

from .. import regs as R
from ..mmu import ACC_USER, ACC_WRITE, NTLB, T_INFO, T_SLOT, T_TAG
from . import flags as F
from . import ops as O
from . import slots as S
from . import units as U
from .arith import muls64
from .cache import C_ENT, ENT_WORDS

assert (T_TAG, T_SLOT, T_INFO) == (0, 2, 3)

# why run_blocks stopped (st[HOT_STOP]); HOT_EXIT: a port exit, set up in st[XI:]
HOT_PAGE, HOT_SLOW, HOT_BUDGET, HOT_EXIT = range(4)
# run_blocks(words, st, flat tlb, cc, owner, budget) -> instructions retired
HOT_ARGS = (U.I64A, U.I64A, U.I64A, U.I64A, U.I16A, U.I64)

OFF_MASK = np.int64(0xFFF)
# word offsets inside an entry, as unsigned indices (no negative-index wrap code)
U0, U1, U2, U3, U4, U5 = (np.uint64(k) for k in range(6))
UE = np.uint64(ENT_WORDS)


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def host(tf, va, acc):
    """``mmu.tlb_host`` on the TLB viewed flat (``tlb.reshape(-1)``): the pool byte
    index of ``va`` on a hit, else -1."""
    vpn = va >> 12
    i = np.uint64((vpn & (NTLB - 1)) << 2)
    if tf[i] == vpn and ((tf[i + U3] >> acc) & 1) != 0 and tf[i + U2] > 0:
        return (tf[i + U2] << 12) | (va & 0xFFF)
    return np.int64(-1)


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def wload(words, h, msz):
    """Load 1, 2, 4 or 8 naturally aligned bytes at pool byte index ``h``."""
    v = words[h >> 3]
    if msz == 3:
        return v
    return (v >> ((h & 7) << 3)) & ((np.int64(1) << (8 << msz)) - 1)


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def wstore(words, h, msz, v):
    """Store the low 1, 2, 4 or 8 bytes of ``v`` at pool byte index ``h`` (aligned)."""
    i = h >> 3
    if msz == 3:
        words[i] = v
        return
    sh = (h & 7) << 3
    m = ((np.int64(1) << (8 << msz)) - 1) << sh
    words[i] = (words[i] & ~m) | ((v << sh) & m)


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def canonical(v):
    return ((v << 16) >> 16) == v


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def sext(v, szc):
    sh = 64 - (8 << szc)
    return (v << sh) >> sh


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def port_exit(st, w, port, mask, pva):
    """Set up the exit of an IN/OUT to a claimed port, as access.external does
    for the general path, plus X_FAST: the next run finishes the instruction
    (AL/AX/EAX from the value supplied, RIP past it) without executing it again."""
    out = (w >> O.W_SUB_SHIFT) & 1
    szc = (w >> O.W_SZ_SHIFT) & 3
    x = S.XI
    st[x + S.XI_REASON] = S.EXIT_IO
    st[x + S.XI_A] = port
    st[x + S.XI_B] = np.int64(1) << szc
    st[x + S.XI_C] = out
    st[x + S.XI_D] = st[R.RAX] & mask if out != 0 else 0
    st[x + S.XI_SLOT] = S.X_VAL0
    st[S.X_VAL0] = mask                    # what a read gets unless a device answers
    st[S.X_PENDING] = 1
    st[S.X_NDONE] = 0
    st[S.X_SEEN] = 0
    st[S.X_RIP] = pva + ((w >> O.W_OFF_SHIFT) & OFF_MASK)
    st[S.X_FAST] = (S.XF_VALID | ((w >> O.W_LEN_SHIFT) & S.XF_LEN_MASK)
                    | (S.XF_OUT if out != 0 else 0) | (szc << S.XF_SZ_SHIFT))


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def run_blocks(words, st, tf, cc, owner, budget):
    """Unit U_HOT: run the blocks of the current code page (st[PAGEVA], its block
    map at st[HOT_PB]) from st[RIP].  Returns the instructions retired; st[RIP]
    is where it stopped and st[HOT_STOP] why (HOT_*; for HOT_SLOW the entry is
    at st[HOT_SJ])."""
    rip = st[R.RIP]
    pva = st[S.PAGEVA]
    pb = st[S.HOT_PB]
    uacc = st[S.UACC]
    iofast = st[S.IOFAST] != 0
    lk = st[S.LF_KIND]
    la = st[S.LF_A]
    lb = st[S.LF_B]
    lr = st[S.LF_RES]
    eo = cc[C_ENT]
    left = budget
    stop = HOT_PAGE
    xit = False
    brip = np.int64(-1)                  # where the block at hdr starts (none yet)
    hdr = U0
    n = np.int64(0)
    while True:
        if left <= 0:
            stop = HOT_BUDGET
            break
        if rip != brip:                  # (a block looping to itself skips the lookup)
            if (rip >> 12) != (pva >> 12):
                break
            bi = cc[np.uint64(pb + (rip & OFF_MASK))]
            if bi == 0:
                break
            hdr = np.uint64(eo + ENT_WORDS * bi)
            n = cc[hdr]
            brip = rip
        nrun = n if n <= left else left
        st[S.HOT_NRIP] = pva + cc[hdr + U1]       # the fallthrough, unless a branch is taken
        sj = U0
        j = hdr + UE
        jend = j + np.uint64(ENT_WORDS * nrun)
        while j < jend:
            w = cc[j]
            if (w & (O.W_MEM | O.W_IMMS)) != 0:
                if (w & O.W_IMMS) != 0:
                    st[S.IMM] = cc[j + U1]
                if (w & O.W_MEM) != 0:
                    a3 = cc[j + U3]
                    ea = (cc[j + U2] + st[a3 & 127] + (st[(a3 >> 7) & 127] << ((a3 >> 14) & 3))
                          + st[(a3 >> 16) & 127])
                    macc = (w >> O.W_MACC_SHIFT) & 3
                    if macc == O.MACC_NONE:
                        st[S.TMP] = ea
                    else:
                        msz = (w >> O.W_MSZ_SHIFT) & 3
                        hh = host(tf, ea, uacc | (macc >> 1))
                        st[S.HOT_HH] = hh
                        if hh < 0 or (ea & ((np.int64(1) << msz) - 1)) != 0:
                            sj = j
                            break
                        if macc != O.MACC_WRITE:
                            st[S.TMP] = wload(words, hh, msz)
            hd = w & 63
            d = (w >> O.W_D_SHIFT) & 127
            s = (w >> O.W_S_SHIFT) & 127
            if hd == O.H_SLOW:
                sj = j
                break
            elif hd == O.H_ADD:
                m = cc[j + U4]
                a = st[d]
                la = a & m
                lb = st[s] & m
                lr = (la + lb) & m
                lk = (F.K_ADD << 2) | ((w >> O.W_SZ_SHIFT) & 3)
                st[d] = (a & cc[j + U5]) | lr
            elif hd == O.H_SUB:
                m = cc[j + U4]
                a = st[d]
                la = a & m
                lb = st[s] & m
                lr = (la - lb) & m
                lk = (F.K_SUB << 2) | ((w >> O.W_SZ_SHIFT) & 3)
                st[d] = (a & cc[j + U5]) | lr
            elif hd == O.H_CMP:
                m = cc[j + U4]
                la = st[d] & m
                lb = st[s] & m
                lr = (la - lb) & m
                lk = (F.K_SUB << 2) | ((w >> O.W_SZ_SHIFT) & 3)
            elif hd == O.H_AND:
                m = cc[j + U4]
                a = st[d]
                la = a & m
                lb = st[s] & m
                lr = la & lb
                lk = (F.K_LOGIC << 2) | ((w >> O.W_SZ_SHIFT) & 3)
                st[d] = (a & cc[j + U5]) | lr
            elif hd == O.H_TEST:
                m = cc[j + U4]
                la = st[d] & m
                lb = st[s] & m
                lr = la & lb
                lk = (F.K_LOGIC << 2) | ((w >> O.W_SZ_SHIFT) & 3)
            elif hd == O.H_OR:
                m = cc[j + U4]
                a = st[d]
                la = a & m
                lb = st[s] & m
                lr = la | lb
                lk = (F.K_LOGIC << 2) | ((w >> O.W_SZ_SHIFT) & 3)
                st[d] = (a & cc[j + U5]) | lr
            elif hd == O.H_XOR:
                m = cc[j + U4]
                a = st[d]
                la = a & m
                lb = st[s] & m
                lr = la ^ lb
                lk = (F.K_LOGIC << 2) | ((w >> O.W_SZ_SHIFT) & 3)
                st[d] = (a & cc[j + U5]) | lr
            elif hd == O.H_ADC:
                m = cc[j + U4]
                c = F.cf_fast(lk, la, lb, lr, st[S.LF_C])
                if c < 0:
                    c = F.carry_lazy(st, lk, la, lb, lr, st[S.LF_C])
                st[S.LF_C] = c
                a = st[d]
                la = a & m
                lb = st[s] & m
                lr = (la + lb + c) & m
                lk = (F.K_ADC << 2) | ((w >> O.W_SZ_SHIFT) & 3)
                st[d] = (a & cc[j + U5]) | lr
            elif hd == O.H_SBB:
                m = cc[j + U4]
                c = F.cf_fast(lk, la, lb, lr, st[S.LF_C])
                if c < 0:
                    c = F.carry_lazy(st, lk, la, lb, lr, st[S.LF_C])
                st[S.LF_C] = c
                a = st[d]
                la = a & m
                lb = st[s] & m
                lr = (la - lb - c) & m
                lk = (F.K_SBB << 2) | ((w >> O.W_SZ_SHIFT) & 3)
                st[d] = (a & cc[j + U5]) | lr
            elif hd == O.H_MOV:
                v = st[s]
                st[d] = (st[d] & cc[j + U5]) | (v & cc[j + U4])
            elif hd == O.H_JCC:
                t = F.cond_fast(lk, la, lb, lr, (w >> O.W_SUB_SHIFT) & 15)
                if t < 0:
                    t = 1 if F.cond_lazy(st, lk, la, lb, lr, st[S.LF_C], (w >> O.W_SUB_SHIFT) & 15) else 0
                if t != 0:
                    t = pva + cc[j + U1]
                    if not canonical(t):
                        sj = j
                        break
                    st[S.HOT_NRIP] = t
            elif hd == O.H_INC:
                m = cc[j + U4]
                c = F.cf_fast(lk, la, lb, lr, st[S.LF_C])
                if c < 0:
                    c = F.carry_lazy(st, lk, la, lb, lr, st[S.LF_C])
                st[S.LF_C] = c
                a = st[d]
                la = a & m
                lb = np.int64(1)
                lr = (la + 1) & m
                lk = (F.K_INC << 2) | ((w >> O.W_SZ_SHIFT) & 3)
                st[d] = (a & cc[j + U5]) | lr
            elif hd == O.H_DEC:
                m = cc[j + U4]
                c = F.cf_fast(lk, la, lb, lr, st[S.LF_C])
                if c < 0:
                    c = F.carry_lazy(st, lk, la, lb, lr, st[S.LF_C])
                st[S.LF_C] = c
                a = st[d]
                la = a & m
                lb = np.int64(1)
                lr = (la - 1) & m
                lk = (F.K_DEC << 2) | ((w >> O.W_SZ_SHIFT) & 3)
                st[d] = (a & cc[j + U5]) | lr
            elif hd == O.H_MOVZX:
                s2 = (w >> O.W_MSZ_SHIFT) & 3
                v = st[s] & ((np.int64(2) << ((8 << s2) - 1)) - 1)
                st[d] = (st[d] & cc[j + U5]) | (v & cc[j + U4])
            elif hd == O.H_MOVSX:
                v = sext(st[s], (w >> O.W_MSZ_SHIFT) & 3)
                st[d] = (st[d] & cc[j + U5]) | (v & cc[j + U4])
            elif hd == O.H_PUSH:
                sp = st[R.RSP] - 8
                h2 = host(tf, sp, uacc | ACC_WRITE)
                if h2 < 0 or (sp & 7) != 0:
                    sj = j
                    break
                words[h2 >> 3] = cc[j + U1] if (w & O.W_IMM) != 0 else st[s]
                st[R.RSP] = sp
            elif hd == O.H_POP:
                sp = st[R.RSP]
                h2 = host(tf, sp, uacc)
                if h2 < 0 or (sp & 7) != 0:
                    sj = j
                    break
                st[R.RSP] = sp + 8
                st[d] = words[h2 >> 3]
            elif hd == O.H_CALL:
                sp = st[R.RSP] - 8
                h2 = host(tf, sp, uacc | ACC_WRITE)
                t = pva + cc[j + U1] if (w & O.W_IMM) != 0 else st[s]
                if h2 < 0 or (sp & 7) != 0 or not canonical(t):
                    sj = j
                    break
                words[h2 >> 3] = pva + ((w >> O.W_OFF_SHIFT) & OFF_MASK) + \
                    ((w >> O.W_LEN_SHIFT) & 15)
                st[R.RSP] = sp
                st[S.HOT_NRIP] = t
            elif hd == O.H_RET:
                sp = st[R.RSP]
                h2 = host(tf, sp, uacc)
                if h2 < 0 or (sp & 7) != 0:
                    sj = j
                    break
                t = words[h2 >> 3]
                if not canonical(t):
                    sj = j
                    break
                st[R.RSP] = sp + 8
                st[S.HOT_NRIP] = t
            elif hd == O.H_JMP:
                t = pva + cc[j + U1] if (w & O.W_IMM) != 0 else st[s]
                if not canonical(t):
                    sj = j
                    break
                st[S.HOT_NRIP] = t
            elif hd == O.H_SHIFT:
                kind = (w >> O.W_SUB_SHIFT) & 3
                szc = (w >> O.W_SZ_SHIFT) & 3
                m = cc[j + U4]
                c = (cc[j + U1] if (w & O.W_IMM) != 0 else st[s]) & (63 if szc == 3 else 31)
                a = st[d]
                am = a & m
                if c == 0:
                    st[d] = (a & cc[j + U5]) | am   # flags kept; a 32-bit shift still zero-extends
                else:
                    if kind == 0:
                        r = (am << c) & m
                        lk = (F.K_SHL << 2) | szc
                    elif kind == 1:
                        r = np.int64(np.uint64(am) >> np.uint64(c))
                        lk = (F.K_SHR << 2) | szc
                    else:
                        bits = np.int64(8) << szc
                        r = (sext(am, szc) >> (c if c < bits else bits - 1)) & m
                        lk = (F.K_SAR << 2) | szc
                    la = am
                    lb = c
                    lr = r
                    st[d] = (a & cc[j + U5]) | r
            elif hd == O.H_CMOV:
                t = F.cond_fast(lk, la, lb, lr, (w >> O.W_SUB_SHIFT) & 15)
                if t < 0:
                    t = 1 if F.cond_lazy(st, lk, la, lb, lr, st[S.LF_C], (w >> O.W_SUB_SHIFT) & 15) else 0
                if t != 0:
                    st[d] = (st[d] & cc[j + U5]) | (st[s] & cc[j + U4])
                elif ((w >> O.W_SZ_SHIFT) & 3) == 2:
                    st[d] &= 0xFFFFFFFF
            elif hd == O.H_SETCC:
                t = F.cond_fast(lk, la, lb, lr, (w >> O.W_SUB_SHIFT) & 15)
                if t < 0:
                    t = 1 if F.cond_lazy(st, lk, la, lb, lr, st[S.LF_C], (w >> O.W_SUB_SHIFT) & 15) else 0
                st[d] = (st[d] & ~np.int64(0xFF)) | t
            elif hd == O.H_NEG:
                m = cc[j + U4]
                a = st[d]
                la = np.int64(0)
                lb = a & m
                lr = (0 - lb) & m
                lk = (F.K_SUB << 2) | ((w >> O.W_SZ_SHIFT) & 3)
                st[d] = (a & cc[j + U5]) | lr
            elif hd == O.H_NOT:
                a = st[d]
                st[d] = (a & cc[j + U5]) | (~a & cc[j + U4])
            elif hd == O.H_IMUL:
                szc = (w >> O.W_SZ_SHIFT) & 3
                m = cc[j + U4]
                a = st[s]
                b = cc[j + U1] if (w & O.W_IMM) != 0 else st[d]
                if szc == 3:
                    r, hi = muls64(a, b)
                    ovf = hi != (r >> 63)
                else:
                    p = sext(a & m, szc) * sext(b & m, szc)
                    r = p & m
                    ovf = sext(r, szc) != p
                lk = (F.K_MUL << 2) | szc
                la = np.int64(1) if ovf else np.int64(0)
                lb = np.int64(0)
                lr = r
                st[d] = (st[d] & cc[j + U5]) | r
            elif hd == O.H_XCHG:
                m = cc[j + U4]
                keep = cc[j + U5]
                a = st[d]
                b = st[s]
                st[d] = (a & keep) | (b & m)
                st[s] = (st[s] & keep) | (a & m)
            elif hd == O.H_IO:
                if not iofast:
                    sj = j
                    break
                port = (cc[j + U1] if (w & O.W_IMM) != 0 else st[s]) & 0xFFFF
                claimed = False
                for i in range(np.int64(1) << ((w >> O.W_SZ_SHIFT) & 3)):
                    if owner[(port + i) & 0xFFFF] != 0:
                        claimed = True
                if claimed:
                    port_exit(st, w, port, cc[j + U4], pva)
                    xit = True
                    sj = j
                    break
                if (w >> O.W_SUB_SHIFT) & 1 == 0:         # IN: nobody answers, all ones
                    st[R.RAX] = (st[R.RAX] & cc[j + U5]) | cc[j + U4]
            elif hd == O.H_CMP_J:
                # (The Jcc part is written out in each of the three fused handlers on
                # purpose: a shared helper or a common tail after the switch cost the
                # ALU loop 15-30%; see docs/performance.md rule 7.)
                m = cc[j + U4]
                la = st[d] & m
                lb = st[s] & m
                lr = (la - lb) & m
                lk = (F.K_SUB << 2) | ((w >> O.W_SZ_SHIFT) & 3)
                if j + UE < jend:                         # the Jcc runs in this step too
                    cond = (w >> O.W_SUB_SHIFT) & 15
                    t = F.cond_fast(lk, la, lb, lr, cond)
                    if t < 0:
                        t = 1 if F.cond_lazy(st, lk, la, lb, lr, st[S.LF_C], cond) else 0
                    j += UE
                    if t != 0:
                        t = pva + cc[j + U1]
                        if not canonical(t):
                            sj = j                        # the Jcc raises #GP on the general path
                            break
                        st[S.HOT_NRIP] = t
            elif hd == O.H_TEST_J:
                m = cc[j + U4]
                la = st[d] & m
                lb = st[s] & m
                lr = la & lb
                lk = (F.K_LOGIC << 2) | ((w >> O.W_SZ_SHIFT) & 3)
                if j + UE < jend:                         # the Jcc runs in this step too
                    cond = (w >> O.W_SUB_SHIFT) & 15
                    t = F.cond_fast(lk, la, lb, lr, cond)
                    if t < 0:
                        t = 1 if F.cond_lazy(st, lk, la, lb, lr, st[S.LF_C], cond) else 0
                    j += UE
                    if t != 0:
                        t = pva + cc[j + U1]
                        if not canonical(t):
                            sj = j                        # the Jcc raises #GP on the general path
                            break
                        st[S.HOT_NRIP] = t
            elif hd == O.H_DEC_J:
                m = cc[j + U4]
                c = F.cf_fast(lk, la, lb, lr, st[S.LF_C])
                if c < 0:
                    c = F.carry_lazy(st, lk, la, lb, lr, st[S.LF_C])
                st[S.LF_C] = c
                a = st[d]
                la = a & m
                lb = np.int64(1)
                lr = (la - 1) & m
                lk = (F.K_DEC << 2) | ((w >> O.W_SZ_SHIFT) & 3)
                st[d] = (a & cc[j + U5]) | lr
                if j + UE < jend:                         # the Jcc runs in this step too
                    cond = (w >> O.W_SUB_SHIFT) & 15
                    t = F.cond_fast(lk, la, lb, lr, cond)
                    if t < 0:
                        t = 1 if F.cond_lazy(st, lk, la, lb, lr, st[S.LF_C], cond) else 0
                    j += UE
                    if t != 0:
                        t = pva + cc[j + U1]
                        if not canonical(t):
                            sj = j                        # the Jcc raises #GP on the general path
                            break
                        st[S.HOT_NRIP] = t
            elif hd == O.H_NOP:
                pass
            elif hd == O.H_ADD_NF:                    # 32/64-bit: nothing of the register to keep
                b = st[s]
                st[d] = (st[d] + b) & cc[j + U4]
            elif hd == O.H_SUB_NF:                    # 32/64-bit: nothing of the register to keep
                b = st[s]
                st[d] = (st[d] - b) & cc[j + U4]
            elif hd == O.H_AND_NF:                    # 32/64-bit: nothing of the register to keep
                b = st[s]
                st[d] = (st[d] & b) & cc[j + U4]
            elif hd == O.H_OR_NF:                    # 32/64-bit: nothing of the register to keep
                b = st[s]
                st[d] = (st[d] | b) & cc[j + U4]
            elif hd == O.H_XOR_NF:                    # 32/64-bit: nothing of the register to keep
                b = st[s]
                st[d] = (st[d] ^ b) & cc[j + U4]
            elif hd == O.H_INC_NF:
                st[d] = (st[d] + 1) & cc[j + U4]
            elif hd == O.H_DEC_NF:
                st[d] = (st[d] - 1) & cc[j + U4]
            elif hd == O.H_NEG_NF:
                st[d] = (0 - st[d]) & cc[j + U4]
            elif hd == O.NHOT - 1:
                sj = j                      # (a case for 63 spares the switch a range check)
                break
            else:
                sj = j
                break
            if (w & O.W_WB) != 0:
                wstore(words, st[S.HOT_HH], (w >> O.W_MSZ_SHIFT) & 3, st[S.TMP])
            j += UE
        if sj != U0:
            left -= np.int64((j - hdr) // UE) - 1
            rip = pva + ((cc[sj] >> O.W_OFF_SHIFT) & OFF_MASK)
            st[S.HOT_SJ] = np.int64(sj)
            stop = HOT_EXIT if xit else HOT_SLOW
            break
        left -= nrun                     # all of them ran (a fused Jcc ends at jend too)
        if nrun < n:
            rip = pva + ((cc[jend] >> O.W_OFF_SHIFT) & OFF_MASK)
        else:
            rip = st[S.HOT_NRIP]
    st[R.RIP] = rip
    st[S.LF_KIND] = lk
    st[S.LF_A] = la
    st[S.LF_B] = lb
    st[S.LF_RES] = lr
    st[S.HOT_STOP] = stop
    return budget - left


U.register(U.U_HOT, run_blocks, HOT_ARGS)
