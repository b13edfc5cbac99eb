"""The two-pass AT&T assembler: statements -> items -> layout (with jump relaxation) -> bytes.

Pass 1 reads every statement in order, defines labels and ``.set`` symbols and
picks each instruction's form (short forms only for constants known at that
point, as GNU as does).  Branches to a label in the same section start short
(``EB``/``7x``) and grow to the 32-bit form while any displacement does not fit,
until the layout stops changing.  Pass 2 gives every label its address
(``.text`` at ``base``, ``.data`` after it) and fills in every field.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from . import encode as enc
from . import expr as ex
from .errors import AsmError
from .isa import SPELLINGS, Form
from .operands import Imm, Mem, Operand, Reg, parse_operand
from .source import Comment, Statement, split_top, statements

SECTIONS = (".text", ".data")
DATA_WIDTH = {".byte": 1, ".word": 2, ".short": 2, ".value": 2, ".long": 4, ".int": 4, ".quad": 8}
DATA_MODE = {1: "i8", 2: "i16", 4: "i32", 8: "i64"}
DIRECTIVES = (".text", ".data", ".section", ".byte", ".word", ".short", ".long", ".int", ".quad",
              ".ascii", ".asciz", ".string", ".align", ".balign", ".p2align", ".space", ".skip",
              ".zero", ".globl", ".global", ".set", ".equ", ".code64", ".type", ".size", ".file")
PREFIXES = enc.prefix_forms()


# --------------------------------------------------------------------------
# items: what a statement puts into a section


@dataclass
class Item:
    stmt: Statement
    size: int = 0
    section: str = field(default=".text", init=False, repr=False)

    def emit(self, asm: "Assembler", addr: int) -> bytes:
        raise NotImplementedError


@dataclass
class Raw(Item):
    data: bytes = b""

    def emit(self, asm, addr):
        return self.data


@dataclass
class Space(Item):
    fill: int = 0

    def emit(self, asm, addr):
        return bytes([self.fill]) * self.size


@dataclass
class Data(Item):
    width: int = 1
    nodes: list = field(default_factory=list)

    def emit(self, asm, addr):
        out = bytearray()
        for i, node in enumerate(self.nodes):
            f = enc.Field(i * self.width, self.width, node, DATA_MODE[self.width], what="value")
            out += asm.fill_field(self, f, addr, addr + self.size)
        return bytes(out)


@dataclass
class Insn(Item):
    encoding: enc.Encoding | None = None

    def emit(self, asm, addr):
        e = self.encoding
        out = bytearray(e.head)
        for f in e.fields:
            out += asm.fill_field(self, f, addr, addr + e.length)
        return bytes(out)


@dataclass
class Branch(Item):
    """A jump whose 8-bit form may grow to the 32-bit one (GNU as "relaxation")."""

    short: enc.Encoding | None = None
    long: enc.Encoding | None = None
    target: ex.Node = ("num", 0)
    relax: bool = True
    is_short: bool = True

    @property
    def encoding(self) -> enc.Encoding:
        return self.short if self.is_short and self.short is not None else self.long

    def emit(self, asm, addr):
        return Insn.emit(self, asm, addr)


@dataclass
class Align(Item):
    boundary: int = 1
    fill: int = 0
    limit: int | None = None

    def pad(self, addr: int) -> int:
        n = -addr % self.boundary
        return 0 if self.limit is not None and n > self.limit else n

    def emit(self, asm, addr):
        return bytes([self.fill]) * self.size


# --------------------------------------------------------------------------
# the result


@dataclass
class Relocation:
    """A field that held a symbol's address, resolved for the program's base."""

    section: str
    offset: int            # within the section
    address: int
    size: int
    pcrel: bool
    expr: str
    value: int
    line: int


@dataclass
class ListingLine:
    """One source line: where its bytes went, the bytes, the text, and the table forms used."""

    line: int
    address: int | None
    data: bytes
    source: str
    forms: list = field(default_factory=list)


class Program:
    """The assembled program: section bytes and addresses, symbols, relocations, listing."""

    def __init__(self, base, sections, addresses, symbols, globals_, relocations, lines, slashed,
                 divide):
        self.base = base
        self.sections: dict[str, bytes] = sections
        self.addresses: dict[str, int] = addresses
        self.symbols: dict[str, int] = symbols
        self.globals: set[str] = globals_
        self.relocations: list[Relocation] = relocations
        self.lines: list[ListingLine] = lines
        self.slash_comments: list[Comment] = slashed
        self.divide = divide

    @property
    def text(self) -> bytes:
        return self.sections[".text"]

    @property
    def data(self) -> bytes:
        return self.sections[".data"]

    @property
    def entry(self) -> int:
        """``_start`` if the program defines it, else the start of ``.text``."""
        return self.symbols.get("_start", self.addresses[".text"])

    @property
    def end(self) -> int:
        return max([self.addresses[".text"] + len(self.text)]
                   + [self.addresses[s] + len(self.sections[s]) for s in SECTIONS if self.sections[s]])

    def image(self) -> bytes:
        """The flat image from ``base``: .text, zero padding, .data (what ``xenlab as -o`` writes)."""
        out = bytearray(self.end - self.base)
        for s in SECTIONS:
            off = self.addresses[s] - self.base
            out[off:off + len(self.sections[s])] = self.sections[s]
        return bytes(out)

    def line_at(self, address: int) -> int | None:
        """The source line whose bytes cover ``address`` (for debuggers)."""
        for ln in self.lines:
            if ln.address is not None and ln.address <= address < ln.address + len(ln.data):
                return ln.line
        return None

    def listing(self, width: int = 8) -> str:
        """Address, bytes and source, one row per source line (long data continues below)."""
        digits = max(8, len(f"{self.end:x}"))
        rows = []
        for ln in self.lines:
            chunks = [ln.data[i:i + width] for i in range(0, len(ln.data), width)] or [b""]
            for k, chunk in enumerate(chunks):
                addr = "" if ln.address is None else f"{ln.address + k * width:0{digits}x}"
                hexes = " ".join(f"{b:02x}" for b in chunk)
                src = ln.source if k == 0 else ""
                rows.append(f"{ln.line if k == 0 else '':>5}  {addr:<{digits}}  "
                            f"{hexes:<{3 * width - 1}}  {src}".rstrip())
        return "\n".join(rows) + "\n"

    def __repr__(self) -> str:
        return (f"<Program .text {len(self.text)} bytes at {self.addresses['.text']:#x}, "
                f".data {len(self.data)} bytes at {self.addresses['.data']:#x}, "
                f"{len(self.symbols)} symbols>")


# --------------------------------------------------------------------------


class Assembler:
    """One assembly run (use `assemble`)."""

    def __init__(self, source: str, base: int, divide: bool):
        if not 0 <= base < 1 << 64:
            raise AsmError(f"base address {base:#x} is not a 64-bit address")
        self.source, self.base, self.divide = source, base, divide
        self.items: dict[str, list[Item]] = {s: [] for s in SECTIONS}
        self.section = ".text"
        self.labels: dict[str, tuple[str, int]] = {}       # key -> (section, item index)
        self.label_stmt: dict[str, Statement] = {}
        self.sets: dict[str, tuple[ex.Node, Statement]] = {}   # key -> (expression, where)
        self.known_sets: dict[str, int] = {}               # keys whose value was constant
        self.current: dict[str, str] = {}                  # name -> key of its current definition
        self.forward: dict[str, list[Statement]] = {}      # names used before any definition
        self.local_count: dict[str, int] = {}
        self.local_forward: list[tuple[str, Statement]] = []
        self.globals: set[str] = set()
        self.hidden = 0
        self.addr_of_section: dict[str, int] = {}
        self.offsets: dict[str, list[int]] = {}
        self.values: dict[str, int] = {}
        self.relocations: list[Relocation] = []

    # ---- pass 1 ------------------------------------------------------------

    def pass1(self) -> list[Comment]:
        stmts, slashed = statements(self.source, self.divide)
        for st in stmts:
            try:
                for label in st.labels:
                    self.define_label(label, st)
                if st.op:
                    self.statement(st)
            except AsmError as e:
                raise e.at(st.line, st.text) from None
        return slashed

    def here(self, st: Statement) -> str:
        """A hidden label at the current position (what '.' means in this statement)."""
        self.hidden += 1
        key = f"\x00.{self.hidden}"
        self.labels[key] = (self.section, len(self.items[self.section]))
        return key

    def define_label(self, name: str, st: Statement) -> None:
        if name.isdigit():
            n = self.local_count.get(name, 0) + 1
            self.local_count[name] = n
            key = f".L{name}\x02{n}"
        else:
            key = name
            if name in self.labels or name in self.current:
                raise AsmError(f"symbol {name!r} is already defined")
            self.current[name] = key
        self.labels[key] = (self.section, len(self.items[self.section]))
        self.label_stmt[key] = st

    def bind(self, node: ex.Node, st: Statement, dot_key: list) -> ex.Node:
        """Tie names in ``node`` to definitions: locals, '.', and the current .set version."""
        kind = node[0]
        if kind == "num":
            return node
        if kind == "dot":
            if not dot_key:
                dot_key.append(self.here(st))
            return ("sym", dot_key[0])
        if kind == "local":
            n, direction = node[1], node[2]
            count = self.local_count.get(n, 0)
            if direction == "b":
                if count == 0:
                    raise AsmError(f"'{n}b' refers to a label '{n}:' above, but there is none")
                return ("sym", f".L{n}\x02{count}")
            self.local_forward.append((f".L{n}\x02{count + 1}", st))
            return ("sym", f".L{n}\x02{count + 1}")
        if kind == "sym":
            name = node[1]
            if name in self.current:
                return ("sym", self.current[name])
            self.forward.setdefault(name, []).append(st)
            return ("fwd", name)
        return (kind,) + tuple(self.bind(c, st, dot_key) if isinstance(c, tuple) else c
                               for c in node[1:])

    def known(self, node: ex.Node) -> int | None:
        """The value of ``node`` if it is a constant at this point of pass 1, else None."""
        def lookup(key):
            if key in self.known_sets:
                return self.known_sets[key]
            raise ex.Undefined(key)
        if node[0] == "fwd" or _has(node, "fwd"):
            return None
        try:
            return ex.evaluate(node, lookup)
        except ex.Undefined:
            return None

    def expression(self, text: str, st: Statement, dot_key: list) -> ex.Node:
        return self.bind(ex.parse(text), st, dot_key)

    def statement(self, st: Statement) -> None:
        if st.op.startswith("."):
            self.directive(st)
        else:
            self.instruction(st)

    # ---- directives ----------------------------------------------------------

    def add(self, item: Item) -> None:
        item.section = self.section
        self.items[self.section].append(item)

    def directive(self, st: Statement) -> None:
        op, args = st.op, st.args
        dot: list = []
        if op in (".text", ".data"):
            self.section = op
        elif op == ".section":
            name = split_top(args, ",")[0].strip()
            if name not in SECTIONS:
                raise AsmError(f"section {name!r} is not supported (only .text and .data)")
            self.section = name
        elif op in DATA_WIDTH:
            w = DATA_WIDTH[op]
            for a in self.args_list(args, op):     # one item each: '.' is each value's own address
                self.add(Data(st, w, w, [self.expression(a, st, [])]))
        elif op in (".ascii", ".asciz", ".string"):
            data = b"".join(_string(a.strip()) + (b"\0" if op != ".ascii" else b"")
                            for a in self.args_list(args, op))
            self.add(Raw(st, len(data), data))
        elif op in (".align", ".balign", ".p2align"):
            self.align(st, op, args)
        elif op in (".space", ".skip", ".zero"):
            parts = self.args_list(args, op)
            n = self.constant(parts[0], st, f"the size in {op}")
            if n < 0:
                raise AsmError(f"{op} size {n} is negative")
            fill = self.constant(parts[1], st, f"the fill byte of {op}") & 0xFF if len(parts) > 1 else 0
            self.add(Space(st, n, fill))
        elif op in (".globl", ".global"):
            for name in self.args_list(args, op):
                self.globals.add(name.strip())
        elif op in (".set", ".equ"):
            self.assign(st, args)
        elif op in (".code64", ".type", ".size", ".file"):
            if op == ".code64" and args:
                raise AsmError(".code64 takes no arguments")
        else:
            raise AsmError(f"unknown directive {op!r}; xenlab knows {', '.join(DIRECTIVES)}")

    def args_list(self, args: str, op: str) -> list[str]:
        parts = [a for a in split_top(args, ",")]
        if not args.strip() or any(not a.strip() for a in parts):
            raise AsmError(f"{op} needs a comma-separated list of values")
        return parts

    def constant(self, text: str, st: Statement, what: str) -> int:
        v = self.known(self.expression(text, st, []))
        if v is None:
            raise AsmError(f"{what} must be a constant known here: {text.strip()!r}")
        return v

    def align(self, st: Statement, op: str, args: str) -> None:
        parts = self.args_list(args, op)
        n = self.constant(parts[0], st, f"the alignment of {op}")
        if op == ".p2align":
            if not 0 <= n < 32:
                raise AsmError(f".p2align {n}: the power must be 0..31")
            n = 1 << n
        if n <= 0 or n & (n - 1):
            raise AsmError(f"{op} {n}: the alignment must be a power of 2")
        default_fill = 0x90 if self.section == ".text" else 0
        fill = default_fill
        if len(parts) > 1 and parts[1].strip():
            fill = self.constant(parts[1], st, f"the fill byte of {op}") & 0xFF
        limit = self.constant(parts[2], st, f"the limit of {op}") if len(parts) > 2 else None
        self.add(Align(st, 0, n, fill, limit))

    def assign(self, st: Statement, args: str) -> None:
        parts = split_top(args, ",")
        if len(parts) < 2 or not parts[0].strip():
            raise AsmError(f"{st.op} needs a name and a value: {st.op} NAME, EXPR")
        name = parts[0].strip()
        if not _is_name(name):
            raise AsmError(f"{name!r} is not a symbol name")
        if name in self.labels:
            raise AsmError(f"{name!r} is a label; it cannot also be set with {st.op}")
        node = self.expression(",".join(parts[1:]), st, [])
        prev = self.current.get(name)
        version = 0 if prev is None else (int(prev.split("\x01")[1]) if "\x01" in prev else 0) + 1
        key = name if version == 0 else f"{name}\x01{version}"
        self.current[name] = key
        self.sets[key] = (node, st)
        v = self.known(node)
        if v is not None:
            self.known_sets[key] = v

    # ---- instructions ------------------------------------------------------------

    def instruction(self, st: Statement) -> None:
        op, args = st.op, st.args
        prefix_byte = None
        if op in PREFIXES:
            if not args:
                self.add(Raw(st, 1, bytes([PREFIXES[op]])))
                return
            prefix_name, prefix_byte = op, PREFIXES[op]
            head, *rest = args.split(None, 1)
            op, args = head.lower(), (rest[0].strip() if rest else "")
            if op in PREFIXES:
                raise AsmError(f"two prefixes ({prefix_name} {op}) on one instruction are not supported")
        dot: list = []
        if args.count("(") != args.count(")"):
            raise AsmError(f"unbalanced parentheses in {args!r}")
        texts = [a for a in split_top(args, ",")] if args else []
        if any(not t.strip() for t in texts):
            raise AsmError(f"empty operand in {args!r}")
        ops = [parse_operand(t) for t in texts]
        ops = [self.bind_operand(o, st, dot) for o in ops]
        op, ops = self.rewrite(op, ops)
        candidates = SPELLINGS.get(op, ())
        if any(f.rel for f in candidates) and len(ops) == 1 and isinstance(ops[0], Mem) \
                and not ops[0].star:
            self.branch(st, op, ops[0], candidates, prefix_byte)
            return
        form = enc.choose(op, ops, self.known)
        lock, rep = self.check_prefix(prefix_byte, form, ops, op)
        e = enc.encode(form, ops, self.known, lock=lock, rep=rep)
        self.add(Insn(st, e.length, e))

    def bind_operand(self, o: Operand, st: Statement, dot: list) -> Operand:
        if isinstance(o, Imm):
            o.expr = self.bind(o.expr, st, dot)
        elif isinstance(o, Mem) and o.disp is not None:
            o.disp = self.bind(o.disp, st, dot)
        return o

    def rewrite(self, op: str, ops: list[Operand]) -> tuple[str, list[Operand]]:
        """GNU as shorthands: one-operand shifts, 2-operand imul $imm, in/out without
        the accumulator, ``int $3`` (gas emits INT3) and ``xchg %rax,%rax`` (gas emits NOP)."""
        forms = SPELLINGS.get(op, ())
        if not forms:
            return op, ops
        group = forms[0].group
        base = forms[0].mnemonic
        one = Imm(("num", 1), "1")
        if group == "shift and rotate" and len(ops) == 1:
            return op, [one] + ops
        if base == "imul" and len(ops) == 2 and isinstance(ops[0], Imm) and isinstance(ops[1], Reg):
            return op, [ops[0], ops[1], ops[1]]
        if base in ("in", "out") and len(ops) == 1:
            size = enc.explicit_size(op, forms)
            if size is None:
                raise AsmError(f"{op} without the accumulator needs a size suffix "
                               f"({base}b, {base}w or {base}l)")
            acc = Reg(_acc(size))
            return op, ([ops[0], acc] if base == "in" else [acc, ops[0]])
        if ops and not forms[0].suffix_optional and forms[0].group in ("string", "port I/O") \
                and not forms[0].operands:
            return op, self.implicit_string_operands(op, ops)
        if base == "int" and len(ops) == 1 and isinstance(ops[0], Imm) and self.known(ops[0].expr) == 3:
            return "int3", []
        if base == "xchg" and len(ops) == 2 and all(isinstance(o, Reg) and o.reg.name == "rax"
                                                    for o in ops):
            return "nop", []
        return op, ops

    def implicit_string_operands(self, op: str, ops: list[Operand]) -> list[Operand]:
        """``movsb (%rsi), (%rdi)`` and friends: the operands may be written, but only as the
        implicit ones (what the disassembler prints); they add nothing to the encoding."""
        for o in ops:
            ok = (isinstance(o, Reg) and (o.reg.name in ("al", "ax", "eax", "rax", "dx")))
            if isinstance(o, Mem):
                ok = (o.disp is None and o.index is None and o.base is not None
                      and o.base.name in ("rsi", "rdi") and not o.star
                      and (o.seg is None or o.seg.name == ("es" if o.base.name == "rdi" else "ds")))
            if not ok:
                raise AsmError(f"{op} takes only its implicit operands ((%rsi), (%rdi), the "
                               f"accumulator, %dx); not {getattr(o, 'text', '') or _reg_text(o)}")
        return []

    def check_prefix(self, prefix: int | None, form: Form, ops: list[Operand], op: str):
        if prefix is None:
            return False, None
        if prefix == enc.PREFIX_LOCK:
            mem_dest = any(r == "rm" and isinstance(o, Mem) for r, o in zip(form.roles, ops))
            if not (form.lock and mem_dest):
                raise AsmError(f"lock needs a read-modify-write instruction with a memory destination "
                               f"(add, adc, and, or, sub, sbb, xor, inc, dec, neg, not, xchg, cmpxchg); "
                               f"not {op}")
            return True, None
        if not form.rep:
            raise AsmError(f"rep/repe/repne only go before a string instruction "
                           f"(movs, stos, lods, cmps, scas, ins, outs); not {op}")
        return False, prefix

    def branch(self, st: Statement, op: str, target: Mem, candidates, prefix) -> None:
        if prefix is not None:
            raise AsmError(f"a prefix cannot go before {op}")
        if target.seg is not None:
            raise AsmError(f"a branch target takes no segment: {target.text!r}")
        short_f = next((f for f in candidates if f.rel == 1), None)
        long_f = next((f for f in candidates if f.rel == 4), None)
        if long_f is None:          # LOOP, JRCXZ: 8-bit displacement only, never relaxed
            e = enc.encode(short_f, [target], self.known)
            self.add(Insn(st, e.length, e))
            return
        short = enc.encode(short_f, [target], self.known) if short_f is not None else None
        long = enc.encode(long_f, [target], self.known)
        item = Branch(st, 0, short, long, target.disp, relax=short is not None,
                      is_short=short is not None)
        item.size = item.encoding.length
        self.add(item)

    # ---- between the passes --------------------------------------------------------

    def resolve_forward(self) -> None:
        """Forward references become the symbol's last definition; report names never defined."""
        for key, st in self.local_forward:
            if key not in self.labels:
                n = key[2:].split("\x02")[0]
                raise AsmError(f"'{n}f' refers to a label '{n}:' below, but there is none",
                               st.line, st.text)
        for name, sts in self.forward.items():
            if name not in self.current:
                st = sts[0]
                raise AsmError(f"undefined symbol {name!r}", st.line, st.text)

        def fix(node):
            if node[0] == "fwd":
                return ("sym", self.current[node[1]])
            if node[0] in ("num", "sym"):
                return node
            return (node[0],) + tuple(fix(c) if isinstance(c, tuple) else c for c in node[1:])

        for items in self.items.values():
            for it in items:
                if isinstance(it, Data):
                    it.nodes = [fix(n) for n in it.nodes]
                elif isinstance(it, (Insn, Branch)):
                    for e in (getattr(it, "encoding", None), getattr(it, "short", None),
                              getattr(it, "long", None)):
                        if e is not None:
                            for f in e.fields:
                                f.node = fix(f.node)
                    if isinstance(it, Branch):
                        it.target = fix(it.target)
        self.sets = {k: (fix(n), st) for k, (n, st) in self.sets.items()}
        for items in self.items.values():
            for it in items:
                if isinstance(it, Branch):
                    it.relax = it.relax and self.relaxable(it)
                    it.is_short = it.relax
                    it.size = it.encoding.length

    def relaxable(self, it: Branch) -> bool:
        """Only a jump to one label of its own section (plus a constant) can be short."""
        syms = ex.symbols_in(it.target)
        if len(syms) != 1:
            return False
        key = syms.pop()
        if key not in self.labels:
            return False
        return self.labels[key][0] == it.section

    def layout(self) -> None:
        """Place sections and relax branches until nothing changes."""
        for _ in range(1000):
            changed = False
            addr = self.base
            for s in SECTIONS:
                align = max([1] + [i.boundary for i in self.items[s] if isinstance(i, Align)])
                if s != ".text":
                    addr = -(-addr // max(align, 16)) * max(align, 16)
                self.addr_of_section[s] = addr
                offs = []
                pos = addr
                for it in self.items[s]:
                    offs.append(pos - addr)
                    if isinstance(it, Align):
                        it.size = it.pad(pos)
                    pos += it.size
                offs.append(pos - addr)
                self.offsets[s] = offs
                addr = pos
            for s in SECTIONS:
                start = self.addr_of_section[s]
                for i, it in enumerate(self.items[s]):
                    if isinstance(it, Branch) and it.is_short:
                        end = start + self.offsets[s][i] + it.size
                        disp = self.evaluate(it.target, it.stmt) - end
                        if not -0x80 <= disp <= 0x7F:
                            it.is_short = False
                            it.size = it.encoding.length
                            changed = True
            if not changed:
                return
        raise AsmError("branch relaxation did not settle")

    # ---- pass 2 ------------------------------------------------------------------------

    def label_value(self, key: str) -> int:
        s, i = self.labels[key]
        return self.addr_of_section[s] + self.offsets[s][i]

    def lookup(self, key: str, stack=()) -> int:
        if key in self.labels:
            return self.label_value(key)
        if key in self.values:
            return self.values[key]
        if key in self.sets:
            if key in stack:
                raise AsmError(f"the value of {key.split(chr(1))[0]!r} depends on itself")
            node, st = self.sets[key]
            v = ex.evaluate(node, lambda k: self.lookup(k, stack + (key,)))
            self.values[key] = v
            return v
        raise ex.Undefined(key)

    def evaluate(self, node: ex.Node, st: Statement) -> int:
        try:
            return ex.evaluate(node, self.lookup)
        except ex.Undefined as u:
            raise AsmError(f"undefined symbol {u.name!r}", st.line, st.text) from None
        except AsmError as e:
            raise e.at(st.line, st.text) from None

    def fill_field(self, item: Item, f: enc.Field, start: int, end: int) -> bytes:
        v = self.evaluate(f.node, item.stmt)
        if f.opsize:
            v = enc.normalize(v, f.opsize)
        if f.pcrel:
            v = ex.wrap64(v - end)
        try:
            if f.mode == "i64":
                v &= (1 << 64) - 1
            enc.check_range(v, f.mode, f.what)
        except AsmError as e:
            hint = ""
            if f.mode == "s32" and not f.pcrel and f.what == "immediate":
                hint = " (for a full 64-bit value use movabsq)"
            raise AsmError(e.message + hint, item.stmt.line, item.stmt.text) from None
        if self.moves_with_base(f, v, end):
            sec = self.current_section
            self.relocations.append(Relocation(
                sec, start + f.offset - self.addr_of_section[sec], start + f.offset, f.size, f.pcrel,
                _show(f.node), v, item.stmt.line))
        return (v & ((1 << (8 * f.size)) - 1)).to_bytes(f.size, "little")

    def moves_with_base(self, f: enc.Field, value: int, end: int) -> bool:
        """True if the field's value would change with the base address (a relocation)."""
        delta = 0x1000

        def shifted(key, stack=()):
            if key in self.labels:
                return self.label_value(key) + delta
            if key in self.sets:
                return ex.evaluate(self.sets[key][0], lambda k: shifted(k, stack + (key,)))
            raise ex.Undefined(key)
        moved = ex.evaluate(f.node, shifted)
        if f.pcrel:
            moved -= end + delta
        return ex.wrap64(moved) != ex.wrap64(value)

    def involves_label(self, node: ex.Node, stack=()) -> bool:
        """True if the value depends on where things are placed (a label, '.', or a .set of one)."""
        for key in ex.symbols_in(node):
            if key in self.labels:
                return True
            if key in self.sets and key not in stack and self.involves_label(self.sets[key][0],
                                                                              stack + (key,)):
                return True
        return False

    def pass2(self) -> tuple[dict[str, bytes], list[ListingLine]]:
        sections: dict[str, bytes] = {}
        per_line: dict[int, ListingLine] = {}
        order: list[int] = []
        for s in SECTIONS:
            self.current_section = s
            out = bytearray()
            start = self.addr_of_section[s]
            for i, it in enumerate(self.items[s]):
                addr = start + self.offsets[s][i]
                data = it.emit(self, addr)
                assert len(data) == it.size, (it, len(data), it.size)
                out += data
                ln = per_line.get(it.stmt.line)
                if ln is None:
                    ln = per_line[it.stmt.line] = ListingLine(it.stmt.line, addr, data, it.stmt.text)
                elif ln.address is not None and ln.address + len(ln.data) == addr:
                    ln.data += data
                if isinstance(it, (Insn, Branch)):
                    ln.forms.append(it.encoding.form)
            sections[s] = bytes(out)
        for n, text in enumerate(self.source.splitlines(), start=1):
            order.append(n)
            if n not in per_line:
                per_line[n] = ListingLine(n, self.label_line_address(n), b"", text)
        return sections, [per_line[n] for n in order]

    def label_line_address(self, line: int) -> int | None:
        if not hasattr(self, "_label_lines"):
            self._label_lines = {}
            for key, st in self.label_stmt.items():
                self._label_lines.setdefault(st.line, key)
        key = self._label_lines.get(line)
        return None if key is None else self.label_value(key)

    def symbols(self) -> dict[str, int]:
        out = {}
        for name, key in self.current.items():
            try:
                out[name] = self.lookup(key)
            except ex.Undefined:
                pass
        return out


def assemble(source: str, base: int = 0x100000, divide: bool = False) -> Program:
    """Assemble AT&T ``source``; ``.text`` is placed at ``base``, ``.data`` after it.

    ``divide=False`` models the 2007 Solaris assembler: ``/`` starts a comment
    (see docs/asm.md).  Raises `AsmError` (with ``.line`` and ``.text``) on bad input.
    """
    a = Assembler(source, base, divide)
    slashed = a.pass1()
    a.resolve_forward()
    a.layout()
    sections, lines = a.pass2()
    return Program(base, sections, dict(a.addr_of_section), a.symbols(), set(a.globals),
                   a.relocations, lines, slashed, divide)


# --------------------------------------------------------------------------


def _has(node: ex.Node, kind: str) -> bool:
    if node[0] == kind:
        return True
    return any(isinstance(c, tuple) and _has(c, kind) for c in node[1:])


def _show(node: ex.Node) -> str:
    def clean(n):
        if n[0] == "sym":
            k = n[1]
            if k.startswith("\x00."):
                return ("sym", ".")
            if k.startswith(".L") and "\x02" in k:
                return ("sym", k[2:].split("\x02")[0] + "(local)")
            return ("sym", k.split("\x01")[0])
        if n[0] == "num":
            return n
        return (n[0],) + tuple(clean(c) if isinstance(c, tuple) else c for c in n[1:])
    return ex.show(clean(node))


def _reg_text(o) -> str:
    return "%" + o.reg.name if isinstance(o, Reg) else "$" + getattr(o, "text", "?")


def _is_name(s: str) -> bool:
    import re
    return re.fullmatch(r"[A-Za-z_.$][\w.$]*", s) is not None


def _acc(size: int):
    from .isa import REGISTERS
    return REGISTERS[{8: "al", 16: "ax", 32: "eax"}[size]]


_ESC = {"n": b"\n", "t": b"\t", "r": b"\r", "\\": b"\\", '"': b'"', "'": b"'", "b": b"\b",
        "f": b"\f", "a": b"\a", "v": b"\v"}


def _string(tok: str) -> bytes:
    """A gas string literal with C escapes (``\\n``, ``\\123`` octal, ``\\x41`` hex)."""
    if len(tok) < 2 or tok[0] != '"' or tok[-1] != '"':
        raise AsmError(f"expected a string in double quotes, found {tok!r}")
    body, out, i = tok[1:-1], bytearray(), 0
    while i < len(body):
        c = body[i]
        if c != "\\":
            out += c.encode("utf-8")
            i += 1
            continue
        nxt = body[i + 1:i + 2]
        if nxt in _ESC:
            out += _ESC[nxt]
            i += 2
        elif nxt.isdigit() and nxt in "01234567":
            j = i + 1
            while j < len(body) and j < i + 4 and body[j] in "01234567":
                j += 1
            out.append(int(body[i + 1:j], 8) & 0xFF)
            i = j
        elif nxt in ("x", "X"):
            j = i + 2
            while j < len(body) and body[j] in "0123456789abcdefABCDEF":
                j += 1
            if j == i + 2:
                raise AsmError(f"\\x needs hex digits in {tok}")
            out.append(int(body[i + 2:j], 16) & 0xFF)
            i = j
        else:
            raise AsmError(f"unknown escape \\{nxt} in {tok}")
    return bytes(out)
