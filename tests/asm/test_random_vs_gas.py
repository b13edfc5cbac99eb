"""Seeded random expressions and addressing modes, one GNU as run each: same values, same bytes."""

from __future__ import annotations

import numpy as np

from xenlab.asm import assemble
from xenlab.asm.isa import GPR64, GPR32, GPR8, GPR16

from . import gas

BASE = 0x100000
OPS = ["+", "-", "*", "/", "%", "<<", ">>", "&", "|", "^"]


def _expr(rng, depth: int) -> str:
    if depth == 0 or rng.random() < 0.25:
        kind = rng.integers(4)
        if kind == 0:
            return str(int(rng.integers(0, 1000)))
        if kind == 1:
            return hex(int(rng.integers(0, 1 << 62)))
        if kind == 2:
            return "K"                       # .set K, 37 above
        return str(int(rng.integers(1, 9)))
    if rng.random() < 0.15:
        return ("-", "~")[int(rng.integers(2))] + "(" + _expr(rng, depth - 1) + ")"
    op = OPS[int(rng.integers(len(OPS)))]
    right = _expr(rng, depth - 1)
    if op in ("/", "%"):
        right = f"(({right}) | 1)"           # never divide by zero
    if op in ("<<", ">>"):
        right = f"(({right}) & 63)"
    return f"({_expr(rng, depth - 1)} {op} {right})" if rng.random() < 0.5 else \
        f"{_expr(rng, depth - 1)} {op} {right}"


def test_random_expressions_match_gnu_as():
    rng = np.random.Generator(np.random.PCG64(2007))
    exprs = [_expr(rng, 4) for _ in range(400)]
    src = ".set K, 37\n" + "\n".join(f".quad {e}" for e in exprs)
    ours = assemble(src, divide=True).text
    text, _, _ = gas.run_gas(src, BASE)
    bad = [f"{e}: xenlab {ours[8 * i:8 * i + 8].hex()} gas {text[8 * i:8 * i + 8].hex()}"
           for i, e in enumerate(exprs) if ours[8 * i:8 * i + 8] != text[8 * i:8 * i + 8]]
    assert len(ours) == len(text) == 8 * len(exprs)
    assert not bad, "\n".join(bad[:20])


DISPS = [0, 1, -1, 0x7F, 0x80, -0x80, -0x81, 0x7FFFFFFF, -0x80000000, 0x1234, -0x1000]


def _memory(rng) -> str:
    disp = DISPS[int(rng.integers(len(DISPS)))]
    shape = int(rng.integers(6))
    base = "%" + GPR64[int(rng.integers(16))]
    index = "%" + GPR64[int(rng.choice([i for i in range(16) if i != 4]))]
    scale = int(rng.choice([1, 2, 4, 8]))
    d = "" if disp == 0 and rng.random() < 0.5 else str(disp)
    seg = rng.choice(["", "", "", "%fs:", "%gs:", "%es:"])
    if shape == 0:
        return f"{seg}{d}({base})"
    if shape == 1:
        return f"{seg}{d}({base},{index},{scale})"
    if shape == 2:
        return f"{seg}{d}(,{index},{scale})"
    if shape == 3:
        return f"{seg}{disp}(%rip)"
    if shape == 4:
        return f"{seg}{disp & 0x7FFFFFFF}"
    return f"{seg}{d}({base},{index})"


def test_random_addressing_matches_gnu_as():
    rng = np.random.Generator(np.random.PCG64(4096))
    lines = []
    for _ in range(600):
        m = _memory(rng)
        size = int(rng.choice([8, 16, 32, 64]))
        reg = "%" + {8: GPR8, 16: GPR16, 32: GPR32, 64: GPR64}[size][int(rng.integers(16))]
        form = int(rng.integers(4))
        suffix = {8: "b", 16: "w", 32: "l", 64: "q"}[size]
        if form == 0:
            lines.append(f"mov{suffix} {reg}, {m}")
        elif form == 1:
            lines.append(f"add{suffix} {m}, {reg}")
        elif form == 2:
            lo = -128 if size == 8 else -200
            lines.append(f"cmp{suffix} ${int(rng.integers(lo, 128 if size == 8 else 200))}, {m}")
        else:
            lines.append(f"lea {m.split(':')[-1]}, %{GPR64[int(rng.integers(16))]}")
    src = "\n".join(f"__t{i}: {ln}" for i, ln in enumerate(lines)) + f"\n__t{len(lines)}:\n"
    ours = assemble(src, divide=True)
    text, _, syms = gas.run_gas(src, BASE)
    by_line = {ln.line: ln.data for ln in ours.lines}
    bad = []
    for i, ln in enumerate(lines):
        want = text[syms[f"__t{i}"] - BASE:syms[f"__t{i + 1}"] - BASE]
        if by_line[i + 1] != want:
            bad.append(f"{ln:<45} xenlab {by_line[i + 1].hex(' ')} gas {want.hex(' ')}")
    assert not bad, f"{len(bad)} differ:\n" + "\n".join(bad[:30])
