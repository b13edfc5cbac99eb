"""mdb's format reads: ``addr/fmt`` (virtual memory), ``addr?fmt`` (the object
file), ``value=fmt`` (the value itself).

A format is a list of letters, each optionally preceded by a repeat count
(``/4X``).  ``addr,N/fmt`` applies the whole list N times.  The letters, their
sizes and widths are mdb's (``::formats`` lists them).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from . import dis
from .errors import MdbError

WIDTH = 80


@dataclass(frozen=True)
class Fmt:
    size: int            # bytes read (0: variable, -1: reads nothing)
    kind: str            # hex, oct, sdec, udec, soct, sym, char, esc, str, estr, insn, ...
    width: int           # printf field width
    help: str


FORMATS: dict[str, Fmt] = {
    "B": Fmt(1, "hex", 8, "hexadecimal int"),
    "b": Fmt(1, "oct", 8, "octal int"),
    "c": Fmt(1, "char", 0, "character"),
    "C": Fmt(1, "esc", 0, "character using C character notation"),
    "V": Fmt(1, "udec", 8, "unsigned decimal int"),
    "d": Fmt(2, "sdec", 8, "decimal signed int"),
    "u": Fmt(2, "udec", 8, "decimal unsigned int"),
    "x": Fmt(2, "hex", 8, "hexadecimal int"),
    "o": Fmt(2, "oct", 8, "octal unsigned int"),
    "q": Fmt(2, "soct", 8, "octal signed int"),
    "h": Fmt(2, "swap", 8, "hexadecimal, bytes swapped"),
    "D": Fmt(4, "sdec", 16, "decimal signed int"),
    "U": Fmt(4, "udec", 16, "decimal unsigned int"),
    "X": Fmt(4, "hex", 16, "hexadecimal int"),
    "O": Fmt(4, "oct", 16, "octal unsigned int"),
    "Q": Fmt(4, "soct", 16, "octal signed int"),
    "H": Fmt(4, "swap", 16, "hexadecimal, bytes swapped"),
    "e": Fmt(8, "sdec", 16, "decimal signed long long"),
    "E": Fmt(8, "udec", 16, "decimal unsigned long long"),
    "J": Fmt(8, "hex", 16, "hexadecimal long long"),
    "K": Fmt(8, "hex", 16, "hexadecimal uintptr_t"),
    "G": Fmt(8, "oct", 16, "octal unsigned long long"),
    "g": Fmt(8, "soct", 16, "octal signed long long"),
    "R": Fmt(8, "bin", 64, "binary unsigned long long"),
    "p": Fmt(8, "sym", 16, "symbol"),
    "P": Fmt(8, "sym", 16, "symbol"),
    "s": Fmt(0, "str", 0, "raw string"),
    "S": Fmt(0, "estr", 0, "string using C string notation"),
    "i": Fmt(0, "insn", 0, "instruction"),
    "a": Fmt(-1, "dot", 0, "dot as symbol+offset"),
    "n": Fmt(-1, "nl", 0, "newline"),
    "t": Fmt(-1, "tab", 0, "horizontal tab"),
    "r": Fmt(-1, "ws", 0, "whitespace"),
    "+": Fmt(-1, "plus", 0, "increment dot by the count"),
    "-": Fmt(-1, "minus", 0, "decrement dot by the count"),
}
WRITES = set("vwWZ")
_ITEM = re.compile(r"(\d*)(.)")


def parse(fmt: str) -> list[tuple[int, str]]:
    """``4X2B`` -> [(4, 'X'), (2, 'B')]."""
    out = []
    for m in _ITEM.finditer(fmt.replace(" ", "")):
        n, ch = m.group(1), m.group(2)
        if ch in WRITES:
            raise MdbError(f"format '{ch}' writes memory: this debugger only reads the model")
        if ch not in FORMATS:
            raise MdbError(f"invalid format character -- '{ch}'")
        out.append((int(n, 10) if n else 1, ch))
    return out


def value_text(f: Fmt, v: int, symbols=None) -> str:
    """One value in the letter's notation (no padding)."""
    bits = 8 * max(f.size, 1)
    mask = (1 << bits) - 1
    v &= mask
    signed = v - (1 << bits) if v >> (bits - 1) else v
    k = f.kind
    if k == "hex":
        return f"{v:x}"
    if k == "oct":
        return f"0{v:o}" if v else "0"
    if k == "soct":
        return f"-0{-signed:o}" if signed < 0 else (f"0{v:o}" if v else "0")
    if k == "udec":
        return str(v)
    if k == "sdec":
        return str(signed)
    if k == "bin":
        return f"{v:b}"
    if k == "swap":
        return f"{int.from_bytes(v.to_bytes(f.size, 'little'), 'big'):x}"
    if k == "sym":
        return symbols.fmt(v, plain_hex=True) if symbols else f"{v:x}"
    if k == "char":
        return chr(v) if 32 <= v < 127 else "."
    if k == "esc":
        return _escape(bytes([v]))
    raise MdbError(f"format kind {k} has no value form")


def _escape(raw: bytes) -> str:
    out = []
    for b in raw:
        if b == 0x0A:
            out.append("\\n")
        elif b == 0x09:
            out.append("\\t")
        elif b == 0x0D:
            out.append("\\r")
        elif b == 0x5C:
            out.append("\\\\")
        elif 32 <= b < 127:
            out.append(chr(b))
        else:
            out.append(f"\\{b:03o}")
    return "".join(out)


class _Lines:
    """mdb's layout: ``label:`` first, then ``label:`` + values, wrapped at 80 columns."""

    def __init__(self, label_of):
        self.label_of = label_of
        self.lines: list[str] = []
        self.cur: str | None = None

    def start(self, addr: int):
        self.flush()
        label = self.label_of(addr) + ":"
        pad = max(16, (len(label) // 8 + 1) * 8)
        self.cur = label.ljust(pad)

    def put(self, addr: int, text: str):
        """A whole line of its own (an instruction, a string)."""
        self.start(addr)
        self.cur += text
        self.flush()

    def add(self, addr: int, text: str, width: int):
        cell = text.ljust(width) if width else text
        if self.cur is None:
            self.start(addr)
        elif len(self.cur.rstrip()) + 1 + len(cell.rstrip()) > WIDTH and self.cur.strip():
            self.start(addr)
        if width and len(text) >= width and not self.cur.endswith(" "):
            self.cur += " "
        self.cur += cell

    def newline(self):
        if self.cur is not None:
            self.flush()

    def flush(self):
        if self.cur is not None:
            self.lines.append(self.cur.rstrip())
        self.cur = None

    def text(self) -> str:
        self.flush()
        return "\n".join(self.lines) + ("\n" if self.lines else "")


def read_formats(read, addr: int, count: int, fmt: str, symbols,
                 label_of) -> tuple[str, list, int]:
    """Apply ``fmt`` ``count`` times from ``addr``; returns (text, values, next address).

    ``read(addr, n)`` reads the address space (virtual memory or the object file).
    """
    items = parse(fmt or "X")
    out = _Lines(label_of)
    out.lines.append(label_of(addr) + ":")
    values: list = []
    a = addr
    for _ in range(max(count, 1)):
        for reps, ch in items:
            f = FORMATS[ch]
            for _ in range(reps):
                a = _one(read, a, f, ch, reps, out, values, symbols)
    return out.text(), values, a


def _one(read, a, f: Fmt, ch, reps, out: _Lines, values, symbols) -> int:
    k = f.kind
    if k == "insn":
        insns = dis.decode(read, a, 1, symbols)
        if not insns:
            raise MdbError(f"failed to read instruction at {a:#x}")
        ins = insns[0]
        out.put(a, ins.text)
        values.append(ins)
        return ins.end
    if k in ("str", "estr"):
        raw = bytearray()
        p = a
        while len(raw) < 4096:
            chunk = read(p, 1)
            if chunk == b"\0":
                break
            raw += chunk
            p += 1
        s = raw.decode("latin-1") if k == "str" else _escape(bytes(raw))
        out.put(a, s)
        values.append(raw.decode("latin-1"))
        return p + 1
    if k == "dot":
        out.add(a, label_sym(symbols, a), 0)
        return a
    if k == "nl":
        out.newline()
        return a
    if k in ("tab", "ws"):
        if out.cur is not None:
            out.cur += "\t" if k == "tab" else " "
        return a
    if k == "plus":
        return a + reps if reps > 1 else a + 1
    if k == "minus":
        return a - (reps if reps > 1 else 1)
    raw = read(a, f.size)
    v = int.from_bytes(raw, "little")
    values.append(v)
    width = f.width
    if ch in "JK" and v >> 60:
        width = 17                    # mdb keeps a space after a 16-digit value
    out.add(a, value_text(f, v, symbols), width)
    return a + f.size


def label_sym(symbols, a: int) -> str:
    return symbols.fmt(a, plain_hex=True) if symbols is not None else f"{a:x}"


def format_value(value: int, fmt: str, symbols) -> tuple[str, list]:
    """``value=fmt``: the value itself in each letter's notation."""
    parts, values = [], []
    for reps, ch in parse(fmt or "X"):
        f = FORMATS[ch]
        for _ in range(reps):
            if f.kind in ("str", "estr", "insn", "plus", "minus", "ws"):
                raise MdbError(f"format '{ch}' needs memory; use addr/{ch}")
            if f.kind == "dot":
                parts.append(label_sym(symbols, value))
            elif f.kind == "nl":
                parts.append("\n")
            elif f.kind == "tab":
                parts.append("\t")
            else:
                t = value_text(f, value, symbols)
                parts.append(t.ljust(f.width) if f.width else t)
            values.append(value)
    text = "".join(parts).rstrip(" ")
    return text + ("\n" if not text.endswith("\n") else ""), values


def help_text() -> str:
    rows = []
    for ch, f in FORMATS.items():
        size = {0: " (variable size)", -1: "", 1: " (1 byte)"}.get(f.size, f" ({f.size} bytes)")
        rows.append(f"{ch} - {f.help}{size}")
    return "\n".join(rows) + "\n"

