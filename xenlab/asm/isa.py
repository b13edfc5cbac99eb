"""The instruction table of xenlab's x86-64 subset: one table for everything.

Each `Form` is one encoding of one instruction (py65 style): the assembler
picks forms from it, the CPU decodes and documents its subset from it, and the
tests assemble every form with both ``xenlab.asm`` and GNU ``as``.  Opcodes,
ModRM ``/digit`` values and flag effects are facts from the Intel SDM vol. 2
(instruction reference) and vol. 1 appendix A (EFLAGS cross-reference).

Operand kinds are written in AT&T order (source first):

============  ==============================================================
``r8..r64``   a general register of that width (shown as %reg8 .. %reg64)
``rm8..rm64`` a general register of that width or a memory operand
``m``         a memory operand (its size does not matter: LEA, INVLPG, LGDT)
``m16``       a 16-bit memory operand
``m16:32``    a far pointer in memory (32-bit offset, then a selector), for LJMP
``*rm64``     an indirect jump/call target (AT&T writes a ``*`` before it)
``imm8``      an unsigned 8-bit immediate (port, vector, shift count)
``simm8``     an 8-bit immediate sign-extended to the operand size
``imm16/32``  an immediate of that width; ``simm32`` sign-extended to 64 bits
``imm64``     a full 64-bit immediate (MOVABS)
``rel8/32``   a branch target, encoded relative to the next instruction
``moffs8..64`` a 64-bit absolute address in the instruction (MOVABS)
``al ax eax rax cl dx``  exactly that register (``dx`` is the port in IN/OUT)
``1``         the constant 1 (shift/rotate by one)
``cr``        a control register (%cr0, %cr2, %cr3, %cr4)
``sreg``      a segment register (%es %cs %ss %ds %fs %gs)
============  ==============================================================
"""

from __future__ import annotations

from dataclasses import dataclass, field

# --------------------------------------------------------------------------
# registers (SDM vol. 2 section 2.1.3 / 2.2.1: register numbers as encoded in
# ModRM.reg/rm, SIB and opcode+r; 8..15 need a REX bit)

GPR64 = ("rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi",
         "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15")
GPR32 = ("eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi",
         "r8d", "r9d", "r10d", "r11d", "r12d", "r13d", "r14d", "r15d")
GPR16 = ("ax", "cx", "dx", "bx", "sp", "bp", "si", "di",
         "r8w", "r9w", "r10w", "r11w", "r12w", "r13w", "r14w", "r15w")
GPR8 = ("al", "cl", "dl", "bl", "spl", "bpl", "sil", "dil",
        "r8b", "r9b", "r10b", "r11b", "r12b", "r13b", "r14b", "r15b")
GPR8_HIGH = ("ah", "ch", "dh", "bh")           # numbers 4..7 without a REX prefix
SEGMENT_REGS = ("es", "cs", "ss", "ds", "fs", "gs")   # Sreg encoding, SDM vol. 2 table 3-6
CONTROL_REGS = (0, 2, 3, 4)                    # the control registers the CPU models
SEGMENT_PREFIX = {"es": 0x26, "cs": 0x2E, "ss": 0x36, "ds": 0x3E, "fs": 0x64, "gs": 0x65}


@dataclass(frozen=True)
class Register:
    """A register operand: name, kind ("gpr", "cr", "sreg", "rip"), number and width in bits."""

    name: str
    kind: str
    num: int
    size: int

    @property
    def needs_rex(self) -> bool:
        """True for r8-r15 and %spl/%bpl/%sil/%dil, which only exist with a REX prefix."""
        return self.kind == "gpr" and (self.num >= 8 or (self.size == 8 and self.num >= 4
                                                          and self.name not in GPR8_HIGH))

    @property
    def high_byte(self) -> bool:
        """True for %ah/%ch/%dh/%bh, which cannot be encoded together with a REX prefix."""
        return self.name in GPR8_HIGH


def _registers() -> dict[str, Register]:
    regs: dict[str, Register] = {}
    for size, names in ((64, GPR64), (32, GPR32), (16, GPR16), (8, GPR8)):
        for num, name in enumerate(names):
            regs[name] = Register(name, "gpr", num, size)
    for num, name in enumerate(GPR8_HIGH, start=4):
        regs[name] = Register(name, "gpr", num, 8)
    for num, name in enumerate(SEGMENT_REGS):
        regs[name] = Register(name, "sreg", num, 16)
    for num in CONTROL_REGS:
        regs[f"cr{num}"] = Register(f"cr{num}", "cr", num, 64)
    regs["rip"] = Register("rip", "rip", 0, 64)
    return regs


REGISTERS: dict[str, Register] = _registers()

# --------------------------------------------------------------------------
# condition codes (SDM vol. 1 appendix B): number -> AT&T names, first is canonical,
# and the flags the condition reads.

CONDITIONS: tuple[tuple[int, tuple[str, ...], str], ...] = (
    (0x0, ("o",), "O"),
    (0x1, ("no",), "O"),
    (0x2, ("b", "c", "nae"), "C"),
    (0x3, ("ae", "nb", "nc"), "C"),
    (0x4, ("e", "z"), "Z"),
    (0x5, ("ne", "nz"), "Z"),
    (0x6, ("be", "na"), "CZ"),
    (0x7, ("a", "nbe"), "CZ"),
    (0x8, ("s",), "S"),
    (0x9, ("ns",), "S"),
    (0xA, ("p", "pe"), "P"),
    (0xB, ("np", "po"), "P"),
    (0xC, ("l", "nge"), "OS"),
    (0xD, ("ge", "nl"), "OS"),
    (0xE, ("le", "ng"), "OSZ"),
    (0xF, ("g", "nle"), "OSZ"),
)

SUFFIX = {8: "b", 16: "w", 32: "l", 64: "q"}
SIZE_OF_SUFFIX = {v: k for k, v in SUFFIX.items()}

# operand kinds and their widths in bits (0: no width of its own)
KIND_SIZE = {
    "r8": 8, "r16": 16, "r32": 32, "r64": 64,
    "rm8": 8, "rm16": 16, "rm32": 32, "rm64": 64, "*rm64": 64,
    "m": 0, "m16": 16, "m16:32": 0,
    "imm8": 8, "simm8": 8, "imm16": 16, "imm32": 32, "simm32": 32, "imm64": 64,
    "rel8": 8, "rel32": 32,
    "moffs8": 8, "moffs16": 16, "moffs32": 32, "moffs64": 64,
    "al": 8, "ax": 16, "eax": 32, "rax": 64, "cl": 8, "dx": 16, "1": 0,
    "cr": 64, "sreg": 16,
}
FIXED_REGS = ("al", "ax", "eax", "rax", "cl", "dx")
IMM_KINDS = ("imm8", "simm8", "imm16", "imm32", "simm32", "imm64", "1")

# flag letters: C P A Z S O are the arithmetic flags; D, I, T and IOPL are named too
ARITH = "OSZAPC"


@dataclass(frozen=True)
class Form:
    """One encoding of one instruction in the CPU's subset.

    ``mnemonic`` is the AT&T base name; the spelled mnemonic adds the size suffix of
    ``size`` (``add`` + 64 -> ``addq``).  ``opcode`` excludes the 0x66 and REX.W
    prefixes, which follow from ``size`` (``d64`` forms default to 64 bits without
    REX.W).  ``ext`` is the ModRM /digit, ``modrm`` says a ModRM byte follows
    (``/r`` or ``/digit``), ``plus_r`` puts the register in the opcode's low bits,
    ``imm``/``rel`` are byte counts of the immediate and the branch displacement
    (``imm2`` of a second immediate: ENTER).  ``suffix=False`` spells the
    mnemonic exactly as given (``cltq``, ``cmpxchg16b``) whatever ``size`` is.
    """

    mnemonic: str
    operands: tuple[str, ...]
    opcode: bytes
    size: int = 0
    desc: str = ""
    intel: str = ""
    group: str = ""
    ext: int | None = None
    modrm: bool = False
    plus_r: bool = False
    imm: int = 0
    rel: int = 0
    d64: bool = False
    no66: bool = False
    suffix_optional: bool = True
    suffix: bool = True
    imm2: int = 0
    privileged: bool = False
    iopl: bool = False
    flags: str = ""
    undefined: str = ""
    reads: str = ""
    lock: bool = False
    rep: str = ""
    cc: int | None = None
    family: str = ""
    aliases: tuple[str, ...] = ()
    note: str = ""
    index: int = field(default=-1, compare=False)

    @property
    def rex_w(self) -> bool:
        """True if the form needs REX.W (a 64-bit operand that is not the default)."""
        return self.size == 64 and not self.d64

    @property
    def opsize_prefix(self) -> bool:
        """True if the form needs the 0x66 operand-size prefix (16-bit operands)."""
        return self.size == 16 and not self.no66

    @property
    def roles(self) -> tuple[str, ...]:
        """Where each operand goes: "reg" (ModRM.reg), "rm" (ModRM.rm), "opreg" (opcode+r),
        "imm", "rel", "moffs", or "implicit" (a fixed register or the constant 1)."""
        return _roles(self)

    @property
    def spellings(self) -> tuple[str, ...]:
        """The AT&T mnemonics that select this form (with and without the size suffix)."""
        names = (self.mnemonic,) + self.aliases
        if not self.suffix:
            return names
        out: list[str] = []
        suffixed = self.size in SUFFIX
        for n in names:
            if suffixed:
                out.append(n + SUFFIX[self.size])
            if not suffixed or self.suffix_optional:
                out.append(n)
        return tuple(dict.fromkeys(out))

    @property
    def att(self) -> str:
        """The AT&T syntax of the form, e.g. ``addq $simm8, r/m64``."""
        name = self.spellings[0]
        return f"{name} {', '.join(_show_kind(k) for k in self.operands)}".strip()

    @property
    def encoding(self) -> str:
        """The encoding in the SDM's notation, e.g. ``REX.W 83 /0 ib``."""
        parts = []
        if self.opsize_prefix:
            parts.append("66")
        if self.rex_w:
            parts.append("REX.W")
        ops = [f"{b:02X}" for b in self.opcode]
        if self.plus_r:
            ops[-1] += "+r"
        if self.cc is not None and self.family:
            base = self.opcode[-1] - self.cc
            ops[-1] = f"{base:02X}+cc"
        parts += ops
        if self.ext is not None:
            parts.append(f"/{self.ext}")
        elif self.modrm:
            parts.append("/r")
        if self.imm:
            parts.append({1: "ib", 2: "iw", 4: "id", 8: "io"}[self.imm])
        if self.imm2:
            parts.append({1: "ib", 2: "iw", 4: "id", 8: "io"}[self.imm2])
        if self.rel:
            parts.append({1: "cb", 4: "cd"}[self.rel])
        if any(k.startswith("moffs") for k in self.operands):
            parts.append("moffs64")
        return " ".join(parts)


def _is_rm(kind: str) -> bool:
    """True for kinds encoded in ModRM.rm: r/m, memory and indirect targets."""
    return kind.startswith(("rm", "*rm")) or kind == "m" or kind.startswith("m16")


def _roles(f: Form) -> tuple[str, ...]:
    roles = []
    reg_taken = f.ext is not None
    for k in f.operands:
        if k in ("cr", "sreg"):
            roles.append("reg")
            reg_taken = True
        else:
            roles.append("")
    has_rm = any(_is_rm(k) for k in f.operands)
    for i, k in enumerate(f.operands):
        if roles[i]:
            continue
        if _is_rm(k):
            roles[i] = "rm"
        elif k[0] == "r" and k[1:].isdigit():
            if f.plus_r:
                roles[i] = "opreg"
            elif not reg_taken:
                roles[i] = "reg"
                reg_taken = True
            elif not has_rm:
                roles[i] = "rm"
                has_rm = True
            else:
                raise ValueError(f"cannot place operand {k} of {f.mnemonic}")
        elif k in IMM_KINDS and k != "1":
            roles[i] = "imm"
        elif k.startswith("rel"):
            roles[i] = "rel"
        elif k.startswith("moffs"):
            roles[i] = "moffs"
        else:
            roles[i] = "implicit"
    return tuple(roles)


def _show_kind(k: str) -> str:
    if k in FIXED_REGS:
        return "%" + k
    if k.startswith("*rm"):
        return "*r/m" + k[3:]
    if k.startswith("rm"):
        return "r/m" + k[2:]
    if k[0] == "r" and k[1:].isdigit():
        return "%reg" + k[1:]
    if k in ("imm8", "simm8", "imm16", "imm32", "simm32", "imm64", "1"):
        return "$" + k
    return {"cr": "%crN", "sreg": "%sreg"}.get(k, k)


# --------------------------------------------------------------------------
# building the table


_FORMS: list[Form] = []


def _enc(text: str) -> dict:
    """Parse an SDM-style encoding string ("0F AF /r", "83 /0 ib", "B8+r io")."""
    out: dict = {"opcode": bytearray()}
    for tok in text.split():
        if tok == "/r":
            out["modrm"] = True
        elif tok.startswith("/"):
            out["modrm"] = True
            out["ext"] = int(tok[1:])
        elif tok == "REX.W":
            out["size"] = 64              # REX.W with a mnemonic spelled exactly (cmpxchg16b)
        elif tok.endswith("+r"):
            out["plus_r"] = True
            out["opcode"].append(int(tok[:-2], 16))
        elif tok in ("ib", "iw", "id", "io"):
            out["imm2" if "imm" in out else "imm"] = {"ib": 1, "iw": 2, "id": 4, "io": 8}[tok]
        elif tok in ("cb", "cd"):
            out["rel"] = {"cb": 1, "cd": 4}[tok]
        else:
            out["opcode"].append(int(tok, 16))
    out["opcode"] = bytes(out["opcode"])
    return out


def _add(mnemonic: str, size: int, operands: tuple[str, ...], enc: str, desc: str, **kw) -> None:
    spec = _enc(enc)
    size = spec.pop("size", size)
    spec.update(kw)
    _FORMS.append(Form(mnemonic=mnemonic, operands=tuple(operands), size=size, desc=desc, **spec))


def _sized(k: str, size: int) -> str:
    """``rm`` + 32 -> ``rm32``; accumulator ``acc`` + 32 -> ``eax``."""
    if k == "acc":
        return {8: "al", 16: "ax", 32: "eax", 64: "rax"}[size]
    if k == "imm":
        return {8: "imm8", 16: "imm16", 32: "imm32", 64: "simm32"}[size]
    return f"{k}{size}"


def _imm_code(size: int) -> str:
    return {8: "ib", 16: "iw", 32: "id", 64: "id"}[size]


def _build() -> None:  # noqa: C901 - one long, flat table is the point
    S = (8, 16, 32, 64)
    SW = (16, 32, 64)

    # ---------------- data movement
    g = dict(group="data movement")
    for s in S:
        op = "88" if s == 8 else "89"
        _add("mov", s, ("r" + str(s), f"rm{s}"), f"{op} /r", "copy a register to r/m", intel="MOV", **g)
    for s in S:
        op = "8A" if s == 8 else "8B"
        _add("mov", s, (f"rm{s}", f"r{s}"), f"{op} /r", "copy r/m to a register", intel="MOV", **g)
    _add("mov", 8, ("imm8", "r8"), "B0+r ib", "load an immediate into a register", intel="MOV", **g)
    _add("mov", 16, ("imm16", "r16"), "B8+r iw", "load an immediate into a register", intel="MOV", **g)
    _add("mov", 32, ("imm32", "r32"), "B8+r id", "load an immediate into a register (zero-extends)",
         intel="MOV", **g)
    for s in S:
        op = "C6" if s == 8 else "C7"
        _add("mov", s, (_sized("imm", s), f"rm{s}"), f"{op} /0 {_imm_code(s)}",
             "store an immediate" + (" (sign-extended imm32)" if s == 64 else ""), intel="MOV", **g)
    _add("mov", 64, ("imm64", "r64"), "B8+r io",
         "load a 64-bit immediate (what movq picks when the value needs more than 32 bits)",
         intel="MOV", **g)
    _add("movabs", 64, ("imm64", "r64"), "B8+r io", "load a 64-bit immediate", intel="MOV", **g)
    for s in S:
        op = "A0" if s == 8 else "A1"
        _add("movabs", s, (f"moffs{s}", _sized("acc", s)), op,
             "load the accumulator from a 64-bit absolute address", intel="MOV", **g)
    for s in S:
        op = "A2" if s == 8 else "A3"
        _add("movabs", s, (_sized("acc", s), f"moffs{s}"), op,
             "store the accumulator to a 64-bit absolute address", intel="MOV", **g)
    # segment registers: GNU as never adds REX.W here, and 0x66 only for a 16-bit register
    _add("mov", 16, ("sreg", "r16"), "8C /r", "copy a segment selector to a 16-bit register",
         intel="MOV", **g)
    _add("mov", 32, ("sreg", "r32"), "8C /r", "copy a segment selector (zero-extended)", intel="MOV", **g)
    _add("mov", 64, ("sreg", "r64"), "8C /r", "copy a segment selector (zero-extended)", intel="MOV",
         d64=True, **g)
    _add("mov", 16, ("sreg", "m16"), "8C /r", "store a segment selector", intel="MOV", no66=True, **g)
    _add("mov", 16, ("rm16", "sreg"), "8E /r",
         "load a segment register (descriptor from the GDT; not %cs)", intel="MOV", no66=True, **g)
    _add("mov", 32, ("r32", "sreg"), "8E /r",
         "load a segment register (descriptor from the GDT; not %cs)", intel="MOV", **g)
    _add("mov", 64, ("r64", "sreg"), "8E /r",
         "load a segment register (descriptor from the GDT; not %cs)", intel="MOV", d64=True, **g)
    for s in (16, 32, 64):
        _add("movzb", s, ("rm8", f"r{s}"), "0F B6 /r", "zero-extend a byte", intel="MOVZX",
             suffix_optional=False, **g)
    for s in (32, 64):
        _add("movzw", s, ("rm16", f"r{s}"), "0F B7 /r", "zero-extend a word", intel="MOVZX",
             suffix_optional=False, **g)
    for s in (16, 32, 64):
        _add("movsb", s, ("rm8", f"r{s}"), "0F BE /r", "sign-extend a byte", intel="MOVSX",
             suffix_optional=False, **g)
    for s in (32, 64):
        _add("movsw", s, ("rm16", f"r{s}"), "0F BF /r", "sign-extend a word", intel="MOVSX",
             suffix_optional=False, **g)
    _add("movsl", 64, ("rm32", "r64"), "63 /r", "sign-extend a doubleword", intel="MOVSXD",
         suffix_optional=False, **g)
    for s in SW:
        _add("lea", s, ("m", f"r{s}"), "8D /r", "load the effective address of m", intel="LEA", **g)
    # XCHG: the short accumulator forms come first, as GNU as prefers them
    for s in SW:
        _add("xchg", s, (f"r{s}", _sized("acc", s)), "90+r", "exchange a register with the accumulator",
             intel="XCHG", note="not %eax,%eax (90 is NOP)" if s == 32 else "", **g)
        _add("xchg", s, (_sized("acc", s), f"r{s}"), "90+r", "exchange the accumulator with a register",
             intel="XCHG", note="not %eax,%eax (90 is NOP)" if s == 32 else "", **g)
    for s in S:
        op = "86" if s == 8 else "87"
        _add("xchg", s, (f"r{s}", f"rm{s}"), f"{op} /r",
             "exchange (with memory: always locked)", intel="XCHG", lock=True, **g)
        _add("xchg", s, (f"rm{s}", f"r{s}"), f"{op} /r",
             "exchange (with memory: always locked)", intel="XCHG", lock=True, **g)
    for s in S:
        op = "0F B0" if s == 8 else "0F B1"
        _add("cmpxchg", s, (f"r{s}", f"rm{s}"), f"{op} /r",
             "compare the accumulator with r/m; equal: r/m = reg, else accumulator = r/m",
             intel="CMPXCHG", flags=ARITH, lock=True, **g)
    for s in S:
        op = "0F C0" if s == 8 else "0F C1"
        _add("xadd", s, (f"r{s}", f"rm{s}"), f"{op} /r", "exchange and add: r/m += reg, reg = old r/m",
             intel="XADD", flags=ARITH, lock=True, **g)
    _add("cmpxchg16b", 0, ("m",), "REX.W 0F C7 /1",
         "compare %rdx:%rax with the 16-byte m (16-byte aligned); equal: m = %rcx:%rbx (ZF=1), "
         "else %rdx:%rax = m (ZF=0)", intel="CMPXCHG16B", flags="Z", lock=True, suffix=False, **g)
    for s in (32, 64):
        _add("bswap", s, (f"r{s}",), "0F C8+r", "reverse the byte order of a register", intel="BSWAP",
             **g)
    ext = (("cbtw", 16, "98", "CBW", "%al sign-extended into %ax"),
           ("cwtl", 32, "98", "CWDE", "%ax sign-extended into %eax"),
           ("cltq", 64, "98", "CDQE", "%eax sign-extended into %rax"),
           ("cwtd", 16, "99", "CWD", "%ax sign-extended into %dx:%ax"),
           ("cltd", 32, "99", "CDQ", "%eax sign-extended into %edx:%eax"),
           ("cqto", 64, "99", "CQO", "%rax sign-extended into %rdx:%rax"))
    for name, s, op, intel, what in ext:
        _add(name, s, (), op, what, intel=intel, suffix=False, aliases=(intel.lower(),), **g)
    # stack
    g = dict(group="stack")
    _add("push", 64, ("r64",), "50+r", "push a register", intel="PUSH", d64=True, **g)
    _add("push", 64, ("simm8",), "6A ib", "push a sign-extended imm8", intel="PUSH", d64=True, **g)
    _add("push", 64, ("simm32",), "68 id", "push a sign-extended imm32", intel="PUSH", d64=True, **g)
    _add("push", 64, ("rm64",), "FF /6", "push r/m64", intel="PUSH", d64=True, **g)
    _add("pop", 64, ("r64",), "58+r", "pop into a register", intel="POP", d64=True, **g)
    _add("pop", 64, ("rm64",), "8F /0", "pop into r/m64", intel="POP", d64=True, **g)
    _add("pushf", 64, (), "9C", "push RFLAGS (VM and RF read as 0)", intel="PUSHFQ", d64=True, **g)
    _add("popf", 64, (), "9D",
         "pop RFLAGS; IOPL changes only at CPL 0, IF only at CPL <= IOPL", intel="POPFQ", d64=True,
         flags="OSZAPC DIT IOPL", **g)
    _add("pushf", 16, (), "9C", "push FLAGS (16 bits)", intel="PUSHF", suffix_optional=False, **g)
    _add("popf", 16, (), "9D", "pop FLAGS (16 bits); IOPL and IF as for popfq", intel="POPF",
         suffix_optional=False, flags="OSZAPC DIT IOPL", **g)
    _add("leave", 64, (), "C9", "%rsp = %rbp, then pop %rbp (undo enter)", intel="LEAVE", d64=True,
         **g)
    _add("enter", 64, ("imm16", "imm8"), "C8 iw ib",
         "push %rbp, copy imm8 levels of outer frame pointers, %rbp = frame, %rsp -= imm16",
         intel="ENTER", d64=True, **g)

    # ---------------- arithmetic and logic
    g = dict(group="arithmetic")
    alu = (("add", 0, "ADD", ARITH, "", "", "add"),
           ("or", 1, "OR", "OSZPC", "A", "", "bitwise or"),
           ("adc", 2, "ADC", ARITH, "", "C", "add with carry"),
           ("sbb", 3, "SBB", ARITH, "", "C", "subtract with borrow"),
           ("and", 4, "AND", "OSZPC", "A", "", "bitwise and"),
           ("sub", 5, "SUB", ARITH, "", "", "subtract"),
           ("xor", 6, "XOR", "OSZPC", "A", "", "bitwise exclusive or"),
           ("cmp", 7, "CMP", ARITH, "", "", "compare (subtract, keep only the flags)"))
    for name, n, intel, fl, und, rd, what in alu:
        lk = name != "cmp"
        base = n * 8
        for s in S:
            _add(name, s, (f"r{s}", f"rm{s}"), f"{base + (s != 8):02X} /r", f"{what}: r/m op= reg",
                 intel=intel, flags=fl, undefined=und, reads=rd, lock=lk, **g)
        for s in S:
            _add(name, s, (f"rm{s}", f"r{s}"), f"{base + 2 + (s != 8):02X} /r", f"{what}: reg op= r/m",
                 intel=intel, flags=fl, undefined=und, reads=rd, **g)
        for s in SW:
            _add(name, s, ("simm8", f"rm{s}"), f"83 /{n} ib", f"{what}: r/m op= sign-extended imm8",
                 intel=intel, flags=fl, undefined=und, reads=rd, lock=lk, **g)
        for s in S:
            _add(name, s, (_sized("imm", s), _sized("acc", s)), f"{base + 4 + (s != 8):02X} {_imm_code(s)}",
                 f"{what}: accumulator op= imm", intel=intel, flags=fl, undefined=und, reads=rd, **g)
        for s in S:
            op = "80" if s == 8 else "81"
            _add(name, s, (_sized("imm", s), f"rm{s}"), f"{op} /{n} {_imm_code(s)}", f"{what}: r/m op= imm",
                 intel=intel, flags=fl, undefined=und, reads=rd, lock=lk, **g)
    for s in S:
        _add("test", s, (f"r{s}", f"rm{s}"), f"{'84' if s == 8 else '85'} /r",
             "and, keep only the flags", intel="TEST", flags="OSZPC", undefined="A", **g)
        _add("test", s, (f"rm{s}", f"r{s}"), f"{'84' if s == 8 else '85'} /r",
             "and, keep only the flags", intel="TEST", flags="OSZPC", undefined="A", **g)
    for s in S:
        _add("test", s, (_sized("imm", s), _sized("acc", s)), f"{'A8' if s == 8 else 'A9'} {_imm_code(s)}",
             "and the accumulator with imm, keep only the flags", intel="TEST", flags="OSZPC",
             undefined="A", **g)
    for s in S:
        _add("test", s, (_sized("imm", s), f"rm{s}"), f"{'F6' if s == 8 else 'F7'} /0 {_imm_code(s)}",
             "and r/m with imm, keep only the flags", intel="TEST", flags="OSZPC", undefined="A", **g)
    unary = (("inc", "FE", "FF", 0, "INC", "OSZAP", "", "add 1 (CF unchanged)"),
             ("dec", "FE", "FF", 1, "DEC", "OSZAP", "", "subtract 1 (CF unchanged)"),
             ("not", "F6", "F7", 2, "NOT", "", "", "one's complement (no flags)"),
             ("neg", "F6", "F7", 3, "NEG", ARITH, "", "two's complement negation (CF = operand != 0)"))
    for name, o8, o, n, intel, fl, und, what in unary:
        for s in S:
            _add(name, s, (f"rm{s}",), f"{o8 if s == 8 else o} /{n}", what, intel=intel, flags=fl,
                 undefined=und, lock=True, **g)
    muldiv = (("mul", 4, "MUL", "OC", "SZAP", "unsigned multiply: rDX:rAX = rAX * r/m"),
              ("imul", 5, "IMUL", "OC", "SZAP", "signed multiply: rDX:rAX = rAX * r/m"),
              ("div", 6, "DIV", "", ARITH, "unsigned divide rDX:rAX by r/m (#DE on 0 or overflow)"),
              ("idiv", 7, "IDIV", "", ARITH, "signed divide rDX:rAX by r/m (#DE on 0 or overflow)"))
    for name, n, intel, fl, und, what in muldiv:
        for s in S:
            _add(name, s, (f"rm{s}",), f"{'F6' if s == 8 else 'F7'} /{n}", what, intel=intel, flags=fl,
                 undefined=und, **g)
    for s in SW:
        _add("imul", s, (f"rm{s}", f"r{s}"), "0F AF /r", "signed multiply: reg = reg * r/m (truncated)",
             intel="IMUL", flags="OC", undefined="SZAP", **g)
    for s in SW:
        _add("imul", s, ("simm8", f"rm{s}", f"r{s}"), "6B /r ib",
             "signed multiply: reg = r/m * sign-extended imm8", intel="IMUL", flags="OC",
             undefined="SZAP", note="imul $imm, %reg is imul $imm, %reg, %reg", **g)
    for s in SW:
        _add("imul", s, (_sized("imm", s), f"rm{s}", f"r{s}"), f"69 /r {_imm_code(s)}",
             "signed multiply: reg = r/m * imm", intel="IMUL", flags="OC", undefined="SZAP",
             note="imul $imm, %reg is imul $imm, %reg, %reg", **g)

    bits = (("bt", "A3", 4, "BT", "CF = the selected bit"),
            ("bts", "AB", 5, "BTS", "CF = the selected bit, then set it"),
            ("btr", "B3", 6, "BTR", "CF = the selected bit, then clear it"),
            ("btc", "BB", 7, "BTC", "CF = the selected bit, then flip it"))
    for name, op, n, intel, what in bits:
        lk = name != "bt"
        for s in SW:
            _add(name, s, (f"r{s}", f"rm{s}"), f"0F {op} /r",
                 what + " (bit number in a register; with memory it may address beyond r/m)",
                 intel=intel, flags="C", undefined="OSAP", lock=lk, **g)
        for s in SW:
            _add(name, s, ("imm8", f"rm{s}"), f"0F BA /{n} ib", what + " (bit number imm8 mod size)",
                 intel=intel, flags="C", undefined="OSAP", lock=lk, **g)
    for name, op, intel, what in (("bsf", "BC", "BSF", "lowest set bit"),
                                  ("bsr", "BD", "BSR", "highest set bit")):
        for s in SW:
            _add(name, s, (f"rm{s}", f"r{s}"), f"0F {op} /r",
                 f"reg = index of the {what} of r/m; r/m = 0: ZF = 1, reg unchanged",
                 intel=intel, flags="Z", undefined="OSAPC", **g)
    for name, op, intel, what in (("shld", "A4", "SHLD", "left"), ("shrd", "AC", "SHRD", "right")):
        for s in SW:
            _add(name, s, ("imm8", f"r{s}", f"rm{s}"), f"0F {op} /r ib",
                 f"shift r/m {what} by imm8, filling from reg", intel=intel, flags="OSZPC",
                 undefined="A", note="count masked to 5 bits (6 for 64-bit); OF defined for count 1 only",
                 **g)
            _add(name, s, ("cl", f"r{s}", f"rm{s}"), f"0F {int(op, 16) + 1:02X} /r",
                 f"shift r/m {what} by %cl, filling from reg", intel=intel, flags="OSZPC",
                 undefined="A", note="count masked to 5 bits (6 for 64-bit); OF defined for count 1 only",
                 **g)

    # shifts and rotates: by 1 (D0/D1), by %cl (D2/D3), by imm8 (C0/C1); SDM "SAL/SAR/SHL/SHR"
    g = dict(group="shift and rotate")
    shifts = (("rol", 0, "ROL", "rotate left"), ("ror", 1, "ROR", "rotate right"),
              ("rcl", 2, "RCL", "rotate left through CF"), ("rcr", 3, "RCR", "rotate right through CF"),
              ("shl", 4, "SHL", "shift left"), ("shr", 5, "SHR", "shift right (unsigned)"),
              ("sar", 7, "SAR", "shift right (signed)"))
    for name, n, intel, what in shifts:
        rot = name in ("rol", "ror", "rcl", "rcr")
        fl = "OC" if rot else "OSZPC"
        und = "" if rot else "A"
        rd = "C" if name in ("rcl", "rcr") else ""
        alias = ("sal",) if name == "shl" else ()
        note = "count masked to 5 bits (6 for 64-bit); count 0 leaves the flags; OF defined for count 1 only"
        for s in S:
            _add(name, s, ("1", f"rm{s}"), f"{'D0' if s == 8 else 'D1'} /{n}", f"{what} by 1",
                 intel=intel, flags=fl, undefined=und, reads=rd, aliases=alias, note=note,
                 **g)
        for s in S:
            _add(name, s, ("cl", f"rm{s}"), f"{'D2' if s == 8 else 'D3'} /{n}", f"{what} by %cl",
                 intel=intel, flags=fl, undefined=und, reads=rd, aliases=alias, note=note, **g)
        for s in S:
            _add(name, s, ("imm8", f"rm{s}"), f"{'C0' if s == 8 else 'C1'} /{n} ib", f"{what} by imm8",
                 intel=intel, flags=fl, undefined=und, reads=rd, aliases=alias, note=note, **g)

    # ---------------- control transfer
    g = dict(group="control transfer")
    _add("jmp", 0, ("rel8",), "EB cb", "jump, short", intel="JMP", **g)
    _add("jmp", 0, ("rel32",), "E9 cd", "jump, near", intel="JMP", **g)
    _add("jmp", 64, ("*rm64",), "FF /4", "jump to the address in r/m64", intel="JMP", d64=True, **g)
    _add("ljmp", 32, ("m16:32",), "FF /5",
         "far jump through a 6-byte pointer in memory (offset32, selector)", intel="JMP far", **g)
    _add("call", 64, ("rel32",), "E8 cd", "call, near", intel="CALL", d64=True, **g)
    _add("call", 64, ("*rm64",), "FF /2", "call the address in r/m64", intel="CALL", d64=True, **g)
    _add("ret", 64, (), "C3", "return", intel="RET", d64=True, **g)
    _add("ret", 64, ("imm16",), "C2 iw", "return and pop imm16 more bytes", intel="RET", d64=True, **g)
    _add("lret", 64, (), "CB", "far return: pop a 64-bit offset, then the selector for %cs",
         intel="RET far", suffix_optional=False, **g)
    _add("lret", 32, (), "CB", "far return: pop a 32-bit offset, then the selector for %cs",
         intel="RET far", suffix_optional=False, **g)
    loops = (("loop", "E2", "LOOP", "decrement %rcx; jump short if it is not 0", "", ()),
             ("loope", "E1", "LOOPE", "decrement %rcx; jump short if it is not 0 and ZF = 1", "Z",
              ("loopz",)),
             ("loopne", "E0", "LOOPNE", "decrement %rcx; jump short if it is not 0 and ZF = 0", "Z",
              ("loopnz",)),
             ("jrcxz", "E3", "JRCXZ", "jump short if %rcx is 0", "", ()))
    for name, op, intel, what, rd, al in loops:
        _add(name, 0, ("rel8",), f"{op} cb", what, intel=intel, reads=rd, aliases=al, **g)
    for cc, names, reads in CONDITIONS:
        al = tuple("j" + n for n in names[1:])
        _add("j" + names[0], 0, ("rel8",), f"{0x70 + cc:02X} cb", f"jump short if {names[0]}",
             intel="Jcc", cc=cc, family="jcc", reads=reads, aliases=al, **g)
        _add("j" + names[0], 0, ("rel32",), f"0F {0x80 + cc:02X} cd", f"jump near if {names[0]}",
             intel="Jcc", cc=cc, family="jcc", reads=reads, aliases=al, **g)
    g = dict(group="conditional data")
    for cc, names, reads in CONDITIONS:
        al = tuple("set" + n for n in names[1:])
        _add("set" + names[0], 0, ("rm8",), f"0F {0x90 + cc:02X} /0", f"r/m8 = 1 if {names[0]} else 0",
             intel="SETcc", cc=cc, family="setcc", reads=reads, aliases=al, **g)
    for cc, names, reads in CONDITIONS:
        al = tuple("cmov" + n for n in names[1:])
        for s in SW:
            _add("cmov" + names[0], s, (f"rm{s}", f"r{s}"), f"0F {0x40 + cc:02X} /r",
                 f"reg = r/m if {names[0]} (32-bit: upper half cleared either way)",
                 intel="CMOVcc", cc=cc, family="cmovcc", reads=reads, aliases=al, **g)

    # ---------------- strings (implicit %rsi/%rdi/%rcx, direction from DF)
    g = dict(group="string")
    strings = (("movs", "A4", "A5", "MOVS", "", "", "rep", "copy (%rsi) to (%rdi)"),
               ("cmps", "A6", "A7", "CMPS", ARITH, "", "repe", "compare (%rsi) with (%rdi)"),
               ("stos", "AA", "AB", "STOS", "", "", "rep", "store the accumulator to (%rdi)"),
               ("lods", "AC", "AD", "LODS", "", "", "rep", "load the accumulator from (%rsi)"),
               ("scas", "AE", "AF", "SCAS", ARITH, "", "repe", "compare the accumulator with (%rdi)"))
    for name, o8, o, intel, fl, und, rep, what in strings:
        for s in S:
            _add(name, s, (), o8 if s == 8 else o, what, intel=intel, flags=fl, undefined=und, rep=rep,
                 reads="D", suffix_optional=False, **g)

    # ---------------- port I/O (SDM vol. 1 section 19.5: I/O permission)
    g = dict(group="port I/O", iopl=True)
    for s in (8, 16, 32):
        acc = _sized("acc", s)
        _add("in", s, ("imm8", acc), "E4 ib" if s == 8 else "E5 ib", "read a port given as imm8",
             intel="IN", **g)
        _add("in", s, ("dx", acc), "EC" if s == 8 else "ED", "read the port in %dx", intel="IN", **g)
        _add("out", s, (acc, "imm8"), "E6 ib" if s == 8 else "E7 ib", "write a port given as imm8",
             intel="OUT", **g)
        _add("out", s, (acc, "dx"), "EE" if s == 8 else "EF", "write the port in %dx", intel="OUT", **g)
    for s in (8, 16, 32):
        _add("ins", s, (), "6C" if s == 8 else "6D", "read port %dx into (%rdi)", intel="INS",
             rep="rep", reads="D", suffix_optional=False, **g)
        _add("outs", s, (), "6E" if s == 8 else "6F", "write (%rsi) to port %dx", intel="OUTS",
             rep="rep", reads="D", suffix_optional=False, **g)

    # ---------------- prefixes (as statements: "rep; movsb", "lock; incq (%rax)")
    g = dict(group="prefix")
    _add("lock", 0, (), "F0", "make the next read-modify-write to memory atomic", intel="LOCK", **g)
    _add("rep", 0, (), "F3", "repeat the next string instruction %rcx times", intel="REP", **g)
    _add("repe", 0, (), "F3", "repeat while equal and %rcx != 0", intel="REPE", aliases=("repz",), **g)
    _add("repne", 0, (), "F2", "repeat while not equal and %rcx != 0", intel="REPNE",
         aliases=("repnz",), **g)

    # ---------------- system
    g = dict(group="system")
    _add("nop", 0, (), "90", "do nothing", intel="NOP", **g)
    _add("pause", 0, (), "F3 90", "spin-loop hint", intel="PAUSE", **g)
    _add("hlt", 0, (), "F4", "halt until an interrupt", intel="HLT", privileged=True, **g)
    _add("cli", 0, (), "FA", "clear IF (needs CPL <= IOPL)", intel="CLI", iopl=True, flags="I", **g)
    _add("sti", 0, (), "FB", "set IF (needs CPL <= IOPL)", intel="STI", iopl=True, flags="I", **g)
    _add("cld", 0, (), "FC", "clear DF (strings go up)", intel="CLD", flags="D", **g)
    _add("std", 0, (), "FD", "set DF (strings go down)", intel="STD", flags="D", **g)
    _add("mov", 64, ("cr", "r64"), "0F 20 /r", "read a control register", intel="MOV CR",
         privileged=True, d64=True, **g)
    _add("mov", 64, ("r64", "cr"), "0F 22 /r",
         "write a control register (CR3 flushes non-global TLB entries)", intel="MOV CR",
         privileged=True, d64=True, **g)
    _add("invlpg", 0, ("m",), "0F 01 /7", "drop the TLB entry for the page of m", intel="INVLPG",
         privileged=True, **g)
    _add("lgdt", 64, ("m",), "0F 01 /2", "load GDTR from a 10-byte limit:base in m", intel="LGDT",
         privileged=True, d64=True, **g)
    _add("lidt", 64, ("m",), "0F 01 /3", "load IDTR from a 10-byte limit:base in m", intel="LIDT",
         privileged=True, d64=True, **g)
    _add("ltr", 16, ("rm16",), "0F 00 /3", "load the task register (TSS selector)", intel="LTR",
         privileged=True, no66=True, **g)
    _add("rdmsr", 0, (), "0F 32", "%edx:%eax = MSR[%ecx]", intel="RDMSR", privileged=True, **g)
    _add("wrmsr", 0, (), "0F 30", "MSR[%ecx] = %edx:%eax", intel="WRMSR", privileged=True, **g)
    _add("swapgs", 0, (), "0F 01 F8", "exchange GS base with the KERNEL_GS_BASE MSR", intel="SWAPGS",
         privileged=True, **g)
    _add("cpuid", 0, (), "0F A2", "processor identification for leaf %eax (subleaf %ecx)",
         intel="CPUID", **g)
    _add("rdtsc", 0, (), "0F 31", "%edx:%eax = time-stamp counter (#GP above CPL 0 if CR4.TSD)",
         intel="RDTSC", **g)
    _add("syscall", 0, (), "0F 05", "fast system call through LSTAR/STAR/FMASK", intel="SYSCALL",
         flags="all (from FMASK)", **g)
    _add("sysret", 64, (), "0F 07", "return from SYSCALL to 64-bit user code", intel="SYSRET",
         privileged=True, suffix_optional=False, flags="all (from %r11)", **g)
    gate = "all (saved on the stack; TF, NT, RF cleared, IF too through an interrupt gate)"
    _add("int3", 0, (), "CC", "breakpoint trap (vector 3)", intel="INT3", flags=gate, **g)
    _add("int", 0, ("imm8",), "CD ib", "software interrupt through IDT vector imm8", intel="INT",
         flags=gate, **g)
    _add("iret", 64, (), "CF", "return from an interrupt (pops RIP, CS, RFLAGS, RSP, SS)",
         intel="IRETQ", flags="all (popped)", suffix_optional=False, **g)
    _add("ud2", 0, (), "0F 0B", "raise #UD on purpose", intel="UD2", **g)
    _add("sysret", 32, (), "0F 07", "return from SYSCALL to 32-bit (compatibility mode) user code",
         intel="SYSRET", privileged=True, suffix_optional=False, flags="all (from %r11)", **g)
    _add("iret", 32, (), "CF", "return from an interrupt with 32-bit stack slots", intel="IRETD",
         flags="all (popped)", suffix_optional=False, **g)
    _add("sgdt", 64, ("m",), "0F 01 /0", "store GDTR as a 10-byte limit:base to m", intel="SGDT",
         d64=True, **g)
    _add("sidt", 64, ("m",), "0F 01 /1", "store IDTR as a 10-byte limit:base to m", intel="SIDT",
         d64=True, **g)
    _add("str", 16, ("m16",), "0F 00 /1", "store the task register's selector", intel="STR",
         no66=True, **g)
    for s in (16, 32, 64):
        _add("str", s, (f"r{s}",), "0F 00 /1", "store the task register's selector (zero-extended)",
             intel="STR", d64=s == 64, **g)
    for name, op, intel, what in (("clts", "0F 06", "CLTS", "clear CR0.TS"),
                                  ("invd", "0F 08", "INVD", "invalidate caches (nothing to do here)"),
                                  ("wbinvd", "0F 09", "WBINVD", "write back and invalidate caches "
                                                                "(nothing to do here)")):
        _add(name, 0, (), op, what, intel=intel, privileged=True, **g)
    for name, op in (("lfence", "0F AE E8"), ("mfence", "0F AE F0"), ("sfence", "0F AE F8")):
        _add(name, 0, (), op, "memory ordering fence (a no-op: one vCPU at a time)", intel=name.upper(),
             **g)
    for s in (16, 32):
        _add("nop", s, (f"rm{s}",), "0F 1F /0", "do nothing (multi-byte NOP; r/m is not accessed)",
             intel="NOP", **g)
    for name, op, intel, fl, rd, what in (
            ("clc", "F8", "CLC", "C", "", "clear CF"), ("stc", "F9", "STC", "C", "", "set CF"),
            ("cmc", "F5", "CMC", "C", "C", "complement CF"),
            ("lahf", "9F", "LAHF", "", "SZAPC", "%ah = SF:ZF:0:AF:0:PF:1:CF"),
            ("sahf", "9E", "SAHF", "SZAPC", "", "SF ZF AF PF CF = bits 7, 6, 4, 2, 0 of %ah")):
        _add(name, 0, (), op, what, intel=intel, flags=fl, reads=rd, **g)

    for i, f in enumerate(_FORMS):
        object.__setattr__(f, "index", i)


_build()

FORMS: tuple[Form, ...] = tuple(_FORMS)


# --------------------------------------------------------------------------
# query API


def _spelling_index() -> dict[str, tuple[Form, ...]]:
    idx: dict[str, list[Form]] = {}
    for f in FORMS:
        for sp in f.spellings:
            idx.setdefault(sp, []).append(f)
    return {k: tuple(v) for k, v in idx.items()}


SPELLINGS: dict[str, tuple[Form, ...]] = _spelling_index()


def forms(mnemonic: str | None = None) -> tuple[Form, ...]:
    """All forms, or those a mnemonic selects (``"add"``, ``"addq"``, ``"jz"`` ...)."""
    if mnemonic is None:
        return FORMS
    return SPELLINGS.get(mnemonic.lower(), ())


def mnemonics() -> list[str]:
    """Every AT&T mnemonic spelling the table accepts, sorted."""
    return sorted(SPELLINGS)


def opcode_map() -> dict[tuple[bytes, int | None], tuple[Form, ...]]:
    """Forms keyed by (opcode bytes, ModRM /digit or None), for a decoder.

    ``+r`` forms are listed under each of their 8 opcodes; forms differing only
    in operand size (0x66 / REX.W) share a key.
    """
    out: dict[tuple[bytes, int | None], list[Form]] = {}
    for f in FORMS:
        if f.group == "prefix":
            continue
        ops = [f.opcode]
        if f.plus_r:
            ops = [f.opcode[:-1] + bytes([f.opcode[-1] + r]) for r in range(8)]
        for op in ops:
            out.setdefault((op, f.ext), []).append(f)
    return {k: tuple(v) for k, v in out.items()}


def _row_key(f: Form):
    if f.family:
        return (f.family, f.operands, f.size)
    return (f.mnemonic, f.operands, f.size, f.opcode, f.ext)


def table_rows() -> list[dict]:
    """One row per documented form; condition-code families (Jcc, SETcc, CMOVcc) are folded."""
    rows, seen = [], set()
    for f in FORMS:
        key = _row_key(f)
        if key in seen:
            continue
        seen.add(key)
        att = f.att
        if f.family:
            stem = {"jcc": "j", "setcc": "set", "cmovcc": "cmov"}[f.family]
            att = att.replace(f.spellings[0], stem + "CC" + (SUFFIX[f.size] if f.size in SUFFIX
                                                             and f.family == "cmovcc" else ""), 1)
        if f.mnemonic == "mov" and f.operands == ("imm64", "r64"):
            continue                    # the movabs row says it; movq picks it for big values
        rows.append(dict(att=att, encoding=f.encoding, intel=f.intel, group=f.group,
                         cpl0="yes" if f.privileged else "", iopl="yes" if f.iopl else "",
                         flags=(f.flags + (f" ({f.undefined} undefined)" if f.undefined else "")).strip(),
                         desc=f.desc + (f"; {f.note}" if f.note else "")))
    return rows


TABLE_BEGIN = "<!-- isa-table begin: generated by xenlab.asm.isa.render_table(); do not edit -->"
TABLE_END = "<!-- isa-table end -->"


def render_table() -> str:
    """The supported-instruction table as markdown (docs/asm.md and docs/cpu.md include it)."""
    cc = ", ".join("/".join(n) for _, n, _ in CONDITIONS)
    lines = [TABLE_BEGIN, "",
             f"{len(FORMS)} encodings. `CC` is one of the condition codes {cc}. "
             "`CPL0`: #GP(0) above CPL 0. `IOPL`: needs CPL <= IOPL (IN/OUT/INS/OUTS then "
             "consult the TSS I/O bitmap). Flags: those the instruction writes.", ""]
    group = None
    for r in table_rows():
        if r["group"] != group:
            group = r["group"]
            lines += ["", f"**{group}**", "",
                      "| AT&T | encoding | Intel | CPL0 | IOPL | flags | what it does |",
                      "|---|---|---|---|---|---|---|"]
        lines.append(f"| `{r['att']}` | `{r['encoding']}` | {r['intel']} | {r['cpl0']} | {r['iopl']} "
                     f"| {r['flags']} | {r['desc']} |")
    lines += ["", TABLE_END]
    return "\n".join(lines)


def check_docs(text: str) -> bool:
    """True if ``text`` contains the current generated table (between the markers)."""
    try:
        start = text.index(TABLE_BEGIN)
        end = text.index(TABLE_END) + len(TABLE_END)
    except ValueError:
        return False
    return text[start:end] == render_table()


def update_docs(text: str) -> str:
    """Return ``text`` with the generated table replaced by the current one."""
    start = text.index(TABLE_BEGIN)
    end = text.index(TABLE_END) + len(TABLE_END)
    return text[:start] + render_table() + text[end:]

