"""Blocks for the code cache: decode straight-line instructions and take each
one apart for the interpreter loop (its *hot word*, ops.py).

A block starts where execution first reaches it and runs to the first
instruction that ends it: a branch, an instruction the loop leaves to the
general executor, the end of the page, or MAX_BLOCK instructions.  An
instruction that straddles the page end is never cached (the general path
fetches it across the two pages).
"""

import numpy as np
from numba import njit

from .. import memory as M
from .. import regs as R
from . import ops as O
from . import slots as S
from . import units as U
from .cache import C_BMAP, C_DOUT, C_ENT, C_ENT_NEXT, C_FBUF, C_FP, C_GEN, C_NENT, C_NPAGES, \
    C_SOP, ENT_WORDS, MAX_BLOCK, PAGE
from .decoder import DECODE_ARGS

call_decode = U.caller(U.I64, DECODE_ARGS)
TRANSLATE_ARGS = (U.MEM_T, U.DC_T, U.I64, U.I64)

_ALU_HANDLER = np.array([O.H_ADD, O.H_OR, O.H_ADC, O.H_SBB, O.H_AND, O.H_SUB, O.H_XOR,
                         O.H_CMP, O.H_TEST], dtype=np.int64)


@njit(cache=True, inline="always")
def _word(h, szc, d, s, sub):
    return (np.int64(h) | (np.int64(szc) << O.W_SZ_SHIFT) | (np.int64(d) << O.W_D_SHIFT)
            | (np.int64(s) << O.W_S_SHIFT) | (np.int64(sub) << O.W_SUB_SHIFT))


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def hot_entry(info, disp, imm, off, ln):
    """The hot words (w0, w1, w2, w3) of a decoded instruction; w0's handler is
    H_SLOW for anything the loop leaves to the general executor."""
    op = info & O.I_OP_MASK
    szc = (info >> O.I_SZ_SHIFT) & 3
    reg = (info >> O.I_R_SHIFT) & 31
    rm = (info >> O.I_M_SHIFT) & 31
    sub = (info >> O.I_SUB_SHIFT) & 15
    mem = (info & O.I_MEM) != 0
    macc = (info >> O.I_MACC_SHIFT) & 3
    nxt = off + ln
    slow = (np.int64(O.H_SLOW), np.int64(0), np.int64(0), np.int64(0))
    if (info & O.I_A32) != 0:
        return slow
    # the r/m operand: a register slot, or TMP filled/stored around the handler
    rmslot = np.int64(S.TMP) if mem else rm
    if not mem and rm >= 16 and op != O.JCC and op != O.JMP_REL and op != O.CALL_REL:
        return slow                       # AH CH DH BH: left to the general path
    w1 = imm
    w = np.int64(0)
    memop = mem
    wb = False
    if op == O.MOV_RM_R:
        if reg >= 16:
            return slow
        w = _word(O.H_MOV, szc, rmslot, reg, 0)
        wb = mem
    elif op == O.MOV_R_RM:
        w = _word(O.H_MOV, szc, reg, rmslot, 0)
    elif op == O.MOV_RM_I:
        w = _word(O.H_MOV, szc, rmslot, S.IMM, 0) | O.W_IMMS
        wb = mem
    elif op == O.ALU_RM_R or op == O.ALU_RM_I:
        if op == O.ALU_RM_R and reg >= 16:
            return slow
        if op == O.ALU_RM_I:
            w = _word(_ALU_HANDLER[sub], szc, rmslot, S.IMM, 0) | O.W_IMMS
        else:
            w = _word(_ALU_HANDLER[sub], szc, rmslot, reg, 0)
        wb = mem and sub != O.CMP and sub != O.TEST
    elif op == O.ALU_R_RM:
        if reg >= 16:
            return slow
        w = _word(_ALU_HANDLER[sub], szc, reg, rmslot, 0)
    elif op == O.INCDEC:
        w = _word(O.H_DEC if sub == 1 else O.H_INC, szc, rmslot, 0, 0)
        wb = mem
    elif op == O.NEGNOT:
        w = _word(O.H_NOT if sub == 2 else O.H_NEG, szc, rmslot, 0, 0)
        wb = mem
    elif op == O.LEA:
        w = _word(O.H_MOV, szc, reg, S.TMP, 0)
        macc = O.MACC_NONE
        info &= ~np.int64(3 << O.I_SEG_SHIFT)     # LEA ignores segment overrides
    elif op == O.MOVX:
        if reg >= 16:
            return slow
        h = O.H_MOVSX if (info & O.I_X1) != 0 else O.H_MOVZX
        w = _word(h, szc, reg, rmslot, 0)
        w |= ((info >> O.I_SZ2_SHIFT) & 3) << O.W_MSZ_SHIFT
    elif op == O.SHIFT:
        if sub != 4 and sub != 5 and sub != 6 and sub != 7:
            return slow                   # rotates: general path
        kind = 1 if sub == 5 else (2 if sub == 7 else 0)
        if (info & O.I_X1) != 0:
            w = _word(O.H_SHIFT, szc, rmslot, R.RCX, kind)
        else:
            w = _word(O.H_SHIFT, szc, rmslot, 0, kind) | O.W_IMM
            w1 = 1 if (info & O.I_X2) != 0 else imm & 0xFF
        wb = mem
    elif op == O.IMUL2 or op == O.IMUL3:
        if reg >= 16:
            return slow
        w = _word(O.H_IMUL, szc, reg, rmslot, 0)
        if op == O.IMUL3:
            w |= O.W_IMM
    elif op == O.XCHG:
        if reg >= 16:
            return slow
        w = _word(O.H_XCHG, szc, rmslot, reg, 0)
        wb = mem
    elif op == O.CMOV:
        if reg >= 16:
            return slow
        w = _word(O.H_CMOV, szc, reg, rmslot, sub)
    elif op == O.SETCC:
        w = _word(O.H_SETCC, 0, rmslot, 0, sub)
        wb = mem
    elif op == O.JCC or op == O.JMP_REL or op == O.CALL_REL:
        h = O.H_JCC if op == O.JCC else (O.H_JMP if op == O.JMP_REL else O.H_CALL)
        w = _word(h, 3, 0, 0, sub) | O.W_IMM
        w1 = nxt + imm
        memop = False
    elif op == O.JMP_RM or op == O.CALL_RM:
        if szc != 3:
            return slow
        w = _word(O.H_JMP if op == O.JMP_RM else O.H_CALL, 3, 0, rmslot, 0)
    elif op == O.RET:
        if szc != 3:
            return slow
        w = _word(O.H_RET, 3, 0, 0, 0)
        memop = False
    elif op == O.PUSH_R or op == O.PUSH_I or op == O.PUSH_RM:
        if szc != 3:
            return slow
        if op == O.PUSH_I:
            w = _word(O.H_PUSH, 3, 0, 0, 0) | O.W_IMM
        else:
            w = _word(O.H_PUSH, 3, 0, reg if op == O.PUSH_R else rmslot, 0)
    elif op == O.POP_R:
        if szc != 3:
            return slow
        w = _word(O.H_POP, 3, reg, 0, 0)
    elif op == O.NOP or op == O.PAUSE:
        w = _word(O.H_NOP, 0, 0, 0, 0)
        memop = False
    elif op == O.IN or op == O.OUT:
        out = 1 if op == O.OUT else 0
        if sub == 0:
            w = _word(O.H_IO, szc, R.RAX, 0, out) | O.W_IMM
            w1 = imm & 0xFF
        else:
            w = _word(O.H_IO, szc, R.RAX, R.RDX, out)
        memop = False
    else:
        return slow
    w |= (np.int64(off) << O.W_OFF_SHIFT) | (np.int64(ln) << O.W_LEN_SHIFT)
    w2 = np.int64(0)
    w3 = np.int64(0)
    if memop and mem:
        base = (info >> O.I_M_SHIFT) & 31
        index = (info >> O.I_X_SHIFT) & 31
        seg = (info >> O.I_SEG_SHIFT) & 3
        w2 = disp
        if base == O.REG_RIP:
            bslot = np.int64(S.PAGEVA)
            w2 = disp + nxt
        elif base == O.REG_NONE:
            bslot = np.int64(S.ZERO)
        else:
            bslot = base
        islot = index if index < 16 else np.int64(S.ZERO)
        sslot = np.int64(S.ZERO) if seg == 0 else (np.int64(R.FS_BASE) if seg == 1
                                                   else np.int64(R.GS_BASE))
        w3 = bslot | (islot << O.A_INDEX_SHIFT) | (((info >> O.I_SC_SHIFT) & 3) << O.A_SCALE_SHIFT) \
            | (sslot << O.A_SEG_SHIFT)
        msz = (info >> O.I_SZ2_SHIFT) & 3 if op == O.MOVX else szc
        if op == O.JMP_RM or op == O.CALL_RM or op == O.PUSH_RM:
            msz = 3
        w |= O.W_MEM | (macc << O.W_MACC_SHIFT)
        if op != O.MOVX:
            w |= msz << O.W_MSZ_SHIFT
        if wb:
            w |= O.W_WB
    return w, w1, w2, w3


# Flags as liveness bits: O S Z A P C.
FL_O, FL_S, FL_Z, FL_A, FL_P, FL_C = 1, 2, 4, 8, 16, 32
FL_ALL = 63
FL_OSZAP = FL_ALL & ~FL_C
# flags condition cc >> 1 reads (SDM Vol. 1 Appendix B): O, C, Z, CZ, S, P, SO, SOZ
COND_READS = np.array([FL_O, FL_C, FL_Z, FL_C | FL_Z, FL_S, FL_P, FL_S | FL_O,
                       FL_S | FL_O | FL_Z], dtype=np.int64)
# handler -> its no-flags twin (0: none)
_NF = np.zeros(64, dtype=np.int64)
for _h, _nf in ((O.H_ADD, O.H_ADD_NF), (O.H_OR, O.H_OR_NF), (O.H_AND, O.H_AND_NF),
                (O.H_SUB, O.H_SUB_NF), (O.H_XOR, O.H_XOR_NF), (O.H_INC, O.H_INC_NF),
                (O.H_DEC, O.H_DEC_NF), (O.H_NEG, O.H_NEG_NF), (O.H_CMP, O.H_NOP),
                (O.H_TEST, O.H_NOP)):
    _NF[_h] = _nf


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def flag_use(w, imm):
    """(flags written, flags read) by a hot entry, as FL_* bits; an entry for the
    general path may do anything, so it reads them all."""
    h = w & 63
    if h == O.H_SLOW:
        return 0, FL_ALL
    if (h >= O.H_ADD and h <= O.H_TEST) or h == O.H_NEG or h == O.H_IMUL:
        return FL_ALL, FL_C if (h == O.H_ADC or h == O.H_SBB) else 0
    if h == O.H_INC or h == O.H_DEC:
        return FL_OSZAP, 0
    if h == O.H_SHIFT:
        if (w & O.W_IMM) != 0 and (imm & (63 if ((w >> O.W_SZ_SHIFT) & 3) == 3 else 31)) != 0:
            return FL_ALL, 0
        return 0, 0                       # a count of 0 (maybe) leaves the flags alone
    if h == O.H_JCC or h == O.H_CMOV or h == O.H_SETCC:
        return 0, COND_READS[((w >> O.W_SUB_SHIFT) & 15) >> 1]
    return 0, 0


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def drop_dead_flags(cc, first, k):
    """Give every entry of a block whose flags nothing reads its no-flags twin
    (the flags are taken as live at the end of the block)."""
    live = np.int64(FL_ALL)
    for i in range(k - 1, -1, -1):
        e = first + ENT_WORDS * i
        w = cc[e]
        wr, rd = flag_use(w, cc[e + 1])
        h = w & 63
        wide = ((w >> O.W_SZ_SHIFT) & 3) >= 2      # the twins only serve 32/64-bit operands
        if wr != 0 and (live & wr) == 0 and _NF[h] != 0 and (wide or _NF[h] == O.H_NOP):
            cc[e] = (w & ~np.int64(63)) | _NF[h]
        live = (live & ~wr) | rd


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def fuse_jcc(cc, first, k):
    """A block ending in CMP/TEST/DEC + Jcc runs the pair as one step."""
    if k < 2:
        return
    e = first + ENT_WORDS * (k - 1)
    jw = cc[e]
    if (jw & 63) != O.H_JCC:
        return
    pw = cc[e - ENT_WORDS]
    h = pw & 63
    fused = O.H_CMP_J if h == O.H_CMP else (O.H_TEST_J if h == O.H_TEST else (
        O.H_DEC_J if h == O.H_DEC else 0))
    if fused == 0:
        return
    cond = (jw >> O.W_SUB_SHIFT) & 15
    pw = (pw & ~np.int64(63) & ~(np.int64(15) << O.W_SUB_SHIFT)) | fused | (cond << O.W_SUB_SHIFT)
    cc[e - ENT_WORDS] = pw


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def is_block_end(w):
    h = w & 0xFF
    return h == O.H_SLOW or (h >= O.H_BRANCH_FIRST and h <= O.H_BRANCH_LAST)


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def flush_blocks(cc):
    """The entries ran out: forget every block (the pages stay assigned)."""
    b = cc[C_BMAP]
    cc[b:b + cc[C_NPAGES] * PAGE] = 0
    cc[C_ENT_NEXT] = 1


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def translate(mem, dc, p, rip):
    """Unit U_TRANSLATE: build the block starting at ``rip`` on cache page ``p``;
    its entry index, or 0 when the first instruction cannot be cached (it
    straddles the page end or does not decode: the general path handles it)."""
    cc = dc[0]
    s = cc[cc[C_SOP] + p]
    data = mem[M.M_DATA]
    base = s * PAGE
    off0 = rip & 0xFFF
    if cc[C_ENT_NEXT] + MAX_BLOCK + 1 > cc[C_NENT]:
        flush_blocks(cc)
    bi = cc[C_ENT_NEXT]
    fb = cc[C_FBUF]
    buf = cc[fb:fb + 16]
    do = cc[C_DOUT]
    out = cc[do:do + 3]
    ent = cc[C_ENT]
    gen = cc[C_GEN]
    fp = cc[C_FP + U.U_DECODE]
    off = off0
    k = 0
    while k < MAX_BLOCK and off < PAGE:
        avail = 15 if off <= PAGE - 15 else PAGE - off
        for i in range(avail):
            buf[i] = data[base + off + i]
        n = call_decode(fp, (buf, avail, True, out))
        if n <= 0:
            break
        j = bi + 1 + k
        cc[gen + 3 * j + 0] = out[0]
        cc[gen + 3 * j + 1] = out[1]
        cc[gen + 3 * j + 2] = out[2]
        w, w1, w2, w3 = hot_entry(out[0], out[1], out[2], off, n)
        if (w & 0xFF) == O.H_SLOW:
            w = O.H_SLOW | (np.int64(off) << O.W_OFF_SHIFT) | (np.int64(n) << O.W_LEN_SHIFT)
        e = ent + ENT_WORDS * j
        cc[e + 0] = w
        cc[e + 1] = w1
        cc[e + 2] = w2
        cc[e + 3] = w3
        szc = (w >> O.W_SZ_SHIFT) & 3
        m = (np.int64(2) << ((8 << szc) - 1)) - 1
        cc[e + 4] = m
        cc[e + 5] = ~m if szc < 2 else np.int64(0)
        cc[e + 6] = (w >> O.W_D_SHIFT) & 127
        cc[e + 7] = (w >> O.W_S_SHIFT) & 127
        k += 1
        off += n
        if is_block_end(w):
            break
    if k == 0:
        return np.int64(0)
    drop_dead_flags(cc, ent + ENT_WORDS * (bi + 1), k)
    fuse_jcc(cc, ent + ENT_WORDS * (bi + 1), k)
    cc[ent + ENT_WORDS * bi] = k
    cc[ent + ENT_WORDS * bi + 1] = off
    cc[C_ENT_NEXT] = bi + 1 + k
    cc[cc[C_BMAP] + p * PAGE + off0] = bi
    return bi


U.register(U.U_TRANSLATE, translate, TRANSLATE_ARGS)
