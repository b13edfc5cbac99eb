"""Instruction decoder: x86 bytes to a decoded entry (info, disp, imm).

The opcode maps are plain numpy tables built here from a short declaration per
opcode (Intel SDM Vol. 2, Appendix A "Opcode Map", Tables A-2/A-3 and the
group table A-6); :func:`decode` is one jitted pass over prefixes, REX,
opcode, ModRM/SIB/displacement and immediate (SDM Vol. 2 §2.1-2.2).  It knows
64-bit mode and 32-bit protected/compatibility mode (enough to enter long mode).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from . import ops as O
from . import units as U

# -- table entry layout --------------------------------------------------------
T_MODRM = 1 << 12
T_BYTE = 1 << 13
T_IMM_SHIFT = 14          # 4 bits
IMM_NONE, IMM_B, IMM_UB, IMM_W, IMM_Z, IMM_V, IMM_MOFFS, IMM_FAR, IMM_ENTER = range(9)
T_D64 = 1 << 18           # default operand size 64 in 64-bit mode (push/pop/...)
T_F64 = 1 << 19           # operand size always 64 in 64-bit mode (near branches)
T_REGOP_R = 1 << 20       # register in opcode bits 2:0 -> reg operand
T_REGOP_M = 1 << 21       # register in opcode bits 2:0 -> r/m register operand
T_ACC = 1 << 22           # r/m operand is the accumulator
T_MACC_SHIFT = 23         # 2 bits
T_GROUP_SHIFT = 25        # 5 bits
T_NO64 = 1 << 30          # invalid in 64-bit mode
T_X1 = 1 << 31
T_X2 = 1 << 32
T_MEMONLY = 1 << 33
T_REGONLY = 1 << 34
T_SZ2_SHIFT = 37          # 2 bits source size (MOVZX/MOVSX)
T_SZ64 = 1 << 40          # operand size 64 in 64-bit mode whatever the prefixes
T_VALID = 1 << 41
T_SZ16 = 1 << 42          # operand size 16 (segment register moves)

R, W, RMW = 1 << T_MACC_SHIFT, 2 << T_MACC_SHIFT, 3 << T_MACC_SHIFT


def E(op, sub=0, *flags, imm=IMM_NONE, group=0, sz2=None):
    v = op | (sub << 8) | T_VALID | (imm << T_IMM_SHIFT) | (group << T_GROUP_SHIFT)
    for f in flags:
        v |= f
    if sz2 is not None:
        v |= sz2 << T_SZ2_SHIFT
    return v


T1 = np.zeros(256, dtype=np.int64)     # one-byte opcode map
T2 = np.zeros(256, dtype=np.int64)     # 0F xx
NGROUPS = 16
G = np.zeros(NGROUPS * 8, dtype=np.int64)   # group entries, by ModRM.reg
GRP1, GRP1A, GRP2, GRP3, GRP4, GRP5, GRP11, GRP6, GRP7, GRP8, GRP0F1F, GRP9 = range(1, 13)

M = T_MODRM
# ALU ops 00-3F: op r/m,reg / reg,r/m / acc,imm (SDM Table A-2 rows 0-3)
for aop in range(8):
    base = aop * 8
    acc_w = RMW if aop != O.CMP else R
    T1[base + 0] = E(O.ALU_RM_R, aop, M, T_BYTE, acc_w)
    T1[base + 1] = E(O.ALU_RM_R, aop, M, acc_w)
    T1[base + 2] = E(O.ALU_R_RM, aop, M, T_BYTE, R)
    T1[base + 3] = E(O.ALU_R_RM, aop, M, R)
    T1[base + 4] = E(O.ALU_RM_I, aop, T_ACC, T_BYTE, imm=IMM_B)
    T1[base + 5] = E(O.ALU_RM_I, aop, T_ACC, imm=IMM_Z)
for r in range(8):
    T1[0x40 + r] = E(O.INCDEC, 0, T_REGOP_M, T_NO64)     # 32-bit mode INC r32 (REX in 64)
    T1[0x48 + r] = E(O.INCDEC, 1, T_REGOP_M, T_NO64)
    T1[0x50 + r] = E(O.PUSH_R, 0, T_REGOP_R, T_D64)
    T1[0x58 + r] = E(O.POP_R, 0, T_REGOP_R, T_D64)
    T1[0x90 + r] = E(O.XCHG, 0, T_REGOP_M)               # 90 alone is NOP (decode)
    T1[0xB0 + r] = E(O.MOV_RM_I, 0, T_REGOP_M, T_BYTE, imm=IMM_B)
    T1[0xB8 + r] = E(O.MOV_RM_I, 0, T_REGOP_M, imm=IMM_V)
T1[0x63] = E(O.MOVX, 0, M, R, T_X1, sz2=2)             # MOVSXD r, r/m32
T1[0x68] = E(O.PUSH_I, 0, T_D64, imm=IMM_Z)
T1[0x69] = E(O.IMUL3, 0, M, R, imm=IMM_Z)
T1[0x6A] = E(O.PUSH_I, 0, T_D64, imm=IMM_B)
T1[0x6B] = E(O.IMUL3, 0, M, R, imm=IMM_B)
T1[0x6C] = E(O.STRING, O.S_INS, T_BYTE)
T1[0x6D] = E(O.STRING, O.S_INS)
T1[0x6E] = E(O.STRING, O.S_OUTS, T_BYTE)
T1[0x6F] = E(O.STRING, O.S_OUTS)
for cc in range(16):
    T1[0x70 + cc] = E(O.JCC, cc, T_F64, imm=IMM_B)
    T2[0x80 + cc] = E(O.JCC, cc, T_F64, imm=IMM_Z)
    T2[0x40 + cc] = E(O.CMOV, cc, M, R)
    T2[0x90 + cc] = E(O.SETCC, cc, M, T_BYTE, W)
T1[0x80] = E(0, 0, M, T_BYTE, imm=IMM_B, group=GRP1)
T1[0x81] = E(0, 0, M, imm=IMM_Z, group=GRP1)
T1[0x83] = E(0, 0, M, imm=IMM_B, group=GRP1)
T1[0x84] = E(O.ALU_RM_R, O.TEST, M, T_BYTE, R)
T1[0x85] = E(O.ALU_RM_R, O.TEST, M, R)
T1[0x86] = E(O.XCHG, 0, M, T_BYTE, RMW)
T1[0x87] = E(O.XCHG, 0, M, RMW)
T1[0x88] = E(O.MOV_RM_R, 0, M, T_BYTE, W)
T1[0x89] = E(O.MOV_RM_R, 0, M, W)
T1[0x8A] = E(O.MOV_R_RM, 0, M, T_BYTE, R)
T1[0x8B] = E(O.MOV_R_RM, 0, M, R)
T1[0x8C] = E(O.MOV_RM_SREG, 0, M, W)
T1[0x8D] = E(O.LEA, 0, M, T_MEMONLY)
T1[0x8E] = E(O.MOV_SREG_RM, 0, M, R, T_SZ16)
T1[0x8F] = E(0, 0, M, T_D64, group=GRP1A)
T1[0x98] = E(O.CBW)
T1[0x99] = E(O.CWD)
T1[0x9C] = E(O.PUSHF, 0, T_D64)
T1[0x9D] = E(O.POPF, 0, T_D64)
T1[0x9E] = E(O.SAHF)
T1[0x9F] = E(O.LAHF)
T1[0xA0] = E(O.MOV_R_RM, 0, T_ACC, T_BYTE, R, imm=IMM_MOFFS)
T1[0xA1] = E(O.MOV_R_RM, 0, T_ACC, R, imm=IMM_MOFFS)
T1[0xA2] = E(O.MOV_RM_R, 0, T_ACC, T_BYTE, W, imm=IMM_MOFFS)
T1[0xA3] = E(O.MOV_RM_R, 0, T_ACC, W, imm=IMM_MOFFS)
T1[0xA4] = E(O.STRING, O.S_MOVS, T_BYTE)
T1[0xA5] = E(O.STRING, O.S_MOVS)
T1[0xA6] = E(O.STRING, O.S_CMPS, T_BYTE)
T1[0xA7] = E(O.STRING, O.S_CMPS)
T1[0xA8] = E(O.ALU_RM_I, O.TEST, T_ACC, T_BYTE, imm=IMM_B)
T1[0xA9] = E(O.ALU_RM_I, O.TEST, T_ACC, imm=IMM_Z)
T1[0xAA] = E(O.STRING, O.S_STOS, T_BYTE)
T1[0xAB] = E(O.STRING, O.S_STOS)
T1[0xAC] = E(O.STRING, O.S_LODS, T_BYTE)
T1[0xAD] = E(O.STRING, O.S_LODS)
T1[0xAE] = E(O.STRING, O.S_SCAS, T_BYTE)
T1[0xAF] = E(O.STRING, O.S_SCAS)
T1[0xC0] = E(0, 0, M, T_BYTE, RMW, imm=IMM_UB, group=GRP2)
T1[0xC1] = E(0, 0, M, RMW, imm=IMM_UB, group=GRP2)
T1[0xC2] = E(O.RET_I, 0, T_F64, imm=IMM_W)
T1[0xC3] = E(O.RET, 0, T_F64)
T1[0xC6] = E(0, 0, M, T_BYTE, W, imm=IMM_B, group=GRP11)
T1[0xC7] = E(0, 0, M, W, imm=IMM_Z, group=GRP11)
T1[0xC8] = E(O.ENTER, 0, T_D64, imm=IMM_ENTER)
T1[0xC9] = E(O.LEAVE, 0, T_D64)
T1[0xCB] = E(O.LRET)
T1[0xCC] = E(O.INT3)
T1[0xCD] = E(O.INTN, 0, imm=IMM_UB)
T1[0xCE] = E(O.INTO, 0, T_NO64)
T1[0xCF] = E(O.IRET)
T1[0xD0] = E(0, 0, M, T_BYTE, RMW, T_X2, group=GRP2)
T1[0xD1] = E(0, 0, M, RMW, T_X2, group=GRP2)
T1[0xD2] = E(0, 0, M, T_BYTE, RMW, T_X1, group=GRP2)
T1[0xD3] = E(0, 0, M, RMW, T_X1, group=GRP2)
T1[0xE0] = E(O.LOOP, 0, T_F64, imm=IMM_B)
T1[0xE1] = E(O.LOOP, 1, T_F64, imm=IMM_B)
T1[0xE2] = E(O.LOOP, 2, T_F64, imm=IMM_B)
T1[0xE3] = E(O.LOOP, 3, T_F64, imm=IMM_B)
T1[0xE4] = E(O.IN, 0, T_BYTE, imm=IMM_UB)
T1[0xE5] = E(O.IN, 0, imm=IMM_UB)
T1[0xE6] = E(O.OUT, 0, T_BYTE, imm=IMM_UB)
T1[0xE7] = E(O.OUT, 0, imm=IMM_UB)
T1[0xE8] = E(O.CALL_REL, 0, T_F64, imm=IMM_Z)
T1[0xE9] = E(O.JMP_REL, 0, T_F64, imm=IMM_Z)
T1[0xEA] = E(O.LJMP_PTR, 0, T_NO64, imm=IMM_FAR)
T1[0xEB] = E(O.JMP_REL, 0, T_F64, imm=IMM_B)
T1[0xEC] = E(O.IN, 1, T_BYTE)
T1[0xED] = E(O.IN, 1)
T1[0xEE] = E(O.OUT, 1, T_BYTE)
T1[0xEF] = E(O.OUT, 1)
T1[0xF4] = E(O.HLT)
T1[0xF5] = E(O.FLAGOP, O.F_CMC)
T1[0xF6] = E(0, 0, M, T_BYTE, group=GRP3)
T1[0xF7] = E(0, 0, M, group=GRP3)
T1[0xF8] = E(O.FLAGOP, O.F_CLC)
T1[0xF9] = E(O.FLAGOP, O.F_STC)
T1[0xFA] = E(O.CLI)
T1[0xFB] = E(O.STI)
T1[0xFC] = E(O.FLAGOP, O.F_CLD)
T1[0xFD] = E(O.FLAGOP, O.F_STD)
T1[0xFE] = E(0, 0, M, T_BYTE, group=GRP4)
T1[0xFF] = E(0, 0, M, group=GRP5)
T1[0x06] = E(O.PUSH_SREG, 0, T_NO64)       # push es (32-bit mode only)
T1[0x1E] = E(O.PUSH_SREG, 3, T_NO64)       # push ds
T1[0x07] = E(O.POP_SREG, 0, T_NO64)
T1[0x1F] = E(O.POP_SREG, 3, T_NO64)

# 0F map (SDM Table A-3)
T2[0x00] = E(0, 0, M, group=GRP6)
T2[0x01] = E(0, 0, M, group=GRP7)
T2[0x05] = E(O.SYSCALL)
T2[0x06] = E(O.CLTS)
T2[0x07] = E(O.SYSRET)
T2[0x09] = E(O.WBINVD)
T2[0x08] = E(O.WBINVD)                     # INVD: no caches to drop
T2[0x0B] = E(O.UD)
T2[0x1F] = E(0, 0, M, group=GRP0F1F)        # multi-byte NOP r/m (0F 1F /0)
T2[0x20] = E(O.MOV_R_CR, 0, M, T_REGONLY, T_SZ64)
T2[0x22] = E(O.MOV_CR_R, 0, M, T_REGONLY, T_SZ64)
T2[0x30] = E(O.WRMSR)
T2[0x31] = E(O.RDTSC)
T2[0x32] = E(O.RDMSR)
T2[0xA2] = E(O.CPUID)
T2[0xA3] = E(O.BT, 0, M, R)
T2[0xA4] = E(O.SHXD, 0, M, RMW, imm=IMM_UB)
T2[0xA5] = E(O.SHXD, 0, M, RMW, T_X1)
T2[0xAB] = E(O.BT, 1, M, RMW)
T2[0xAC] = E(O.SHXD, 1, M, RMW, imm=IMM_UB)
T2[0xAD] = E(O.SHXD, 1, M, RMW, T_X1)
T2[0xAE] = E(O.FENCE, 0, M, T_REGONLY)
T2[0xAF] = E(O.IMUL2, 0, M, R)
T2[0xB0] = E(O.CMPXCHG, 0, M, T_BYTE, RMW)
T2[0xB1] = E(O.CMPXCHG, 0, M, RMW)
T2[0xB3] = E(O.BT, 2, M, RMW)
T2[0xB6] = E(O.MOVX, 0, M, R, sz2=0)
T2[0xB7] = E(O.MOVX, 0, M, R, sz2=1)
T2[0xBA] = E(0, 0, M, imm=IMM_UB, group=GRP8)
T2[0xBB] = E(O.BT, 3, M, RMW)
T2[0xBC] = E(O.BSF, 0, M, R)
T2[0xBD] = E(O.BSR, 0, M, R)
T2[0xBE] = E(O.MOVX, 0, M, R, T_X1, sz2=0)
T2[0xBF] = E(O.MOVX, 0, M, R, T_X1, sz2=1)
T2[0xC0] = E(O.XADD, 0, M, T_BYTE, RMW)
T2[0xC1] = E(O.XADD, 0, M, RMW)
T2[0xC7] = E(0, 0, M, group=GRP9)
for r in range(8):
    T2[0xC8 + r] = E(O.BSWAP, 0, T_REGOP_R)


def _g(group, reg, entry):
    G[group * 8 + reg] = entry


for aop in range(8):
    _g(GRP1, aop, E(O.ALU_RM_I, aop, RMW if aop != O.CMP else R))
_g(GRP1A, 0, E(O.POP_RM, 0, W, T_D64))
for sop in (0, 1, 2, 3, 4, 5, 7):            # /6 (an undocumented SHL) is not in the subset
    _g(GRP2, sop, E(O.SHIFT, sop, RMW))
_g(GRP3, 0, E(O.ALU_RM_I, O.TEST, R))
_g(GRP3, 2, E(O.NEGNOT, 2, RMW))
_g(GRP3, 3, E(O.NEGNOT, 3, RMW))
for k in range(4, 8):
    _g(GRP3, k, E(O.MULDIV, k, R))
_g(GRP4, 0, E(O.INCDEC, 0, RMW))
_g(GRP4, 1, E(O.INCDEC, 1, RMW))
_g(GRP5, 0, E(O.INCDEC, 0, RMW))
_g(GRP5, 1, E(O.INCDEC, 1, RMW))
_g(GRP5, 2, E(O.CALL_RM, 0, R, T_F64))
_g(GRP5, 4, E(O.JMP_RM, 0, R, T_F64))
_g(GRP5, 5, E(O.LJMP_M, 0, R, T_MEMONLY))
_g(GRP5, 6, E(O.PUSH_RM, 0, R, T_D64))
_g(GRP11, 0, E(O.MOV_RM_I, 0, W))
_g(GRP6, 1, E(O.STR, 0, W))
_g(GRP6, 3, E(O.LTR, 0, R, T_SZ16))
_g(GRP7, 0, E(O.SGDT, 0, W, T_MEMONLY))
_g(GRP7, 1, E(O.SIDT, 0, W, T_MEMONLY))
_g(GRP7, 2, E(O.LGDT, 0, R, T_MEMONLY))
_g(GRP7, 3, E(O.LIDT, 0, R, T_MEMONLY))
_g(GRP7, 7, E(O.INVLPG, 0, 0, T_MEMONLY))     # 0F 01 F8 (SWAPGS) is decoded specially
_g(GRP0F1F, 0, E(O.NOP, 0, 0))
_g(GRP9, 1, E(O.CMPXCHG16B, 0, RMW, T_MEMONLY))     # needs REX.W (else CMPXCHG8B: #UD)
for k in range(4, 8):
    _g(GRP8, k, E(O.BT, k - 4, T_X2, R if k == 4 else RMW))

# Which groups carry an immediate only for some /reg values (F6/F7 /0 /1: TEST).
IMM_FOR_GROUP3 = np.array([1, 1, 0, 0, 0, 0, 0, 0], dtype=np.int64)

# Prefix bytes.
PFX_OPSIZE, PFX_ADDR, PFX_LOCK, PFX_REPNE, PFX_REP = 0x66, 0x67, 0xF0, 0xF2, 0xF3

MODE64 = 1   # decode modes
MODE32 = 0


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def _le(buf, pos, n):
    v = np.int64(0)
    for i in range(n):
        v |= np.int64(buf[pos + i]) << (8 * i)
    return v


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def _sx(v, bits):
    s = 64 - bits
    return (v << s) >> s


DECODE_ARGS = (U.I64A, U.I64, U.types.boolean, U.I64A)


@njit(cache=True)
def decode(buf, n, mode64, out):
    """Decode the instruction at ``buf[0:n]`` (n <= 15 valid bytes).

    Writes (info, disp, imm) to ``out[0:3]`` and returns the length, 0 for an
    invalid or unsupported encoding (#UD) and -1 when more than ``n`` bytes
    are needed (the caller fetches more or raises #PF on the next page).
    """
    pos = 0
    opsize = False
    addr32 = False
    lock = False
    rep = 0
    seg = 0
    rex = 0
    while True:
        if pos >= n:
            return -1
        b = np.int64(buf[pos])
        if b == PFX_OPSIZE:
            opsize = True
        elif b == PFX_ADDR:
            addr32 = True
        elif b == PFX_LOCK:
            lock = True
        elif b == PFX_REP:
            rep = 1
        elif b == PFX_REPNE:
            rep = 2
        elif b == 0x64:
            seg = 1
        elif b == 0x65:
            seg = 2
        elif b == 0x2E or b == 0x36 or b == 0x3E or b == 0x26:
            pass                               # CS/SS/DS/ES: no effect in flat/64-bit code
        else:
            break
        pos += 1
        if pos > 14:
            return 0
    if mode64 and (b & 0xF0) == 0x40:
        rex = b
        pos += 1
        if pos >= n:
            return -1
        b = np.int64(buf[pos])
    pos += 1
    two = False
    if b == 0x0F:
        if pos >= n:
            return -1
        b = np.int64(buf[pos])
        pos += 1
        two = True
        t = T2[b]
    else:
        t = T1[b]
    if (t & T_VALID) == 0:
        return 0
    if mode64 and (t & T_NO64) != 0:
        return 0
    rex_w = (rex >> 3) & 1
    rex_r = ((rex >> 2) & 1) << 3
    rex_x = ((rex >> 1) & 1) << 3
    rex_b = (rex & 1) << 3
    op = t & 0xFF
    sub = (t >> 8) & 0xF
    reg = 0
    rm = 0
    base = O.REG_NONE
    index = O.REG_NONE
    scale = 0
    mem = False
    disp = np.int64(0)
    modrm_reg = 0
    mod = 3
    if (t & T_MODRM) != 0:
        if pos >= n:
            return -1
        modrm = np.int64(buf[pos])
        pos += 1
        mod = modrm >> 6
        modrm_reg = (modrm >> 3) & 7
        rmlow = modrm & 7
        reg = modrm_reg | rex_r
        if two and b == 0x01 and mod == 3:
            # 0F 01 with a register ModRM: SWAPGS (F8) is the one we model
            if modrm == 0xF8 and mode64:
                op = O.SWAPGS
                t = T_VALID
            else:
                return 0
        elif mod == 3:
            rm = rmlow | rex_b
        else:
            mem = True
            a32 = addr32 or not mode64
            if rmlow == 4:
                if pos >= n:
                    return -1
                sib = np.int64(buf[pos])
                pos += 1
                scale = sib >> 6
                idx = ((sib >> 3) & 7) | rex_x
                if idx != 4:
                    index = idx
                bl = sib & 7
                if bl == 5 and mod == 0:
                    base = O.REG_NONE
                    if pos + 4 > n:
                        return -1
                    disp = _sx(_le(buf, pos, np.int64(4)), np.int64(32))
                    pos += 4
                else:
                    base = bl | rex_b
            elif rmlow == 5 and mod == 0:
                base = O.REG_RIP if mode64 else O.REG_NONE
                if pos + 4 > n:
                    return -1
                disp = _sx(_le(buf, pos, np.int64(4)), np.int64(32))
                pos += 4
            else:
                base = rmlow | rex_b
            if mod == 1:
                if pos >= n:
                    return -1
                disp = _sx(np.int64(buf[pos]), np.int64(8))
                pos += 1
            elif mod == 2:
                if pos + 4 > n:
                    return -1
                disp = _sx(_le(buf, pos, np.int64(4)), np.int64(32))
                pos += 4
            if a32 and not mode64 and addr32:
                return 0                       # 16-bit addressing is not modelled
        g = (t >> T_GROUP_SHIFT) & 31
        if g != 0:
            ge = G[g * 8 + modrm_reg]
            if (ge & T_VALID) == 0:
                return 0
            op = ge & 0xFF
            sub = (ge >> 8) & 0xF
            keep = t & ((15 << T_IMM_SHIFT) | T_BYTE | T_MODRM | T_X1 | T_X2)
            t = (ge & ~np.int64(15 << T_IMM_SHIFT)) | keep
            if g == GRP3:
                if IMM_FOR_GROUP3[modrm_reg] != 0:
                    t |= np.int64((IMM_UB if (t & T_BYTE) != 0 else IMM_Z)) << T_IMM_SHIFT
                    if (t & T_BYTE) != 0:
                        t = (t & ~np.int64(15 << T_IMM_SHIFT)) | (np.int64(IMM_B) << T_IMM_SHIFT)
            if g == GRP2 and (t & (T_X1 | T_X2)) == 0:
                t |= np.int64(IMM_UB) << T_IMM_SHIFT
        if (t & T_MEMONLY) != 0 and not mem:
            return 0
        if (t & T_REGONLY) != 0:
            mem = False
            rm = rmlow | rex_b
    # operand size
    if (t & T_BYTE) != 0:
        szc = 0
    elif (t & T_SZ64) != 0 and mode64:
        szc = 3
    elif (t & T_SZ16) != 0:
        szc = 1
    elif mode64 and (t & T_F64) != 0:
        szc = 3
    elif rex_w != 0:
        szc = 3
    elif opsize:
        szc = 1
    elif mode64 and (t & T_D64) != 0:
        szc = 3
    else:
        szc = 2
    if (t & T_REGOP_R) != 0:
        reg = (b & 7) | rex_b
    if (t & T_REGOP_M) != 0:
        rm = (b & 7) | rex_b
    if (t & T_ACC) != 0:
        rm = 0
        reg = 0
    if op == O.XCHG and (t & T_REGOP_M) != 0:
        reg = 0
        if rm == 0:
            op = O.PAUSE if rep == 1 else O.NOP
    # byte registers: without REX, 4-7 name AH CH DH BH
    if szc == 0 and rex == 0:
        if reg >= 4 and reg < 8 and op != O.MOVX:
            reg += 12
        if not mem and rm >= 4 and rm < 8:
            rm += 12
    if op == O.MOVX and ((t >> T_SZ2_SHIFT) & 3) == 0 and rex == 0 and not mem \
            and rm >= 4 and rm < 8:
        rm += 12
    # immediate
    imm = np.int64(0)
    ik = (t >> T_IMM_SHIFT) & 15
    if ik == IMM_B or ik == IMM_UB:
        if pos >= n:
            return -1
        imm = np.int64(buf[pos])
        if ik == IMM_B:
            imm = _sx(imm, np.int64(8))
        pos += 1
    elif ik == IMM_W:
        if pos + 2 > n:
            return -1
        imm = _le(buf, pos, np.int64(2))
        pos += 2
    elif ik == IMM_Z:
        k = 2 if szc == 1 else 4
        if pos + k > n:
            return -1
        imm = _sx(_le(buf, pos, k), 8 * k)
        pos += k
    elif ik == IMM_V:
        k = 1 << szc
        if pos + k > n:
            return -1
        imm = _le(buf, pos, k)
        if k < 8:
            imm = _sx(imm, 8 * k)
        pos += k
    elif ik == IMM_MOFFS:
        k = 4 if (addr32 or not mode64) else 8
        if pos + k > n:
            return -1
        disp = _le(buf, pos, k)
        pos += k
        mem = True
        base = O.REG_NONE
        index = O.REG_NONE
    elif ik == IMM_ENTER:
        if pos + 3 > n:
            return -1
        imm = _le(buf, pos, np.int64(3))          # iw frame size | ib nesting level << 16
        pos += 3
    elif ik == IMM_FAR:
        if pos + 6 > n:
            return -1
        imm = _le(buf, pos, np.int64(6))
        pos += 6
    if pos > 15:
        return 0
    if op == O.MOV_CR_R or op == O.MOV_R_CR:
        if lock and reg == 0:
            reg = 8                            # LOCK MOV CR0 is CR8 on AMD: not modelled
            return 0
        if reg != 0 and reg != 2 and reg != 3 and reg != 4:
            return 0
    if lock and not mem:
        return 0                               # LOCK needs a memory destination (#UD)
    if op == O.CMPXCHG16B and rex_w == 0:
        return 0                               # CMPXCHG8B is not in the subset
    macc = (t >> T_MACC_SHIFT) & 3
    info = np.int64(op) | (np.int64(pos) << O.I_LEN_SHIFT) | (np.int64(szc) << O.I_SZ_SHIFT)
    info |= np.int64(reg) << O.I_R_SHIFT
    info |= np.int64(base if mem else rm) << O.I_M_SHIFT
    info |= np.int64(index) << O.I_X_SHIFT
    info |= np.int64(scale) << O.I_SC_SHIFT
    if mem:
        info |= O.I_MEM
    info |= np.int64(sub) << O.I_SUB_SHIFT
    info |= np.int64(seg) << O.I_SEG_SHIFT
    info |= np.int64(rep) << O.I_REP_SHIFT
    if lock:
        info |= O.I_LOCK
    if addr32 and mode64:
        info |= O.I_A32
    info |= ((t >> T_SZ2_SHIFT) & 3) << O.I_SZ2_SHIFT
    if (t & T_X1) != 0:
        info |= O.I_X1
    if (t & T_X2) != 0:
        info |= O.I_X2
    if rex_w != 0:
        info |= O.I_W
    info |= b << O.I_OPC_SHIFT
    info |= np.int64(macc) << O.I_MACC_SHIFT
    if two:
        info |= O.I_TWO
    out[0] = info
    out[1] = disp
    out[2] = imm
    return pos


U.register(U.U_DECODE, decode, DECODE_ARGS)


def decode_bytes(code: bytes, mode64: bool = True) -> dict:
    """Decode one instruction from ``code`` (for tests and tools): its fields by name."""
    buf = np.zeros(16, dtype=np.int64)
    buf[:min(len(code), 15)] = np.frombuffer(bytes(code[:15]), dtype=np.uint8)
    out = np.zeros(3, dtype=np.int64)
    n = int(decode(buf, np.int64(min(len(code), 15)), bool(mode64), out))
    if n <= 0:
        return {"length": n, "op": None}
    return unpack(int(out[0]), int(out[1]), int(out[2]))


def unpack(info: int, disp: int = 0, imm: int = 0) -> dict:
    f = lambda sh, bits: (info >> sh) & ((1 << bits) - 1)
    return {
        "op": O.NAMES.get(info & 0xFF, str(info & 0xFF)), "length": f(O.I_LEN_SHIFT, 4),
        "size": 1 << f(O.I_SZ_SHIFT, 2), "reg": f(O.I_R_SHIFT, 5), "rm": f(O.I_M_SHIFT, 5),
        "index": f(O.I_X_SHIFT, 5), "scale": 1 << f(O.I_SC_SHIFT, 2),
        "mem": bool(info & O.I_MEM), "sub": f(O.I_SUB_SHIFT, 4), "seg": f(O.I_SEG_SHIFT, 2),
        "rep": f(O.I_REP_SHIFT, 2), "lock": bool(info & O.I_LOCK), "disp": disp, "imm": imm,
    }
