"""Disassembly for ``::dis`` and the ``/i`` format: capstone (through
``xenlab.asm.disasm``), AT&T syntax, with branch targets and RIP-relative
operands named by the kernel's symbols."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..asm import disasm
from .errors import ReadError

MAX_INSN = 15                       # the longest x86 instruction (SDM Vol. 2 §2.3.11)
_RIPREL = re.compile(r"(-?0x[0-9a-f]+|-?\d+)\(%rip\)")
_BRANCH = re.compile(r"^(j[a-z]+|call[a-z]?|jmp[a-z]?|loop[a-z]*|jrcxz|jecxz)$")


@dataclass
class Insn:
    addr: int
    raw: bytes
    mnemonic: str
    operands: str
    target: int | None = None       # a branch target or RIP-relative address
    comment: str = ""

    @property
    def text(self) -> str:
        ops = self.operands.replace(", ", ",")
        s = f"{self.mnemonic:<6} {ops}".rstrip()
        return f"{s}  {self.comment}" if self.comment else s

    @property
    def end(self) -> int:
        return self.addr + len(self.raw)


def read_code(read, addr: int, n: int) -> bytes:
    """As many of ``n`` bytes from ``addr`` as can be read (at least the first page's)."""
    try:
        return read(addr, n)
    except ReadError:
        first = min(n, 4096 - (addr & 0xFFF))
        if first == n:
            raise
        return read(addr, first)


def decode(read, addr: int, count: int, symbols=None, stop: int | None = None) -> list[Insn]:
    """Up to ``count`` instructions from ``addr`` (stopping before ``stop``)."""
    want = count * MAX_INSN
    if stop is not None:
        want = max(1, min(want, stop - addr))
    code = read_code(read, addr, want)
    out = []
    for a, raw, mnem, ops in disasm(code, addr, count):
        if stop is not None and a >= stop:
            break
        if a + len(raw) > addr + len(code):
            break
        out.append(annotate(Insn(a, raw, mnem, ops), symbols))
    return out


def annotate(insn: Insn, symbols) -> Insn:
    """Name a branch target (``call 0x... <pci_mech1_addr>``) or a RIP-relative
    operand (``<boot_info>``)."""
    if _BRANCH.match(insn.mnemonic) and insn.operands.startswith("0x"):
        try:
            insn.target = int(insn.operands, 16)
        except ValueError:
            insn.target = None
    else:
        m = _RIPREL.search(insn.operands)
        if m:
            insn.target = (insn.end + int(m.group(1), 0)) & ((1 << 64) - 1)
    if insn.target is not None and symbols is not None:
        name = symbols.fmt(insn.target)
        if not name.startswith("0x"):
            insn.comment = f"<{name}>"
    return insn
