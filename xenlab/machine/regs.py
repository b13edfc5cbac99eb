"""The vCPU's architectural state as one flat int64 vector, with named slots.

Every jitted kernel (MMU, CPU) takes a vCPU's state as a plain ``int64`` array
and indexes it with these constants, so state stays a numpy array (structure of
arrays) and Python only names it.  Machine words are int64 throughout; see
DESIGN.md's numba notes for why not uint64.

The general registers are in the order the x86 encoding numbers them (Intel
SDM Vol. 2, Table 2-2 "32-Bit Addressing Forms with the ModR/M Byte" and
Table 3-1 for REX.R/B extensions), so ``state[reg_field]`` is the register an
instruction names.
"""

# General-purpose registers, by encoding number (SDM Vol. 2 §3.1.1.1, Table 3-1).
RAX, RCX, RDX, RBX, RSP, RBP, RSI, RDI = range(8)
R8, R9, R10, R11, R12, R13, R14, R15 = range(8, 16)
GPR_NAMES = ("rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi",
             "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15")

RIP = 16
RFLAGS = 17

# Control registers (SDM Vol. 3 §2.5) and model-specific registers.
CR0 = 18
CR2 = 19
CR3 = 20
CR4 = 21
EFER = 22          # IA32_EFER, MSR 0xC0000080 (SDM Vol. 3 §2.2.1)
CPL = 23           # current privilege level (CS.RPL in protected/long mode)

# Segment selectors (visible parts).
CS = 24
SS = 25
DS = 26
ES = 27
FS = 28
GS = 29
FS_BASE = 30       # MSR 0xC0000100
GS_BASE = 31       # MSR 0xC0000101
KERNEL_GS_BASE = 32  # MSR 0xC0000102 (SWAPGS)
STAR = 33          # MSR 0xC0000081
LSTAR = 34         # MSR 0xC0000082
CSTAR = 35         # MSR 0xC0000083
SFMASK = 36        # MSR 0xC0000084 (IA32_FMASK)
GDTR_BASE = 37
GDTR_LIMIT = 38
IDTR_BASE = 39
IDTR_LIMIT = 40
TR = 41            # task register selector
TR_BASE = 42       # TSS base (its I/O permission bitmap decides IN/OUT above IOPL)
TR_LIMIT = 43
# PAE page-directory-pointer-table registers, loaded from memory by MOV CR3
# when PAE paging (not 4-level) is active (SDM Vol. 3 §4.4.1).
PDPTE0 = 44
PDPTE1 = 45
PDPTE2 = 46
PDPTE3 = 47
MAXPHYADDR = 48    # physical-address width (CPUID 80000008H:EAX[7:0])
FEATURES = 49      # model switches, FEAT_* bits below
TSC = 50
ICOUNT = 51        # instructions retired on this vCPU
CSBASE_MODE = 52   # code-segment mode: MODE_* below (64-bit, compat, legacy)

# The CPU may use slots from FIRST_FREE upward for its own bookkeeping.
FIRST_FREE = 64
NSTATE = 128

# CR0 bits (SDM Vol. 3 §2.5).
CR0_PE = 1 << 0
CR0_MP = 1 << 1
CR0_EM = 1 << 2
CR0_TS = 1 << 3
CR0_ET = 1 << 4
CR0_NE = 1 << 5
CR0_WP = 1 << 16
CR0_AM = 1 << 18
CR0_NW = 1 << 29
CR0_CD = 1 << 30
CR0_PG = 1 << 31

# CR4 bits (SDM Vol. 3 §2.5).
CR4_VME = 1 << 0
CR4_PVI = 1 << 1
CR4_TSD = 1 << 2
CR4_DE = 1 << 3
CR4_PSE = 1 << 4
CR4_PAE = 1 << 5
CR4_MCE = 1 << 6
CR4_PGE = 1 << 7
CR4_PCE = 1 << 8
CR4_OSFXSR = 1 << 9
CR4_OSXMMEXCPT = 1 << 10
CR4_SMEP = 1 << 20

# IA32_EFER bits (SDM Vol. 3 §2.2.1, Table 2-1... MSR 0xC0000080).
EFER_SCE = 1 << 0
EFER_LME = 1 << 8
EFER_LMA = 1 << 10
EFER_NXE = 1 << 11

# RFLAGS bits (SDM Vol. 1 §3.4.3).
FLAG_CF = 1 << 0
FLAG_PF = 1 << 2
FLAG_AF = 1 << 4
FLAG_ZF = 1 << 6
FLAG_SF = 1 << 7
FLAG_TF = 1 << 8
FLAG_IF = 1 << 9
FLAG_DF = 1 << 10
FLAG_OF = 1 << 11
FLAG_IOPL_SHIFT = 12
FLAG_IOPL = 3 << 12
FLAG_NT = 1 << 14
FLAG_RF = 1 << 16
FLAG_VM = 1 << 17
FLAG_AC = 1 << 18
FLAG_ID = 1 << 21
FLAGS_FIXED = 1 << 1   # bit 1 always reads as 1

# FEATURES bits: what this model of CPU supports (answers CPUID and decides
# which PTE bits are reserved).
FEAT_NX = 1 << 0       # CPUID 80000001H:EDX[20]
FEAT_PAGE1GB = 1 << 1  # CPUID 80000001H:EDX[26]
FEAT_PGE = 1 << 2      # CPUID 01H:EDX[13]
FEAT_DEFAULT = FEAT_NX | FEAT_PAGE1GB | FEAT_PGE

# CSBASE_MODE values.
MODE_REAL = 0
MODE_LEGACY32 = 1
MODE_COMPAT32 = 2
MODE_LONG64 = 3

CONTROL_NAMES = {
    "rip": RIP, "rflags": RFLAGS, "cr0": CR0, "cr2": CR2, "cr3": CR3,
    "cr4": CR4, "efer": EFER, "cpl": CPL, "cs": CS, "ss": SS, "ds": DS,
    "es": ES, "fs": FS, "gs": GS, "fs_base": FS_BASE, "gs_base": GS_BASE,
    "kernel_gs_base": KERNEL_GS_BASE, "star": STAR, "lstar": LSTAR,
    "cstar": CSTAR, "sfmask": SFMASK, "gdtr_base": GDTR_BASE,
    "gdtr_limit": GDTR_LIMIT, "idtr_base": IDTR_BASE, "idtr_limit": IDTR_LIMIT,
    "tr": TR, "tr_base": TR_BASE, "tr_limit": TR_LIMIT,
    "tsc": TSC, "icount": ICOUNT,
}
NAMES = {name: i for i, name in enumerate(GPR_NAMES)} | CONTROL_NAMES


def new_state(maxphyaddr: int = 40, features: int = FEAT_DEFAULT):
    """A zeroed vCPU state vector as a CPU has it after reset (RFLAGS bit 1 set)."""
    import numpy as np

    st = np.zeros(NSTATE, dtype=np.int64)
    st[RFLAGS] = FLAGS_FIXED
    st[MAXPHYADDR] = maxphyaddr
    st[FEATURES] = features
    st[CR0] = CR0_ET
    return st
