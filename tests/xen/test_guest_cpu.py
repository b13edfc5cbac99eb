"""The real path: dom0 machine code on the CPU, hypercalls through the
hypercall page's SYSCALL, I/O instructions trapped and emulated, upcalls."""

import struct

import numpy as np
import pytest

from xenlab.machine import Machine
from xenlab.xen import KernelImage, Segment, Xen, abi, check_invariants

from .guestlib import Port80

KBASE = 0xFFFFFFFF80000000
HP = KBASE + 0x1000




class Asm:
    """Just enough x86-64 encoding for these tests (bytes from the SDM)."""

    def __init__(self, base):
        self.base, self.b = base, bytearray()

    @property
    def here(self):
        return self.base + len(self.b)

    def raw(self, bs):
        self.b += bs

    def mov_edi(self, v):
        self.b += b"\xbf" + struct.pack("<I", v)

    def mov_esi(self, v):
        self.b += b"\xbe" + struct.pack("<I", v)

    def lea(self, reg, target):          # lea target(%rip), reg (rsi=6, rdx=2, rdi=7)
        self.b += bytes([0x48, 0x8D, 0x05 | (reg << 3)])
        self.b += struct.pack("<i", target - (self.here + 4))

    def call(self, target):
        self.b += b"\xe8" + struct.pack("<i", target - (self.here + 5))

    def hypercall(self, nr):
        self.call(HP + 32 * nr)


def build(code: Asm, data: dict, *, debug=False):
    img = bytearray(0x4000)
    img[:len(code.b)] = code.b
    for off, raw in data.items():
        img[off:off + len(raw)] = raw
    m = Machine("256M")
    dev = Port80()
    m.ports.claim(0x80, 1, dev, "post")
    xen = Xen(m, debug=debug)
    xen.build_dom0(KernelImage([Segment(KBASE, bytes(img))], entry=KBASE, virt_base=KBASE,
                               hypercall_page=HP))
    xen.check_hook = check_invariants
    return xen, dev


def test_dom0_boots_hypercalls_iopl_and_shutdown():
    a = Asm(KBASE)
    a.mov_edi(abi.XENVER_version)
    a.hypercall(abi.HYPERVISOR_xen_version)
    a.raw(b"\x49\x89\xc7")                            # mov %rax,%r15
    a.mov_edi(abi.CONSOLEIO_write)
    a.mov_esi(6)
    a.lea(2, KBASE + 0x2000)
    a.hypercall(abi.HYPERVISOR_console_io)
    a.mov_edi(abi.PHYSDEVOP_set_iopl)
    a.lea(6, KBASE + 0x2010)
    a.hypercall(abi.HYPERVISOR_physdev_op)
    a.raw(b"\xb0\x42\xe6\x80")                        # mov $0x42,%al; out %al,$0x80
    a.raw(b"\xe4\x80\x49\x89\xc6")                    # in $0x80,%al; mov %rax,%r14
    a.mov_edi(abi.SCHEDOP_shutdown)
    a.lea(6, KBASE + 0x2020)
    a.hypercall(abi.HYPERVISOR_sched_op)
    a.raw(b"\xeb\xfe")
    xen, dev = build(a, {0x2000: b"hello\n", 0x2010: struct.pack("<I", 1),
                         0x2020: struct.pack("<I", abi.SHUTDOWN_poweroff)})
    xen.run(100_000)
    v = xen.dom0.vcpus[0]
    assert v.reg("r15") == 0x30001
    assert "hello" in xen.console
    assert dev.writes == [0x42], "OUT emulated by Xen under virtual IOPL 1"
    assert v.reg("r14") & 0xFF == 0x5A
    assert xen.shutdown == (0, abi.SHUTDOWN_poweroff)


def test_io_without_iopl_faults_and_crashes_dom0():
    a = Asm(KBASE)
    a.raw(b"\xb0\x42\xe6\x80\xeb\xfe")
    xen, dev = build(a, {})
    xen.run(10_000)
    assert dev.writes == []
    assert "Unhandled general protection fault/trap [#13] in domain 0" in xen.console
    assert xen.dom0.shutdown_reason == abi.SHUTDOWN_crash


def test_gp_handler_bounce_and_iret_on_the_cpu():
    """The guest installs a #GP handler, executes HLT (privileged: #GP), the
    handler counts, skips the instruction and returns with HYPERVISOR_iret."""
    a = Asm(KBASE)
    a.lea(7, KBASE + 0x2000)                          # rdi = trap table
    a.hypercall(abi.HYPERVISOR_set_trap_table)
    a.raw(b"\xf4")                                    # hlt -> #GP
    a.raw(b"\x49\x83\xc4\x01")                        # add $1,%r12 (after return)
    a.mov_edi(abi.SCHEDOP_shutdown)
    a.lea(6, KBASE + 0x2020)
    a.hypercall(abi.HYPERVISOR_sched_op)
    handler = KBASE + 0x300
    h = Asm(handler)
    # frame: rcx, r11, error code, rip, cs, rflags, rsp, ss
    h.raw(b"\x49\x83\xc5\x01")                        # add $1,%r13
    h.raw(b"\x48\x83\x44\x24\x18\x01")                # addq $1,0x18(%rsp): skip the hlt
    h.raw(b"\x48\x83\xc4\x08")                        # add $8,%rsp: drop the error code
    h.raw(b"\x59\x41\x5b")                            # pop %rcx; pop %r11 (iret re-pushes)
    h.raw(b"\x6a\x00")                                # push $0: flags (not in_syscall)
    h.raw(b"\xe9" + struct.pack("<i", (HP + 32 * abi.HYPERVISOR_iret) - (h.here + 5)))
    img = {0x300: bytes(h.b)}
    ti = np.zeros(2, dtype=abi.trap_info)
    ti[0] = (13, 0, abi.FLAT_KERNEL_CS, handler)
    img[0x2000] = ti.tobytes()
    img[0x2020] = struct.pack("<I", abi.SHUTDOWN_poweroff)
    xen, dev = build(a, img)
    xen.run(100_000)
    v = xen.dom0.vcpus[0]
    assert xen.shutdown == (0, abi.SHUTDOWN_poweroff), xen.console
    assert v.reg("r13") == 1 and v.reg("r12") == 1


def test_debug_build_refuses_bit11_from_guest_code():
    """update_va_mapping from machine code with PTE bit 11 set: -EINVAL under
    the debug build (the 2007 conflict), 0 under the release build."""
    results = {}
    for debug in (False, True):
        a = Asm(KBASE)
        a.lea(7, KBASE + 0x3000)                      # va: a page inside the image
        a.raw(b"\x48\x8b\x35" + struct.pack("<i", (KBASE + 0x2000) - (a.here + 7)))
        a.raw(b"\x31\xd2")                            # xor %edx,%edx (flags)
        a.hypercall(abi.HYPERVISOR_update_va_mapping)
        a.raw(b"\x49\x89\xc7")                        # mov %rax,%r15
        a.mov_edi(abi.SCHEDOP_shutdown)
        a.lea(6, KBASE + 0x2020)
        a.hypercall(abi.HYPERVISOR_sched_op)
        xen, _ = build(a, {0x2020: struct.pack("<I", 0)}, debug=debug)
        frame = int(xen.dom0.p2m[3])                  # the page at KBASE+0x3000 itself
        pte = (frame << 12) | 0x800 | 0x7             # P|RW|US + AVL bit 11
        xen.memory.write64((int(xen.dom0.p2m[2]) << 12), pte)
        xen.run(100_000)
        results[debug] = xen.dom0.vcpus[0].reg("r15")
    assert results[False] == 0
    assert results[True] == (-abi.EINVAL) & (2**64 - 1)


def test_interrupt_through_ioapic_to_pirq_event_upcall():
    """A device interrupt on a real machine profile: IOAPIC pin -> LAPIC -> CPU
    exit -> Xen -> PIRQ event channel -> upcall into dom0's event callback."""
    from .guestlib import Guest
    m = Machine.from_profile("qemu-i440fx", memory="512M")
    xen = Xen(m)
    a = Asm(KBASE)
    a.raw(b"\xeb\xfe")                                # jmp . (an idle kernel)
    cb = Asm(KBASE + 0x400)
    cb.raw(b"\x49\x83\xc5\x01")                       # add $1,%r13
    cb.mov_edi(abi.SCHEDOP_shutdown)
    cb.lea(6, KBASE + 0x2020)
    cb.hypercall(abi.HYPERVISOR_sched_op)
    img = bytearray(0x4000)
    img[:len(a.b)] = a.b
    img[0x400:0x400 + len(cb.b)] = cb.b
    img[0x2020:0x2024] = struct.pack("<I", 0)
    d = xen.build_dom0(KernelImage([Segment(KBASE, bytes(img))], entry=KBASE,
                                   virt_base=KBASE, hypercall_page=HP))
    xen.check_hook = check_invariants
    g = Guest(xen, d)
    irq = 5
    gsi = m.interrupts.isa_gsi(irq)[0]
    io, pin = m.interrupts.ioapic_for(gsi)
    # the pcplusmp path: a vector from Xen, the RTE through Xen, the PIRQ bound
    r = g.put(g.rec(abi.physdev_irq, irq=gsi))
    assert g.call(abi.HYPERVISOR_physdev_op, abi.PHYSDEVOP_alloc_irq_vector, r) == 0
    vector = int(np.frombuffer(g.get(r, 8), abi.physdev_irq)[0]["vector"])
    apic = g.rec(abi.physdev_apic, apic_physbase=io.address, reg=0x10 + 2 * pin, value=vector)
    assert g.call(abi.HYPERVISOR_physdev_op, abi.PHYSDEVOP_apic_write, g.put(apic)) == 0
    rd = g.put(g.rec(abi.physdev_apic, apic_physbase=io.address, reg=0x10 + 2 * pin))
    assert g.call(abi.HYPERVISOR_physdev_op, abi.PHYSDEVOP_apic_read, rd) == 0
    assert np.frombuffer(g.get(rd, 16), abi.physdev_apic)[0]["value"] & 0xFF == vector
    b = g.put(g.rec(abi.evtchn_bind_pirq, pirq=gsi, flags=0))
    assert g.call(abi.HYPERVISOR_event_channel_op, abi.EVTCHNOP_bind_pirq, b) == 0
    port = int(np.frombuffer(g.get(b, 12), abi.evtchn_bind_pirq)[0]["port"])
    assert g.call(abi.HYPERVISOR_set_callbacks, KBASE + 0x400, KBASE + 0x400, 0) == 0
    g.v.hw.state[16] = np.int64(KBASE - (1 << 64))   # RIP at the idle loop
    xen.write_vcpu_info(d, 0, "evtchn_upcall_mask", 0)
    # dom0 may not touch the IOAPIC page itself
    assert g.call(abi.HYPERVISOR_update_va_mapping, g.scratch + 0x40000,
                  (io.address & ~0xFFF) | 1, 0) == -abi.EINVAL
    xen.run(1000)                                     # idles: nothing pending
    assert g.v.reg("r13") == 0
    m.interrupts.isa_line(irq).set(True)              # the device raises its line
    xen.run(100_000)
    assert g.v.reg("r13") == 1, xen.console
    assert xen.shared_info(d)["evtchn_pending"][0] >> port & 1
    assert xen.shutdown == (0, 0)


def test_xen_console_goes_to_the_uart_and_dom0_may_not_touch_it():
    m = Machine.from_profile("qemu-i440fx", memory="512M")
    xen = Xen(m)
    a = Asm(KBASE)
    a.raw(b"\xeb\xfe")
    img = bytearray(0x4000)
    img[:2] = a.b
    d = xen.build_dom0(KernelImage([Segment(KBASE, bytes(img))], entry=KBASE,
                                   virt_base=KBASE, hypercall_page=HP))
    assert "LOADING DOMAIN 0" in m.console
    assert not d.ioports_permitted(0x3F8, 0x3F8)
    assert d.ioports_permitted(0x2F8, 0x2F8)


def test_second_vcpu_has_its_own_iopl():
    """VCPUOP_initialise + VCPUOP_up bring up vCPU 1; PHYSDEVOP_set_iopl on vCPU 0
    does not cover it (Xen keeps the virtual IOPL per vCPU), so its OUT faults."""
    from .guestlib import Guest
    m = Machine("256M", ncpus=2)
    dev = Port80()
    m.ports.claim(0x80, 1, dev, "post")
    xen = Xen(m)
    img = bytearray(0x4000)
    img[0:2] = b"\xeb\xfe"                                  # vCPU 0 idles
    img[0x100:0x106] = b"\xb0\x42\xe6\x80\xeb\xfe"          # vCPU 1: out %al,$0x80
    img[0x200:0x206] = b"\x49\x83\xc5\x01\xeb\xfe"          # #GP handler: add $1,%r13
    d = xen.build_dom0(KernelImage([Segment(KBASE, bytes(img))], entry=KBASE,
                                   virt_base=KBASE, hypercall_page=HP), nr_vcpus=2)
    xen.check_hook = check_invariants
    g = Guest(xen, d)
    assert g.call(abi.HYPERVISOR_physdev_op, abi.PHYSDEVOP_set_iopl,
                  g.put(g.rec(abi.physdev_set_iopl, iopl=1))) == 0
    ctx = np.zeros((), dtype=abi.vcpu_guest_context)
    ctx["flags"] = abi.VGCF_in_kernel
    ctx["user_regs"]["rip"] = KBASE + 0x100
    ctx["user_regs"]["rsp"] = g.alloc(4096) + 4096
    ctx["user_regs"]["cs"] = abi.FLAT_KERNEL_CS
    ctx["user_regs"]["ss"] = abi.FLAT_KERNEL_SS
    ctx["trap_ctxt"][13] = (13, 0, abi.FLAT_KERNEL_CS, KBASE + 0x200)
    ctx["ctrlreg"][3] = g.v.guest_table << 12
    assert g.call(abi.HYPERVISOR_vcpu_op, abi.VCPUOP_up, 1, 0) == -abi.EINVAL
    assert g.call(abi.HYPERVISOR_vcpu_op, abi.VCPUOP_initialise, 1, g.put(ctx)) == 0
    assert g.call(abi.HYPERVISOR_vcpu_op, abi.VCPUOP_initialise, 1, g.put(ctx)) == -abi.EEXIST
    assert g.call(abi.HYPERVISOR_vcpu_op, abi.VCPUOP_up, 1, 0) == 0
    xen.schedule(20_000, quantum=500)
    v1 = d.vcpus[1]
    assert dev.writes == [] and v1.reg("r13") == 1, "vCPU 1 has IOPL 0: #GP"
    assert v1.hw is not d.vcpus[0].hw
    # the fix: each vCPU asks for its own IOPL
    v1.iopl = 1
    v1.set_reg("rip", KBASE + 0x100)
    xen.run(1000, vcpu=v1)
    assert dev.writes == [0x42]


def test_xen_call_runs_a_stub_with_a_hypercall():
    """A kernel's stub: `call hypercall_page + 17*32` then a stop address."""
    img = bytearray(0x4000)
    stub = Asm(KBASE + 0x100)
    stub.mov_edi(abi.XENVER_version)
    stub.hypercall(abi.HYPERVISOR_xen_version)
    stop = stub.here
    img[0x100:0x100 + len(stub.b)] = stub.b
    m = Machine("128M")
    xen = Xen(m)
    d = xen.build_dom0(KernelImage([Segment(KBASE, bytes(img))], entry=KBASE,
                                   virt_base=KBASE, hypercall_page=HP))
    ex = xen.call(d.vcpus[0], KBASE + 0x100, {"rax": 0}, stop_at=stop)
    assert ex.reason == "breakpoint" and ex.rip == stop
    assert d.vcpus[0].reg("rax") == 0x30001


def test_flat_selectors_load_from_xens_gdt_page():
    """mov $FLAT_KERNEL_SS,%ax; mov %ax,%ds; mov %ax,%ss: the descriptors come
    from Xen's reserved GDT page (entries 0xe000 up), mapped per vCPU."""
    a = Asm(KBASE)
    a.raw(b"\x66\xb8" + struct.pack("<H", abi.FLAT_KERNEL_SS))   # mov $0xe02b,%ax
    a.raw(b"\x8e\xd8\x8e\xd0")                                   # mov %ax,%ds; mov %ax,%ss
    a.raw(b"\x49\xc7\xc7\x01\x00\x00\x00")                       # mov $1,%r15
    a.mov_edi(abi.SCHEDOP_shutdown)
    a.lea(6, KBASE + 0x2020)
    a.hypercall(abi.HYPERVISOR_sched_op)
    xen, _ = build(a, {0x2020: struct.pack("<I", 0)})
    xen.run(10_000)
    v = xen.dom0.vcpus[0]
    assert v.reg("r15") == 1, xen.console
    assert v.reg("ds") == abi.FLAT_KERNEL_SS and xen.shutdown == (0, 0)


def test_block_then_interrupt_wakes_the_vcpu():
    from .guestlib import Guest
    m = Machine.from_profile("qemu-i440fx", memory="512M")
    xen = Xen(m)
    a = Asm(KBASE)
    a.mov_edi(abi.SCHEDOP_block)
    a.hypercall(abi.HYPERVISOR_sched_op)
    a.raw(b"\x49\x83\xc6\x01\xeb\xfe")                # add $1,%r14; jmp .
    cb = b"\x49\x83\xc5\x01" + b"\xeb\xfe"            # event callback: add $1,%r13
    img = bytearray(0x4000)
    img[:len(a.b)] = a.b
    img[0x400:0x400 + len(cb)] = cb
    d = xen.build_dom0(KernelImage([Segment(KBASE, bytes(img))], entry=KBASE,
                                   virt_base=KBASE, hypercall_page=HP))
    g = Guest(xen, d)
    gsi = m.interrupts.isa_gsi(5)[0]
    io, pin = m.interrupts.ioapic_for(gsi)
    r = g.put(g.rec(abi.physdev_irq, irq=gsi))
    assert g.call(abi.HYPERVISOR_physdev_op, abi.PHYSDEVOP_alloc_irq_vector, r) == 0
    vector = int(np.frombuffer(g.get(r, 8), abi.physdev_irq)[0]["vector"])
    assert g.call(abi.HYPERVISOR_physdev_op, abi.PHYSDEVOP_apic_write, g.put(g.rec(
        abi.physdev_apic, apic_physbase=io.address, reg=0x10 + 2 * pin, value=vector))) == 0
    assert g.call(abi.HYPERVISOR_event_channel_op, abi.EVTCHNOP_bind_pirq,
                  g.put(g.rec(abi.evtchn_bind_pirq, pirq=gsi))) == 0
    assert g.call(abi.HYPERVISOR_set_callbacks, KBASE + 0x400, KBASE + 0x400, 0) == 0
    xen.run(10_000)
    v = d.vcpus[0]
    assert v.blocked and v.reg("r14") == 0, "SCHEDOP_block cleared the mask and blocked"
    m.interrupts.isa_line(5).set(True)
    xen.run(10_000)
    assert not v.blocked and v.reg("r13") >= 1, "the PIRQ event woke it into the callback"
