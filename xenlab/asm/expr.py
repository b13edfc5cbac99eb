"""Constant expressions with GNU as's operators and precedence.

Precedence, tightest first (GNU as manual, "Infix Operators"; note that ``&``,
``|`` and ``^`` bind tighter than ``+`` and ``-``, unlike C):

1. unary ``-`` ``~`` ``+``
2. ``*`` ``/`` ``%`` ``<<`` ``>>``
3. ``|`` ``&`` ``^``
4. ``+`` ``-``

Arithmetic is on 64-bit words: ``/`` and ``%`` truncate toward zero, ``>>`` is a
logical shift.  Numbers: ``123``, ``0x7b``, ``0b1111011``, ``0173`` (octal, as in
gas), ``'c'``.  ``.`` is the address of the current statement; ``1b``/``1f`` name
the nearest numeric label ``1:`` backward/forward.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import AsmError

MASK64 = (1 << 64) - 1


def wrap64(v: int) -> int:
    """Reduce to a signed 64-bit value (gas computes in 64-bit words)."""
    v &= MASK64
    return v - (1 << 64) if v >> 63 else v


# AST nodes: ("num", v) ("sym", name) ("dot",) ("neg"|"not"|"pos", a) (op, a, b)
Node = tuple

_TOKEN = re.compile(r"""
    \s*(?:
      (?P<num>0[xX][0-9a-fA-F]+|0[bB][01]+(?![\w$])|\d+[bf](?![\w$])|\d+)
    | (?P<chr>'(?:\\.|[^\\])'?)
    | (?P<sym>[A-Za-z_.$][\w.$]*)
    | (?P<op><<|>>|[-+*/%&|^~()])
    )""", re.VERBOSE)

_ESCAPES = {"n": 10, "t": 9, "r": 13, "0": 0, "\\": 92, "'": 39, '"': 34, "b": 8, "f": 12}

_BINARY_LEVELS = (("+", "-"), ("|", "&", "^"), ("*", "/", "%", "<<", ">>"))


class ExprError(AsmError):
    pass


class Undefined(Exception):
    """Raised while evaluating when a symbol has no value (yet)."""

    def __init__(self, name: str):
        super().__init__(name)
        self.name = name


def tokenize(text: str) -> list[tuple[str, str]]:
    toks, i = [], 0
    text = text.rstrip()
    while i < len(text):
        m = _TOKEN.match(text, i)
        if not m or m.end() == i:
            bad = text[i:].strip()
            raise ExprError(f"cannot read {bad!r} in the expression {text.strip()!r}")
        kind = m.lastgroup
        toks.append((kind, m.group(kind)))
        i = m.end()
        while i < len(text) and text[i].isspace():
            i += 1
    return toks


def parse(text: str) -> Node:
    """Parse an expression; raises ExprError naming the bad part."""
    if not text.strip():
        raise ExprError("missing expression")
    toks = tokenize(text)
    node, pos = _parse_level(toks, 0, 0, text)
    if pos != len(toks):
        raise ExprError(f"unexpected {toks[pos][1]!r} in the expression {text.strip()!r}")
    return node


def _parse_level(toks, pos, level, text):
    if level == len(_BINARY_LEVELS):
        return _parse_unary(toks, pos, text)
    left, pos = _parse_level(toks, pos, level + 1, text)
    while pos < len(toks) and toks[pos][0] == "op" and toks[pos][1] in _BINARY_LEVELS[level]:
        op = toks[pos][1]
        right, pos = _parse_level(toks, pos + 1, level + 1, text)
        left = (op, left, right)
    return left, pos


def _parse_unary(toks, pos, text):
    if pos >= len(toks):
        raise ExprError(f"the expression {text.strip()!r} ends too early")
    kind, val = toks[pos]
    if kind == "op" and val in "-~+":
        a, pos = _parse_unary(toks, pos + 1, text)
        return ({"-": "neg", "~": "not", "+": "pos"}[val], a), pos
    if kind == "op" and val == "(":
        a, pos = _parse_level(toks, pos + 1, 0, text)
        if pos >= len(toks) or toks[pos][1] != ")":
            raise ExprError(f"missing ')' in the expression {text.strip()!r}")
        return a, pos + 1
    if kind == "num":
        return _number(val), pos + 1
    if kind == "chr":
        return ("num", _char(val)), pos + 1
    if kind == "sym":
        return (("dot",) if val == "." else ("sym", val)), pos + 1
    raise ExprError(f"unexpected {val!r} in the expression {text.strip()!r}")


def _number(tok: str) -> Node:
    if tok[-1] in "bf" and tok[:-1].isdigit():
        return ("local", tok[:-1], tok[-1])       # numeric local label reference
    low = tok.lower()
    if low.startswith("0x"):
        return ("num", int(tok, 16))
    if low.startswith("0b"):
        return ("num", int(tok[2:], 2))
    if len(tok) > 1 and tok[0] == "0":
        if any(c in "89" for c in tok):
            raise ExprError(f"{tok!r} is not an octal number (a leading 0 means octal)")
        return ("num", int(tok, 8))
    return ("num", int(tok))


def _char(tok: str) -> int:
    body = tok[1:].rstrip("'") if len(tok) > 2 else tok[1:]
    if body.startswith("\\"):
        return _ESCAPES.get(body[1:2], ord(body[1:2] or "\\"))
    return ord(body[0])


# --------------------------------------------------------------------------


def symbols_in(node: Node) -> set[str]:
    """Names a node refers to (after local labels were renamed)."""
    if node[0] == "sym":
        return {node[1]}
    out: set[str] = set()
    for child in node[1:]:
        if isinstance(child, tuple):
            out |= symbols_in(child)
    return out


def uses_dot(node: Node) -> bool:
    if node[0] == "dot":
        return True
    return any(isinstance(c, tuple) and uses_dot(c) for c in node[1:])


def evaluate(node: Node, lookup, dot: int | None = None) -> int:
    """Value of ``node``; ``lookup(name)`` gives a symbol's value or raises Undefined."""
    kind = node[0]
    if kind == "num":
        return wrap64(node[1])
    if kind == "sym":
        return wrap64(lookup(node[1]))
    if kind == "dot":
        if dot is None:
            raise Undefined(".")
        return dot
    if kind == "neg":
        return wrap64(-evaluate(node[1], lookup, dot))
    if kind == "not":
        return wrap64(~evaluate(node[1], lookup, dot))
    if kind == "pos":
        return evaluate(node[1], lookup, dot)
    a = evaluate(node[1], lookup, dot)
    b = evaluate(node[2], lookup, dot)
    return _binary(kind, a, b)


def _binary(op: str, a: int, b: int) -> int:
    if op == "+":
        return wrap64(a + b)
    if op == "-":
        return wrap64(a - b)
    if op == "*":
        return wrap64(a * b)
    if op in ("/", "%"):
        if b == 0:
            raise ExprError("division by zero in an expression")
        q = abs(a) // abs(b)
        if (a < 0) != (b < 0):
            q = -q
        return wrap64(q if op == "/" else a - q * b)
    if op == "<<":
        return wrap64(a << b) if 0 <= b < 64 else 0
    if op == ">>":
        return wrap64((a & MASK64) >> b) if 0 <= b < 64 else 0
    if op == "&":
        return wrap64(a & b)
    if op == "|":
        return wrap64(a | b)
    if op == "^":
        return wrap64(a ^ b)
    raise ExprError(f"unknown operator {op!r}")


def show(node: Node) -> str:
    """Render a node back to text (for relocation records and messages)."""
    kind = node[0]
    if kind == "num":
        return hex(node[1]) if abs(node[1]) > 9 else str(node[1])
    if kind == "sym":
        return node[1]
    if kind == "dot":
        return "."
    if kind in ("neg", "not", "pos"):
        return {"neg": "-", "not": "~", "pos": "+"}[kind] + show(node[1])
    return f"({show(node[1])} {kind} {show(node[2])})"


@dataclass(frozen=True)
class Expr:
    """A parsed expression with its source text."""

    node: Node
    text: str
