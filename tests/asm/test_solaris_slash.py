"""The Solaris assembler's '/' comment (the story's gas fix was --divide)."""

from __future__ import annotations

import pytest

from xenlab.asm import assemble, disasm

from . import gas

EXAMPLE = "movq $(4096/8), %rax"


def test_the_example_silently_loads_the_wrong_constant():
    wrong = assemble(EXAMPLE)
    right = assemble(EXAMPLE, divide=True)
    assert wrong.text == assemble("movq $4096, %rax", divide=True).text
    assert right.text == assemble("movq $512, %rax", divide=True).text
    assert wrong.text != right.text
    # both are valid instructions of the same shape
    (_, _, m1, o1), = disasm(wrong.text, 0)
    (_, _, m2, o2), = disasm(right.text, 0)
    assert (m1, o1) == ("movq", "$0x1000, %rax") and (m2, o2) == ("movq", "$0x200, %rax")
    # and the program records which text the comment swallowed
    assert [(c.line, c.text) for c in wrong.slash_comments] == [(1, "/8")]
    assert right.slash_comments == []


def test_divide_mode_matches_gnu_as_divide():
    text, _, _ = gas.run_gas(EXAMPLE, 0x100000, divide=True)
    assert assemble(EXAMPLE, divide=True).text == text


@pytest.mark.parametrize("src,expect", [
    # no parentheses around the '/': the rest of the line is gone, exactly as in gas
    (".quad 4096/8", ".quad 4096"),
    (".set N, 4096/8\nmovq $N, %rcx", "movq $4096, %rcx"),
    ("movq %rax, 4096/8(%rbx)", "movq %rax, 4096"),
    ("addq $8, %rsp / pop the frame", "addq $8, %rsp"),
    # inside parentheses the comment ends at the closing ')'
    ("movq $((4096/8)*2), %rax", "movq $((4096)*2), %rax"),
    ("movq $(4096/(2*4)), %rax", "movq $(4096), %rax"),
    ("leaq (64/8)(%rsp), %rdi", "leaq (64)(%rsp), %rdi"),
    # a '/' at the start of a line is a comment in both modes
    ("/ Solaris-style comment\nnop", "nop"),
    # strings and character constants keep their '/'
    ('.ascii "a/b"', '.ascii "a/b"'),
    ("movb $'/', %al", "movb $47, %al"),
])
def test_slash_rule(src, expect):
    assert assemble(src).text == assemble(expect, divide=True).text


def test_division_survives_with_divide():
    assert assemble(".quad 4096/8", divide=True).text == (512).to_bytes(8, "little")
    assert assemble("/ comment line\n.quad 9/2", divide=True).text == (4).to_bytes(8, "little")


BOOT_STUB = """
# fill a page table's entries with a counter: one entry per 8 bytes of a 4 KiB page
_start:
    movq $(4096/8), %rcx        # number of entries
    movq $table, %rdi
    xorl %eax, %eax
1:  movq %rax, (%rdi)
    addq $8, %rdi
    incq %rax
    decq %rcx
    jnz 1b
    hlt
.data
.align 4096
table: .skip 8 * 4096
"""


def test_boot_stub_computes_the_wrong_count_under_unicorn():
    """Run the stub on an independent CPU: without --divide it writes 4096 entries, not 512."""
    unicorn = pytest.importorskip("unicorn")
    from unicorn import x86_const as X

    def run(prog):
        mu = unicorn.Uc(unicorn.UC_ARCH_X86, unicorn.UC_MODE_64)
        size = (prog.end - prog.base + 0xFFF) & ~0xFFF
        mu.mem_map(prog.base, size)
        mu.mem_write(prog.base, prog.image())
        hlt = prog.addresses[".text"] + prog.text.index(b"\xf4")
        mu.emu_start(prog.entry, hlt, count=100_000)
        table = prog.symbols["table"]
        mem = bytes(mu.mem_read(table, 8 * 4096))
        used = [int.from_bytes(mem[i:i + 8], "little") for i in range(0, len(mem), 8)]
        return mu.reg_read(X.UC_X86_REG_RAX), used

    rax_wrong, wrong = run(assemble(BOOT_STUB))
    rax_right, right = run(assemble(BOOT_STUB, divide=True))
    assert rax_right == 512 and right[:512] == list(range(512)) and not any(right[512:])
    assert rax_wrong == 4096 and wrong == list(range(4096))
