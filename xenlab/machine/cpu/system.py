"""System instructions, port I/O, string instructions and the stack.

Privilege rules follow the SDM: instructions that need CPL 0 raise #GP(0)
above it (Vol. 3 §5.9); CLI/STI/IN/OUT compare CPL with RFLAGS.IOPL, and
IN/OUT/INS/OUTS then consult the TSS I/O permission bitmap (Vol. 1 §19.5);
POPF silently keeps IOPL unless CPL 0 and IF unless CPL <= IOPL (Vol. 2 POPF).
Control-register writes apply the flush rules of ``mmu.Mmu`` with the same
jitted TLB functions.
"""

import numpy as np
from numba import njit

from .. import regs as R
from ..mmu import (ACC_WRITE, load_pdptes, paging_mode, tlb_flush_all,
                   tlb_flush_nonglobal, tlb_invlpg)
from . import flags as F
from . import ops as O
from . import slots as S
from . import units as U
from .access import external, probe_write, vread, vwrite
from .arith import alu
from .regfile import (MASKS, canonical, ea_of, fault, gp, rget, rset, sext, stack_based,
                      stack_fault, user_acc)

# MSR numbers (SDM Vol. 4, Table 2-2).
MSR_TSC = 0x10
MSR_APIC_BASE = 0x1B
MSR_EFER = 0xC0000080
MSR_STAR = 0xC0000081
MSR_LSTAR = 0xC0000082
MSR_CSTAR = 0xC0000083
MSR_FMASK = 0xC0000084
MSR_FS_BASE = 0xC0000100
MSR_GS_BASE = 0xC0000101
MSR_KERNEL_GS_BASE = 0xC0000102

# RFLAGS bits POPF/IRET may change (SDM Vol. 2 POPF, Table 4-15); IF and IOPL by rule.
POPF_MASK = (R.FLAG_CF | R.FLAG_PF | R.FLAG_AF | R.FLAG_ZF | R.FLAG_SF | R.FLAG_TF
             | R.FLAG_DF | R.FLAG_OF | R.FLAG_NT | R.FLAG_AC | R.FLAG_ID)
EFER_VALID = R.EFER_SCE | R.EFER_LME | R.EFER_LMA | R.EFER_NXE
CR4_VALID = (R.CR4_VME | R.CR4_PVI | R.CR4_TSD | R.CR4_DE | R.CR4_PSE | R.CR4_PAE
             | R.CR4_MCE | R.CR4_PGE | R.CR4_PCE | R.CR4_OSFXSR | R.CR4_OSXMMEXCPT
             | R.CR4_SMEP)
# SYSRET loads RFLAGS from R11 with these bits kept (SDM Vol. 2 SYSRET: 3C7FD7H).
SYSRET_KEEP = 0x3C7FD7


# -- stack -------------------------------------------------------------------------

@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def push_val(mem, st, tlb, dc, v, szc):
    """Push ``v`` (8, 4 or 2 bytes); RSP changes only if the store succeeds."""
    n = np.int64(1) << szc
    sp = st[R.RSP] - n
    if st[R.CSBASE_MODE] != R.MODE_LONG64:
        sp &= 0xFFFFFFFF
    if stack_fault(st, sp):
        return False
    vwrite(mem, st, tlb, dc, sp, n, v, user_acc(st))
    if st[S.STATUS] != 0:
        return False
    st[R.RSP] = sp
    return True


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def pop_val(mem, st, tlb, dc, szc):
    """Pop a value; RSP changes only if the load succeeds."""
    n = np.int64(1) << szc
    sp = st[R.RSP]
    if st[R.CSBASE_MODE] != R.MODE_LONG64:
        sp &= 0xFFFFFFFF
    if stack_fault(st, sp):
        return np.int64(0)
    v = vread(mem, st, tlb, dc, sp, n, user_acc(st))
    if st[S.STATUS] != 0:
        return np.int64(0)
    st[R.RSP] = sp + n if st[R.CSBASE_MODE] == R.MODE_LONG64 else (sp + n) & 0xFFFFFFFF
    return v


# -- port I/O ----------------------------------------------------------------------

@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def iopl(st):
    return (st[R.RFLAGS] >> R.FLAG_IOPL_SHIFT) & 3


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def io_allowed(mem, st, tlb, dc, port, size):
    """The I/O permission rule: CPL <= IOPL, else every bit for the accessed
    ports must be clear in the TSS I/O permission bitmap (SDM Vol. 1 §19.5.2).
    The bitmap's offset is the 16-bit field at TSS+0x66; the processor reads
    two bytes there and a bitmap that runs past the TSS limit denies."""
    if (st[R.CR0] & R.CR0_PE) == 0 or st[R.CPL] <= iopl(st):
        return True
    limit = st[R.TR_LIMIT]
    base = st[R.TR_BASE]
    if limit < 0x67:
        return False
    iomap = vread(mem, st, tlb, dc, base + 0x66, np.int64(2), np.int64(0))
    if st[S.STATUS] != 0:
        return False
    at = iomap + (port >> 3)
    if at + 1 > limit:
        return False
    bits = vread(mem, st, tlb, dc, base + at, np.int64(2), np.int64(0))
    if st[S.STATUS] != 0:
        return False
    mask = ((np.int64(1) << size) - 1) << (port & 7)
    return (bits & mask) == 0


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def port_access(mem, st, tlb, dc, owner, port, size, write, value, string, rep):
    """One IN/OUT after the permission check: unclaimed ports are answered here
    (reads all ones, writes dropped) unless OPT_IO_EXIT_ALL; claimed ones exit."""
    port &= 0xFFFF
    if (st[S.OPTIONS] & S.OPT_IO_EXIT_ALL) == 0:
        free = True
        for i in range(size):
            if owner[(port + i) & 0xFFFF] != 0:
                free = False
        if free:
            return (np.int64(1) << (8 * size)) - 1
    v = external(st, np.int64(S.EXIT_IO), port, size, write,
                 value & MASKS[size >> 1 if size < 4 else 2], np.int64(0))
    if st[S.STATUS] == S.EXIT_IO:
        st[S.XI + S.XI_E] = 1 if string else 0
        st[S.XI + S.XI_F] = rep
    return v


# -- string instructions -------------------------------------------------------------

@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def exec_string(mem, st, tlb, dc, owner, info, disp, imm, maxel):
    """Unit U_STRING: MOVS CMPS STOS LODS SCAS INS OUTS, with REP/REPE/REPNE (SDM Vol. 2 "REP").

    Each element commits RSI/RDI/RCX before the next, so a fault or exit in the
    middle leaves a restartable state with RIP still at the instruction.
    """
    sub = (info >> O.I_SUB_SHIFT) & 15
    szc = (info >> O.I_SZ_SHIFT) & 3
    size = np.int64(1) << szc
    rep = (info >> O.I_REP_SHIFT) & 3
    a32 = (info & O.I_A32) != 0 or st[R.CSBASE_MODE] != R.MODE_LONG64
    amask = np.int64(0xFFFFFFFF) if a32 else np.int64(-1)
    seg = (info >> O.I_SEG_SHIFT) & 3
    sbase = st[R.FS_BASE] if seg == 1 else (st[R.GS_BASE] if seg == 2 else 0)
    delta = -size if (st[R.RFLAGS] & R.FLAG_DF) != 0 else size
    acc = user_acc(st)
    cmp_op = sub == O.S_CMPS or sub == O.S_SCAS
    nxt = st[R.RIP] + ((info >> O.I_LEN_SHIFT) & 15)
    if sub == O.S_INS or sub == O.S_OUTS:
        if not io_allowed(mem, st, tlb, dc, st[R.RDX] & 0xFFFF, size):
            if st[S.STATUS] == 0:
                gp(st, np.int64(0))
            return 0
    n = 0
    while True:
        if rep != 0 and (st[R.RCX] & amask) == 0:
            break
        rsi = st[R.RSI] & amask
        rdi = st[R.RDI] & amask
        if sub == O.S_MOVS:
            v = vread(mem, st, tlb, dc, sbase + rsi, size, acc)
            if st[S.STATUS] != 0:
                return n
            vwrite(mem, st, tlb, dc, rdi, size, v, acc)
            if st[S.STATUS] != 0:
                return n
            st[R.RSI] = (rsi + delta) & amask
            st[R.RDI] = (rdi + delta) & amask
        elif sub == O.S_STOS:
            vwrite(mem, st, tlb, dc, rdi, size, st[R.RAX], acc)
            if st[S.STATUS] != 0:
                return n
            st[R.RDI] = (rdi + delta) & amask
        elif sub == O.S_LODS:
            v = vread(mem, st, tlb, dc, sbase + rsi, size, acc)
            if st[S.STATUS] != 0:
                return n
            rset(st, np.int64(0), szc, v)
            st[R.RSI] = (rsi + delta) & amask
        elif sub == O.S_CMPS:
            a = vread(mem, st, tlb, dc, sbase + rsi, size, acc)
            if st[S.STATUS] != 0:
                return n
            b = vread(mem, st, tlb, dc, rdi, size, acc)
            if st[S.STATUS] != 0:
                return n
            alu(st, np.int64(O.CMP), szc, a, b)
            st[R.RSI] = (rsi + delta) & amask
            st[R.RDI] = (rdi + delta) & amask
        elif sub == O.S_SCAS:
            b = vread(mem, st, tlb, dc, rdi, size, acc)
            if st[S.STATUS] != 0:
                return n
            alu(st, np.int64(O.CMP), szc, st[R.RAX], b)
            st[R.RDI] = (rdi + delta) & amask
        elif sub == O.S_INS:
            if not probe_write(mem, st, tlb, dc, rdi, size, acc):
                return n
            v = port_access(mem, st, tlb, dc, owner, st[R.RDX], size, np.bool_(False), np.int64(0), np.bool_(True), rep)
            if st[S.STATUS] != 0:
                return n
            vwrite(mem, st, tlb, dc, rdi, size, v, acc)
            if st[S.STATUS] != 0:
                return n
            st[R.RDI] = (rdi + delta) & amask
        else:
            v = vread(mem, st, tlb, dc, sbase + rsi, size, acc)
            if st[S.STATUS] != 0:
                return n
            port_access(mem, st, tlb, dc, owner, st[R.RDX], size, np.bool_(True), v, np.bool_(True), rep)
            if st[S.STATUS] != 0:
                return n
            st[R.RSI] = (rsi + delta) & amask
        n += 1
        if st[S.X_NDONE] != 0:          # this element used logged accesses: done with them
            st[S.X_NDONE] = 0
            st[S.X_SEEN] = 0
        if rep == 0:
            break
        st[R.RCX] = (st[R.RCX] - 1) & amask if a32 else st[R.RCX] - 1
        if (st[R.RCX] & amask) == 0:
            break
        if cmp_op:
            zf = F.cond(st, np.int64(4))
            if (rep == 1 and not zf) or (rep == 2 and zf):
                break
        if n >= maxel:
            return n                     # RIP stays: the instruction goes on
    st[R.RIP] = nxt if st[R.CSBASE_MODE] == R.MODE_LONG64 else nxt & 0xFFFFFFFF
    return n if n > 0 else 1


# -- control registers and MSRs (the jitted twins of mmu.Mmu's methods) -------------

@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def long_mode_activation(st):
    """EFER.LMA = EFER.LME && CR0.PG (SDM Vol. 3 §9.8.5)."""
    if (st[R.CR0] & R.CR0_PG) != 0 and (st[R.EFER] & R.EFER_LME) != 0:
        st[R.EFER] |= R.EFER_LMA
    else:
        st[R.EFER] &= ~np.int64(R.EFER_LMA)


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def write_cr0(mem, st, tlb, v):
    """MOV CR0: #GP for PG without PE, upper bits, or long mode without PAE."""
    if (v >> 32) != 0 or ((v & R.CR0_PG) != 0 and (v & R.CR0_PE) == 0):
        return False
    if (v & R.CR0_PG) != 0 and (st[R.CR0] & R.CR0_PG) == 0 and \
            (st[R.EFER] & R.EFER_LME) != 0 and (st[R.CR4] & R.CR4_PAE) == 0:
        return False
    old = st[R.CR0]
    st[R.CR0] = v | R.CR0_ET
    long_mode_activation(st)
    if ((old ^ v) & (R.CR0_PG | R.CR0_WP)) != 0:
        tlb_flush_all(tlb)
        if paging_mode(st) == 3:
            load_pdptes(mem, st)
    return True


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def write_cr3(mem, st, tlb, v):
    if paging_mode(st) == 4 and (v >> st[R.MAXPHYADDR]) != 0:
        return False
    old = st[R.CR3]
    st[R.CR3] = v
    if paging_mode(st) == 3 and not load_pdptes(mem, st):
        st[R.CR3] = old
        return False
    tlb_flush_nonglobal(tlb)
    return True


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def write_cr4(st, tlb, v):
    if (v & ~np.int64(CR4_VALID)) != 0:
        return False
    if (st[R.EFER] & R.EFER_LMA) != 0 and (v & R.CR4_PAE) == 0:
        return False
    old = st[R.CR4]
    st[R.CR4] = v
    if ((old ^ v) & (R.CR4_PGE | R.CR4_PAE | R.CR4_PSE | R.CR4_SMEP)) != 0:
        tlb_flush_all(tlb)
    return True


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def write_efer(st, tlb, v):
    if (v & ~np.int64(EFER_VALID)) != 0:
        return False
    if (st[R.CR0] & R.CR0_PG) != 0 and ((v ^ st[R.EFER]) & R.EFER_LME) != 0:
        return False
    st[R.EFER] = (v & ~np.int64(R.EFER_LMA)) | (st[R.EFER] & R.EFER_LMA)
    long_mode_activation(st)
    tlb_flush_all(tlb)
    return True


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def read_msr(st, idx):
    """(ok, value) for RDMSR ``idx``."""
    if idx == MSR_EFER:
        return True, st[R.EFER]
    if idx == MSR_STAR:
        return True, st[R.STAR]
    if idx == MSR_LSTAR:
        return True, st[R.LSTAR]
    if idx == MSR_CSTAR:
        return True, st[R.CSTAR]
    if idx == MSR_FMASK:
        return True, st[R.SFMASK]
    if idx == MSR_FS_BASE:
        return True, st[R.FS_BASE]
    if idx == MSR_GS_BASE:
        return True, st[R.GS_BASE]
    if idx == MSR_KERNEL_GS_BASE:
        return True, st[R.KERNEL_GS_BASE]
    if idx == MSR_TSC:
        return True, st[R.TSC] + st[R.ICOUNT]
    if idx == MSR_APIC_BASE:
        return True, st[S.APIC_BASE]
    return False, np.int64(0)


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def write_msr(st, tlb, idx, v):
    if idx == MSR_EFER:
        return write_efer(st, tlb, v)
    if idx == MSR_STAR:
        st[R.STAR] = v
    elif idx == MSR_LSTAR or idx == MSR_CSTAR or idx == MSR_FS_BASE or idx == MSR_GS_BASE \
            or idx == MSR_KERNEL_GS_BASE:
        if not canonical(v):
            return False
        if idx == MSR_LSTAR:
            st[R.LSTAR] = v
        elif idx == MSR_CSTAR:
            st[R.CSTAR] = v
        elif idx == MSR_FS_BASE:
            st[R.FS_BASE] = v
        elif idx == MSR_GS_BASE:
            st[R.GS_BASE] = v
        else:
            st[R.KERNEL_GS_BASE] = v
    elif idx == MSR_FMASK:
        st[R.SFMASK] = v & 0xFFFFFFFF
    elif idx == MSR_TSC:
        st[R.TSC] = v - st[R.ICOUNT]
    elif idx == MSR_APIC_BASE:
        st[S.APIC_BASE] = v
    else:
        return False
    return True


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def cpuid(st, leaf, subleaf):
    """CPUID leaves 0, 1, 0x80000000, 0x80000001, 0x80000008 (SDM Vol. 2 CPUID);
    others read as zeros.  Features follow the vCPU's FEATURES slot; leaf 1
    reports this vCPU's initial APIC ID (its LAPIC's id on the platform)."""
    feat = st[R.FEATURES]
    if leaf == 0:
        # "GenuineIntel": EBX, EDX, ECX
        return np.int64(1), np.int64(0x756E6547), np.int64(0x6C65746E), np.int64(0x49656E69)
    if leaf == 1:
        # family 6 model 15: EDX FPU TSC MSR PAE CX8 APIC SEP PGE CMOV
        edx = (1 << 0) | (1 << 4) | (1 << 5) | (1 << 6) | (1 << 8) | (1 << 9) | (1 << 11) \
            | (1 << 15)
        if (feat & R.FEAT_PGE) != 0:
            edx |= 1 << 13
        ebx = (st[S.APIC_ID] & 0xFF) << 24      # EBX[31:24]: initial APIC ID
        ecx = np.int64(1 << 13)                  # CX16: CMPXCHG16B
        return np.int64(0x06F0), ebx, ecx, np.int64(edx)
    if leaf == 0x80000000:
        return np.int64(0x80000008), np.int64(0), np.int64(0), np.int64(0)
    if leaf == 0x80000001:
        edx = (1 << 11) | (1 << 29)             # SYSCALL, LM
        if (feat & R.FEAT_NX) != 0:
            edx |= 1 << 20
        if (feat & R.FEAT_PAGE1GB) != 0:
            edx |= 1 << 26
        return np.int64(0), np.int64(0), np.int64(0), np.int64(edx)
    if leaf == 0x80000008:
        return st[R.MAXPHYADDR] | (48 << 8), np.int64(0), np.int64(0), np.int64(0)
    return np.int64(0), np.int64(0), np.int64(0), np.int64(0)


# -- descriptors ---------------------------------------------------------------------

@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def read_descriptor(mem, st, tlb, dc, sel):
    """The 8-byte GDT descriptor of ``sel`` or #GP(sel) (no LDT is modelled)."""
    if (sel & 4) != 0 or (sel | 7) > st[R.GDTR_LIMIT]:
        gp(st, sel & 0xFFFC)
        return np.int64(0)
    return vread(mem, st, tlb, dc, st[R.GDTR_BASE] + (sel & 0xFFF8), np.int64(8), np.int64(0))


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def code_mode(st, desc):
    """Execution mode for a code-segment descriptor: L=1 in long mode is 64-bit,
    D=1 is 32-bit (SDM Vol. 3 §5.2.1); -1 for a 16-bit segment (not modelled)."""
    long_bit = (desc >> 53) & 1
    d_bit = (desc >> 54) & 1
    if (st[R.EFER] & R.EFER_LMA) != 0:
        if long_bit:
            return R.MODE_LONG64
        return R.MODE_COMPAT32 if d_bit else -1
    return R.MODE_LEGACY32 if d_bit else -1


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def far_jump(mem, st, tlb, dc, sel, offset):
    """JMP far through the GDT to a code segment of the same privilege."""
    sel &= 0xFFFF
    if (sel & 0xFFFC) == 0:
        gp(st, np.int64(0))
        return False
    d = read_descriptor(mem, st, tlb, dc, sel)
    if st[S.STATUS] != 0:
        return False
    cpl = st[R.CPL]
    typ = (d >> 40) & 0x1F
    dpl = (d >> 45) & 3
    if (typ & 0x18) != 0x18:                  # not a code segment
        gp(st, sel & 0xFFFC)
        return False
    if (typ & 4) != 0:                        # conforming
        if dpl > cpl:
            gp(st, sel & 0xFFFC)
            return False
    elif (sel & 3) > cpl or dpl != cpl:
        gp(st, sel & 0xFFFC)
        return False
    if ((d >> 47) & 1) == 0:
        fault(st, np.int64(11), sel & 0xFFFC)           # #NP
        return False
    mode = code_mode(st, d)
    if mode < 0:
        gp(st, sel & 0xFFFC)
        return False
    st[R.CS] = (sel & 0xFFFC) | cpl
    st[R.CSBASE_MODE] = mode
    st[R.RIP] = offset if mode == R.MODE_LONG64 else offset & 0xFFFFFFFF
    return True


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def load_segment(mem, st, tlb, dc, which, sel):
    """MOV/POP to SS DS ES FS GS: the selector, and for FS/GS the 32-bit
    descriptor base (64-bit code then sets full bases with WRMSR)."""
    sel &= 0xFFFF
    if which == 1:                            # CS cannot be loaded by MOV
        fault(st, np.int64(6), np.int64(0))
        return False
    if (sel & 0xFFFC) == 0:
        if which == 2 and (st[R.CSBASE_MODE] != R.MODE_LONG64 or st[R.CPL] == 3):
            gp(st, np.int64(0))                         # null SS
            return False
    else:
        d = read_descriptor(mem, st, tlb, dc, sel)
        if st[S.STATUS] != 0:
            return False
        if ((d >> 47) & 1) == 0:
            fault(st, 12 if which == 2 else 11, sel & 0xFFFC)
            return False
        base = ((d >> 16) & 0xFFFFFF) | (((d >> 56) & 0xFF) << 24)
        if which == 4:
            st[R.FS_BASE] = base
        elif which == 5:
            st[R.GS_BASE] = base
    if which == 0:
        st[R.ES] = sel
    elif which == 2:
        st[R.SS] = sel
        st[S.INT_SHADOW] = 1
    elif which == 3:
        st[R.DS] = sel
    elif which == 4:
        st[R.FS] = sel
    else:
        st[R.GS] = sel
    return True


SREG_SLOTS = (R.ES, R.CS, R.SS, R.DS, R.FS, R.GS)


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def sreg_value(st, which):
    if which == 0:
        return st[R.ES]
    if which == 1:
        return st[R.CS]
    if which == 2:
        return st[R.SS]
    if which == 3:
        return st[R.DS]
    if which == 4:
        return st[R.FS]
    return st[R.GS]


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def set_rflags_checked(st, v, szc, is_iret):
    """POPF/IRET RFLAGS update: IOPL only at CPL 0, IF only at CPL <= IOPL."""
    F.materialize(st)
    old = st[R.RFLAGS]
    mask = np.int64(POPF_MASK)
    cpl = st[R.CPL]
    if cpl == 0:
        mask |= R.FLAG_IOPL | R.FLAG_IF
    elif cpl <= iopl(st):
        mask |= R.FLAG_IF
    if is_iret:
        mask |= R.FLAG_RF
    if szc == 1:
        mask &= 0xFFFF
    new = (old & ~mask) | (v & mask) | R.FLAGS_FIXED
    if not is_iret:
        new &= ~np.int64(R.FLAG_RF)
    st[R.RFLAGS] = new
    if (old & R.FLAG_IF) == 0 and (new & R.FLAG_IF) != 0:
        st[S.INT_SHADOW] = 0


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def exec_system(mem, st, tlb, dc, owner, info, disp, imm, maxel):
    """Unit U_SYSTEM: system instructions, port I/O, flags, far transfers."""
    op = info & O.I_OP_MASK
    szc = (info >> O.I_SZ_SHIFT) & 3
    sub = (info >> O.I_SUB_SHIFT) & 15
    reg = (info >> O.I_R_SHIFT) & 31
    rmr = (info >> O.I_M_SHIFT) & 31
    ln = (info >> O.I_LEN_SHIFT) & 15
    rip = st[R.RIP]
    nxt = rip + ln
    long64 = st[R.CSBASE_MODE] == R.MODE_LONG64
    if not long64:
        nxt &= 0xFFFFFFFF
    cpl = st[R.CPL]
    acc = user_acc(st)
    ismem = (info & O.I_MEM) != 0
    ea = ea_of(st, info, disp, nxt) if ismem else np.int64(0)
    if ismem and op != O.INVLPG and stack_based(info) and stack_fault(st, ea):
        return 0
    if op == O.PUSHF:
        f = F.get_flags(st) & ~np.int64(R.FLAG_RF | R.FLAG_VM)
        if not push_val(mem, st, tlb, dc, f, szc):
            return 0
    elif op == O.POPF:
        v = pop_val(mem, st, tlb, dc, szc)
        if st[S.STATUS] != 0:
            return 0
        set_rflags_checked(st, v, szc, np.bool_(False))
    elif op == O.IN or op == O.OUT:
        port = imm & 0xFF if sub == 0 else st[R.RDX] & 0xFFFF
        size = np.int64(1) << szc
        if not io_allowed(mem, st, tlb, dc, port, size):
            if st[S.STATUS] == 0:
                gp(st, np.int64(0))
            return 0
        if op == O.IN:
            v = port_access(mem, st, tlb, dc, owner, port, size, np.bool_(False), np.int64(0), np.bool_(False), np.int64(0))
            if st[S.STATUS] != 0:
                return 0
            rset(st, np.int64(0), szc, v)
        else:
            port_access(mem, st, tlb, dc, owner, port, size, np.bool_(True), st[R.RAX], np.bool_(False), np.int64(0))
            if st[S.STATUS] != 0:
                return 0
    elif op == O.CLI or op == O.STI:
        if (st[R.CR0] & R.CR0_PE) != 0 and cpl > iopl(st):
            gp(st, np.int64(0))
            return 0
        if op == O.CLI:
            st[R.RFLAGS] &= ~np.int64(R.FLAG_IF)
        else:
            if (st[R.RFLAGS] & R.FLAG_IF) == 0:
                st[S.INT_SHADOW] = 1
            st[R.RFLAGS] |= R.FLAG_IF
    elif op == O.HLT:
        if cpl != 0:
            gp(st, np.int64(0))
            return 0
        st[R.RIP] = nxt
        st[S.STATUS] = S.EXIT_HLT
        return 1
    elif op == O.FLAGOP:
        if sub <= O.F_CMC:
            f = F.get_flags(st)
            if sub == O.F_CLC:
                f &= ~np.int64(1)
            elif sub == O.F_STC:
                f |= 1
            else:
                f ^= 1
            F.set_arith(st, f)
        elif sub == O.F_CLD:
            st[R.RFLAGS] &= ~np.int64(R.FLAG_DF)
        else:
            st[R.RFLAGS] |= R.FLAG_DF
    elif op == O.INT3 or op == O.INTN or op == O.INTO:
        vec = 3 if op == O.INT3 else (4 if op == O.INTO else imm & 0xFF)
        if op == O.INTO and not F.cond(st, np.int64(0)):
            st[R.RIP] = nxt
            return 1
        fault(st, vec, np.int64(0))
        st[S.SOFT_INT] = 1
        st[S.SOFT_NEXT] = nxt
        return 0
    elif op == O.IRET:
        return iret(mem, st, tlb, dc, info)
    elif op == O.MOV_CR_R or op == O.MOV_R_CR:
        if cpl != 0:
            gp(st, np.int64(0))
            return 0
        if op == O.MOV_R_CR:
            if reg == 0:
                v = st[R.CR0]
            elif reg == 2:
                v = st[R.CR2]
            elif reg == 3:
                v = st[R.CR3]
            else:
                v = st[R.CR4]
            if long64:
                st[rmr] = v
            else:
                st[rmr] = v & 0xFFFFFFFF
        else:
            v = st[rmr] if long64 else st[rmr] & 0xFFFFFFFF
            ok = True
            if reg == 0:
                ok = write_cr0(mem, st, tlb, v)
            elif reg == 2:
                st[R.CR2] = v
            elif reg == 3:
                ok = write_cr3(mem, st, tlb, v)
            else:
                ok = write_cr4(st, tlb, v)
            if not ok:
                gp(st, np.int64(0))
                return 0
    elif op == O.INVLPG:
        if cpl != 0:
            gp(st, np.int64(0))
            return 0
        tlb_invlpg(tlb, ea)
    elif op == O.LGDT or op == O.LIDT:
        if cpl != 0:
            gp(st, np.int64(0))
            return 0
        lim = vread(mem, st, tlb, dc, ea, np.int64(2), acc)
        if st[S.STATUS] != 0:
            return 0
        base = vread(mem, st, tlb, dc, ea + 2, 8 if long64 else 4, acc)
        if st[S.STATUS] != 0:
            return 0
        if not long64 and szc == 1:
            base &= 0xFFFFFF
        if op == O.LGDT:
            st[R.GDTR_LIMIT] = lim
            st[R.GDTR_BASE] = base
        else:
            st[R.IDTR_LIMIT] = lim
            st[R.IDTR_BASE] = base
    elif op == O.SGDT or op == O.SIDT:
        lim = st[R.GDTR_LIMIT] if op == O.SGDT else st[R.IDTR_LIMIT]
        base = st[R.GDTR_BASE] if op == O.SGDT else st[R.IDTR_BASE]
        vwrite(mem, st, tlb, dc, ea, np.int64(2), lim, acc)
        if st[S.STATUS] != 0:
            return 0
        vwrite(mem, st, tlb, dc, ea + 2, 8 if long64 else 4, base, acc)
        if st[S.STATUS] != 0:
            return 0
    elif op == O.SWAPGS:
        if cpl != 0:
            gp(st, np.int64(0))
            return 0
        t = st[R.GS_BASE]
        st[R.GS_BASE] = st[R.KERNEL_GS_BASE]
        st[R.KERNEL_GS_BASE] = t
    elif op == O.RDMSR or op == O.WRMSR:
        if cpl != 0:
            gp(st, np.int64(0))
            return 0
        idx = st[R.RCX] & 0xFFFFFFFF
        if op == O.RDMSR:
            ok, v = read_msr(st, idx)
            if not ok:
                gp(st, np.int64(0))
                return 0
            st[R.RAX] = v & 0xFFFFFFFF
            st[R.RDX] = (v >> 32) & 0xFFFFFFFF
        else:
            v = (st[R.RAX] & 0xFFFFFFFF) | ((st[R.RDX] & 0xFFFFFFFF) << 32)
            if not write_msr(st, tlb, idx, v):
                gp(st, np.int64(0))
                return 0
    elif op == O.CPUID:
        a, b, c, d = cpuid(st, st[R.RAX] & 0xFFFFFFFF, st[R.RCX] & 0xFFFFFFFF)
        st[R.RAX] = a & 0xFFFFFFFF
        st[R.RBX] = b & 0xFFFFFFFF
        st[R.RCX] = c & 0xFFFFFFFF
        st[R.RDX] = d & 0xFFFFFFFF
    elif op == O.RDTSC:
        if (st[R.CR4] & R.CR4_TSD) != 0 and cpl != 0:
            gp(st, np.int64(0))
            return 0
        t = st[R.TSC] + st[R.ICOUNT]
        st[R.RAX] = t & 0xFFFFFFFF
        st[R.RDX] = (t >> 32) & 0xFFFFFFFF
    elif op == O.SYSCALL:
        if not long64 or (st[R.EFER] & R.EFER_SCE) == 0:
            fault(st, np.int64(6), np.int64(0))
            return 0
        f = F.get_flags(st)
        st[R.RCX] = nxt
        st[R.R11] = f & ~np.int64(R.FLAG_RF)
        if (st[S.OPTIONS] & S.OPT_SYSCALL_EXIT) != 0:
            st[R.RIP] = nxt
            st[S.STATUS] = S.EXIT_SYSCALL
            return 1
        F.materialize(st)
        st[R.RFLAGS] = (f & ~st[R.SFMASK] & ~np.int64(R.FLAG_RF)) | R.FLAGS_FIXED
        sel = (st[R.STAR] >> 32) & 0xFFFF
        st[R.CS] = sel & 0xFFFC
        st[R.SS] = (sel + 8) & 0xFFFC
        st[R.CPL] = 0
        st[R.RIP] = st[R.LSTAR]
        return 1
    elif op == O.SYSRET:
        if not long64 or (st[R.EFER] & R.EFER_SCE) == 0:
            fault(st, np.int64(6), np.int64(0))
            return 0
        if cpl != 0:
            gp(st, np.int64(0))
            return 0
        sel = (st[R.STAR] >> 48) & 0xFFFF
        if (info & O.I_W) != 0:
            if not canonical(st[R.RCX]):
                gp(st, np.int64(0))
                return 0
            st[R.RIP] = st[R.RCX]
            st[R.CS] = ((sel + 16) & 0xFFFC) | 3
        else:
            st[R.RIP] = st[R.RCX] & 0xFFFFFFFF
            st[R.CS] = (sel & 0xFFFC) | 3
            st[R.CSBASE_MODE] = R.MODE_COMPAT32
        st[R.SS] = ((sel + 8) & 0xFFFC) | 3
        F.materialize(st)
        st[R.RFLAGS] = (st[R.R11] & SYSRET_KEEP) | R.FLAGS_FIXED
        st[R.CPL] = 3
        return 1
    elif op == O.LTR:
        if cpl != 0:
            gp(st, np.int64(0))
            return 0
        sel = rget(st, rmr, np.int64(1)) if not ismem else vread(mem, st, tlb, dc, ea, np.int64(2), acc)
        if st[S.STATUS] != 0:
            return 0
        if (sel & 0xFFFC) == 0:
            gp(st, np.int64(0))
            return 0
        d = read_descriptor(mem, st, tlb, dc, sel)
        if st[S.STATUS] != 0:
            return 0
        typ = (d >> 40) & 0x1F
        if typ != 9:                          # available 32/64-bit TSS
            gp(st, sel & 0xFFFC)
            return 0
        if ((d >> 47) & 1) == 0:
            fault(st, np.int64(11), sel & 0xFFFC)
            return 0
        base = ((d >> 16) & 0xFFFFFF) | (((d >> 56) & 0xFF) << 24)
        if (st[R.EFER] & R.EFER_LMA) != 0:
            hi = vread(mem, st, tlb, dc, st[R.GDTR_BASE] + (sel & 0xFFF8) + 8, np.int64(8), np.int64(0))
            if st[S.STATUS] != 0:
                return 0
            base |= (hi & 0xFFFFFFFF) << 32
        limit = (d & 0xFFFF) | (((d >> 48) & 0xF) << 16)
        if ((d >> 55) & 1) != 0:
            limit = (limit << 12) | 0xFFF
        vwrite(mem, st, tlb, dc, st[R.GDTR_BASE] + (sel & 0xFFF8), np.int64(8),
               d | (np.int64(2) << 40), np.int64(0))    # mark busy
        if st[S.STATUS] != 0:
            return 0
        st[R.TR] = sel
        st[R.TR_BASE] = base
        st[R.TR_LIMIT] = limit
    elif op == O.STR or op == O.MOV_RM_SREG:
        v = st[R.TR] if op == O.STR else sreg_value(st, reg & 7)
        if ismem:
            vwrite(mem, st, tlb, dc, ea, np.int64(2), v, acc)
            if st[S.STATUS] != 0:
                return 0
        else:
            rset(st, rmr, szc, v)
    elif op == O.MOV_SREG_RM:
        sel = vread(mem, st, tlb, dc, ea, np.int64(2), acc) if ismem else rget(st, rmr, np.int64(1))
        if st[S.STATUS] != 0:
            return 0
        if (reg & 7) > 5:
            fault(st, np.int64(6), np.int64(0))
            return 0
        if not load_segment(mem, st, tlb, dc, reg & 7, sel):
            return 0
    elif op == O.PUSH_SREG:
        if not push_val(mem, st, tlb, dc, sreg_value(st, sub), szc):
            return 0
    elif op == O.POP_SREG:
        v = pop_val(mem, st, tlb, dc, szc)
        if st[S.STATUS] != 0:
            return 0
        if not load_segment(mem, st, tlb, dc, sub, v):
            return 0
    elif op == O.LJMP_M or op == O.LJMP_PTR:
        if op == O.LJMP_PTR:
            off = imm & 0xFFFFFFFF
            sel = (imm >> 32) & 0xFFFF
        else:
            n = 8 if (info & O.I_W) != 0 else (2 if szc == 1 else 4)
            off = vread(mem, st, tlb, dc, ea, n, acc)
            if st[S.STATUS] != 0:
                return 0
            sel = vread(mem, st, tlb, dc, ea + n, np.int64(2), acc)
            if st[S.STATUS] != 0:
                return 0
        if not far_jump(mem, st, tlb, dc, sel, off):
            return 0
        return 1
    elif op == O.LRET:
        n = 3 if (info & O.I_W) != 0 else 2
        sp = st[R.RSP]
        off = pop_val(mem, st, tlb, dc, n)
        if st[S.STATUS] != 0:
            return 0
        sel = pop_val(mem, st, tlb, dc, n)
        if st[S.STATUS] != 0:
            st[R.RSP] = sp
            return 0
        if (sel & 3) != cpl or not far_jump(mem, st, tlb, dc, sel, off):
            if st[S.STATUS] == 0:
                gp(st, sel & 0xFFFC)
            st[R.RSP] = sp
            return 0
        return 1
    elif op == O.LAHF or op == O.SAHF:
        f = F.get_flags(st)
        if op == O.LAHF:
            st[R.RAX] = (st[R.RAX] & ~np.int64(0xFF00)) | (((f & 0xD5) | 2) << 8)
        else:
            ah = (st[R.RAX] >> 8) & 0xD5
            F.set_arith(st, (f & ~np.int64(0xD5)) | ah | (f & R.FLAG_OF))
    elif op == O.CLTS or op == O.WBINVD:
        if cpl != 0:
            gp(st, np.int64(0))
            return 0
        if op == O.CLTS:
            st[R.CR0] &= ~np.int64(R.CR0_TS)
    elif op == O.FENCE:
        pass
    else:
        fault(st, np.int64(6), np.int64(0))                       # UD2 and anything unmodelled
        return 0
    st[R.RIP] = nxt
    return 1


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def iret(mem, st, tlb, dc, info):
    """IRET/IRETQ: pop RIP, CS, RFLAGS and (in 64-bit mode, always) RSP, SS
    (SDM Vol. 2 IRET, "IA-32e mode" path); return to the same or an outer level."""
    long64 = st[R.CSBASE_MODE] == R.MODE_LONG64
    szc = 3 if (info & O.I_W) != 0 else (1 if ((info >> O.I_SZ_SHIFT) & 3) == 1 else 2)
    sp0 = st[R.RSP]
    rip = pop_val(mem, st, tlb, dc, szc)
    if st[S.STATUS] != 0:
        return 0
    cs = pop_val(mem, st, tlb, dc, szc) & 0xFFFF
    if st[S.STATUS] != 0:
        st[R.RSP] = sp0
        return 0
    fl = pop_val(mem, st, tlb, dc, szc)
    if st[S.STATUS] != 0:
        st[R.RSP] = sp0
        return 0
    cpl = st[R.CPL]
    new_cpl = cs & 3
    outer = new_cpl > cpl
    if long64 or outer:
        rsp = pop_val(mem, st, tlb, dc, szc)
        if st[S.STATUS] != 0:
            st[R.RSP] = sp0
            return 0
        ss = pop_val(mem, st, tlb, dc, szc) & 0xFFFF
        if st[S.STATUS] != 0:
            st[R.RSP] = sp0
            return 0
    else:
        rsp = st[R.RSP]
        ss = st[R.SS]
    if new_cpl < cpl or (cs & 0xFFFC) == 0:
        st[R.RSP] = sp0
        gp(st, cs & 0xFFFC)
        return 0
    d = read_descriptor(mem, st, tlb, dc, cs)
    if st[S.STATUS] != 0:
        st[R.RSP] = sp0
        return 0
    mode = code_mode(st, d)
    if (((d >> 40) & 0x18) != 0x18) or mode < 0 or ((d >> 45) & 3) != new_cpl and \
            ((d >> 42) & 1) == 0:
        st[R.RSP] = sp0
        gp(st, cs & 0xFFFC)
        return 0
    if mode == R.MODE_LONG64 and not canonical(rip):
        st[R.RSP] = sp0
        gp(st, np.int64(0))
        return 0
    set_rflags_checked(st, fl, szc, np.bool_(True))
    st[R.CS] = cs
    st[R.CPL] = new_cpl
    st[R.CSBASE_MODE] = mode
    st[R.RIP] = rip if mode == R.MODE_LONG64 else rip & 0xFFFFFFFF
    st[R.RSP] = rsp
    st[R.SS] = ss
    return 1


U.register(U.U_SYSTEM, exec_system, U.EXEC_ARGS)
U.register(U.U_STRING, exec_string, U.EXEC_ARGS)
