"""The interpreter loop: runs a vCPU until an exit, like KVM_RUN.

The loop looks up the block of cached instructions that starts at RIP (one
compare while RIP stays on the same page, one load to find the block) and
runs its entries back to back; entries lie next to each other, so the host
fetches the next one while it works on this one.  Each entry's hot word
(ops.py) says what to do: its memory operand, if any, is computed and
checked in the TLB first (one tag compare) and loaded into the TMP slot,
the handler works on register slots, and TMP is stored back if the
instruction writes memory.  Arithmetic flags stay lazy in locals.

Whatever the loop does not handle itself -- a TLB miss, an unaligned or
device access, a privileged or system instruction, a fault -- goes to the
general executor (slowpath.py) with the state written back first.  The exit
reason is returned and its details are in ``st[XI:]`` (slots.XI_*).
"""

import numpy as np
from numba import njit

from .. import regs as R
from ..mmu import ACC_FETCH, ACC_USER, ACC_WRITE, NTLB, T_INFO, T_SLOT, T_TAG
from . import flags as F
from . import ops as O
from . import slots as S
from . import units as U
from .access import PAGE_ARGS, call_page
from .arith import muls64
from .cache import C_BMAP, C_ENT, C_FP, C_GEN, ENT_WORDS, PAGE
from .slowpath import K_CACHED, K_ENTRY, K_UNCACHED, SLOW_ARGS
from .translate import TRANSLATE_ARGS

call_slow = U.caller(U.I64, SLOW_ARGS)
call_translate = U.caller(U.I64, TRANSLATE_ARGS)
assert PAGE_ARGS[4] == U.I64
assert (T_TAG, T_SLOT, T_INFO) == (0, 2, 3)

# "no page entered": not a virtual page number (those are sign-extended 36-bit
# values, so kernel pages in the upper half are negative)
NO_PAGE = np.int64(1) << 62
OFF_MASK = np.int64(0xFFF)
# word offsets inside an entry, as unsigned indices (no negative-index wrap code)
U0, U1, U2, U3, U4, U5, U6, U7 = (np.uint64(k) for k in range(8))
UE = np.uint64(ENT_WORDS)


@njit(cache=True)
def page_has_bp(bps, vpn):
    for i in range(bps.shape[0]):
        if (bps[i] >> 12) == vpn:
            return True
    return False


@njit(cache=True)
def bp_hit(bps, rip):
    for i in range(bps.shape[0]):
        if bps[i] == rip:
            return True
    return False


@njit(cache=True)
def irq_ready(st):
    return st[S.IRQ_PENDING] != 0 and (st[R.RFLAGS] & R.FLAG_IF) != 0


@njit(cache=True)
def io_fast(st):
    """Port I/O may be answered in the loop: no exit-all switch, and CPL <= IOPL
    (or paging-era real... CR0.PE clear), so no TSS bitmap to consult."""
    if (st[S.OPTIONS] & S.OPT_IO_EXIT_ALL) != 0:
        return False
    return (st[R.CR0] & R.CR0_PE) == 0 or st[R.CPL] <= ((st[R.RFLAGS] >> R.FLAG_IOPL_SHIFT) & 3)


@njit(cache=True)
def wload(words, h, msz):
    """Load 1, 2, 4 or 8 naturally aligned bytes at pool byte index ``h``."""
    v = words[h >> 3]
    if msz == 3:
        return v
    return (v >> ((h & 7) << 3)) & ((np.int64(1) << (8 << msz)) - 1)


@njit(cache=True)
def wstore(words, h, msz, v):
    """Store the low 1, 2, 4 or 8 bytes of ``v`` at pool byte index ``h`` (aligned)."""
    i = h >> 3
    if msz == 3:
        words[i] = v
        return
    sh = (h & 7) << 3
    m = ((np.int64(1) << (8 << msz)) - 1) << sh
    words[i] = (words[i] & ~m) | ((v << sh) & m)


@njit(cache=True)
def host(tf, va, acc):
    """``mmu.tlb_host`` on the TLB viewed flat (``tlb.reshape(-1)``): the pool byte
    index of ``va`` on a hit, else -1."""
    vpn = va >> 12
    i = np.uint64((vpn & (NTLB - 1)) << 2)
    if tf[i] == vpn and ((tf[i + U3] >> acc) & 1) != 0 and tf[i + U2] > 0:
        return (tf[i + U2] << 12) | (va & 0xFFF)
    return np.int64(-1)


@njit(cache=True)
def canonical(v):
    return ((v << 16) >> 16) == v


@njit(cache=True)
def sext(v, szc):
    sh = 64 - (8 << szc)
    return (v << sh) >> sh


@njit(cache=True)
def run_loop(slot_of, data, words, dwords, mfn_of_slot, meta, slot_flags, st, tlb, cc, pos,
             owner, bps, budget):
    """Run until an exit; returns the exit reason (details in ``st[XI:]``)."""
    mem = (slot_of, data, words, dwords, mfn_of_slot, meta, slot_flags)
    dc = (cc, pos)
    tf = tlb.reshape(-1)
    fslow = cc[C_FP + U.U_SLOW]
    icount0 = st[R.ICOUNT]
    reason = call_slow(fslow, (mem, st, tlb, dc, owner, K_ENTRY, 0, 0, 0, budget))
    done = st[S.STEP_N]
    left = budget - done
    shadow = st[S.INT_SHADOW] != 0
    st[S.INT_SHADOW] = 0
    skip = st[S.BP_SKIP]
    st[S.BP_SKIP] = -1
    nbp = bps.shape[0]
    rip = st[R.RIP]
    lk = st[S.LF_KIND]
    la = st[S.LF_A]
    lb = st[S.LF_B]
    lr = st[S.LF_RES]
    lc = st[S.LF_C]
    uacc = ACC_USER if st[R.CPL] == 3 else 0
    mode64 = st[R.CSBASE_MODE] == R.MODE_LONG64
    iofast = io_fast(st)
    eo = cc[C_ENT]
    cur_vpn = NO_PAGE
    cp = np.int64(0)
    pva = np.int64(0)
    pb = np.int64(0)
    has_bp = False
    while reason == 0:
        if left <= 0:
            reason = S.EXIT_BUDGET
            st[S.XI + S.XI_REASON] = reason
            break
        kind = K_UNCACHED
        sj = U0
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
                    pva = vpn << 12
                    pb = cc[C_BMAP] + cp * PAGE
                    st[S.PAGEVA] = pva
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
                    hdr = np.uint64(eo + ENT_WORDS * bi)
                    n = cc[hdr]
                    nrun = np.int64(1) if (shadow or has_bp) else (n if n <= left else left)
                    skip = -1
                    nrip = pva + cc[hdr + U1]
                    j = hdr + UE
                    jend = j + np.uint64(ENT_WORDS * nrun)
                    while j < jend:
                        w = cc[j]
                        hh = np.int64(-1)
                        msz = np.int64(3)
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
                                if hh < 0 or (ea & ((np.int64(1) << msz) - 1)) != 0:
                                    sj = j
                                    break
                                if macc != O.MACC_WRITE:
                                    st[S.TMP] = wload(words, hh, msz)
                        hd = w & 0xFF
                        d = cc[j + U6]
                        s = cc[j + U7]
                        if hd == O.H_ADD:
                            m = cc[j + U4]
                            a = st[d]
                            la = a & m
                            lb = (cc[j + U1] if (w & O.W_IMM) != 0 else st[s]) & m
                            lr = (la + lb) & m
                            lk = (F.K_ADD << 2) | ((w >> O.W_SZ_SHIFT) & 3)
                            st[d] = (a & cc[j + U5]) | lr
                        elif hd == O.H_SUB:
                            m = cc[j + U4]
                            a = st[d]
                            la = a & m
                            lb = (cc[j + U1] if (w & O.W_IMM) != 0 else st[s]) & m
                            lr = (la - lb) & m
                            lk = (F.K_SUB << 2) | ((w >> O.W_SZ_SHIFT) & 3)
                            st[d] = (a & cc[j + U5]) | lr
                        elif hd == O.H_CMP:
                            m = cc[j + U4]
                            la = st[d] & m
                            lb = (cc[j + U1] if (w & O.W_IMM) != 0 else st[s]) & m
                            lr = (la - lb) & m
                            lk = (F.K_SUB << 2) | ((w >> O.W_SZ_SHIFT) & 3)
                        elif hd == O.H_AND:
                            m = cc[j + U4]
                            a = st[d]
                            la = a & m
                            lb = (cc[j + U1] if (w & O.W_IMM) != 0 else st[s]) & m
                            lr = la & lb
                            lk = (F.K_LOGIC << 2) | ((w >> O.W_SZ_SHIFT) & 3)
                            st[d] = (a & cc[j + U5]) | lr
                        elif hd == O.H_TEST:
                            m = cc[j + U4]
                            la = st[d] & m
                            lb = (cc[j + U1] if (w & O.W_IMM) != 0 else st[s]) & m
                            lr = la & lb
                            lk = (F.K_LOGIC << 2) | ((w >> O.W_SZ_SHIFT) & 3)
                        elif hd == O.H_OR:
                            m = cc[j + U4]
                            a = st[d]
                            la = a & m
                            lb = (cc[j + U1] if (w & O.W_IMM) != 0 else st[s]) & m
                            lr = la | lb
                            lk = (F.K_LOGIC << 2) | ((w >> O.W_SZ_SHIFT) & 3)
                            st[d] = (a & cc[j + U5]) | lr
                        elif hd == O.H_XOR:
                            m = cc[j + U4]
                            a = st[d]
                            la = a & m
                            lb = (cc[j + U1] if (w & O.W_IMM) != 0 else st[s]) & m
                            lr = la ^ lb
                            lk = (F.K_LOGIC << 2) | ((w >> O.W_SZ_SHIFT) & 3)
                            st[d] = (a & cc[j + U5]) | lr
                        elif hd == O.H_ADC:
                            m = cc[j + U4]
                            c = F.cf_fast(lk, la, lb, lr, lc)
                            if c < 0:
                                c = F.carry_lazy(st, lk, la, lb, lr, lc)
                            lc = c
                            a = st[d]
                            la = a & m
                            lb = (cc[j + U1] if (w & O.W_IMM) != 0 else st[s]) & m
                            lr = (la + lb + c) & m
                            lk = (F.K_ADC << 2) | ((w >> O.W_SZ_SHIFT) & 3)
                            st[d] = (a & cc[j + U5]) | lr
                        elif hd == O.H_SBB:
                            m = cc[j + U4]
                            c = F.cf_fast(lk, la, lb, lr, lc)
                            if c < 0:
                                c = F.carry_lazy(st, lk, la, lb, lr, lc)
                            lc = c
                            a = st[d]
                            la = a & m
                            lb = (cc[j + U1] if (w & O.W_IMM) != 0 else st[s]) & m
                            lr = (la - lb - c) & m
                            lk = (F.K_SBB << 2) | ((w >> O.W_SZ_SHIFT) & 3)
                            st[d] = (a & cc[j + U5]) | lr
                        elif hd == O.H_MOV:
                            v = cc[j + U1] if (w & O.W_IMM) != 0 else st[s]
                            st[d] = (st[d] & cc[j + U5]) | (v & cc[j + U4])
                        elif hd == O.H_JCC:
                            t = F.cond_fast(lk, la, lb, lr, (w >> O.W_SUB_SHIFT) & 15)
                            if t < 0:
                                t = 1 if F.cond_lazy(st, lk, la, lb, lr, lc, (w >> O.W_SUB_SHIFT) & 15) else 0
                            if t != 0:
                                t = pva + cc[j + U1]
                                if not canonical(t):
                                    sj = j
                                    break
                                nrip = t
                        elif hd == O.H_INC:
                            m = cc[j + U4]
                            c = F.cf_fast(lk, la, lb, lr, lc)
                            if c < 0:
                                c = F.carry_lazy(st, lk, la, lb, lr, lc)
                            lc = c
                            a = st[d]
                            la = a & m
                            lb = np.int64(1)
                            lr = (la + 1) & m
                            lk = (F.K_INC << 2) | ((w >> O.W_SZ_SHIFT) & 3)
                            st[d] = (a & cc[j + U5]) | lr
                        elif hd == O.H_DEC:
                            m = cc[j + U4]
                            c = F.cf_fast(lk, la, lb, lr, lc)
                            if c < 0:
                                c = F.carry_lazy(st, lk, la, lb, lr, lc)
                            lc = c
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
                        elif hd == O.H_CALL or hd == O.H_CALLI:
                            sp = st[R.RSP] - 8
                            h2 = host(tf, sp, uacc | ACC_WRITE)
                            t = pva + cc[j + U1] if hd == O.H_CALL else st[s]
                            if h2 < 0 or (sp & 7) != 0 or not canonical(t):
                                sj = j
                                break
                            words[h2 >> 3] = pva + ((w >> O.W_OFF_SHIFT) & OFF_MASK) + \
                                ((w >> O.W_LEN_SHIFT) & 15)
                            st[R.RSP] = sp
                            nrip = t
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
                            nrip = t
                        elif hd == O.H_JMP or hd == O.H_JMPI:
                            t = pva + cc[j + U1] if hd == O.H_JMP else st[s]
                            if not canonical(t):
                                sj = j
                                break
                            nrip = t
                        elif hd == O.H_SHL or hd == O.H_SHR or hd == O.H_SAR:
                            szc = (w >> O.W_SZ_SHIFT) & 3
                            m = cc[j + U4]
                            c = (cc[j + U1] if (w & O.W_IMM) != 0 else st[s]) & (63 if szc == 3 else 31)
                            a = st[d]
                            am = a & m
                            if c == 0:
                                st[d] = (a & cc[j + U5]) | am   # flags kept; a 32-bit shift still zero-extends
                            else:
                                if hd == O.H_SHL:
                                    r = (am << c) & m
                                    lk = (F.K_SHL << 2) | szc
                                elif hd == O.H_SHR:
                                    r = np.int64(np.uint64(am) >> np.uint64(c))
                                    lk = (F.K_SHR << 2) | szc
                                else:
                                    r = (sext(am, szc) >> min(c, (np.int64(8) << szc) - 1)) & m
                                    lk = (F.K_SAR << 2) | szc
                                la = am
                                lb = c
                                lr = r
                                st[d] = (a & cc[j + U5]) | r
                        elif hd == O.H_CMOV:
                            t = F.cond_fast(lk, la, lb, lr, (w >> O.W_SUB_SHIFT) & 15)
                            if t < 0:
                                t = 1 if F.cond_lazy(st, lk, la, lb, lr, lc, (w >> O.W_SUB_SHIFT) & 15) else 0
                            if t != 0:
                                st[d] = (st[d] & cc[j + U5]) | (st[s] & cc[j + U4])
                            elif ((w >> O.W_SZ_SHIFT) & 3) == 2:
                                st[d] &= 0xFFFFFFFF
                        elif hd == O.H_SETCC:
                            t = F.cond_fast(lk, la, lb, lr, (w >> O.W_SUB_SHIFT) & 15)
                            if t < 0:
                                t = 1 if F.cond_lazy(st, lk, la, lb, lr, lc, (w >> O.W_SUB_SHIFT) & 15) else 0
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
                        elif hd == O.H_IN or hd == O.H_OUT:
                            if not iofast:
                                sj = j
                                break
                            port = (cc[j + U1] if (w & O.W_IMM) != 0 else st[s]) & 0xFFFF
                            claimed = False
                            for i in range(np.int64(1) << ((w >> O.W_SZ_SHIFT) & 3)):
                                if owner[(port + i) & 0xFFFF] != 0:
                                    claimed = True
                            if claimed:
                                sj = j
                                break
                            if hd == O.H_IN:
                                st[R.RAX] = (st[R.RAX] & cc[j + U5]) | cc[j + U4]
                        elif hd == O.H_NOP:
                            pass
                        else:
                            sj = j
                            break
                        if (w & O.W_WB) != 0:
                            wstore(words, hh, msz, st[S.TMP])
                        j += UE
                    ran = np.int64((j - hdr) // UE) - 1
                    left -= ran
                    done += ran
                    if sj == U0:
                        if nrun < n:
                            rip = pva + ((cc[jend] >> O.W_OFF_SHIFT) & OFF_MASK)
                        else:
                            rip = nrip
                        if shadow:
                            shadow = False
                            if irq_ready(st):
                                reason = S.EXIT_IRQ
                                st[S.XI + S.XI_REASON] = reason
                        continue
                    rip = pva + ((cc[sj] >> O.W_OFF_SHIFT) & OFF_MASK)
                    kind = K_CACHED
        # -- the general path: write the state back, execute, read it again -------------
        info = np.int64(0)
        disp = np.int64(0)
        imm = np.int64(0)
        if kind == K_CACHED:
            g = cc[C_GEN] + 3 * ((np.int64(sj) - eo) // ENT_WORDS)
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
        st[S.LF_KIND] = lk
        st[S.LF_A] = la
        st[S.LF_B] = lb
        st[S.LF_RES] = lr
        st[S.LF_C] = lc
        st[R.ICOUNT] = icount0 + done
        r = call_slow(fslow, (mem, st, tlb, dc, owner, kind, info, disp, imm, left))
        n = st[S.STEP_N]
        left -= n
        done += n
        rip = st[R.RIP]
        lk = st[S.LF_KIND]
        la = st[S.LF_A]
        lb = st[S.LF_B]
        lr = st[S.LF_RES]
        lc = st[S.LF_C]
        uacc = ACC_USER if st[R.CPL] == 3 else 0
        mode64 = st[R.CSBASE_MODE] == R.MODE_LONG64
        iofast = io_fast(st)
        cur_vpn = NO_PAGE
        if r != 0:
            reason = r
            break
        if st[S.INT_SHADOW] != 0:
            st[S.INT_SHADOW] = 0
            shadow = True
        elif shadow and n > 0:
            shadow = False
        if not shadow and irq_ready(st):
            reason = S.EXIT_IRQ
            st[S.XI + S.XI_REASON] = reason
    st[R.RIP] = rip
    st[S.LF_KIND] = lk
    st[S.LF_A] = la
    st[S.LF_B] = lb
    st[S.LF_RES] = lr
    st[S.LF_C] = lc
    F.materialize(st)
    st[S.INT_SHADOW] = 1 if shadow else 0
    st[R.ICOUNT] = icount0 + done
    st[S.XI + S.XI_COUNT] = done
    st[S.LAST_ICOUNT] = done
    return reason
