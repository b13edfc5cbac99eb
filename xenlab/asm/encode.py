"""Choosing a form from the table for parsed operands, and laying out its bytes.

The choice follows GNU as: forms are tried in table order and the first that
fits wins; a short immediate or displacement form is only taken when the value
is a constant known where the instruction stands (a number, or a ``.set``
symbol defined above it), otherwise the 32-bit form is used and filled in later.
Encoding rules are the SDM's (vol. 2, chapter 2: prefixes, REX, ModRM, SIB).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from . import expr as ex
from .errors import AsmError
from .isa import FORMS, KIND_SIZE, SEGMENT_PREFIX, SIZE_OF_SUFFIX, SPELLINGS, Form, Register
from .operands import Imm, Mem, Operand, Reg

# gas puts prefixes in this order (segment, operand size, rep/repne, lock), then REX.
PREFIX_LOCK, PREFIX_REP, PREFIX_REPNE = 0xF0, 0xF3, 0xF2

Known = Callable[[ex.Node], "int | None"]


@dataclass
class Field:
    """A value filled in once every symbol has its address.

    ``mode``: "u8"/"s8" style range names, see `check_range`; ``pcrel``: the value
    is relative to the end of the instruction (branches and %rip addresses).
    """

    offset: int
    size: int
    node: ex.Node
    mode: str
    pcrel: bool = False
    what: str = "immediate"
    opsize: int = 0          # an immediate is first read as a value of this many bits (gas)


@dataclass
class Encoding:
    form: Form
    head: bytes
    fields: list[Field] = field(default_factory=list)

    @property
    def length(self) -> int:
        return len(self.head) + sum(f.size for f in self.fields)


RANGES = {
    # mode: (low, high)
    "i8": (-0x80, 0xFF), "i16": (-0x8000, 0xFFFF), "i32": (-0x80000000, 0xFFFFFFFF),
    "i64": (-(1 << 63), (1 << 64) - 1),
    "s8": (-0x80, 0x7F), "s32": (-0x80000000, 0x7FFFFFFF),
    "u8": (0, 0xFF), "u16": (0, 0xFFFF),
}


def check_range(value: int, mode: str, what: str) -> int:
    """Check that ``value`` fits its field; returns it reduced to the field's bits."""
    lo, hi = RANGES[mode]
    if not lo <= value <= hi:
        raise AsmError(f"{what} {value:#x} does not fit in {_describe(mode)}")
    return value


def _describe(mode: str) -> str:
    return {"i8": "8 bits", "i16": "16 bits", "i32": "32 bits", "i64": "64 bits",
            "s8": "a signed byte", "s32": "a signed 32-bit field (sign-extended to 64 bits)",
            "u8": "an unsigned byte (0..255)", "u16": "16 unsigned bits"}[mode]


def normalize(value: int, size: int) -> int:
    """gas's view of an immediate for an operand of ``size`` bits: wrap into that width, signed."""
    if size >= 64:
        return ex.wrap64(value)
    lo, hi = -(1 << (size - 1)), (1 << size) - 1
    if not lo <= value <= hi:
        return value                 # out of range: leave it for the range check
    value &= (1 << size) - 1
    return value - (1 << size) if value >> (size - 1) else value


# --------------------------------------------------------------------------
# matching


def operand_fits(kind: str, op: Operand, size: int, known: Known) -> bool:
    """Does operand ``op`` fit operand kind ``kind`` of a form with operand size ``size``?"""
    if isinstance(op, Reg):
        if op.star != (kind == "*rm64"):
            return False
        r = op.reg
        if op.paren:
            return kind == "dx"
        if kind in ("al", "ax", "eax", "rax", "cl", "dx"):
            return r.kind == "gpr" and r.name == kind
        if kind == "cr":
            return r.kind == "cr"
        if kind == "sreg":
            return r.kind == "sreg"
        if kind[0] == "r" and kind[1:].isdigit() or kind.startswith(("rm", "*rm")):
            return r.kind == "gpr" and r.size == KIND_SIZE[kind]
        return False
    if isinstance(op, Mem):
        if op.star != (kind in ("*rm64", "m16:32")):
            return False
        if kind.startswith("rel"):
            return op.bare and op.seg is None and op.disp is not None
        if kind.startswith("moffs"):
            return op.bare and op.disp is not None
        return kind.startswith(("rm", "*rm")) or kind in ("m", "m16", "m16:32")
    if isinstance(op, Imm):
        if kind not in ("imm8", "simm8", "imm16", "imm32", "simm32", "imm64", "1"):
            return False
        v = known(op.expr)
        if kind == "1":
            return v == 1
        if kind == "simm8":
            return v is not None and -0x80 <= normalize(v, size) <= 0x7F
        if v is None:
            return True
        if kind == "simm32":
            return -0x80000000 <= ex.wrap64(v) <= 0x7FFFFFFF
        return True
    return False


def _special_ok(form: Form, ops: list[Operand]) -> bool:
    # XCHG %eax,%eax must not be 0x90: in 64-bit mode that is NOP and would not
    # clear the upper half of %rax (SDM "XCHG", "NOP"); gas picks 87 C0.
    if form.mnemonic == "xchg" and form.plus_r and form.size == 32:
        return not all(isinstance(o, Reg) and o.reg.name == "eax" for o in ops)
    return True


def choose(mnemonic: str, ops: list[Operand], known: Known) -> Form:
    """The form GNU as would pick for ``mnemonic ops``; AsmError says why none fits."""
    candidates = SPELLINGS.get(mnemonic)
    if not candidates:
        raise AsmError(f"unknown instruction {mnemonic!r}" + _suggest(mnemonic))
    explicit = explicit_size(mnemonic, candidates)
    by_size: dict[int, Form] = {}
    for form in candidates:
        if explicit is not None and form.size != explicit:
            continue
        if form.size in by_size or len(form.operands) != len(ops):
            continue
        if all(operand_fits(k, o, form.size, known) for k, o in zip(form.operands, ops)) \
                and _special_ok(form, ops):
            by_size[form.size] = form
    if not by_size:
        raise AsmError(_range_message(mnemonic, candidates, ops, known, explicit)
                       or _no_form_message(mnemonic, candidates, ops))
    if len(by_size) > 1:
        sizes = "/".join(f"{mnemonic}{s}" for s in ("b", "w", "l", "q")
                         if SIZE_OF_SUFFIX[s] in by_size)
        raise AsmError(f"the operand size of {mnemonic!r} is ambiguous here (no register says it); "
                       f"write a size suffix: {sizes}")
    # the first matching form in table order
    return min(by_size.values(), key=lambda f: f.index)


def explicit_size(mnemonic: str, candidates: tuple[Form, ...]) -> int | None:
    """The operand size the spelling fixes (``addq`` -> 64), or None if it fixes none."""
    sizes = set()
    for f in candidates:
        names = (f.mnemonic,) + f.aliases
        sizes.add(None if mnemonic in names else f.size)
    if len(sizes) == 1:
        return sizes.pop()
    return None


def _suggest(mnemonic: str) -> str:
    import difflib
    close = difflib.get_close_matches(mnemonic, list(SPELLINGS), n=3)
    return f" (did you mean {', '.join(close)}?)" if close else " (not in xenlab's instruction subset)"


def _describe_op(op: Operand) -> str:
    star = "*" if getattr(op, "star", False) else ""
    if isinstance(op, Reg):
        return f"{star}%{op.reg.name}"
    if isinstance(op, Imm):
        return f"${op.text}"
    return star + (op.text or "memory")


def _range_message(mnemonic, candidates, ops, known, explicit) -> str | None:
    """If only an immediate's value keeps every form out, say which value and why."""
    imms = [o for o in ops if isinstance(o, Imm) and known(o.expr) is not None]
    if not imms:
        return None
    unknown: Known = lambda node: None if any(node is o.expr for o in imms) else known(node)
    for form in candidates:
        if explicit is not None and form.size != explicit or len(form.operands) != len(ops):
            continue
        if all(operand_fits(k, o, form.size, unknown) for k, o in zip(form.operands, ops)):
            kind = next(k for k, o in zip(form.operands, ops) if isinstance(o, Imm))
            v = known(next(o for o in ops if isinstance(o, Imm)).expr)
            if kind == "simm32":
                return (f"immediate {v:#x} does not fit in a signed 32-bit field (sign-extended to "
                        f"64 bits); only movabsq takes a full 64-bit immediate (into a register)")
            return None
    return None


def _no_form_message(mnemonic: str, candidates: tuple[Form, ...], ops: list[Operand]) -> str:
    got = ", ".join(_describe_op(o) for o in ops) or "no operands"
    shapes = list(dict.fromkeys(f.att for f in candidates))
    shown = "; ".join(shapes[:8]) + (" ..." if len(shapes) > 8 else "")
    return f"{mnemonic!r} does not take ({got}); it takes: {shown}"


# --------------------------------------------------------------------------
# encoding


def encode(form: Form, ops: list[Operand], known: Known, lock: bool = False,
           rep: int | None = None) -> Encoding:
    """Lay out ``form`` with operands ``ops``: prefixes, REX, opcode, ModRM, SIB, fields."""
    roles = form.roles
    reg_field = form.ext if form.ext is not None else 0
    rm_op: Operand | None = None
    opreg: Register | None = None
    rex_r = rex_x = rex_b = 0
    byte_regs: list[Register] = []
    imm_fields: list[Field] = []
    tail: list[Field] = []

    for kind, role, op in zip(form.operands, roles, ops):
        if isinstance(op, Reg) and op.reg.kind == "gpr" and op.reg.size == 8:
            byte_regs.append(op.reg)
        if role == "reg":
            reg_field = op.reg.num & 7
            rex_r = op.reg.num >> 3
        elif role == "rm":
            rm_op = op
        elif role == "opreg":
            opreg = op.reg
        elif role == "imm":
            imm_fields.append(_imm_field(form, kind, op, second=bool(imm_fields)))
        elif role == "rel":
            tail.append(Field(0, form.rel, op.disp, "s8" if form.rel == 1 else "s32", pcrel=True,
                              what="branch displacement"))
        elif role == "moffs":
            tail.append(Field(0, 8, op.disp, "i64", what="address"))

    seg = None
    modrm_sib = b""
    if form.modrm:
        if isinstance(rm_op, Reg):
            rex_b = rm_op.reg.num >> 3
            modrm_sib = bytes([0xC0 | reg_field << 3 | (rm_op.reg.num & 7)])
        else:
            modrm_sib, disp, rex_x, rex_b = _address(rm_op, reg_field, known)
            if disp is not None:
                tail.insert(0, disp)
            seg = rm_op.seg
    elif any(r == "moffs" for r in roles):
        seg = next(o for o, r in zip(ops, roles) if r == "moffs").seg
    if opreg is not None:
        rex_b = opreg.num >> 3
    tail += imm_fields

    rex = 0x40 | (8 if form.rex_w else 0) | rex_r << 2 | rex_x << 1 | rex_b
    needs_rex = rex != 0x40 or any(r.needs_rex for r in byte_regs)
    if needs_rex and any(r.high_byte for r in byte_regs):
        high = next(r for r in byte_regs if r.high_byte)
        raise AsmError(f"%{high.name} cannot be used in an instruction that needs a REX prefix "
                       "(64-bit operand, %r8-%r15, %sil/%dil/%spl/%bpl)")

    head = bytearray()
    if seg is not None:
        head.append(SEGMENT_PREFIX[seg.name])
    if form.opsize_prefix:
        head.append(0x66)
    if rep is not None:
        head.append(rep)
    if lock:
        head.append(PREFIX_LOCK)
    op_bytes = bytearray(form.opcode)
    if opreg is not None:
        op_bytes[-1] += opreg.num & 7
    # a mandatory prefix (PAUSE's F3) stays in front of REX
    if needs_rex:
        mand = 0
        while mand < len(op_bytes) - 1 and op_bytes[mand] in (0xF3, 0xF2) :
            mand += 1
        head += op_bytes[:mand]
        head.append(rex)
        head += op_bytes[mand:]
    else:
        head += op_bytes
    head += modrm_sib
    enc = Encoding(form, bytes(head), tail)
    off = len(head)
    for f in tail:
        f.offset = off
        off += f.size
    return enc


def _imm_field(form: Form, kind: str, op: Imm, second: bool = False) -> Field:
    size = form.imm2 if second else form.imm
    if kind == "simm8":
        mode = "s8"
    elif kind == "simm32":
        mode = "s32"
    elif kind == "imm8":
        mode = "i8"
    elif kind == "imm16":
        mode = "i16"
    elif kind == "imm32":
        mode = "i32"
    else:
        mode = "i64"
    return Field(0, size, op.expr, mode, what="immediate", opsize=form.size if form.size in (8, 16, 32, 64)
                 else 0)


def _address(m: Mem, reg_field: int, known: Known):
    """ModRM (+SIB) bytes and the displacement field for memory operand ``m``."""
    for r in (m.base, m.index):
        if r is not None and r.kind == "gpr" and r.size != 64:
            raise AsmError(f"%{r.name} cannot address memory in 64-bit code (use a 64-bit register)")
    disp_node = m.disp if m.disp is not None else ("num", 0)
    value = known(disp_node) if m.disp is not None else 0
    if m.rip:
        # a constant is the displacement itself; anything else (a label) is the address to reach
        return (bytes([reg_field << 3 | 5]),
                Field(0, 4, disp_node, "s32", pcrel=value is None, what="displacement"), 0, 0)
    if m.base is None and m.index is None:
        # absolute address: SIB with no base and no index (64-bit mode has no plain disp32 ModRM)
        return bytes([reg_field << 3 | 4, 0x25]), Field(0, 4, disp_node, "s32", what="address"), 0, 0
    scale_bits = {1: 0, 2: 1, 4: 2, 8: 3}[m.scale]
    rex_x = m.index.num >> 3 if m.index is not None else 0
    rex_b = m.base.num >> 3 if m.base is not None else 0
    if m.base is None:
        sib = scale_bits << 6 | (m.index.num & 7) << 3 | 5
        return (bytes([reg_field << 3 | 4, sib]), Field(0, 4, disp_node, "s32", what="displacement"),
                rex_x, 0)
    base_low = m.base.num & 7
    if value == 0 and base_low != 5:
        mod, disp = 0, None
    elif value is not None and -0x80 <= value <= 0x7F:
        mod, disp = 1, Field(0, 1, disp_node, "s8", what="displacement")
    else:
        mod, disp = 2, Field(0, 4, disp_node, "s32", what="displacement")
    if m.index is None and base_low != 4:
        return bytes([mod << 6 | reg_field << 3 | base_low]), disp, 0, rex_b
    index_low = (m.index.num & 7) if m.index is not None else 4
    sib = scale_bits << 6 | index_low << 3 | base_low
    return bytes([mod << 6 | reg_field << 3 | 4, sib]), disp, rex_x, rex_b


def prefix_forms() -> dict[str, int]:
    """Prefix mnemonics ("rep", "lock", ...) and their bytes."""
    out = {}
    for f in FORMS:
        if f.group == "prefix":
            for sp in f.spellings:
                out[sp] = f.opcode[0]
    return out
