"""The interpreter loop: runs a vCPU until an exit, like KVM_RUN.

Per instruction: find the decoded entry for RIP in the code cache (one
compare when RIP stays on the same page), and for the common instructions
do the work right here, loads and stores included when the TLB hits.
Anything else, or a TLB miss, goes to the general executor.  The exit reason
is returned and its details are in ``xi`` (see slots.XI_*).
"""

import numpy as np
from numba import njit

from .. import memory as M
from .. import regs as R
from ..mmu import ACC_WRITE, fault_code, fault_vector, make_fault, tlb_host
from . import flags as F
from . import ops as O
from . import slots as S
from .access import (DC_DEC, DC_DOUT, DC_FBUF, enter_page, fetch_bytes, sync_caches)
from .arith import alu, incdec
from .decoder import decode
from .exceptions import KIND_EXC, KIND_EXT, KIND_INJECT, KIND_SOFT, has_error_code, raise_event
from .execute import step
from .regfile import canonical, ea_of, rget, rset

PAGE = 4096


@njit(cache=True)
def hload(data, hw, dwords, words, h, szc):
    if szc == 3:
        return words[h >> 3]
    if szc == 2:
        return np.int64(dwords[h >> 2])
    if szc == 1:
        return np.int64(hw[h >> 1])
    return np.int64(data[h])


@njit(cache=True)
def hstore(data, hw, dwords, words, h, szc, v):
    if szc == 3:
        words[h >> 3] = v
    elif szc == 2:
        dwords[h >> 2] = np.uint32(v & 0xFFFFFFFF)
    elif szc == 1:
        hw[h >> 1] = np.uint16(v & 0xFFFF)
    else:
        data[h] = np.uint8(v & 0xFF)


@njit(cache=True)
def decode_at(mem, st, tlb, dc, rip, uacc, e, hbase, mode64):
    """Decode the instruction at ``rip`` into entry ``e`` of the code cache (0:
    scratch, never cached).  ``hbase`` is its byte index in the pool, or -1.
    Returns the entry used, or -1 with STATUS set (#UD, or #PF fetching the
    rest of an instruction that straddles a page)."""
    buf = dc[DC_FBUF]
    out = dc[DC_DOUT]
    dec = dc[DC_DEC]
    off = rip & 0xFFF
    if hbase >= 0 and off <= PAGE - 15:
        data = mem[M.M_DATA]
        for i in range(15):
            buf[i] = data[hbase + i]
        n = decode(buf, np.int64(15), mode64, out)
        err = np.int64(0)
        va = rip
    else:
        nb, err, va = fetch_bytes(mem, st, tlb, dc, rip, uacc, buf)
        n = decode(buf, nb, mode64, out)
    if n == 0:
        st[S.STATUS] = make_fault(np.int64(6), np.int64(0))
        return -1
    if n < 0:
        if err < 0:
            st[S.STATUS] = err
            st[S.FAULT_ADDR] = va
        else:
            st[S.STATUS] = S.EXIT_INTERNAL
        return -1
    if off + n > PAGE or not mode64:
        e = 0
    dec[e, 0] = out[0]
    dec[e, 1] = out[1]
    dec[e, 2] = out[2]
    return e


# "no page entered" for the fetch loop: not a virtual page number (those are
# sign-extended 36-bit values, so kernel pages in the upper half are negative)
NO_PAGE = np.int64(1) << 62


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
def handle_fault(mem, st, tlb, dc, xi, rip):
    """STATUS holds a fault or software interrupt raised at ``rip``: exit or deliver.
    Returns the exit reason, EXIT_NONE if a handler was entered."""
    r = st[S.STATUS]
    soft = st[S.SOFT_INT] != 0
    st[S.SOFT_INT] = 0
    vec = fault_vector(r)
    code = fault_code(r)
    err = code if (not soft and has_error_code(vec)) else np.int64(-1)
    ret = st[S.SOFT_NEXT] if soft else rip
    st[S.STATUS] = 0
    return raise_event(mem, st, tlb, dc, xi, vec, err, KIND_SOFT if soft else KIND_EXC,
                       ret, rip, st[S.FAULT_ADDR])


@njit(cache=True)
def step_uncached(mem, st, tlb, dc, xi, owner, maxel):
    """Fetch, decode (without caching) and execute one instruction."""
    rip = st[R.RIP]
    uacc = 4 if st[R.CPL] == 3 else 0
    e = decode_at(mem, st, tlb, dc, rip, uacc, np.int64(0), np.int64(-1),
                  st[R.CSBASE_MODE] == R.MODE_LONG64)
    if e < 0:
        return 0
    dec = dc[DC_DEC]
    return step(mem, st, tlb, dc, xi, owner, dec[0, 0], dec[0, 1], dec[0, 2], maxel)


@njit(cache=True)
def run_loop(mem, st, tlb, dc, xi, owner, bps, budget):
    """Run until an exit; returns the exit reason (details in ``xi``)."""
    data = mem[M.M_DATA]
    words = mem[M.M_WORDS]
    dwords = mem[M.M_DWORDS]
    hw = data.view(np.uint16)
    dec = dc[DC_DEC]
    for i in range(xi.shape[0]):
        xi[i] = 0
    st[S.STATUS] = 0
    st[S.X_SEEN] = 0
    sync_caches(mem, st, tlb, dc)
    if st[S.X_PENDING] != 0:
        st[S.X_NDONE] += 1
        st[S.X_PENDING] = 0
    if st[S.X_NDONE] != 0 and st[R.RIP] != st[S.X_RIP]:
        st[S.X_NDONE] = 0
    icount0 = st[R.ICOUNT]
    done = np.int64(0)
    left = budget
    reason = S.EXIT_NONE
    skip = st[S.BP_SKIP]
    st[S.BP_SKIP] = -1
    irq_cnt = 0
    if st[S.INT_SHADOW] != 0:
        st[S.INT_SHADOW] = 0
        irq_cnt = 2
    # 1. finish an instruction that exited for a port or MMIO access
    if st[S.X_NDONE] != 0:
        rip = st[R.RIP]
        n = step_uncached(mem, st, tlb, dc, xi, owner, np.int64(1))
        r = st[S.STATUS]
        if r == 0 or r == S.EXIT_HLT or r == S.EXIT_SYSCALL:
            st[S.X_NDONE] = 0
            st[S.X_SEEN] = 0
            done += n
            left -= n
            if r != 0:
                reason = r
                xi[S.XI_REASON] = r
        elif r < 0:
            st[S.X_NDONE] = 0
            st[S.X_SEEN] = 0
            reason = handle_fault(mem, st, tlb, dc, xi, rip)
        else:
            reason = r
        skip = -1
    # 2. an event the hypervisor injected
    if reason == S.EXIT_NONE and st[S.PEND_EVENT] != 0:
        ev = st[S.PEND_EVENT]
        st[S.PEND_EVENT] = 0
        kind = KIND_INJECT if (ev >> 8) == S.EV_EXCEPTION else KIND_EXT
        vec = ev & 0xFF
        err = st[S.PEND_ERROR]
        reason = raise_event(mem, st, tlb, dc, xi, vec, err, kind, st[R.RIP], st[R.RIP],
                             st[R.CR2])
        skip = -1
    # 3. an interrupt window
    if reason == S.EXIT_NONE and irq_cnt == 0 and irq_ready(st):
        reason = S.EXIT_IRQ
        xi[S.XI_REASON] = reason
    cur_vpn = NO_PAGE   # (a vpn of the upper half is negative: -1 is a real page)
    cbase = np.int64(0)
    pbase = np.int64(0)
    has_bp = False
    uacc = 4 if st[R.CPL] == 3 else 0
    mode64 = st[R.CSBASE_MODE] == R.MODE_LONG64
    while reason == S.EXIT_NONE:
        if left <= 0:
            reason = S.EXIT_BUDGET
            xi[S.XI_REASON] = reason
            break
        if irq_cnt != 0:
            irq_cnt -= 1
            if irq_cnt == 0 and irq_ready(st):
                reason = S.EXIT_IRQ
                xi[S.XI_REASON] = reason
                break
        rip = st[R.RIP]
        hot = False
        e = np.int64(0)
        info = np.int64(0)
        if mode64:
            vpn = rip >> 12
            if vpn != cur_vpn:
                cbase, pbase = enter_page(mem, st, tlb, dc, xi, rip, uacc)
                if cbase < 0:
                    cur_vpn = NO_PAGE
                else:
                    cur_vpn = vpn
                    has_bp = bps.shape[0] > 0 and page_has_bp(bps, vpn)
            if cur_vpn != NO_PAGE:
                off = rip & 0xFFF
                e = cbase + off
                info = dec[e, 0]
                if info == 0:
                    e = decode_at(mem, st, tlb, dc, rip, uacc, e, pbase + off, np.bool_(True))
                    info = dec[e, 0] if e >= 0 else np.int64(0)
                if e >= 0:
                    if has_bp and rip != skip and bp_hit(bps, rip):
                        reason = S.EXIT_BREAKPOINT
                        xi[S.XI_REASON] = reason
                        xi[S.XI_A] = rip
                        st[S.BP_SKIP] = rip
                        break
                    skip = -1
                    hot = True
        if hot:
            disp = dec[e, 1]
            imm = dec[e, 2]
            op = info & O.I_OP_MASK
            ln = (info >> O.I_LEN_SHIFT) & 15
            szc = (info >> O.I_SZ_SHIFT) & 3
            nxt = rip + ln
            h = np.int64(-1)
            ismem = (info & O.I_MEM) != 0
            if op >= O.HOT_LIMIT:
                hot = False
            elif ismem:
                macc = (info >> O.I_MACC_SHIFT) & 3
                if macc != 0:
                    ea = ea_of(st, info, disp, nxt)
                    msz = (info >> O.I_SZ2_SHIFT) & 3 if op == O.MOVX else szc
                    h = tlb_host(tlb, ea, uacc | (ACC_WRITE if macc >= 2 else 0))
                    if h < 0 or (h & ((1 << msz) - 1)) != 0:
                        hot = False
        if hot:
            sub = (info >> O.I_SUB_SHIFT) & 15
            reg = (info >> O.I_R_SHIFT) & 31
            rmr = (info >> O.I_M_SHIFT) & 31
            if op == O.MOV_R_RM:
                v = hload(data, hw, dwords, words, h, szc) if ismem else rget(st, rmr, szc)
                rset(st, reg, szc, v)
                st[R.RIP] = nxt
            elif op == O.MOV_RM_R:
                v = rget(st, reg, szc)
                if ismem:
                    hstore(data, hw, dwords, words, h, szc, v)
                else:
                    rset(st, rmr, szc, v)
                st[R.RIP] = nxt
            elif op == O.ALU_RM_R or op == O.ALU_RM_I:
                a = hload(data, hw, dwords, words, h, szc) if ismem else rget(st, rmr, szc)
                b = rget(st, reg, szc) if op == O.ALU_RM_R else imm
                r = alu(st, sub, szc, a, b)
                if sub != O.CMP and sub != O.TEST:
                    if ismem:
                        hstore(data, hw, dwords, words, h, szc, r)
                    else:
                        rset(st, rmr, szc, r)
                st[R.RIP] = nxt
            elif op == O.ALU_R_RM:
                b = hload(data, hw, dwords, words, h, szc) if ismem else rget(st, rmr, szc)
                r = alu(st, sub, szc, rget(st, reg, szc), b)
                if sub != O.CMP:
                    rset(st, reg, szc, r)
                st[R.RIP] = nxt
            elif op == O.JCC:
                st[R.RIP] = nxt + imm if F.cond(st, sub) else nxt
            elif op == O.MOV_RM_I:
                if ismem:
                    hstore(data, hw, dwords, words, h, szc, imm)
                else:
                    rset(st, rmr, szc, imm)
                st[R.RIP] = nxt
            elif op == O.INCDEC:
                a = hload(data, hw, dwords, words, h, szc) if ismem else rget(st, rmr, szc)
                r = incdec(st, sub == 1, szc, a)
                if ismem:
                    hstore(data, hw, dwords, words, h, szc, r)
                else:
                    rset(st, rmr, szc, r)
                st[R.RIP] = nxt
            elif op == O.LEA:
                rset(st, reg, szc, ea_of(st, info & ~np.int64(3 << O.I_SEG_SHIFT), disp, nxt))
                st[R.RIP] = nxt
            elif op == O.JMP_REL:
                st[R.RIP] = nxt + imm
            elif op == O.MOVX:
                s2 = (info >> O.I_SZ2_SHIFT) & 3
                v = hload(data, hw, dwords, words, h, s2) if ismem else rget(st, rmr, s2)
                if (info & O.I_X1) != 0:
                    sh = 64 - (8 << s2)
                    v = (v << sh) >> sh
                rset(st, reg, szc, v)
                st[R.RIP] = nxt
            elif op == O.CALL_REL or op == O.PUSH_R or op == O.PUSH_I or op == O.CALL_RM:
                sp = st[R.RSP] - 8
                h2 = tlb_host(tlb, sp, uacc | ACC_WRITE)
                if h2 < 0 or (h2 & 7) != 0 or szc != 3:
                    hot = False
                else:
                    if op == O.CALL_REL:
                        words[h2 >> 3] = nxt
                        st[R.RIP] = nxt + imm
                    elif op == O.CALL_RM:
                        t = hload(data, hw, dwords, words, h, np.int64(3)) if ismem else st[rmr]
                        if not canonical(t):
                            hot = False
                        else:
                            words[h2 >> 3] = nxt
                            st[R.RIP] = t
                    else:
                        words[h2 >> 3] = st[reg] if op == O.PUSH_R else imm
                        st[R.RIP] = nxt
                    if hot:
                        st[R.RSP] = sp
            elif op == O.RET or op == O.POP_R:
                sp = st[R.RSP]
                h2 = tlb_host(tlb, sp, uacc)
                if h2 < 0 or (h2 & 7) != 0 or szc != 3:
                    hot = False
                else:
                    v = words[h2 >> 3]
                    if op == O.RET:
                        if not canonical(v):
                            hot = False
                        else:
                            st[R.RSP] = sp + 8
                            st[R.RIP] = v
                    else:
                        st[R.RSP] = sp + 8
                        st[reg] = v
                        st[R.RIP] = nxt
            elif op == O.NOP:
                st[R.RIP] = nxt
            elif op == O.CMOV:
                v = hload(data, hw, dwords, words, h, szc) if ismem else rget(st, rmr, szc)
                if F.cond(st, sub):
                    rset(st, reg, szc, v)
                elif szc == 2:
                    st[reg] &= 0xFFFFFFFF
                st[R.RIP] = nxt
            elif op == O.SETCC:
                v = np.int64(1) if F.cond(st, sub) else np.int64(0)
                if ismem:
                    data[h] = np.uint8(v)
                else:
                    rset(st, rmr, np.int64(0), v)
                st[R.RIP] = nxt
            elif op == O.JMP_RM:
                t = hload(data, hw, dwords, words, h, np.int64(3)) if ismem else st[rmr]
                if szc != 3 or not canonical(t):
                    hot = False
                else:
                    st[R.RIP] = t
            else:
                hot = False
            if hot:
                done += 1
                left -= 1
                continue
        # -- the general path ---------------------------------------------------------
        if st[S.STATUS] == 0:
            st[R.ICOUNT] = icount0 + done
            if mode64 and cur_vpn != NO_PAGE:
                n = step(mem, st, tlb, dc, xi, owner, info, dec[e, 1], dec[e, 2], left)
            else:
                n = step_uncached(mem, st, tlb, dc, xi, owner, left)
            done += n
            left -= n
        cur_vpn = NO_PAGE
        r = st[S.STATUS]
        if r != 0:
            if r < 0:
                reason = handle_fault(mem, st, tlb, dc, xi, rip)
            else:
                reason = r
                if xi[S.XI_REASON] == 0:
                    xi[S.XI_REASON] = r
            st[S.STATUS] = 0
            if reason != S.EXIT_NONE:
                break
        uacc = 4 if st[R.CPL] == 3 else 0
        mode64 = st[R.CSBASE_MODE] == R.MODE_LONG64
        if st[S.INT_SHADOW] != 0:
            st[S.INT_SHADOW] = 0
            irq_cnt = 2
        elif irq_ready(st):
            reason = S.EXIT_IRQ
            xi[S.XI_REASON] = reason
            break
    if irq_cnt != 0:
        st[S.INT_SHADOW] = 1
    F.materialize(st)
    st[R.ICOUNT] = icount0 + done
    xi[S.XI_COUNT] = done
    st[S.LAST_ICOUNT] = done
    return reason
