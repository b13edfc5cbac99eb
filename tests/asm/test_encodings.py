"""Every form of the instruction table, assembled by xenlab.asm and by GNU as: same bytes."""

from __future__ import annotations

import pytest

from xenlab.asm import assemble, isa

from . import gas
from .samples import EDGE_CASES, HEAD, TAIL, all_lines

BASE = 0x100000


def _compare(lines: list[str]):
    """Assemble ``lines`` with both assemblers; return (listing lines of xenlab, mismatches)."""
    gas.require()
    src = HEAD + "\n".join(f"__t{i}: {ln}" for i, ln in enumerate(lines)) + f"\n__t{len(lines)}:\n" + TAIL
    ours = assemble(src, base=BASE, divide=True)
    text, data, syms = gas.run_gas(src, BASE, data_base=ours.addresses[".data"])
    assert ours.data == data, "the .data fixture differs"
    first = HEAD.count("\n") + 1
    by_line = {ln.line: ln for ln in ours.lines}
    bad = []
    for i, line in enumerate(lines):
        a, b = syms[f"__t{i}"] - BASE, syms[f"__t{i + 1}"] - BASE
        want = text[a:b]
        got = by_line[first + i].data
        if got != want:
            bad.append(f"{line:<40} xenlab {got.hex(' '):<36} gas {want.hex(' ')}")
    assert ours.text == text or bad, "the programs differ outside the compared lines"
    return ours, bad


def test_every_form_matches_gnu_as():
    pairs = all_lines()
    ours, bad = _compare([ln for _, ln in pairs])
    assert not bad, f"{len(bad)} of {len(pairs)} lines differ from GNU as:\n" + "\n".join(bad[:60])
    # and every form of the table was really the one chosen for some line
    first = HEAD.count("\n") + 1
    used = {f.index for ln in ours.lines for f in ln.forms}
    missing = [f.att + "  (" + f.encoding + ")" for f in isa.FORMS
               if f.group != "prefix" and f.index not in used]
    assert not missing, "forms never exercised:\n" + "\n".join(missing)
    assert first > 0


def test_edge_cases_match_gnu_as():
    _, bad = _compare(EDGE_CASES)
    assert not bad, f"{len(bad)} of {len(EDGE_CASES)} lines differ from GNU as:\n" + "\n".join(bad)


def test_prefix_forms_are_used_in_edge_cases():
    spelled = {ln.split()[0].rstrip(";") for ln in EDGE_CASES}
    for f in isa.FORMS:
        if f.group == "prefix":
            assert spelled & set(f.spellings), f"prefix {f.mnemonic} is never tested"


@pytest.mark.parametrize("n", [126, 127, 128, 129, 130])
def test_branch_relaxation_boundary_matches_gas(n):
    # a forward and a backward jump over n bytes: short while the displacement fits in a byte
    src = f"""
    start: jmp fwd
           jne fwd
    back:  .skip {n}
    fwd:   jmp back
           je back
           call back
    """
    ours = assemble(src, base=BASE)
    text, _, _ = gas.run_gas(src, BASE)
    assert ours.text == text
