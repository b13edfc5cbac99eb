"""Traps the kernel cannot handle: illumos-style BAD TRAP panics.

The text follows what a Solaris kernel printed (``die()`` and ``showregs()`` in
illumos ``usr/src/uts/i86pc/os/trap.c``): the panic line with the trap type,
``rp`` (where the trap frame is) and ``addr``, the faulting context, the control
registers, every general register and a stack of function names.  The trap
names and mnemonics are Intel's (SDM Vol. 3 §6.15).
"""

from __future__ import annotations

import inspect

TRAP_MNEMONIC = ("de", "db", "nmi", "bp", "of", "br", "ud", "nm", "df", "9", "ts", "np",
                 "ss", "gp", "pf", "15", "mf", "ac", "mc", "xm")
TRAP_NAME = ("Divide error", "Debug", "NMI interrupt", "Breakpoint", "Overflow", "BOUND",
             "Invalid opcode", "Device not available", "Double fault",
             "Coprocessor segment overrun", "Invalid TSS", "Segment not present",
             "Stack segment fault", "General protection", "Page fault", "Reserved",
             "x87 floating point error", "Alignment check", "Machine check",
             "SIMD floating point")
CR0_BITS = ((31, "pg"), (30, "cd"), (29, "nw"), (18, "am"), (16, "wp"), (5, "ne"), (4, "et"),
            (3, "ts"), (2, "em"), (1, "mp"), (0, "pe"))
CR4_BITS = ((20, "smep"), (10, "xmme"), (9, "fxsr"), (8, "pce"), (7, "pge"), (6, "mce"),
            (5, "pae"), (4, "pse"), (3, "de"), (2, "tsd"), (1, "pvi"), (0, "vme"))
PF_BITS = ((4, "fetch"), (3, "rsvd"), (2, "user"), (1, "write"), (0, "prot"))


def trap_label(vector: int) -> str:
    """``#gp General protection`` for vector 13."""
    if vector < len(TRAP_NAME):
        return f"#{TRAP_MNEMONIC[vector]} {TRAP_NAME[vector]}"
    return f"#{vector} Reserved"


def bits(value: int, table) -> str:
    names = [n for b, n in table if value >> b & 1]
    return f"{value:x}<{','.join(names)}>"


def bad_trap_message(frame, addr: int, module: str) -> str:
    msg = (f"BAD TRAP: type={frame.vector:x} ({trap_label(frame.vector)}) "
           f"rp={frame.frame_va:x} addr={addr:x}")
    if frame.vector == 14:
        msg += f" occurred in module \"{module}\""
        if addr < 4096:
            msg += " due to a NULL pointer dereference"
    elif module:
        msg += f" occurred in module \"{module}\""
    return msg


def showregs(frame, addr: int, cr0: int | None, cr2: int | None, cr3: int | None,
             cr4: int | None, proc: str = "sched") -> str:
    """The register dump that follows a BAD TRAP."""
    r = frame.regs
    lines = ["", f"{proc}: {trap_label(frame.vector)}"]
    if frame.vector == 14:
        lines.append(f"Bad kernel fault at addr={addr:#x}")
    lines.append(f"pid=0, pc={frame.rip:#x}, sp={frame.rsp:#x}, eflags={frame.rflags:#x}")
    crs = []
    if cr0 is not None:
        crs.append(f"cr0: {bits(cr0, CR0_BITS)}")
    if cr4 is not None:
        crs.append(f"cr4: {bits(cr4, CR4_BITS)}")
    if crs:
        lines.append(" ".join(crs))
    lines.append(f"cr2: {cr2 if cr2 is not None else 0:x} cr3: {cr3 if cr3 is not None else 0:x}")
    order = ("rdi", "rsi", "rdx", "rcx", "r8", "r9", "rax", "rbx", "rbp", "r10", "r11", "r12",
             "r13", "r14", "r15")
    for i in range(0, len(order), 3):
        lines.append("\t" + " ".join(f"{n:>3}: {r[n]:16x}" for n in order[i:i + 3]))
    err = frame.err if frame.err is not None else 0
    lines.append(f"\t{'trp':>3}: {frame.vector:16x} {'err':>3}: {err:16x} {'rip':>3}: {frame.rip:16x}")
    lines.append(f"\t{'cs':>3}: {frame.cs:16x} {'rfl':>3}: {frame.rflags:16x} {'rsp':>3}: {frame.rsp:16x}")
    lines.append(f"\t{'ss':>3}: {frame.ss:16x}")
    if frame.vector == 14 and frame.err is not None:
        lines.append(f"\t#pf error code {bits(frame.err, PF_BITS)}")
    return "\n".join(lines) + "\n"


def stack_names(unix, pc: int, rp: int, returns=()) -> str:
    """A kernel stack as illumos prints it: the faulting machine code and the
    return addresses above it, then the kernel functions (Python frames of
    xenlab.kernel) that led there."""
    lines = [f"{rp:016x} {unix.name(pc)} ()"]
    lines += [f"{rp:016x} {unix.name(a)} ()" for a in returns]
    seen = {"trap", "panic", "call", "hypercall", "start", "boot", "run"}
    for fi in inspect.stack()[1:]:
        mod = fi.frame.f_globals.get("__name__", "")
        if not mod.startswith("xenlab.kernel.") or mod.endswith((".kcpu", ".trap", ".cmn_err")):
            continue
        if fi.function.startswith("_") or fi.function in seen:
            continue
        seen.add(fi.function)
        lines.append(f"{rp:016x} unix:{fi.function} ()")
    return "\n".join(lines) + "\n"
