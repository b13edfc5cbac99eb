"""A 32-bit boot stub enters long mode the way real ones do: LGDT, CR4.PAE,
CR3, EFER.LME by WRMSR, CR0.PG, then a far jump to a 64-bit code segment."""

import numpy as np
import pytest

from xenlab.machine import regs as R
from xenlab.machine.cpu import Vcpu
from xenlab.machine.memory import Memory
from xenlab.machine.snippet import GDT_ENTRIES, identity_map

from .harness import HAVE_AS, assemble

pytestmark = pytest.mark.skipif(not HAVE_AS, reason="GNU as not installed")


def test_boot_stub_enters_long_mode_and_runs_64_bit_code():
    m = Memory()
    cr3 = identity_map(m)
    gdt = 0x8000
    m.write_bytes(gdt, np.array(GDT_ENTRIES, dtype=np.uint64).view(np.uint8))
    m.write16(0x7000, 8 * len(GDT_ENTRIES) - 1)
    m.write32(0x7002, gdt)
    stub = assemble(f"""
.code32
    lgdt 0x7000
    movl %cr4, %eax
    orl $0x20, %eax
    movl %eax, %cr4
    movl ${cr3:#x}, %eax
    movl %eax, %cr3
    movl $0xC0000080, %ecx
    rdmsr
    orl $0x100, %eax
    wrmsr
    movl %cr0, %eax
    orl $0x80000001, %eax
    movl %eax, %cr0
    ljmp $0x10, $0x100100
""")
    long64 = assemble(".code64\nmovabsq $0x1122334455667788, %rax\npushq %rax\npopq %rbx\nhlt")
    m.write_bytes(0x100000, stub)
    m.write_bytes(0x100100, long64)
    v = Vcpu(m)
    assert v.state[R.CSBASE_MODE] == R.MODE_LEGACY32
    v.set("rip", 0x100000)
    v.set("rsp", 0x90000)
    ex = v.run(1000)
    assert ex.reason == "hlt", ex
    assert v.state[R.CSBASE_MODE] == R.MODE_LONG64
    assert v.get("efer") & R.EFER_LMA and v.get("cs") == 0x10
    assert v.get("rbx") == 0x1122334455667788
