"""AT&T assembler and capstone disassembler for the CPU's x86-64 subset.

    >>> from xenlab.asm import assemble, disasm
    >>> prog = assemble("movq $(4096/8), %rax", divide=True)
    >>> prog.text.hex()
    '48c7c000020000'
    >>> assemble("movq $(4096/8), %rax").text.hex()    # Solaris rule: '/' starts a comment
    '48c7c000100000'

The instruction table (one table for assembler, CPU and docs) is :mod:`xenlab.asm.isa`.
"""

from . import isa
from .assembler import ListingLine, Program, Relocation, assemble
from .disasm import disasm, disasm_text
from .errors import AsmError

__all__ = ["assemble", "Program", "Relocation", "ListingLine", "AsmError", "disasm", "disasm_text",
           "isa"]
