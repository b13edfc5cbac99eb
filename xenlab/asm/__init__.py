"""AT&T assembler and capstone disassembler for the CPU's x86-64 subset.

The instruction table lives in :mod:`xenlab.asm.isa`.
"""

from . import isa  # noqa: F401
