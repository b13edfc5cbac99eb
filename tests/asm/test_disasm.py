"""Disassembly through capstone, and the round trip assemble -> disassemble -> assemble."""

from __future__ import annotations

from xenlab.asm import assemble, disasm, disasm_text

from .samples import EDGE_CASES, HEAD, TAIL, all_lines


def _program(lines):
    src = HEAD + "\n".join(lines) + "\n" + TAIL
    prog = assemble(src, divide=True)
    first = HEAD.count("\n") + 1
    by_line = {ln.line: ln for ln in prog.lines}
    return [(line, by_line[first + i]) for i, line in enumerate(lines)]


def test_round_trip_through_capstone():
    lines = [ln for _, ln in all_lines()] + [e for e in EDGE_CASES if e.split()[0].rstrip(";")
                                             not in ("rep", "lock", "repne")]
    failures = []
    for line, ll in _program(lines):
        decoded = disasm(ll.data, ll.address)
        if len(decoded) != 1 or decoded[0][1] != ll.data:
            failures.append(f"{line}: capstone split {ll.data.hex(' ')} as {decoded}")
            continue
        addr, raw, mnem, ops = decoded[0]
        if raw == b"\x66\x90":
            assert mnem == "nop"          # capstone calls 'xchg %ax,%ax' a nop; 90 would lose the 66
            continue
        again = assemble(f"{mnem} {ops}", base=addr, divide=True).text
        if ll.forms and ll.forms[0].rel:
            # a branch to a number is always the 32-bit form (as in gas); compare where it goes
            again_dec = disasm(again, addr)[0]
            if again_dec[3] != ops:
                failures.append(f"{line}: target {ops} came back as {again_dec[3]}")
        elif again != raw:
            failures.append(f"{line}: {raw.hex(' ')} -> {mnem} {ops} -> {again.hex(' ')}")
    assert not failures, f"{len(failures)} of {len(lines)} lines:\n" + "\n".join(failures[:40])


def test_disasm_text_and_bad_bytes():
    prog = assemble("_start: movq $1, %rax\nhlt\n.byte 0x06\nnop", base=0x2000)
    rows = disasm(prog.text, 0x2000)
    assert rows[0] == (0x2000, bytes.fromhex("48c7c001000000"), "movq", "$1, %rax")
    assert rows[1][2] == "hlt"
    assert rows[2] == (0x2008, b"\x06", ".byte", "0x06")       # PUSH ES does not exist in 64-bit mode
    assert rows[3][0] == 0x2009 and rows[3][2] == "nop"
    text = disasm_text(prog.text, 0x2000)
    assert text.splitlines()[0].split() == ["0x0000000000002000", "48", "c7", "c0", "01", "00", "00",
                                            "00", "movq", "$1,", "%rax"]
    assert len(text.splitlines()) == 4
    assert len(disasm(prog.text, 0x2000, count=2)) == 2
    assert disasm(b"", 0) == [] and disasm_text(b"") == ""
