"""Page-table entry bits and page-fault error-code bits, as the manuals name them.

Layout of a 64-bit paging-structure entry (Intel SDM Vol. 3 §4.5, Tables 4-14
to 4-20; AMD APM Vol. 2 §5.4):

    63   62..52   51 ........ 12  11 10 9   8  7      6  5  4   3   2  1  0
    XD   ignored  address (PFN)   AVL(sw)   G  PS/PAT D  A  PCD PWT US RW P

bit 7 is PS in PDPTEs and PDEs (1 GiB / 2 MiB page) and PAT in a 4 KiB PTE;
a large page keeps its PAT bit at bit 12.  Bits 9-11 are ignored by the
hardware: software (the OS, or in 2007 a debug Xen) keeps its own marks there.
"""

from __future__ import annotations

PTE_P = 1 << 0       # present
PTE_RW = 1 << 1      # read/write
PTE_US = 1 << 2      # user/supervisor
PTE_PWT = 1 << 3     # page-level write-through
PTE_PCD = 1 << 4     # page-level cache disable
PTE_A = 1 << 5       # accessed
PTE_D = 1 << 6       # dirty (leaf entries only)
PTE_PS = 1 << 7      # page size (PDPTE/PDE); PAT in a 4 KiB PTE
PTE_PAT = 1 << 7
PTE_G = 1 << 8       # global (leaf entries, honoured when CR4.PGE)
PTE_AVL0 = 1 << 9    # software-available bits 9..11
PTE_AVL1 = 1 << 10
PTE_AVL2 = 1 << 11
PTE_AVL_MASK = 0xE00
PTE_PAT_LARGE = 1 << 12  # PAT bit of a 2 MiB / 1 GiB page
PTE_NX = 1 << 63     # execute-disable, when IA32_EFER.NXE = 1
PTE_NX_INT = -(1 << 63)  # the same bit as an int64 (numba kernels use this)

ADDR_MASK_52 = ((1 << 52) - 1) & ~0xFFF   # bits 51:12

# #PF error code (SDM Vol. 3 §4.7, Figure 4-12).
PF_P = 1 << 0        # 0: not-present page; 1: protection violation
PF_WR = 1 << 1       # 1: the access was a write
PF_US = 1 << 2       # 1: user-mode access (CPL = 3)
PF_RSVD = 1 << 3     # 1: a reserved bit was set in some paging-structure entry
PF_ID = 1 << 4       # 1: instruction fetch (only with NXE or SMEP in use)

# Exception vectors (SDM Vol. 3 §6.3.1, Table 6-1).
VEC_DE, VEC_DB, VEC_NMI, VEC_BP, VEC_OF, VEC_BR, VEC_UD, VEC_NM = range(8)
VEC_DF, VEC_TS, VEC_NP, VEC_SS, VEC_GP, VEC_PF = 8, 10, 11, 12, 13, 14
VEC_MF, VEC_AC, VEC_MC, VEC_XM = 16, 17, 18, 19

FLAG_NAMES = (
    (PTE_P, "P"), (PTE_RW, "RW"), (PTE_US, "US"), (PTE_PWT, "PWT"),
    (PTE_PCD, "PCD"), (PTE_A, "A"), (PTE_D, "D"), (PTE_PS, "PS"),
    (PTE_G, "G"), (PTE_AVL0, "AVL9"), (PTE_AVL1, "AVL10"), (PTE_AVL2, "AVL11"),
    (PTE_NX, "NX"),
)
PF_NAMES = ((PF_P, "P"), (PF_WR, "W"), (PF_US, "U"), (PF_RSVD, "RSVD"), (PF_ID, "I/D"))


def u64(v: int) -> int:
    """An int64 (as numba keeps machine words) seen as the unsigned 64-bit value."""
    return v & 0xFFFF_FFFF_FFFF_FFFF


def s64(v: int) -> int:
    """An unsigned 64-bit value as the int64 the kernels store."""
    v &= 0xFFFF_FFFF_FFFF_FFFF
    return v - (1 << 64) if v >> 63 else v


def decode_flags(raw: int, level: int = 1) -> list[str]:
    """Names of the bits set in an entry; bit 7 reads PS above level 1, PAT at it."""
    raw = u64(raw)
    names = []
    for bit, name in FLAG_NAMES:
        if raw & bit:
            if bit == PTE_PS and level == 1:
                name = "PAT"
            names.append(name)
    return names


def decode_pf_error(code: int) -> str:
    """The #PF error code as a short phrase, e.g. 'P|W|U'."""
    return "|".join(n for b, n in PF_NAMES if code & b) or "not-present read, kernel"


def make_pte(frame: int, *flags: int) -> int:
    """An entry pointing at ``frame`` (a frame number) with ``flags`` or'd in."""
    v = (frame << 12) & ADDR_MASK_52
    for f in flags:
        v |= f
    return v
