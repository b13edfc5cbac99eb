"""``run_snippet``: run a few bytes of x86-64 machine code on a fresh vCPU.

For tests, tools and instructors: 64-bit mode, the first 64 MiB identity-mapped
by real 4-level page tables (4 KiB pages, writable and user-accessible; the
tables themselves live at 0x3FC0000), a flat GDT, code at 0x100000, RSP at
0x3F00000.  Every exception exits (nothing is delivered through an IDT) and
SYSCALL exits too.
"""

from __future__ import annotations

import numpy as np

from . import regs as R
from .memory import Memory
from .pte import PTE_P, PTE_RW, PTE_US

CODE = 0x100000
STACK = 0x3F00000
MAPPED = 64 << 20
TABLES = 0x3FC0000          # PML4, PDPT, PD, then 32 page tables
GDT = 0x3FE8000
# Flat descriptors (SDM Vol. 3 §3.4.5): selectors 0x10 ring-0 code64, 0x18 ring-0
# data, 0x23 ring-3 code32, 0x2B ring-3 data, 0x33 ring-3 code64 (SYSCALL/SYSRET layout).
GDT_ENTRIES = (0, 0, 0x00AF9A000000FFFF, 0x00CF92000000FFFF, 0x00CFFA000000FFFF,
               0x00CFF2000000FFFF, 0x00AFFA000000FFFF)
STAR = (0x23 << 48) | (0x10 << 32)


def identity_map(memory: Memory, size: int = MAPPED, tables: int = TABLES) -> int:
    """Identity-map ``[0, size)`` with 4 KiB pages (RW, US); returns CR3."""
    flags = PTE_P | PTE_RW | PTE_US
    npt = (size + (2 << 20) - 1) >> 21
    pml4, pdpt, pd, pt0 = tables, tables + 0x1000, tables + 0x2000, tables + 0x3000
    memory.write64(pml4, pdpt | flags)
    memory.write64(pdpt, pd | flags)
    pde = (pt0 + (np.arange(npt, dtype=np.int64) << 12)) | flags
    memory.write_bytes(pd, pde.view(np.uint8))
    ptes = (np.arange(npt * 512, dtype=np.int64) << 12) | flags
    memory.write_bytes(pt0, ptes.view(np.uint8))
    return pml4


def setup_gdt(vcpu, base: int = GDT):
    vcpu.memory.write_bytes(base, np.array(GDT_ENTRIES, dtype=np.int64).view(np.uint8))
    vcpu.state[R.GDTR_BASE] = base
    vcpu.state[R.GDTR_LIMIT] = 8 * len(GDT_ENTRIES) - 1


class SnippetResult:
    """What a snippet left: ``regs`` (lower-case names, unsigned ints), ``exit``
    (the exit reason: "hlt", "budget", "exception", "syscall", "io", "end" when
    RIP reached the end of the code, ...), ``vector`` and ``error_code`` for an
    exception, ``read(addr, n)`` for memory, and the ``vcpu`` itself."""

    def __init__(self, vcpu, exit, end):
        self.vcpu = vcpu
        self.exit_info = exit
        at_end = exit.reason == "breakpoint" and exit.rip == end
        self.exit = "end" if at_end else exit.reason
        self.vector = exit.vector
        self.error_code = exit.error_code
        names = R.GPR_NAMES + ("rip", "rflags")
        self.regs = {n: vcpu.get(n) for n in names}
        self.instructions = exit.count

    def read(self, addr: int, n: int) -> bytes:
        """``n`` bytes at linear address ``addr`` (identity-mapped below 64 MiB)."""
        return self.vcpu.memory.read_bytes(addr, n)

    def __repr__(self):
        return f"<SnippetResult exit={self.exit} rip={self.regs['rip']:#x}>"


def snippet_vcpu(code: bytes, *, regs: dict | None = None, data: dict | None = None,
                 cpl: int = 0):
    """The vCPU ``run_snippet`` would run, ready to go (for tools that want to step)."""
    from .cpu import Vcpu
    if not isinstance(code, (bytes, bytearray, memoryview)):
        raise TypeError(f"code must be bytes, not {type(code).__name__}")
    if cpl not in (0, 3):
        raise ValueError(f"cpl={cpl}: snippets run at CPL 0 or 3")
    if CODE + len(code) > STACK - 0x1000:
        raise ValueError(f"code of {len(code)} bytes does not fit below the stack")
    mem = Memory()
    cr3 = identity_map(mem)
    mem.write_bytes(CODE, bytes(code))
    for addr, blob in (data or {}).items():
        if not 0 <= addr and addr + len(blob) <= MAPPED:
            raise ValueError(f"data at {addr:#x}+{len(blob)} is outside the mapped 64 MiB")
        mem.write_bytes(addr, bytes(blob))
    v = Vcpu(mem)
    setup_gdt(v)
    v.set_long_mode(cr3, cpl=cpl)
    v.state[R.STAR] = STAR
    v.intercept = range(256)
    v.syscall_exits = True
    v.set("rip", CODE)
    v.set("rsp", STACK)
    for k, val in (regs or {}).items():
        v.set(k, val)
    return v


def run_snippet(code: bytes, *, regs: dict = {}, data: dict = {}, cpl: int = 0,
                max_instructions: int = 10**6) -> SnippetResult:
    """Run ``code`` at 0x100000 in 64-bit mode until it exits; see the module docs.

    >>> r = run_snippet(bytes.fromhex("48c7c02a000000f4"))   # mov $42,%rax; hlt
    >>> r.exit, r.regs["rax"]
    ('hlt', 42)
    """
    v = snippet_vcpu(code, regs=regs, data=data, cpl=cpl)
    end = CODE + len(code)
    v.breakpoints.add(end)
    ex = v.run_native(max_instructions)
    return SnippetResult(v, ex, end)
