"""Disassembly through capstone (AT&T syntax), never by hand."""

from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=1)
def _engine():
    import capstone
    md = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
    md.syntax = capstone.CS_OPT_SYNTAX_ATT
    md.skipdata = False
    return md


def disasm(code: bytes, address: int = 0, count: int = 0) -> list[tuple[int, bytes, str, str]]:
    """Decode ``code`` placed at ``address`` into (address, bytes, mnemonic, operands) tuples.

    Bytes capstone cannot decode come out one at a time as ``(.byte, 0xNN)``, so
    the listing always covers all of ``code``.  ``count`` > 0 stops after that many.
    """
    code = bytes(code)
    md = _engine()
    out: list[tuple[int, bytes, str, str]] = []
    pos = 0
    while pos < len(code) and (count <= 0 or len(out) < count):
        progressed = False
        for addr, size, mnem, ops in md.disasm_lite(code[pos:], address + pos):
            out.append((addr, code[pos:pos + size], mnem, ops))
            pos += size
            progressed = True
            if count > 0 and len(out) >= count:
                return out
        if pos < len(code) and not progressed or (pos < len(code) and _stuck(md, code, pos, address)):
            out.append((address + pos, code[pos:pos + 1], ".byte", f"{code[pos]:#04x}"))
            pos += 1
    return out


def _stuck(md, code: bytes, pos: int, address: int) -> bool:
    """True if capstone cannot decode an instruction at ``pos``."""
    return next(iter(md.disasm_lite(code[pos:], address + pos, 1)), None) is None


def disasm_text(code: bytes, address: int = 0, count: int = 0) -> str:
    """A text listing: address, bytes, AT&T instruction, one line each."""
    rows = []
    for addr, raw, mnem, ops in disasm(code, address, count):
        rows.append(f"{addr:#018x}  {raw.hex(' '):<30}  {mnem} {ops}".rstrip())
    return "\n".join(rows) + ("\n" if rows else "")
