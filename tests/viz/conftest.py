"""Shared fixtures: small real page-table trees built in machine memory."""

import pytest

from xenlab.machine.memory import Memory
from xenlab.machine.pte import PTE_NX, PTE_P, PTE_RW, PTE_US

from ..machine.ptbuild import Tables, long_mode_mmu

KBASE = 0xFFFF_8000_0000_0000       # a kernel direct map (high half)


@pytest.fixture
def tree():
    """A 4-level tree: 40 scattered 4K kernel pages, a 2M page, a 1G page,
    a read-only NX user page; and a vCPU Mmu on it (WP, NXE, PGE on)."""
    m = Memory()
    t = Tables(m)
    frames = {}
    for i in range(40):
        va = KBASE + i * 4096
        frames[va] = 0x5000 + 3 * i
        t.map(va, frames[va], PTE_P | PTE_RW)
    t.map(0x40_0000, 0x9000, size=2 << 20)
    t.map(0x7F00_0000_0000, 0x40000, size=1 << 30)
    t.map(0x1000_0000, 0x7777, PTE_P | PTE_US | PTE_NX)
    mmu = long_mode_mmu(m, t.cr3)
    return {"memory": m, "tables": t, "mmu": mmu, "cr3": t.cr3, "frames": frames}
