"""ENTER and CMPXCHG16B, checked against the SDM's pseudo-code (unicorn's
CPU model has no CMPXCHG16B; ENTER is also compared with it)."""

import pytest

from xenlab.machine import run_snippet

from .harness import DATA, HAVE_AS, Pair, assemble

pytestmark = pytest.mark.skipif(not HAVE_AS, reason="GNU as not installed")
STACK = 0x3F00000


def run(text, **regs):
    return run_snippet(assemble(text), regs=regs, data={DATA: bytes(range(64))})


def q(r, addr):
    return int.from_bytes(r.read(addr, 8), "little")


def test_enter_level_0_is_push_rbp_mov_sub():
    r = run("enter $0x20, $0", rbp=0x1234)
    assert r.exit == "end"
    assert q(r, STACK - 8) == 0x1234
    assert r.regs["rbp"] == STACK - 8 and r.regs["rsp"] == STACK - 8 - 0x20


def test_enter_level_2_copies_the_outer_frame_pointer():
    # an outer frame at 0x3EFFF00 whose saved frame pointer slot (rbp - 8) holds 0xAAAA
    r = run("movq $0xAAAA, -8(%rbp)\nenter $0x10, $2", rbp=0x3EFFF00)
    assert r.exit == "end"
    assert q(r, STACK - 8) == 0x3EFFF00                  # pushed RBP
    assert q(r, STACK - 16) == 0xAAAA                     # copied outer frame pointer
    assert q(r, STACK - 24) == STACK - 8                  # the new frame pointer
    assert r.regs["rbp"] == STACK - 8 and r.regs["rsp"] == STACK - 24 - 0x10


@pytest.mark.parametrize("level", [0, 1, 3])
def test_enter_leave_agree_with_unicorn(level):
    p = Pair()
    code = assemble(f"movq $0x77, -8(%rbp)\nmovq $0x66, -16(%rbp)\nenter $0x18, ${level}\n"
                    "movq %rsp, %rax\nmovq %rbp, %rbx\nleave")
    p.compare(code, {"rbp": 0x201800, "rsp": STACK, "r15": DATA}, bytes(0x1000), 0)


def test_cmpxchg16b_equal_stores_rcx_rbx_and_sets_zf():
    r = run("movq (%rdi), %rax\nmovq 8(%rdi), %rdx\nlock cmpxchg16b (%rdi)",
            rdi=DATA + 16, rbx=0x1111, rcx=0x2222)
    assert r.exit == "end" and r.regs["rflags"] & 0x40
    assert q(r, DATA + 16) == 0x1111 and q(r, DATA + 24) == 0x2222


def test_cmpxchg16b_unequal_loads_rdx_rax_and_clears_zf():
    r = run("xorl %eax, %eax\nxorl %edx, %edx\ncmpxchg16b (%rdi)", rdi=DATA + 16,
            rbx=0x1111, rcx=0x2222)
    assert r.exit == "end" and not r.regs["rflags"] & 0x40
    assert r.regs["rax"] == int.from_bytes(bytes(range(16, 24)), "little")
    assert r.regs["rdx"] == int.from_bytes(bytes(range(24, 32)), "little")
    assert r.read(DATA + 16, 16) == bytes(range(16, 32))


def test_cmpxchg16b_needs_16_byte_alignment():
    r = run("cmpxchg16b (%rdi)", rdi=DATA + 8)
    assert (r.exit, r.vector, r.error_code) == ("exception", 13, 0)


def test_cpuid_says_cmpxchg16b_is_there():
    r = run("movl $1, %eax\ncpuid")
    assert r.regs["rcx"] & (1 << 13)
