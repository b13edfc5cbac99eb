"""Port exits the hot loop takes itself (hot.port_exit, finished by the next run
without executing the IN/OUT again) against the general path's, and the
vCPU's entry block (entry.py): rebuilt when the pool grows, never shared by a
copy."""

import copy

import pytest

from xenlab.machine.snippet import CODE, snippet_vcpu

from .harness import HAVE_AS, assemble

pytestmark = pytest.mark.skipif(not HAVE_AS, reason="GNU as not installed")

FORMS = [
    ("outb %al, $0x70", True, 1), ("outw %ax, $0x70", True, 2), ("outl %eax, $0x70", True, 4),
    ("outb %al, %dx", True, 1), ("outl %eax, %dx", True, 4),
    ("inb $0x70, %al", False, 1), ("inw $0x70, %ax", False, 2), ("inl $0x70, %eax", False, 4),
    ("inb %dx, %al", False, 1), ("inw %dx, %ax", False, 2), ("inl %dx, %eax", False, 4),
]


class Cmos:
    """Answers reads with a fixed pattern and logs every access."""

    def __init__(self):
        self.log = []

    def io_read(self, port, size):
        self.log.append(("in", port, size))
        return 0x8899AABB

    def io_write(self, port, size, value):
        self.log.append(("out", port, size, value))


PRELUDE = "movq $0x1122334455667788, %rax\nmovw $0x70, %dx"
AT = CODE + len(assemble(PRELUDE))           # where the IN/OUT sits


def _vcpu(insn: str, general: bool):
    v = snippet_vcpu(assemble(f"{PRELUDE}\n{insn}\nnop\nhlt"))
    dev = Cmos()
    v.ports.claim(0x70, 4, dev, "cmos")
    v.io_exit_all = general          # every access exits on the general path
    return v, dev


def _steps(v, dev, complete: bool):
    ex = v.run()
    first = (ex.reason, ex.port, ex.size, ex.write, ex.value, ex.rip, ex.count)
    if complete and not ex.write:
        v.complete(dev.io_read(ex.port, ex.size) & ((1 << 8 * ex.size) - 1))
    ex = v.run()
    return first, (ex.reason, ex.count, v.get("rip"), v.get("rax"), v.get("icount"))


@pytest.mark.parametrize("insn,out,size", FORMS)
@pytest.mark.parametrize("complete", [True, False])
def test_hot_loop_port_exit_matches_the_general_path(insn, out, size, complete):
    fast_v, fast_dev = _vcpu(insn, general=False)
    slow_v, slow_dev = _vcpu(insn, general=True)
    fast = _steps(fast_v, fast_dev, complete)
    slow = _steps(slow_v, slow_dev, complete)
    assert fast == slow
    (reason, port, sz, write, value, rip, _), (end, _, _, rax, _) = fast
    assert (reason, port, sz, write, end) == ("io", 0x70, size, out, "hlt")
    assert rip == AT                          # the exit leaves RIP at the IN/OUT
    if out:
        assert value == 0x1122334455667788 & ((1 << 8 * size) - 1)
        assert rax == 0x1122334455667788
    else:
        got = 0x8899AABB if complete else 0xFFFFFFFF
        bits = (1 << 8 * size) - 1
        keep = 0 if size == 4 else 0x1122334455667788 & ~bits   # EAX zero-extends
        assert rax == keep | (got & bits)


def test_moving_rip_after_an_in_exit_drops_the_pending_read():
    v, dev = _vcpu("inb $0x70, %al", general=False)
    assert v.run().reason == "io"
    v.complete(0x42)
    v.set("rip", AT + 2)                      # skip the IN: its value goes nowhere
    assert v.run().reason == "hlt"
    assert v.get("rax") == 0x1122334455667788


def test_breakpoint_after_a_port_exit_stops_there():
    v, dev = _vcpu("outb %al, $0x70", general=False)
    v.breakpoints.add(AT + 2)                 # the nop after the OUT
    assert v.run().reason == "io"
    ex = v.run()
    assert (ex.reason, ex.rip, ex.count) == ("breakpoint", AT + 2, 1)
    assert v.run().reason == "hlt"


def test_run_native_serves_a_loop_of_exits_and_counts_them():
    v = snippet_vcpu(assemble("movl $1000, %ecx\n1: outb %al, $0x70\ninb $0x71, %al\n"
                              "incb %al\ndecl %ecx\njnz 1b\nhlt"))
    dev = Cmos()
    v.ports.claim(0x70, 2, dev, "cmos")
    ex = v.run_native()
    assert ex.reason == "hlt" and ex.count == 1 + 5 * 1000 + 1
    assert len(dev.log) == 2000
    assert dev.log[0] == ("out", 0x70, 1, 0) and dev.log[2] == ("out", 0x70, 1, 0xBC)
    assert v.get("rax") & 0xFF == 0xBC


class Dma:
    """On an OUT, writes a word into each of ``frames`` fresh frames (more than
    the pool's headroom, so the pool is reallocated while the vCPU is out)."""

    def __init__(self, memory, frames):
        self.memory, self.frames = memory, frames

    def io_read(self, port, size):
        return 0

    def io_write(self, port, size, value):
        for i in range(self.frames):
            self.memory.write64(0x10000000 + (i << 12), 0x5A5A0000 + i)


def test_pool_growth_during_run_native_repoints_the_entry_block():
    v = snippet_vcpu(assemble("outb %al, $0x90\nmovq (%rbx), %rax\nmovq $7, (%rcx)\nhlt"))
    from xenlab.machine.memory import HEADROOM
    frames = v.memory.capacity_frames + HEADROOM
    v.ports.claim(0x90, 1, Dma(v.memory, frames), "dma")
    v.set("rbx", 0x200000)
    v.set("rcx", 0x208000)
    v.memory.write64(0x200000, 0x1234)
    before = v.memory.arrays
    ex = v.run_native()
    assert ex.reason == "hlt"
    assert v.memory.arrays is not before      # the pool was replaced while out
    assert v.get("rax") == 0x1234             # loads read the new pool ...
    assert v.memory.read64(0x208000) == 7     # ... and stores land in it
    assert v.memory.read64(0x10000000 + ((frames - 1) << 12)) == 0x5A5A0000 + frames - 1


def test_a_copied_vcpu_builds_its_own_entry_block():
    v, dev = _vcpu("outb %al, $0x70", general=False)
    assert v.run().reason == "io"
    assert v._entries
    shared = (v.memory, v.cache, v.regs, v._breakpoints, v._intercept)  # as Stage._memo
    w = copy.deepcopy(v, {id(o): o for o in shared})
    assert not w._entries
    assert w.run().reason == "hlt"
    assert v.get("rip") == AT                 # the original did not move
    assert v.run().reason == "hlt"


def test_stubs_called_in_turn_and_a_breakpoint_added_later():
    """vcpu.call keeps a breakpoint array (and entry block) per stop address; a
    breakpoint set afterwards must still be honoured by the next call."""
    v = snippet_vcpu(assemble("hlt"))
    inc, dec = 0x300000, 0x300010
    v.memory.write_bytes(inc, assemble("incq %rax\nincq %rax\nnop"))
    v.memory.write_bytes(dec, assemble("decq %rbx\nnop"))
    v.set("rax", 0)
    v.set("rbx", 100)
    for _ in range(5):
        assert v.call(inc, stop_at=inc + 6).reason == "breakpoint"
        assert v.call(dec, stop_at=dec + 3).reason == "breakpoint"
    assert (v.get("rax"), v.get("rbx")) == (10, 95)
    assert len(v._entries) <= 3
    v.breakpoints.add(inc + 3)                # between the two incq
    ex = v.call(inc, stop_at=inc + 6)
    assert (ex.reason, ex.rip) == ("breakpoint", inc + 3)
    assert v.get("rax") == 11
    v.breakpoints.clear()
    assert v.call(inc, stop_at=inc + 6).rip == inc + 6 and v.get("rax") == 13
