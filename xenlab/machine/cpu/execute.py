"""The general executor: any decoded instruction, with every memory access
through the slow paths of access.py (page walks, page-straddling accesses,
MMIO exits, code-page stores, faults).

The interpreter loop (run.py) handles the common instructions in place when
their memory operand hits the TLB, and calls :func:`step` for everything
else.  Handlers commit registers only after the last access that can fault
or exit, so a faulting instruction leaves the state as it was (RIP at the
instruction) and an exiting one can be re-executed to completion.

``step`` returns the number of instructions (REP elements) it retired, 0 when
``st[STATUS]`` holds a fault (< 0) or an exit reason (> 0).
"""

import numpy as np
from numba import njit

from .. import regs as R
from ..mmu import ACC_WRITE
from . import flags as F
from . import ops as O
from . import slots as S
from . import units as U
from .access import vread, vwrite
from .cache import C_FP, C_SAVE
from .arith import alu, imul_trunc, incdec, muldiv, shift, shxd
from .regfile import (MASKS, canonical, ea_of, fault, gp, rget, rset, sext, stack_based,
                      stack_fault, user_acc)
from .system import push_val, pop_val

MIN = np.int64(-(1 << 63))


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def rm_addr(st, info, disp):
    return ea_of(st, info, disp, st[R.RIP] + ((info >> O.I_LEN_SHIFT) & 15))


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def rm_read(mem, st, tlb, dc, info, disp, szc, acc):
    """The r/m operand's value (acc may include ACC_WRITE for read-modify-write)."""
    if (info & O.I_MEM) != 0:
        ea = rm_addr(st, info, disp)
        if stack_based(info) and stack_fault(st, ea):
            return np.int64(0)
        return vread(mem, st, tlb, dc, ea, 1 << szc, acc)
    return rget(st, (info >> O.I_M_SHIFT) & 31, szc)


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def rm_write(mem, st, tlb, dc, info, disp, szc, v, acc):
    if (info & O.I_MEM) != 0:
        ea = rm_addr(st, info, disp)
        if stack_based(info) and stack_fault(st, ea):
            return
        vwrite(mem, st, tlb, dc, ea, 1 << szc, v, acc)
    else:
        rset(st, (info >> O.I_M_SHIFT) & 31, szc, v)


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def branch(st, target, szc):
    """Near branch: 64-bit targets must be canonical (#GP(0)); 32-bit code wraps."""
    if st[R.CSBASE_MODE] != R.MODE_LONG64:
        target &= 0xFFFFFFFF
    elif not canonical(target):
        gp(st, np.int64(0))
        return False
    st[R.RIP] = target
    return True


call_exec = U.caller(U.I64, U.EXEC_ARGS)


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def fields(st, info):
    """The decoded fields every executor unit starts from: handler, size code,
    sub-operation, reg operand, next RIP, user access bit, operand mask."""
    szc = (info >> O.I_SZ_SHIFT) & 3
    return (info & O.I_OP_MASK, szc, (info >> O.I_SUB_SHIFT) & 15, (info >> O.I_R_SHIFT) & 31,
            st[R.RIP] + ((info >> O.I_LEN_SHIFT) & 15), user_acc(st), MASKS[szc])


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def retire(st, nxt):
    """An instruction's end: 0 if it faulted or exits, else RIP moves on and 1."""
    if st[S.STATUS] != 0:
        return 0
    st[R.RIP] = nxt if st[R.CSBASE_MODE] == R.MODE_LONG64 else nxt & 0xFFFFFFFF
    return 1


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def arith_op(op):
    """Instructions of exec_arith."""
    return (op == O.CMPXCHG or op == O.XADD or op == O.CBW or op == O.CWD or op == O.MULDIV
            or op == O.IMUL2 or op == O.IMUL3 or op == O.SHIFT or op == O.SHXD or op == O.BT
            or op == O.BSF or op == O.BSR or op == O.BSWAP or op == O.CMPXCHG16B)


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def basic_op(op):
    """Instructions of exec_basic (data, ALU operations, branches) once arith_op
    has taken its own; the rest are exec_system's."""
    return (op < O.HOT_LIMIT or (op <= O.SHIFT and op != O.PUSHF and op != O.POPF)
            or op == O.SHXD or op == O.BT or op == O.BSF or op == O.BSR or op == O.BSWAP
            or op == O.RET_I or op == O.LEAVE or op == O.LOOP or op == O.ENTER
            or op == O.CMPXCHG16B)


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def step(mem, st, tlb, dc, owner, info, disp, imm, maxel):
    """Execute one decoded instruction in full generality; restores the state
    when it faults or exits for a device access (the instruction is redone)."""
    op = info & O.I_OP_MASK
    cc = dc[0]
    if op == O.STRING:
        return call_exec(cc[C_FP + U.U_STRING], (mem, st, tlb, dc, owner, info, disp, imm, maxel))
    sv = cc[C_SAVE]
    for i in range(S.NSAVE):
        cc[sv + i] = st[i]
    unit = U.U_ARITH if arith_op(op) else (U.U_BASIC if basic_op(op) else U.U_SYSTEM)
    n = call_exec(cc[C_FP + unit], (mem, st, tlb, dc, owner, info, disp, imm, maxel))
    r = st[S.STATUS]
    if r < 0 or r == S.EXIT_IO or r == S.EXIT_MMIO or r == S.EXIT_POOL:
        for i in range(S.NSAVE):
            st[i] = cc[sv + i]
    return n


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def exec_basic(mem, st, tlb, dc, owner, info, disp, imm, maxel):
    """Unit U_BASIC: data movement, ALU operations, branches, the stack."""
    op, szc, sub, reg, nxt, acc, m = fields(st, info)
    if op == O.MOV_RM_R:
        rm_write(mem, st, tlb, dc, info, disp, szc, rget(st, reg, szc), acc)
    elif op == O.MOV_R_RM:
        v = rm_read(mem, st, tlb, dc, info, disp, szc, acc)
        if st[S.STATUS] != 0:
            return 0
        rset(st, reg, szc, v)
    elif op == O.MOV_RM_I:
        rm_write(mem, st, tlb, dc, info, disp, szc, imm, acc)
    elif op == O.ALU_RM_R or op == O.ALU_RM_I:
        wr = sub != O.CMP and sub != O.TEST
        a = rm_read(mem, st, tlb, dc, info, disp, szc, acc | (ACC_WRITE if wr else 0))
        if st[S.STATUS] != 0:
            return 0
        b = rget(st, reg, szc) if op == O.ALU_RM_R else imm
        r = alu(st, sub, szc, a, b)
        if wr:
            rm_write(mem, st, tlb, dc, info, disp, szc, r, acc)
    elif op == O.ALU_R_RM:
        b = rm_read(mem, st, tlb, dc, info, disp, szc, acc)
        if st[S.STATUS] != 0:
            return 0
        r = alu(st, sub, szc, rget(st, reg, szc), b)
        if sub != O.CMP:
            rset(st, reg, szc, r)
    elif op == O.INCDEC:
        a = rm_read(mem, st, tlb, dc, info, disp, szc, acc | ACC_WRITE)
        if st[S.STATUS] != 0:
            return 0
        save = (st[S.LF_KIND], st[S.LF_A], st[S.LF_B], st[S.LF_RES], st[S.LF_C])
        r = incdec(st, sub == 1, szc, a)
        rm_write(mem, st, tlb, dc, info, disp, szc, r, acc)
        if st[S.STATUS] != 0:
            st[S.LF_KIND], st[S.LF_A], st[S.LF_B], st[S.LF_RES], st[S.LF_C] = save
    elif op == O.NEGNOT:
        a = rm_read(mem, st, tlb, dc, info, disp, szc, acc | ACC_WRITE)
        if st[S.STATUS] != 0:
            return 0
        if sub == 2:
            rm_write(mem, st, tlb, dc, info, disp, szc, ~a & m, acc)
        else:
            save = (st[S.LF_KIND], st[S.LF_A], st[S.LF_B], st[S.LF_RES], st[S.LF_C])
            r = alu(st, np.int64(O.SUB), szc, np.int64(0), a)
            rm_write(mem, st, tlb, dc, info, disp, szc, r, acc)
            if st[S.STATUS] != 0:
                st[S.LF_KIND], st[S.LF_A], st[S.LF_B], st[S.LF_RES], st[S.LF_C] = save
    elif op == O.LEA:
        rset(st, reg, szc, rm_addr(st, info & ~np.int64(3 << O.I_SEG_SHIFT), disp))
    elif op == O.MOVX:
        s2 = (info >> O.I_SZ2_SHIFT) & 3
        v = rm_read(mem, st, tlb, dc, info, disp, s2, acc)
        if st[S.STATUS] != 0:
            return 0
        if (info & O.I_X1) != 0:
            v = sext(v, s2)
        rset(st, reg, szc, v)
    elif op == O.CMOV:
        v = rm_read(mem, st, tlb, dc, info, disp, szc, acc)
        if st[S.STATUS] != 0:
            return 0
        if F.cond(st, sub):
            rset(st, reg, szc, v)
        elif szc == 2:
            st[reg] &= 0xFFFFFFFF        # a 32-bit CMOV zero-extends even when false
    elif op == O.SETCC:
        rm_write(mem, st, tlb, dc, info, disp, np.int64(0), 1 if F.cond(st, sub) else 0, acc)
    elif op == O.TEST:
        pass
    elif op == O.JCC:
        if F.cond(st, sub):
            if not branch(st, nxt + imm, szc):
                return 0
            return 1
    elif op == O.JMP_REL:
        if not branch(st, nxt + imm, szc):
            return 0
        return 1
    elif op == O.CALL_REL or op == O.CALL_RM:
        if op == O.CALL_RM:
            t = rm_read(mem, st, tlb, dc, info, disp, szc, acc)
            if st[S.STATUS] != 0:
                return 0
        else:
            t = nxt + imm
        if st[R.CSBASE_MODE] == R.MODE_LONG64 and not canonical(t):
            gp(st, np.int64(0))
            return 0
        if not push_val(mem, st, tlb, dc, nxt, szc):
            return 0
        branch(st, t, szc)
        return 1
    elif op == O.JMP_RM:
        t = rm_read(mem, st, tlb, dc, info, disp, szc, acc)
        if st[S.STATUS] != 0 or not branch(st, t, szc):
            return 0
        return 1
    elif op == O.RET or op == O.RET_I:
        sp = st[R.RSP]
        t = pop_val(mem, st, tlb, dc, szc)
        if st[S.STATUS] != 0:
            return 0
        if not branch(st, t, szc):
            st[R.RSP] = sp
            return 0
        if op == O.RET_I:
            st[R.RSP] += imm
        return 1
    elif op == O.PUSH_R or op == O.PUSH_I or op == O.PUSH_RM:
        if op == O.PUSH_R:
            v = rget(st, reg, szc)
        elif op == O.PUSH_I:
            v = imm
        else:
            v = rm_read(mem, st, tlb, dc, info, disp, szc, acc)
            if st[S.STATUS] != 0:
                return 0
        if not push_val(mem, st, tlb, dc, v, szc):
            return 0
    elif op == O.POP_R:
        v = pop_val(mem, st, tlb, dc, szc)
        if st[S.STATUS] != 0:
            return 0
        rset(st, reg, szc, v)
    elif op == O.POP_RM:
        sp = st[R.RSP]
        v = pop_val(mem, st, tlb, dc, szc)
        if st[S.STATUS] != 0:
            return 0
        rm_write(mem, st, tlb, dc, info, disp, szc, v, acc)
        if st[S.STATUS] != 0:
            st[R.RSP] = sp
            return 0
    elif op == O.NOP or op == O.PAUSE:
        pass
    elif op == O.XCHG:
        a = rm_read(mem, st, tlb, dc, info, disp, szc, acc | ACC_WRITE)
        if st[S.STATUS] != 0:
            return 0
        b = rget(st, reg, szc)
        rm_write(mem, st, tlb, dc, info, disp, szc, b, acc)
        if st[S.STATUS] != 0:
            return 0
        rset(st, reg, szc, a)
    elif op == O.LEAVE:
        sp = st[R.RSP]
        st[R.RSP] = st[R.RBP] if szc == 3 else (st[R.RBP] & 0xFFFFFFFF if szc == 2
                                                 else (sp & ~np.int64(0xFFFF)) | (st[R.RBP] & 0xFFFF))
        v = pop_val(mem, st, tlb, dc, szc)
        if st[S.STATUS] != 0:
            st[R.RSP] = sp
            return 0
        rset(st, np.int64(R.RBP), szc, v)
    elif op == O.ENTER:
        # SDM Vol. 2 ENTER, 64-bit mode: push RBP, copy level-1 outer frame
        # pointers, push the new frame pointer, RBP = frame, RSP -= size.
        size = imm & 0xFFFF
        level = (imm >> 16) & 31
        n = np.int64(1) << szc
        sp0 = st[R.RSP]
        bp0 = st[R.RBP]
        if not push_val(mem, st, tlb, dc, bp0, szc):
            return 0
        frame = st[R.RSP]
        bp = bp0
        for _ in range(level - 1 if level > 0 else 0):
            bp -= n
            v = vread(mem, st, tlb, dc, bp, n, acc)
            if st[S.STATUS] != 0 or not push_val(mem, st, tlb, dc, v, szc):
                st[R.RSP] = sp0
                return 0
        if level > 0 and not push_val(mem, st, tlb, dc, frame, szc):
            st[R.RSP] = sp0
            return 0
        rset(st, np.int64(R.RBP), szc, frame)
        st[R.RSP] -= size
    elif op == O.LOOP:
        a32 = (info & O.I_A32) != 0 or st[R.CSBASE_MODE] != R.MODE_LONG64
        c = st[R.RCX] & 0xFFFFFFFF if a32 else st[R.RCX]
        if sub == 3:
            take = c == 0
        else:
            c = (c - 1) & 0xFFFFFFFF if a32 else c - 1
            take = c != 0
            if sub == 0:
                take = take and not F.cond(st, np.int64(4))
            elif sub == 1:
                take = take and F.cond(st, np.int64(4))
        t = nxt + imm
        if take and st[R.CSBASE_MODE] == R.MODE_LONG64 and not canonical(t):
            gp(st, np.int64(0))
            return 0
        if sub != 3:
            if a32:
                st[R.RCX] = c
            else:
                st[R.RCX] = c
        if take:
            branch(st, t, np.int64(3))
            return 1
    else:
        fault(st, np.int64(6), np.int64(0))
        return 0
    return retire(st, nxt)


U.register(U.U_BASIC, exec_basic, U.EXEC_ARGS)


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def exec_arith(mem, st, tlb, dc, owner, info, disp, imm, maxel):
    """Unit U_ARITH: multiply and divide, shifts and rotates, bit scans and
    tests, the compare-exchanges, sign extensions (apart from U_BASIC to keep
    each unit's compile short)."""
    op, szc, sub, reg, nxt, acc, m = fields(st, info)
    if op == O.CMPXCHG:
        d = rm_read(mem, st, tlb, dc, info, disp, szc, acc | ACC_WRITE)
        if st[S.STATUS] != 0:
            return 0
        a = st[R.RAX] & m
        save = (st[S.LF_KIND], st[S.LF_A], st[S.LF_B], st[S.LF_RES], st[S.LF_C])
        alu(st, np.int64(O.CMP), szc, a, d)
        if a == (d & m):
            rm_write(mem, st, tlb, dc, info, disp, szc, rget(st, reg, szc), acc)
        else:
            rm_write(mem, st, tlb, dc, info, disp, szc, d, acc)
            if st[S.STATUS] == 0:
                rset(st, np.int64(0), szc, d)
        if st[S.STATUS] != 0:
            st[S.LF_KIND], st[S.LF_A], st[S.LF_B], st[S.LF_RES], st[S.LF_C] = save
            return 0
    elif op == O.XADD:
        d = rm_read(mem, st, tlb, dc, info, disp, szc, acc | ACC_WRITE)
        if st[S.STATUS] != 0:
            return 0
        s = rget(st, reg, szc)
        save = (st[S.LF_KIND], st[S.LF_A], st[S.LF_B], st[S.LF_RES], st[S.LF_C])
        r = alu(st, np.int64(O.ADD), szc, d, s)
        rm_write(mem, st, tlb, dc, info, disp, szc, r, acc)
        if st[S.STATUS] != 0:
            st[S.LF_KIND], st[S.LF_A], st[S.LF_B], st[S.LF_RES], st[S.LF_C] = save
            return 0
        rset(st, reg, szc, d)
        if (info & O.I_MEM) == 0:
            rm_write(mem, st, tlb, dc, info, disp, szc, r, acc)
    elif op == O.CBW:
        if szc == 1:
            rset(st, np.int64(0), np.int64(1), sext(st[R.RAX], np.int64(0)))
        elif szc == 2:
            rset(st, np.int64(0), np.int64(2), sext(st[R.RAX], np.int64(1)))
        else:
            st[R.RAX] = sext(st[R.RAX], np.int64(2))
    elif op == O.CWD:
        neg = (st[R.RAX] & F.SIGNS[szc]) != 0
        rset(st, np.int64(R.RDX), szc, -1 if neg else 0)
    elif op == O.MULDIV:
        v = rm_read(mem, st, tlb, dc, info, disp, szc, acc)
        if st[S.STATUS] != 0:
            return 0
        if not muldiv(st, sub, szc, v):
            fault(st, np.int64(0), np.int64(0))              # #DE
            return 0
    elif op == O.IMUL2 or op == O.IMUL3:
        v = rm_read(mem, st, tlb, dc, info, disp, szc, acc)
        if st[S.STATUS] != 0:
            return 0
        a = rget(st, reg, szc) if op == O.IMUL2 else imm
        rset(st, reg, szc, imul_trunc(st, szc, a, v))
    elif op == O.SHIFT:
        a = rm_read(mem, st, tlb, dc, info, disp, szc, acc | ACC_WRITE)
        if st[S.STATUS] != 0:
            return 0
        if (info & O.I_X1) != 0:
            c = st[R.RCX] & 0xFF
        elif (info & O.I_X2) != 0:
            c = 1
        else:
            c = imm & 0xFF
        save = (st[R.RFLAGS], st[S.LF_KIND], st[S.LF_A], st[S.LF_B], st[S.LF_RES], st[S.LF_C])
        r = shift(st, sub, szc, a, c)
        rm_write(mem, st, tlb, dc, info, disp, szc, r, acc)
        if st[S.STATUS] != 0:
            st[R.RFLAGS], st[S.LF_KIND], st[S.LF_A], st[S.LF_B], st[S.LF_RES], st[S.LF_C] = save
            return 0
    elif op == O.SHXD:
        a = rm_read(mem, st, tlb, dc, info, disp, szc, acc | ACC_WRITE)
        if st[S.STATUS] != 0:
            return 0
        c = st[R.RCX] & 0xFF if (info & O.I_X1) != 0 else imm & 0xFF
        save = (st[R.RFLAGS], st[S.LF_KIND], st[S.LF_A], st[S.LF_B], st[S.LF_RES], st[S.LF_C])
        r = shxd(st, sub == 1, szc, a, rget(st, reg, szc), c)
        rm_write(mem, st, tlb, dc, info, disp, szc, r, acc)
        if st[S.STATUS] != 0:
            st[R.RFLAGS], st[S.LF_KIND], st[S.LF_A], st[S.LF_B], st[S.LF_RES], st[S.LF_C] = save
            return 0
    elif op == O.BT:
        bits = 8 << szc
        if (info & O.I_X2) != 0:
            off = imm & (bits - 1)
            base_adj = np.int64(0)
        else:
            boff = rget(st, reg, szc)
            if (info & O.I_MEM) != 0:
                sb = sext(boff, szc)
                base_adj = (sb >> (3 + szc)) << szc   # operand-size units, signed
                off = sb & (bits - 1)
            else:
                base_adj = np.int64(0)
                off = boff & (bits - 1)
        wr = sub != 0
        if (info & O.I_MEM) != 0:
            ea = rm_addr(st, info, disp) + base_adj
            v = vread(mem, st, tlb, dc, ea, 1 << szc, acc | (ACC_WRITE if wr else 0))
        else:
            ea = np.int64(0)
            v = rget(st, (info >> O.I_M_SHIFT) & 31, szc)
        if st[S.STATUS] != 0:
            return 0
        bit = (v >> off) & 1
        if sub == 1:
            v |= np.int64(1) << off
        elif sub == 2:
            v &= ~(np.int64(1) << off)
        elif sub == 3:
            v ^= np.int64(1) << off
        if wr:
            if (info & O.I_MEM) != 0:
                vwrite(mem, st, tlb, dc, ea, 1 << szc, v, acc)
                if st[S.STATUS] != 0:
                    return 0
            else:
                rset(st, (info >> O.I_M_SHIFT) & 31, szc, v)
        f = F.get_flags(st)
        F.set_arith(st, (f & ~np.int64(1)) | bit)
    elif op == O.BSF or op == O.BSR:
        v = rm_read(mem, st, tlb, dc, info, disp, szc, acc) & m
        if st[S.STATUS] != 0:
            return 0
        f = F.get_flags(st)
        if v == 0:
            F.set_arith(st, f | R.FLAG_ZF)      # destination left unchanged
        else:
            if op == O.BSF:
                i = 0
                while ((v >> i) & 1) == 0:
                    i += 1
            else:
                i = (8 << szc) - 1
                while ((v >> i) & 1) == 0:
                    i -= 1
            rset(st, reg, szc, i)
            F.set_arith(st, f & ~np.int64(R.FLAG_ZF))
    elif op == O.BSWAP:
        v = st[reg]
        if szc == 3:
            r = np.int64(0)
            for i in range(8):
                r |= ((v >> (8 * i)) & 0xFF) << (8 * (7 - i))
            st[reg] = r
        else:
            r = np.int64(0)
            for i in range(4):
                r |= ((v >> (8 * i)) & 0xFF) << (8 * (3 - i))
            st[reg] = r
    elif op == O.CMPXCHG16B:
        # SDM Vol. 2 CMPXCHG8B/16B: a 16-byte aligned operand, written either way
        ea = rm_addr(st, info, disp)
        if (ea & 15) != 0:
            gp(st, np.int64(0))
            return 0
        lo = vread(mem, st, tlb, dc, ea, np.int64(8), acc | ACC_WRITE)
        if st[S.STATUS] != 0:
            return 0
        hi = vread(mem, st, tlb, dc, ea + 8, np.int64(8), acc | ACC_WRITE)
        if st[S.STATUS] != 0:
            return 0
        eq = lo == st[R.RAX] and hi == st[R.RDX]
        nlo = st[R.RBX] if eq else lo
        nhi = st[R.RCX] if eq else hi
        vwrite(mem, st, tlb, dc, ea, np.int64(8), nlo, acc)
        if st[S.STATUS] == 0:
            vwrite(mem, st, tlb, dc, ea + 8, np.int64(8), nhi, acc)
        if st[S.STATUS] != 0:
            return 0
        if not eq:
            st[R.RAX] = lo
            st[R.RDX] = hi
        f = F.get_flags(st)
        F.set_arith(st, (f | R.FLAG_ZF) if eq else (f & ~np.int64(R.FLAG_ZF)))
    else:
        fault(st, np.int64(6), np.int64(0))
        return 0
    return retire(st, nxt)


U.register(U.U_ARITH, exec_arith, U.EXEC_ARGS)
