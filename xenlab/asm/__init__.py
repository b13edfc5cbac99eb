"""AT&T assembler and capstone disassembler for the CPU's x86-64 subset.

    >>> from xenlab.asm import assemble, disasm
    >>> prog = assemble("movq $(4096/8), %rax", divide=True)
    >>> prog.text.hex()
    '48c7c000020000'
    >>> assemble("movq $(4096/8), %rax").text.hex()    # Solaris rule: '/' starts a comment
    '48c7c000100000'

The instruction table (one table for assembler, CPU and docs) is :mod:`xenlab.asm.isa`.
"""

from functools import lru_cache

from . import isa
from .assembler import ListingLine, Program, Relocation, assemble
from .disasm import disasm, disasm_text
from .errors import AsmError


@lru_cache(maxsize=1024)
def code(source: str, base: int = 0x100000, divide: bool = False) -> bytes:
    """The flat image of ``source`` (cached): for small stubs run again and again."""
    return assemble(source, base=base, divide=divide).image()


__all__ = ["assemble", "code", "Program", "Relocation", "ListingLine", "AsmError", "disasm",
           "disasm_text", "isa"]
