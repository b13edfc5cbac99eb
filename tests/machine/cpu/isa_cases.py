"""Concrete, runnable instances of every form of the instruction table (xenlab.asm.isa),
for the CPU's table-driven tests.

Each instance is AT&T text that does not fault by accident: memory operands
address the data page (%r15), the stack is valid, branches land on the next
instruction, immediates are in range.  ``oracle(form)`` says whether unicorn is
a reliable oracle for the form (and which flags it may compare): it is not
for privileged, I/O, system and RFLAGS-image instructions, nor where QEMU and
the SDM part ways (CMPXCHG writing the accumulator on success).
"""

from __future__ import annotations

import random

from xenlab.asm import isa
from xenlab.machine import regs as R

from .harness import DATA

REGS = {
    64: ["%rax", "%rbx", "%rcx", "%rdx", "%rsi", "%rdi", "%r8", "%r11", "%r12", "%r14"],
    32: ["%eax", "%ebx", "%ecx", "%edx", "%esi", "%edi", "%r8d", "%r11d", "%r12d", "%r14d"],
    16: ["%ax", "%bx", "%cx", "%dx", "%si", "%di", "%r8w", "%r11w", "%r12w", "%r14w"],
    8: ["%al", "%bl", "%cl", "%dl", "%sil", "%dil", "%r8b", "%r11b", "%r12b", "%r14b"],
}
HIGH8 = ["%ah", "%bh", "%ch", "%dh"]
MEMS = ["0x40(%r15)", "0x88(%r15,%rbx,1)", "-0x10(%r15,%rcx,8)", "0x100(%r15)", "(%r15)"]
FLAG_BITS = {"O": R.FLAG_OF, "S": R.FLAG_SF, "Z": R.FLAG_ZF, "A": R.FLAG_AF, "P": R.FLAG_PF,
             "C": R.FLAG_CF, "D": R.FLAG_DF}

# groups whose forms unicorn can judge (registers, flags, memory)
ORACLE_GROUPS = ("data movement", "arithmetic", "shift and rotate", "conditional data", "string",
                 "stack", "control transfer")
NO_ORACLE = {"pushf", "popf", "lret", "ljmp", "cmpxchg", "cmpxchg16b", "iret", "enter"}


def _imm(kind: str, form, r: random.Random) -> str:
    if form.mnemonic in ("shld", "shrd") and form.size == 16:
        return f"${r.choice([1, 2, 3, 7, 13])}"       # > 16: undefined (SDM SHLD)
    if form.group == "shift and rotate" or form.mnemonic in ("shld", "shrd"):
        return f"${r.choice([1, 2, 3, 7, 13, 31])}"
    if form.mnemonic in ("bt", "bts", "btr", "btc"):
        return f"${r.randrange(form.size)}"
    if form.mnemonic == "enter":
        return "$0x20" if kind == "imm16" else f"${r.choice([0, 1, 2])}"
    if form.mnemonic in ("int", "in", "out"):
        return "$0x80"
    if kind == "imm64":
        return f"${r.choice([0x123456789ABCDEF0, -5, 0x80000000])}"
    if kind == "simm8":
        return f"${r.choice([-128, -1, 0, 1, 5, 127])}"
    if kind == "imm16":
        return "$0x10" if form.mnemonic == "ret" else f"${r.choice([0x1234, 0xFFFF, 1])}"
    bits = {"imm8": 8, "imm32": 32, "simm32": 32}[kind]
    if form.size == 8 or bits == 8:
        return f"${r.choice([0, 1, 0x7F, 0x80, 0xFF])}"
    if form.size == 16:
        return f"${r.choice([0, 1, 0x7FFF, 0x8000, 0xFFFF])}"
    return f"${r.choice([0, 1, 0x7FFFFFFF, -0x80000000, 0x12345])}"


def operand(form, pos: int, r: random.Random) -> str:
    kind = form.operands[pos]
    if kind in isa.FIXED_REGS:
        return "%" + kind
    if kind == "1":
        return "$1"
    if kind[0] == "r" and kind[1:].isdigit():
        return r.choice(REGS[int(kind[1:])])
    if kind.startswith("rm"):
        size = int(kind[2:])
        return r.choice(REGS[size]) if r.random() < 0.5 else r.choice(MEMS)
    if kind == "*rm64":
        return "*%r13"                   # %r13 holds the address of the next instruction
    if kind in ("m", "m16"):
        return "0x40(%r15)"
    if kind == "m16:32":
        return "*0x40(%r15)"
    if kind == "cr":
        return "%cr3" if pos == len(form.operands) - 1 else r.choice(["%cr0", "%cr2", "%cr3", "%cr4"])
    if kind == "sreg":
        return "%ds"
    if kind.startswith("moffs"):
        return f"{DATA + 0x60:#x}"
    if kind.startswith("rel"):
        return "1f"
    return _imm(kind, form, r)


def instance(form, r: random.Random) -> tuple[str, str, str]:
    """(set-up, the instruction, what follows): together they run the form once.
    Branches land on the instruction after them; RET finds that address on the stack."""
    ops = [operand(form, p, r) for p in range(len(form.operands))]
    if any(o in HIGH8 for o in ops):
        ops = ["%dl" if o in HIGH8 else o for o in ops]
    line = f"{form.spellings[0]} {', '.join(ops)}".strip()
    before, after = "", ""
    if "1f" in ops:
        after = "1:"
    if form.operands == ("*rm64",):
        before, after = "leaq 2f(%rip), %r13", "2:"
    if form.mnemonic == "ret":
        before, after = "leaq 2f(%rip), %r13\npushq %r13", "2:"
    if form.mnemonic == "sysret":
        before, after = "leaq 2f(%rip), %rcx", "2:"
    return before, line, after


def oracle(form) -> int | None:
    """The RFLAGS bits unicorn may be compared on for this form, or None if it is no oracle."""
    if form.group not in ORACLE_GROUPS or form.mnemonic in NO_ORACLE or form.privileged \
            or form.iopl or "m16:32" in form.operands or "sreg" in form.operands:
        return None
    defined = form.flags if not form.flags.startswith("all") else ""
    mask = 0
    for ch in defined:
        if ch in FLAG_BITS and ch not in form.undefined:
            mask |= FLAG_BITS[ch]
    if form.group == "shift and rotate" or form.mnemonic in ("shld", "shrd"):
        mask &= ~R.FLAG_OF               # defined for a count of 1 only
    return mask
