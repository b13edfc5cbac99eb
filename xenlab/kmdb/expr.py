"""mdb command-line syntax: ``[address][,count]verb [arguments]``, and expressions.

A line holds commands separated by ``;``.  Each command is an optional address
expression, an optional ``,count`` expression, and a verb:

==============  ===============================================================
``::name args``  a dcmd (``addr::vtop``, ``::print start_info``)
``$x``           a dollar command (``$r``, ``$c``, ``$b``, ``$q``, ``$?``)
``:x``           an execution command (``:c``, ``:s``, ``addr:b``, ``:d id``)
``/fmt``         read the target's virtual memory at the address in format ``fmt``
``?fmt``         read the object file (the kernel image as linked)
``=fmt``         format the value of the expression itself
``>name``        assign the value to a variable (read back with ``<name``)
(none)           a bare expression: sets dot
==============  ===============================================================

Expressions are mdb's: numbers are **hexadecimal** by default (``0t10`` is
decimal ten, ``0x``, ``0o``, ``0i`` select a base explicitly); a symbol stands
for its address (``pci_check+0x10``); ``.`` is dot (the current address);
``<name`` is a register (``<rip``, ``<rsp``) or a variable; unary ``*expr``
reads a pointer-sized word at ``expr``; binary operators, loosest first:
``|``, ``^``, ``&``, ``==`` ``!=``, ``<<`` ``>>``, ``+`` ``-``, ``*`` ``%``
(integer division) ``%%`` (remainder) ``#`` (round up to a multiple);
unary ``-`` ``~`` ``#`` (logical not) ``*``.  ``/`` is never division: it
starts a format.  Arithmetic is unsigned 64-bit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .errors import MdbError

MASK = (1 << 64) - 1
_NUM = re.compile(r"0[xX][0-9a-fA-F]+|0[tT][0-9]+|0[oO][0-7]+|0[iI][01]+|[0-9][0-9a-fA-F]*")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:`[A-Za-z_][A-Za-z0-9_.]*)?")
_VAR = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|\.")
_HEX = re.compile(r"[0-9a-fA-F]+")


@dataclass
class Command:
    """One parsed command: the evaluated address and count, and its verb."""

    text: str
    kind: str                    # dcmd, dollar, colon, format, assign, expr
    name: str = ""               # dcmd name, $/: letter, format verb (/ ? =), variable
    addr: int | None = None
    count: int | None = None
    args: list[str] = field(default_factory=list)   # dcmd arguments
    fmt: str = ""                # the format string of / ? =
    rest: str = ""               # the unsplit argument text

    @property
    def has_addr(self) -> bool:
        return self.addr is not None


def split_commands(line: str) -> list[str]:
    """Split a line at ``;`` (outside quotes); blank commands are dropped."""
    out, cur, quote = [], [], None
    for ch in line:
        if quote:
            cur.append(ch)
            if ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
            cur.append(ch)
        elif ch == ";":
            out.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    out.append("".join(cur))
    return [c.strip() for c in out if c.strip()]


def split_args(text: str) -> list[str]:
    """Whitespace-separated arguments; quotes group words."""
    out, cur, quote, started = [], [], None, False
    for ch in text:
        if quote:
            if ch == quote:
                quote = None
            else:
                cur.append(ch)
        elif ch in "\"'":
            quote, started = ch, True
        elif ch.isspace():
            if started:
                out.append("".join(cur))
                cur, started = [], False
        else:
            cur.append(ch)
            started = True
    if quote:
        raise MdbError(f"syntax error: unterminated quote in '{text.strip()}'")
    if started:
        out.append("".join(cur))
    return out


class Env:
    """What an expression may refer to; the session provides the real one."""

    dot = 0

    def symbol(self, name: str) -> int:
        raise MdbError(f"failed to dereference symbol: unknown symbol name '{name}'")

    def has_symbol(self, name: str) -> bool:
        return False

    def variable(self, name: str) -> int:
        raise MdbError(f"variable '{name}' is not defined")

    def deref(self, addr: int) -> int:
        raise MdbError(f"failed to read 8 bytes at {addr:#x}: no target")


def parse_number(tok: str) -> int:
    t = tok.lower()
    if t.startswith("0x"):
        return int(t[2:], 16)
    if t.startswith("0t"):
        return int(t[2:], 10)
    if t.startswith("0o"):
        return int(t[2:], 8)
    if t.startswith("0i"):
        return int(t[2:], 2)
    return int(t, 16)


class _Parser:
    def __init__(self, text: str, env: Env):
        self.s = text
        self.i = 0
        self.env = env

    # -- scanning ------------------------------------------------------------------------
    def ws(self):
        while self.i < len(self.s) and self.s[self.i] in " \t":
            self.i += 1

    def peek(self, n: int = 1) -> str:
        self.ws()
        return self.s[self.i:self.i + n]

    def eat(self, tok: str) -> bool:
        if self.peek(len(tok)) == tok:
            self.i += len(tok)
            return True
        return False

    def error(self, what: str = "syntax error"):
        near = self.s[self.i:].strip() or "end of command"
        raise MdbError(f"{what} near '{near[:24]}'")

    # -- expressions --------------------------------------------------------------------
    def starts_expr(self) -> bool:
        c = self.peek()
        if not c:
            return False
        if c in "(.-~#*" or c.isalnum() or c == "_":
            return True
        return c == "<" and self.peek(2) != "<<"

    def expr(self) -> int:
        return self._binary(0)

    _LEVELS = (("|",), ("^",), ("&",), ("==", "!="), ("<<", ">>"), ("+", "-"),
               ("%%", "*", "%", "#"))

    def _binary(self, level: int) -> int:
        if level == len(self._LEVELS):
            return self._unary()
        left = self._binary(level + 1)
        while True:
            op = self._op(level)
            if op is None:
                return left
            right = self._binary(level + 1)
            left = self._apply(op, left, right)

    def _op(self, level: int) -> str | None:
        self.ws()
        for op in self._LEVELS[level]:
            if self.s.startswith(op, self.i):
                if op == "|" and self.s.startswith("||", self.i):
                    return None
                if op == "|" and self.s[self.i + 1:].lstrip().startswith(("::", "$", ":")):
                    raise MdbError("pipelines (|) are not supported; use one command at a time")
                if op == "&" and self.s.startswith("&&", self.i):
                    return None
                self.i += len(op)
                return op
        return None

    @staticmethod
    def _apply(op: str, a: int, b: int) -> int:
        if op == "+":
            return (a + b) & MASK
        if op == "-":
            return (a - b) & MASK
        if op == "*":
            return (a * b) & MASK
        if op in ("%", "%%", "#") and b == 0:
            raise MdbError("attempted to divide by zero")
        if op == "%":
            return a // b
        if op == "%%":
            return a % b
        if op == "#":
            return ((a + b - 1) // b * b) & MASK
        if op == "&":
            return a & b
        if op == "|":
            return a | b
        if op == "^":
            return a ^ b
        if op == "<<":
            return (a << (b & 63)) & MASK
        if op == ">>":
            return a >> (b & 63)
        if op == "==":
            return int(a == b)
        if op == "!=":
            return int(a != b)
        raise MdbError(f"unknown operator '{op}'")

    def _unary(self) -> int:
        c = self.peek()
        if c == "-":
            self.i += 1
            return (-self._unary()) & MASK
        if c == "~":
            self.i += 1
            return (~self._unary()) & MASK
        if c == "#":
            self.i += 1
            return int(self._unary() == 0)
        if c == "*":
            self.i += 1
            return self.env.deref(self._unary()) & MASK
        return self._primary()

    def _primary(self) -> int:
        self.ws()
        s, i = self.s, self.i
        if i >= len(s):
            self.error("syntax error: expected an expression")
        c = s[i]
        if c == "(":
            self.i += 1
            v = self.expr()
            if not self.eat(")"):
                self.error("syntax error: missing ')'")
            return v
        if c == "<":
            m = _VAR.match(s, i + 1)
            if not m:
                self.error("syntax error: expected a variable name after '<'")
            self.i = m.end()
            name = m.group(0)
            return self.env.dot if name == "." else self.env.variable(name) & MASK
        if c == ".":
            self.i += 1
            return self.env.dot
        if c.isdigit():
            m = _NUM.match(s, i)
            self.i = m.end()
            if self.i < len(s) and (s[self.i].isalnum() or s[self.i] == "_"):
                self.error("syntax error: bad number")
            return parse_number(m.group(0)) & MASK
        m = _IDENT.match(s, i)
        if m:
            self.i = m.end()
            name = m.group(0)
            if self.env.has_symbol(name):
                return self.env.symbol(name)
            if _HEX.fullmatch(name):            # mdb's default radix is 16
                return int(name, 16)
            return self.env.symbol(name)        # raises "unknown symbol name"
        self.error()
        return 0

    # -- a command ----------------------------------------------------------------------
    def command(self) -> Command:
        text = self.s.strip()
        cmd = Command(text, "expr")
        if self.starts_expr():
            cmd.addr = self.expr()
        if self.eat(","):
            cmd.count = self.expr()
        self.ws()
        s, i = self.s, self.i
        rest = s[i:]
        if not rest:
            if cmd.addr is None and cmd.count is None:
                self.error("syntax error: empty command")
            return cmd
        if rest.startswith("::"):
            m = re.match(r"[A-Za-z_][A-Za-z0-9_]*", rest[2:])
            if not m:
                self.error("syntax error: expected a dcmd name after '::'")
            cmd.kind, cmd.name = "dcmd", m.group(0)
            cmd.rest = rest[2 + m.end():].strip()
            cmd.args = split_args(cmd.rest)
            return cmd
        if rest[0] in "$:":
            if len(rest) < 2 or rest[1].isspace():
                self.error(f"syntax error: expected a command letter after '{rest[0]}'")
            cmd.kind = "dollar" if rest[0] == "$" else "colon"
            cmd.name = rest[1]
            cmd.rest = rest[2:].strip()
            cmd.args = split_args(cmd.rest)
            return cmd
        if rest[0] in "/?=":
            cmd.kind, cmd.name, cmd.fmt = "format", rest[0], rest[1:].strip()
            return cmd
        if rest[0] == ">" and not rest.startswith(">>"):
            name = rest[1:].strip()
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                self.error("syntax error: expected a variable name after '>'")
            cmd.kind, cmd.name = "assign", name
            return cmd
        if rest[0] == "!":
            raise MdbError("shell escapes (!) are not available in this debugger")
        if rest[0] == "|":
            raise MdbError("pipelines (|) are not supported; use one command at a time")
        self.error()
        return cmd


def parse_command(text: str, env: Env) -> Command:
    """Parse (and evaluate the address and count of) one command."""
    return _Parser(text, env).command()


def evaluate(text: str, env: Env) -> int:
    """Evaluate a whole string as one expression (a dcmd argument)."""
    p = _Parser(text, env)
    v = p.expr()
    p.ws()
    if p.i != len(p.s):
        p.error()
    return v
