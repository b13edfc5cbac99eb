"""A tiny page-table builder for tests: map(va, frame, flags, level-size)."""

from xenlab.machine import regs as R
from xenlab.machine.mmu import Mmu
from xenlab.machine.pte import PTE_P, PTE_PS, PTE_RW, PTE_US

TABLE = PTE_P | PTE_RW | PTE_US


class Tables:
    def __init__(self, memory, first_table_mfn=0x100):
        self.m = memory
        self.next = first_table_mfn
        self.cr3 = self.new_table() << 12

    def new_table(self):
        mfn = self.next
        self.next += 1
        return mfn

    def entry_addr(self, va, level, *, create=True, table_flags=TABLE):
        """Address of the level-`level` entry for va (4=PML4 ... 1=PT)."""
        table = self.cr3
        for lv in (4, 3, 2, 1):
            shift = 12 + 9 * (lv - 1)
            addr = table + 8 * ((va >> shift) & 511)
            if lv == level:
                return addr
            e = self.m.read64(addr)
            if not e & PTE_P:
                assert create
                e = (self.new_table() << 12) | table_flags
                self.m.write64(addr, e)
            table = e & 0x000F_FFFF_FFFF_F000

    def map(self, va, frame, flags=PTE_P | PTE_RW | PTE_US, size=4096, table_flags=TABLE):
        level = {4096: 1, 2 << 20: 2, 1 << 30: 3}[size]
        e = (frame << 12) | flags | (PTE_PS if level > 1 else 0)
        addr = self.entry_addr(va, level, table_flags=table_flags)
        self.m.write64(addr, e)
        return addr


def long_mode_mmu(memory, cr3, *, wp=True, nxe=True, pge=True, smep=False, cpl=0):
    mmu = Mmu(memory)
    st = mmu.state
    st[R.CR0] |= R.CR0_PE | R.CR0_PG | (R.CR0_WP if wp else 0)
    st[R.CR4] |= R.CR4_PAE | (R.CR4_PGE if pge else 0) | (R.CR4_SMEP if smep else 0)
    st[R.EFER] |= R.EFER_LME | R.EFER_LMA | (R.EFER_NXE if nxe else 0)
    st[R.CPL] = cpl
    mmu.write_cr3(cr3)
    return mmu
