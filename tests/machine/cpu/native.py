"""A tiny native long-mode 'kernel' for privilege and IDT tests: GDT, TSS
(RSP0, IST1, an I/O bitmap), an IDT whose gates point at assembled handlers."""

from __future__ import annotations

import numpy as np

from xenlab.machine import regs as R
from xenlab.machine.cpu import Vcpu
from xenlab.machine.memory import Memory
from xenlab.machine.snippet import GDT_ENTRIES, STAR, identity_map

from .harness import assemble

GDT = 0x10000
IDT = 0x11000
TSS = 0x12000
IOMAP_OFF = 0x68
KSTACK = 0x80000          # TSS.RSP0
ISTSTACK = 0x90000        # TSS.IST1
USTACK = 0x3F00000
HANDLERS = 0x20000
USER = 0x100000
TSS_SEL = 0x38


def tss_descriptor(base, limit):
    """A 16-byte available 64-bit TSS descriptor (SDM Vol. 3 §8.2.3, type 9)."""
    lo = (limit & 0xFFFF) | ((base & 0xFFFFFF) << 16) | (0x89 << 40) | \
        (((limit >> 16) & 0xF) << 48) | (((base >> 24) & 0xFF) << 56)
    return lo, base >> 32


def gate(offset, sel=0x10, dpl=0, typ=0xE, ist=0, present=True):
    lo = (offset & 0xFFFF) | (sel << 16) | (ist << 32) | (typ << 40) | (dpl << 45) | \
        ((1 if present else 0) << 47) | (((offset >> 16) & 0xFFFF) << 48)
    return lo, (offset >> 32) & 0xFFFFFFFF


class Native:
    def __init__(self, iomap_bytes: bytes | None = None):
        self.mem = m = Memory()
        self.cr3 = identity_map(m)
        self.v = v = Vcpu(m)
        lo, hi = tss_descriptor(TSS, IOMAP_OFF + (len(iomap_bytes) if iomap_bytes else 0) - 1
                                if iomap_bytes else 0x67)
        m.write_bytes(GDT, np.array(list(GDT_ENTRIES) + [lo, hi], dtype=np.uint64).view(np.uint8))
        v.state[R.GDTR_BASE] = GDT
        v.state[R.GDTR_LIMIT] = 8 * (len(GDT_ENTRIES) + 2) - 1
        m.write64(TSS + 4, KSTACK)                 # RSP0
        m.write64(TSS + 0x24, ISTSTACK)            # IST1
        m.write16(TSS + 0x66, IOMAP_OFF)
        if iomap_bytes:
            m.write_bytes(TSS + IOMAP_OFF, iomap_bytes)
        v.set_long_mode(self.cr3, cpl=0)
        v.state[R.STAR] = STAR
        v.state[R.IDTR_BASE] = IDT
        v.state[R.IDTR_LIMIT] = 256 * 16 - 1
        self.next_handler = HANDLERS

    def ltr(self):
        """Load TR by executing LTR (at CPL 0)."""
        self.run_code(f"movw ${TSS_SEL}, %ax\nltr %ax\nhlt", cpl=0)

    def handler(self, vector, text, dpl=0, ist=0, typ=0xE):
        code = assemble(text)
        at = self.next_handler
        self.mem.write_bytes(at, code)
        self.next_handler += (len(code) + 0xF) & ~0xF
        lo, hi = gate(at, dpl=dpl, ist=ist, typ=typ)
        self.mem.write64(IDT + 16 * vector, lo)
        self.mem.write64(IDT + 16 * vector + 8, hi)
        return at

    def run_code(self, text, cpl=3, regs=None, rflags=0x2, at=USER, max_instructions=10_000):
        code = assemble(text)
        self.mem.write_bytes(at, code)
        v = self.v
        v.set("cpl", cpl)
        v.set("cs", 0x33 if cpl == 3 else 0x10)
        v.set("ss", 0x2B if cpl == 3 else 0x18)
        v.set("rsp", USTACK if cpl == 3 else KSTACK - 0x1000)
        v.set("rflags", rflags)
        for k, val in (regs or {}).items():
            v.set(k, val)
        v.set("rip", at)
        return v.run_native(max_instructions)
