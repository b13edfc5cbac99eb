"""The exit protocol: io/mmio completion (REP INS/OUTS too), breakpoints,
budget, irq windows, injected events, SYSCALL exits, stub calls, self-modifying
code and several vCPUs on one memory."""

import pytest

from xenlab.machine import regs as R
from xenlab.machine.cpu import Vcpu
from xenlab.machine.snippet import CODE, snippet_vcpu

from .harness import HAVE_AS, assemble
from .native import Native, USER

pytestmark = pytest.mark.skipif(not HAVE_AS, reason="GNU as not installed")


class Recorder:
    def __init__(self, reads=()):
        self.log = []
        self.reads = list(reads)

    def io_read(self, port, size):
        self.log.append(("in", port, size))
        return self.reads.pop(0)

    def io_write(self, port, size, value):
        self.log.append(("out", port, size, value))

    def mmio_read(self, off, size):
        self.log.append(("r", off, size))
        return self.reads.pop(0)

    def mmio_write(self, off, size, value):
        self.log.append(("w", off, size, value))


def vcpu_for(text, **kw):
    return snippet_vcpu(assemble(text + "\nhlt"), **kw)


def test_out_exit_then_resume_retires_it():
    v = vcpu_for("movb $0x41, %al\noutb %al, $0x60\nmovb $1, %bl")
    v.ports.claim(0x60, 1, Recorder(), "kbd")
    ex = v.run()
    assert (ex.reason, ex.port, ex.size, ex.write, ex.value) == ("io", 0x60, 1, True, 0x41)
    assert v.get("rip") == CODE + 2                  # RIP still at the OUT
    ex = v.run()
    assert ex.reason == "hlt" and v.get("rbx") & 0xFF == 1


def test_in_exit_completes_with_the_supplied_value():
    v = vcpu_for("movw $0x3f8, %dx\ninl %dx, %eax")
    v.ports.claim(0x3F8, 8, Recorder(), "uart")
    ex = v.run()
    assert (ex.reason, ex.port, ex.size, ex.write) == ("io", 0x3F8, 4, False)
    v.complete(0xDEADBEEF)
    assert v.run().reason == "hlt" and v.get("rax") == 0xDEADBEEF


def test_rep_outsb_and_insb_exit_per_element_and_complete():
    v = vcpu_for("movw $0x80, %dx\nleaq 0x200000, %rsi\nmovl $3, %ecx\nrep outsb\n"
                 "leaq 0x201000, %rdi\nmovl $2, %ecx\nrep insb",
                 data={0x200000: b"abc"})
    dev = Recorder(reads=[0x11, 0x22])
    v.ports.claim(0x80, 1, dev, "post")
    ex = v.run_native()
    assert ex.reason == "hlt"
    assert dev.log == [("out", 0x80, 1, 0x61), ("out", 0x80, 1, 0x62), ("out", 0x80, 1, 0x63),
                       ("in", 0x80, 1), ("in", 0x80, 1)]
    assert v.memory.read_bytes(0x201000, 2) == b"\x11\x22"
    assert v.get("rcx") == 0 and v.get("rdi") == 0x201002


def test_raw_rep_outs_exits_report_string_and_rep():
    v = vcpu_for("movw $0x80, %dx\nleaq 0x200000, %rsi\nmovl $2, %ecx\nrep outsw",
                 data={0x200000: b"\x01\x02\x03\x04"})
    v.ports.claim(0x80, 2, Recorder(), "post")
    ex = v.run()
    assert (ex.reason, ex.string, ex.rep, ex.value, ex.size) == ("io", True, True, 0x0201, 2)
    ex = v.run()
    assert ex.value == 0x0403 and v.get("rcx") == 1
    assert v.run().reason == "hlt" and v.get("rcx") == 0


def test_unclaimed_ports_are_answered_without_an_exit_unless_asked():
    v = vcpu_for("inb $0x80, %al\noutb %al, $0x80")
    assert v.run().reason == "hlt" and v.get("rax") & 0xFF == 0xFF
    v = vcpu_for("inb $0x80, %al\noutb %al, $0x80")
    v.io_exit_all = True
    assert v.run().reason == "io"


def test_mmio_read_modify_write_takes_a_read_exit_then_a_write_exit():
    v = vcpu_for("movq $0xfee00000, %rax\naddl $5, 0x20(%rax)\nmovl 0x30(%rax), %ebx")
    dev = Recorder(reads=[10, 0x77])
    v.mmio.map(0xFEE00000, 0x1000, dev, "lapic")
    # the identity map covers 64 MiB: map the MMIO page too
    from xenlab.machine.snippet import TABLES
    pt = TABLES + 0x3000
    v.memory.write64(TABLES + 0x8 * 3, (TABLES + 0x4000_0) | 7) if False else None
    mapped = _map_page(v, 0xFEE00000, 0xFEE00000)
    ex = v.run()
    assert (ex.reason, ex.addr, ex.size, ex.write) == ("mmio", 0xFEE00020, 4, False)
    v.complete(10)
    ex = v.run()
    assert (ex.reason, ex.addr, ex.write, ex.value) == ("mmio", 0xFEE00020, True, 15)
    ex = v.run()
    assert (ex.reason, ex.addr, ex.write) == ("mmio", 0xFEE00030, False)
    v.complete(0x77)
    assert v.run().reason == "hlt" and v.get("rbx") == 0x77


def _map_page(v, va, pa):
    """Add a 4 KiB mapping to the snippet tables (new tables above 0x3FF0000)."""
    from xenlab.machine.pte import PTE_P, PTE_RW
    m = v.memory
    nxt = [0x3FF0000]
    table = v.get("cr3") & ~0xFFF
    for shift in (39, 30, 21):
        ea = table + 8 * ((va >> shift) & 511)
        e = m.read64(ea)
        if not e & 1:
            e = nxt[0] | PTE_P | PTE_RW
            nxt[0] += 0x1000
            m.write64(ea, e)
        table = e & 0xFFFFFFFFF000
    m.write64(table + 8 * ((va >> 12) & 511), pa | PTE_P | PTE_RW)
    return True


def test_mmio_through_run_native_goes_to_the_device():
    v = vcpu_for("movq $0xfee00000, %rax\nmovl $0x1234, 0x80(%rax)\nmovl 0x84(%rax), %ecx")
    dev = Recorder(reads=[0x55])
    v.mmio.map(0xFEE00000, 0x1000, dev, "lapic")
    _map_page(v, 0xFEE00000, 0xFEE00000)
    assert v.run_native().reason == "hlt"
    assert dev.log == [("w", 0x80, 4, 0x1234), ("r", 0x84, 4)] and v.get("rcx") == 0x55


def test_breakpoint_exits_before_the_instruction_and_resume_executes_it():
    v = vcpu_for("movq $1, %rax\nmovq $2, %rax\nmovq $3, %rax")
    v.breakpoints.add(CODE + 7)
    ex = v.run()
    assert (ex.reason, ex.rip) == ("breakpoint", CODE + 7) and v.get("rax") == 1
    ex = v.run()
    assert ex.reason == "hlt" and v.get("rax") == 3


def test_int3_intercepted_is_a_breakpoint_exit_at_the_int3():
    v = vcpu_for("nop\nint3\nnop")
    ex = v.run()
    assert (ex.reason, ex.vector, ex.rip) == ("breakpoint", 3, CODE + 1)


def test_budget_exit_and_resume():
    v = vcpu_for("movl $100, %ecx\n1: decl %ecx\njnz 1b")
    ex = v.run(max_instructions=51)
    assert ex.reason == "budget" and ex.count == 51 and v.get("rcx") == 75
    assert v.run().reason == "hlt" and v.get("rcx") == 0
    assert v.get("icount") == 1 + 200 + 1


def test_irq_exit_waits_for_if_and_the_sti_shadow():
    n = Native()
    n.handler(0x40, "movq $0x40, %r9\niretq")
    v = n.v
    v.irq_pending = True
    ex = n.run_code("movq $1, %rax\nsti\nmovq $2, %rax\nmovq $3, %rax\nhlt", cpl=0,
                    rflags=0x2)
    # one instruction after STI runs before the window opens
    assert ex.reason == "irq" and v.get("rax") == 2
    v.irq_pending = False
    v.inject_interrupt(0x40)
    ex = v.run()
    assert ex.reason == "hlt" and v.get("r9") == 0x40 and v.get("rax") == 3


def test_injected_exception_goes_through_the_idt_even_if_intercepted():
    n = Native()
    n.handler(13, "movq (%rsp), %r10\nhlt")
    v = n.v
    v.intercept = {13}
    n.run_code("nop\nnop\nhlt", cpl=0, max_instructions=1)
    v.inject_exception(13, 0x18)
    assert v.run().reason == "hlt" and v.get("r10") == 0x18


def test_call_runs_a_stub_and_returns_quickly():
    v = vcpu_for("nop")
    stub = assemble("inb %dx, %al")
    v.memory.write_bytes(0x300000, stub + b"\x90")
    dev = Recorder(reads=[0x5A])
    v.ports.claim(0x71, 1, dev, "cmos")
    ex = v.call(0x300000, {"rdx": 0x71}, stop_at=0x300000 + len(stub))
    assert ex.reason == "breakpoint" and v.get("rax") & 0xFF == 0x5A


def test_self_modifying_code_sees_the_new_bytes():
    # patch the immediate of a later instruction, then run it (twice, via a loop)
    text = ("movl $2, %ecx\n"
            "1: movq $0, %rax\n"
            "leaq 1b(%rip), %rdx\n"
            "movl $0x99, 3(%rdx)\n"
            "decl %ecx\njnz 1b")
    v = vcpu_for(text)
    assert v.run().reason == "hlt"
    assert v.get("rax") == 0x99


def test_python_writes_to_executed_code_are_seen():
    v = vcpu_for("movq $1, %rax")
    assert v.run().reason == "hlt" and v.get("rax") == 1
    v.memory.write_bytes(CODE, assemble("movq $2, %rax\nhlt"))
    v.set("rip", CODE)
    assert v.run().reason == "hlt" and v.get("rax") == 2


def test_two_vcpus_share_memory_and_code_invalidation():
    a = vcpu_for("movq $1, %rax")
    b = Vcpu(a.memory, a.ports, a.mmio, index=1)
    b.state[:] = a.state
    b.set("cr3", a.get("cr3"))
    assert a.run().reason == "hlt" and a.get("rax") == 1       # caches CODE's page
    # b writes new code through its own TLB
    b.memory.write_bytes(0x300000, assemble(f"movq $0x{CODE:x}, %rdi\nmovb $2, 3(%rdi)\nhlt"))
    b.set("rip", 0x300000)
    assert b.run().reason == "hlt"
    a.set("rip", CODE)
    assert a.run().reason == "hlt" and a.get("rax") == 2


def test_hlt_exit_leaves_rip_after_the_hlt():
    v = vcpu_for("nop")
    assert v.run().reason == "hlt" and v.get("rip") == CODE + 2


def test_bad_register_name_is_a_clear_error():
    v = vcpu_for("nop")
    with pytest.raises(KeyError, match="no register 'rxx'"):
        v.get("rxx")
    with pytest.raises(ValueError, match="vector 300"):
        v.inject_interrupt(300)


def test_a_deep_copied_vcpu_reports_its_own_exits():
    """Lab snapshots deep-copy vCPUs: the copy's exit details must be read from
    the copy's state, not from an array left behind by the copy."""
    import copy
    v = vcpu_for("movb $0x41, %al\noutb %al, $0x60\nmovb $1, %bl")
    v.ports.claim(0x60, 1, Recorder(), "kbd")
    shared = (v.memory, v.cache, v.regs, v._breakpoints, v._intercept)  # as Stage._memo
    w = copy.deepcopy(v, {id(o): o for o in shared})
    ex = w.run()
    assert (ex.reason, ex.port, ex.value) == ("io", 0x60, 0x41)
    assert w.xi.base is w.state or w.xi.base is w.state.base
    assert v.run().reason == "io"
