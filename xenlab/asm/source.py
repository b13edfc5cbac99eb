"""Source text to statements: comments (with the Solaris ``/`` rule), ``;`` and labels.

Comment rules, as GNU as applies them on x86:

* ``#`` starts a comment anywhere on a line;
* ``/`` as the first non-blank character of a line starts a comment (always);
* with ``divide=True`` (GNU as on Linux, or Solaris gas with ``--divide``) a ``/``
  elsewhere divides, and ``/* ... */`` is a C comment that may span lines;
* with ``divide=False`` (Solaris gas in 2007, SVR4 rules) every ``/`` starts a
  comment.  GNU as ignores the rest of the line.  xenlab does the same, with one
  liberty: a ``/`` inside parentheses ends its comment at the ``)`` that closes
  them, so ``movq $(4096/8), %rax`` reads as ``movq $(4096), %rax`` and silently
  loads 4096.  (GNU as would have lost ``, %rax`` too and stopped with "missing
  ')'"; the lab needs the silent wrong constant, see docs/asm.md.)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .errors import AsmError

_LABEL = re.compile(r"\s*([A-Za-z_.$][\w.$]*|\d+)\s*:(?!:)")
_ASSIGN = re.compile(r"\s*([A-Za-z_.$][\w.$]*)\s*=(?!=)")
_MNEMONIC = re.compile(r"\s*([A-Za-z_.][\w.]*)")


@dataclass
class Statement:
    """One statement: its labels, then a mnemonic or directive and its operand text."""

    line: int
    text: str                       # the whole source line, as written
    labels: list[str] = field(default_factory=list)
    op: str = ""                    # mnemonic or directive, lower-case ("" for a bare label)
    args: str = ""                  # operand text after comments were removed

    def error(self, message: str) -> AsmError:
        return AsmError(message, self.line, self.text)


@dataclass
class Comment:
    """A comment the ``/`` rule made: where, and the source text it swallowed."""

    line: int
    text: str


def strip_comments(lines: list[str], divide: bool) -> tuple[list[str], list[Comment]]:
    """Return each line's code with comments removed, and the ``/`` comments that swallowed code."""
    out: list[str] = []
    slashed: list[Comment] = []
    in_block = False
    for n, raw in enumerate(lines, start=1):
        code, in_block, swallowed = _strip_line(raw, divide, in_block)
        if swallowed.strip():
            slashed.append(Comment(n, swallowed))
        out.append(code)
    return out, slashed


def _strip_line(line: str, divide: bool, in_block: bool) -> tuple[str, bool, str]:
    """Strip one line; returns (code, still inside a /* */ block, text a slash comment swallowed)."""
    code: list[str] = []
    swallowed: list[str] = []
    i, n = 0, len(line)
    depth = 0
    if not in_block and line.lstrip().startswith("/") and not (divide and line.lstrip().startswith("/*")):
        return "", False, ""        # '/' first on a line: a line comment for every x86 gas
    while i < n:
        c = line[i]
        if in_block:
            end = line.find("*/", i)
            if end < 0:
                return "".join(code), True, "".join(swallowed)
            code.append(" ")
            i, in_block = end + 2, False
            continue
        if c == '"':
            j = _string_end(line, i)
            code.append(line[i:j])
            i = j
            continue
        if c == "'":                # character constant 'c, 'c' or '\n'
            j = char_end(line, i)
            code.append(line[i:j])
            i = j
            continue
        if c == "#":
            break
        if c == "/":
            if divide:
                if line.startswith("/*", i):
                    in_block = True
                    i += 2
                    continue
                code.append(c)
                i += 1
                continue
            # SVR4 rule: a comment.  Inside parentheses it ends at the matching ')'.
            end = _closing_paren(line, i) if depth > 0 else -1
            if end < 0:
                swallowed.append(line[i:])
                break
            swallowed.append(line[i:end])
            i = end
            continue
        if c == "(":
            depth += 1
        elif c == ")":
            depth = max(0, depth - 1)
        code.append(c)
        i += 1
    return "".join(code), in_block, "".join(swallowed)


def _string_end(line: str, i: int) -> int:
    """Index just past the string literal starting at ``line[i] == '"'``."""
    j = i + 1
    while j < len(line):
        if line[j] == "\\":
            j += 2
            continue
        if line[j] == '"':
            return j + 1
        j += 1
    return len(line)


def char_end(text: str, i: int) -> int:
    """Index just past the character constant at ``text[i] == "'"`` (closing quote optional)."""
    j = min(len(text), i + (3 if i + 1 < len(text) and text[i + 1] == "\\" else 2))
    if j < len(text) and text[j] == "'":
        j += 1
    return j


def _closing_paren(line: str, i: int) -> int:
    """Index of the ')' closing the parenthesis that encloses position ``i``, or -1."""
    depth = 0
    for j in range(i, len(line)):
        if line[j] == "(":
            depth += 1
        elif line[j] == ")":
            if depth == 0:
                return j
            depth -= 1
    return -1


def split_top(text: str, sep: str) -> list[str]:
    """Split on ``sep`` outside parentheses, strings and character constants."""
    parts, cur, depth, i = [], [], 0, 0
    while i < len(text):
        c = text[i]
        if c == '"':
            j = _string_end(text, i)
            cur.append(text[i:j])
            i = j
            continue
        if c == "'":
            j = char_end(text, i)
            cur.append(text[i:j])
            i = j
            continue
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        if c == sep and depth <= 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(c)
        i += 1
    parts.append("".join(cur))
    return parts


def statements(source: str, divide: bool) -> tuple[list[Statement], list[Comment]]:
    """Parse source text into statements (labels split off, comments removed)."""
    raw = source.splitlines()
    code, slashed = strip_comments(raw, divide)
    out: list[Statement] = []
    for n, (text, line) in enumerate(zip(raw, code), start=1):
        for piece in split_top(line, ";"):
            st = _statement(n, text, piece)
            if st is not None:
                out.append(st)
    return out, slashed


def _statement(n: int, text: str, piece: str) -> Statement | None:
    st = Statement(n, text)
    rest = piece
    while True:
        m = _LABEL.match(rest)
        if not m:
            break
        st.labels.append(m.group(1))
        rest = rest[m.end():]
    m = _ASSIGN.match(rest)
    if m:
        st.op, st.args = ".set", f"{m.group(1)}, {rest[m.end():].strip()}"
        return st
    if not rest.strip():
        return st if st.labels else None
    m = _MNEMONIC.match(rest)
    if not m:
        raise st.error(f"expected an instruction or directive, found {rest.strip()!r}")
    st.op = m.group(1).lower()
    st.args = rest[m.end():].strip()
    return st
