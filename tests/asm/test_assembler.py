"""Directives, expressions, labels, the listing and error messages of xenlab.asm."""

from __future__ import annotations

import pytest

from xenlab.asm import AsmError, assemble

from . import gas

BASE = 0x100000

EXPRESSIONS = [
    "1 + 3 & 2", "7 - 2 | 1", "-7 / 2", "-7 % 2", "7 % -2", "2 * 3 << 1", "1 << 63", "-16 >> 2",
    "~0", "~0x0f & 0xff", "(1 + 2) * 3", "1 + 2 * 3", "0x10 ^ 0x11", "010", "0b1011", "'a'",
    "'a + 1", "-(3 - 10)", "100 / 7 * 7 + 100 % 7", "0xffffffffffffffff + 2", "4096 / 8",
    "1 << 12 | 1 << 3", "(PAGE - 1) & ~7", "PAGE * 2 - 1", "- - 5", "+5", "3 - 2 - 1",
    "64 / 4 / 2", "1 + 2 ^ 3",
]


def test_expressions_match_gnu_as():
    body = ".set PAGE, 4096\n" + "\n".join(f".quad {e}" for e in EXPRESSIONS)
    ours = assemble(body, divide=True)
    text, _, _ = gas.run_gas(body, BASE)
    got = [int.from_bytes(ours.text[i:i + 8], "little") for i in range(0, len(ours.text), 8)]
    want = [int.from_bytes(text[i:i + 8], "little") for i in range(0, len(text), 8)]
    assert len(got) == len(EXPRESSIONS)
    diffs = [f"{e!r}: xenlab {g:#x} gas {w:#x}" for e, g, w in zip(EXPRESSIONS, got, want) if g != w]
    assert not diffs, "\n".join(diffs)


def test_precedence_is_gas_not_c():
    q = lambda e: int.from_bytes(assemble(f".quad {e}", divide=True).text, "little", signed=True)
    assert q("1 + 3 & 2") == 3            # C would say 0
    assert q("2 * 3 << 1") == 12
    assert q("-7 / 2") == -3 and q("-7 % 2") == -1
    assert q("-16 >> 2") == 0x3FFFFFFFFFFFFFFC      # a logical shift of the 64-bit word


DIRECTIVES = """
.text
.globl _start
.set PAGE, 4096
.equ NPTE, PAGE/8
ENTRIES = NPTE * 2
_start:
1:  jmp 1f
    nop
1:  jmp 1b
2:  .long 2f - 2b, . - _start
2:  movq $NPTE, %rcx
    movq $ENTRIES, %rdx
    movq $msg, %rsi
    lea msg(%rip), %rdi
    jmp .
    .align 16, 0xcc
    .byte 1, 2, -1, 'a', 0x7f
    .word 0xffff, -32768
    .short 7
    .int 0x12345678
    .quad end - _start, _start
    .ascii "ab", "c\\n"
    .asciz "x\\101\\x42"
    .string "tab\\there"
    .skip 3, 0xaa
    .space 2
    .zero 1
    .p2align 3, 0xcc
    .balign 4, 0xcc
end:
.section .data
msg: .asciz "hello"
.align 8
ptrs: .quad msg, end, 0
.long ptrs - msg
"""


def test_directives_match_gnu_as():
    ours = assemble(DIRECTIVES, divide=True)
    text, data, syms = gas.run_gas(DIRECTIVES, BASE, data_base=ours.addresses[".data"])
    assert ours.text == text
    assert ours.data == data
    for name in ("_start", "end", "msg", "ptrs"):
        assert ours.symbols[name] == syms[name], name
    assert ours.globals == {"_start"}


def test_directive_values_by_hand():
    p = assemble(DIRECTIVES, divide=True)
    assert p.symbols["PAGE"] == 4096 and p.symbols["NPTE"] == 512 and p.symbols["ENTRIES"] == 1024
    assert p.addresses[".text"] == BASE and p.symbols["_start"] == BASE
    # .data follows .text, aligned to 16 (or the biggest .align inside it)
    assert p.addresses[".data"] == -(-(BASE + len(p.text)) // 16) * 16
    msg = p.symbols["msg"] - p.addresses[".data"]
    assert p.data[msg:msg + 6] == b"hello\0"
    ptrs = p.symbols["ptrs"] - p.addresses[".data"]
    assert ptrs % 8 == 0
    assert int.from_bytes(p.data[ptrs:ptrs + 8], "little") == p.symbols["msg"]
    assert p.entry == p.symbols["_start"]
    img = p.image()
    assert img[:len(p.text)] == p.text
    assert img[p.addresses[".data"] - BASE:] == p.data


def test_base_moves_absolute_references_only():
    a = assemble(DIRECTIVES, base=0x100000, divide=True)
    b = assemble(DIRECTIVES, base=0x7000000, divide=True)
    assert len(a.text) == len(b.text)
    moved = {r.address - a.base for r in a.relocations}
    assert moved == {r.address - b.base for r in b.relocations}
    # bytes differ exactly inside the relocated fields
    for i, (x, y) in enumerate(zip(a.image(), b.image())):
        if x != y:
            assert any(r.address - a.base <= i < r.address - a.base + r.size for r in a.relocations), i
    exprs = {r.expr for r in a.relocations}
    assert "msg" in exprs and "_start" in exprs
    # '.long ptrs - msg' and 'lea msg(%rip)' do not move with the base
    assert all(not (r.pcrel and r.expr == "msg") for r in a.relocations)


def test_numeric_local_labels():
    p = assemble("""
    1:  nop
        jmp 1f
    1:  jmp 1b
        jmp 2f
    2:  jmp 1b
    1:  .quad 1b
    """)
    # first jmp 1f -> second '1:' at 0x103; 'jmp 1b' at 0x103 jumps to itself
    assert p.text[1:3] == bytes([0xEB, 0x00])
    assert p.text[3:5] == bytes([0xEB, 0xFE])
    assert p.text[5:7] == bytes([0xEB, 0x00])
    assert p.text[7:9] == bytes([0xEB, 0xFA])      # back to the '1:' at 0x103
    assert int.from_bytes(p.text[9:17], "little") == BASE + 9


def test_forward_and_backward_labels_and_relaxation():
    src = "top: jmp bottom\n" + "nop\n" * 200 + "bottom: jmp top\njne top\njmp bottom\n"
    p = assemble(src)
    assert p.text[0] == 0xE9                          # forward over 200 bytes: rel32
    end = len(p.text)
    assert p.text[end - 13] == 0xE9                   # back over 200 bytes: rel32
    assert p.text[end - 8:end - 6] == bytes([0x0F, 0x85])
    assert p.text[end - 2:] == bytes([0xEB, 0xF3])    # back to 'bottom': short


def test_set_can_be_redefined_in_order():
    p = assemble(".set X, 1\n.byte X\n.set X, X + 1\n.byte X\n.byte Y\n.set Y, 7\n")
    assert p.text == bytes([1, 2, 7])
    assert p.symbols["X"] == 2


def test_short_forms_only_for_constants_known_above():
    # like gas: a .set defined below the use gets the 32-bit immediate form
    above = assemble(".set K, 5\naddq $K, %rax\n")
    below = assemble("addq $K, %rax\n.set K, 5\n")
    assert above.text == bytes.fromhex("4883c005")
    assert below.text == bytes.fromhex("48050500 0000".replace(" ", ""))
    text, _, _ = gas.run_gas("addq $K, %rax\n.set K, 5\n", BASE)
    assert below.text == text


def test_listing_format():
    p = assemble("start:  movq $1, %rax   # one\n        .quad 1, 2\n\n        hlt\n")
    assert p.listing() == (
        "    1  00100000  48 c7 c0 01 00 00 00     start:  movq $1, %rax   # one\n"
        "    2  00100007  01 00 00 00 00 00 00 00          .quad 1, 2\n"
        "       0010000f  02 00 00 00 00 00 00 00\n"
        "    3\n"
        "    4  00100017  f4                               hlt\n")
    assert p.line_at(0x100008) == 2 and p.line_at(0x100017) == 4 and p.line_at(0x200000) is None
    assert [f.intel for f in p.lines[0].forms] == ["MOV"]


def test_statements_separated_by_semicolons():
    p = assemble("cli; hlt ; nop")
    assert p.text == bytes([0xFA, 0xF4, 0x90])


def test_c_comments_only_in_divide_mode():
    src = "/* a\n   block */ nop\nmovq $(8/2), %rax /* x */\n"
    assert assemble(src, divide=True).text == bytes.fromhex("9048c7c004000000")


ERRORS = [
    ("nop\n  movx %rax, %rbx\n", 2, "unknown instruction 'movx'"),
    ("addq $1, %rxx", 1, "unknown register %rxx"),
    ("nop\nnop\njmp nowhere", 3, "undefined symbol 'nowhere'"),
    ("jmp 1f\n", 1, "'1f' refers to a label '1:' below, but there is none"),
    ("jmp 1b\n1:\n", 1, "'1b' refers to a label '1:' above, but there is none"),
    ("a: nop\na: nop", 2, "symbol 'a' is already defined"),
    ("movq %rax", 1, "'movq' does not take (%rax)"),
    ("movl %rax, %ebx", 1, "'movl' does not take (%rax, %ebx)"),
    ("addb $300, %al", 1, "immediate 0x12c does not fit"),
    ("addq $0x80000000, %rax", 1, "does not fit in a signed 32-bit field"),
    ("movq $0x80000000, (%rax)", 1, "only movabsq takes a full 64-bit immediate"),
    ("incl (%rax)\ninc (%rax)", 2, "ambiguous"),
    ("lock movq %rax, (%rbx)", 1, "lock needs a read-modify-write"),
    ("lock addq %rax, %rbx", 1, "memory destination"),
    ("rep addq %rax, %rbx", 1, "rep/repe/repne only go before a string instruction"),
    ("movb %ah, %sil", 1, "%ah cannot be used in an instruction that needs a REX prefix"),
    (".foo 1", 1, "unknown directive '.foo'"),
    (".quad 1/0", 1, "division by zero"),
    ("movl $09, %eax", 1, "'09' is not an octal number"),
    ("movq (%eax), %rax", 1, "%eax cannot address memory in 64-bit code"),
    ("movq (%rax,%rsp), %rax", 1, "%rsp cannot be an index register"),
    ("movq (%rax,%rbx,3), %rax", 1, "scale 3"),
    ("movq $(1 + , %rax", 1, "unbalanced parentheses"),
    ("movq $(1 + ), %rax", 1, "unexpected ')' in the expression '(1 + )'"),
    (".quad 1 +", 1, "ends too early"),
    (".quad (1 + 2", 1, "missing ')'"),
    (".byte 256", 1, "does not fit in 8 bits"),
    (".section .bss", 1, "section '.bss' is not supported"),
    (".align 3", 1, "power of 2"),
    (".set X, Y\n.set Y, X\n.quad X", 3, "depends on itself"),
    ("jmp *$5", 1, "'*' cannot precede an immediate"),
    ("inb $0x60\nin $0x60", 2, "needs a size suffix"),
    ("mov %cr5, %rax", 1, "unknown register %cr5"),
    ("ljmp (%rax)", 1, "'ljmp' does not take"),
    ("sysret", 1, "unknown instruction 'sysret'"),
]


@pytest.mark.parametrize("src,line,words", ERRORS, ids=[e[2][:30] for e in ERRORS])
def test_errors_name_line_and_text(src, line, words):
    with pytest.raises(AsmError) as info:
        assemble(src, divide=True)
    e = info.value
    assert words in e.message
    assert e.line == line
    assert e.text == src.splitlines()[line - 1]
    assert str(e).startswith(f"line {line}: ")
    assert e.text.strip() in str(e)


def test_unknown_instruction_suggests_close_names():
    with pytest.raises(AsmError, match="did you mean.*movq"):
        assemble("movqq %rax, %rbx")
    with pytest.raises(AsmError, match="not in xenlab's instruction subset"):
        assemble("vzeroupper")


def test_sysret_and_iret_need_the_q_suffix():
    # gas reads bare 'sysret'/'iret' as the 32-bit forms; xenlab's subset has only the 64-bit ones
    assert assemble("sysretq").text == bytes.fromhex("480f07")
    assert assemble("iretq").text == bytes.fromhex("48cf")
    with pytest.raises(AsmError):
        assemble("iret")


def test_forward_constants_take_long_forms_like_gas():
    src = """
    movq X(%rbx), %rax
    movq X(%rip), %rax
    leaq Y(%rip), %rax
    shlq $X, %rax
    pushq $X
    imulq $X, %rax
    addq $X, (%rax)
    jmp X
    jne Y
    .set X, 8
    Y: nop
    """
    text, _, _ = gas.run_gas(src, BASE)
    assert assemble(src).text == text


def test_code_is_the_cached_image():
    from xenlab.asm import code
    a = code("inb %dx, %al\nhlt")
    assert a == bytes([0xEC, 0xF4]) and code("inb %dx, %al\nhlt") is a
    assert code(".quad 8/2", divide=True) == (4).to_bytes(8, "little")
    with pytest.raises(AsmError):
        code("bogus")
