"""AT&T operands: ``%reg``, ``$expr``, ``seg:disp(base, index, scale)``, ``*target``."""

from __future__ import annotations

import re
from dataclasses import dataclass

from . import expr as ex
from .errors import AsmError
from .isa import REGISTERS, Register

_REG = re.compile(r"%\s*([A-Za-z][A-Za-z0-9]*)$")
_SEG = re.compile(r"%\s*([a-z]s)\s*:(.*)$", re.IGNORECASE | re.DOTALL)


@dataclass
class Reg:
    reg: Register
    star: bool = False
    paren: bool = False             # written "(%dx)" (the port form of IN/OUT)


@dataclass
class Imm:
    expr: ex.Node
    text: str


@dataclass
class Mem:
    disp: ex.Node | None
    base: Register | None = None
    index: Register | None = None
    scale: int = 1
    seg: Register | None = None
    star: bool = False
    text: str = ""

    @property
    def bare(self) -> bool:
        """A plain address with no registers (a branch target or a MOVABS offset)."""
        return self.base is None and self.index is None

    @property
    def rip(self) -> bool:
        return self.base is not None and self.base.kind == "rip"


Operand = Reg | Imm | Mem


def register(name: str) -> Register:
    reg = REGISTERS.get(name.lower())
    if reg is None:
        raise AsmError(f"unknown register %{name}")
    return reg


def parse_operand(text: str) -> Operand:
    """Parse one operand; raises AsmError naming the text it could not read."""
    s = text.strip()
    if not s:
        raise AsmError("empty operand")
    star = s.startswith("*")
    if star:
        s = s[1:].strip()
    if s.startswith("$"):
        if star:
            raise AsmError(f"'*' cannot precede an immediate: {text.strip()!r}")
        return Imm(ex.parse(s[1:]), s[1:].strip())
    m = _REG.match(s)
    if m:
        return Reg(register(m.group(1)), star=star)
    seg = None
    m = _SEG.match(s)
    if m:
        seg = register(m.group(1))
        if seg.kind != "sreg":
            raise AsmError(f"%{m.group(1)} is not a segment register: {text.strip()!r}")
        s = m.group(2).strip()
    mem = _memory(s, text.strip())
    mem.seg, mem.star = seg, star
    if (mem.base is not None and mem.base.name == "dx" and mem.index is None and mem.disp is None
            and seg is None and not star):
        return Reg(mem.base, paren=True)
    return mem


def _memory(s: str, whole: str) -> Mem:
    disp_text, regs = s, None
    if s.endswith(")"):
        open_at = _matching_open(s)
        inner = s[open_at + 1:-1].strip()
        if inner.startswith("%") or inner.startswith(","):
            disp_text, regs = s[:open_at], inner
    mem = Mem(ex.parse(disp_text) if disp_text.strip() else None, text=whole)
    if regs is None:
        if mem.disp is None:
            raise AsmError(f"cannot read the operand {whole!r}")
        return mem
    parts = [p.strip() for p in regs.split(",")]
    if len(parts) > 3:
        raise AsmError(f"too many parts in the address {whole!r} (disp(base, index, scale))")
    if parts[0]:
        mem.base = _addr_reg(parts[0], whole)
    if len(parts) > 1 and parts[1]:
        mem.index = _addr_reg(parts[1], whole)
        if mem.index.kind == "rip" or mem.index.num == 4 and mem.index.size == 64:
            raise AsmError(f"%{mem.index.name} cannot be an index register: {whole!r}")
    if len(parts) > 2 and parts[2]:
        try:
            mem.scale = ex.evaluate(ex.parse(parts[2]), _no_symbols)
        except ex.Undefined:
            raise AsmError(f"the scale in {whole!r} must be a number (1, 2, 4 or 8)") from None
        if mem.scale not in (1, 2, 4, 8):
            raise AsmError(f"scale {mem.scale} in {whole!r} is not 1, 2, 4 or 8")
        if mem.index is None:
            raise AsmError(f"a scale needs an index register: {whole!r}")
    if mem.rip and mem.index is not None:
        raise AsmError(f"%rip-relative addresses take no index register: {whole!r}")
    return mem


def _no_symbols(name: str) -> int:
    raise ex.Undefined(name)


def _addr_reg(t: str, whole: str) -> Register:
    m = _REG.match(t)
    if not m:
        raise AsmError(f"expected a register, found {t!r} in {whole!r}")
    reg = register(m.group(1))
    if reg.kind == "rip":
        return reg
    if reg.kind != "gpr" or reg.size != 64:
        if reg.kind == "gpr" and reg.name == "dx":
            return reg            # only valid as the port "(%dx)"; checked by the caller
        raise AsmError(f"%{reg.name} cannot address memory in 64-bit code (use a 64-bit register): "
                       f"{whole!r}")
    return reg


def _matching_open(s: str) -> int:
    depth = 0
    for i in range(len(s) - 1, -1, -1):
        if s[i] == ")":
            depth += 1
        elif s[i] == "(":
            depth -= 1
            if depth == 0:
                return i
    raise AsmError(f"unbalanced parentheses in {s!r}")
