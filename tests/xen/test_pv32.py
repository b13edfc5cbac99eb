"""The 32-bit PV privilege model (Domain.pv32): a guest kernel in ring 1 with
the x86_32 flat selectors, hypercalls by int $0x82 with EBX..EDI, traps
bounced without RCX/R11 and returned with IRET, one page table with no
_PAGE_USER rewriting, and none of Xen's writable mappings in its tables."""

import struct

import numpy as np

from xenlab.asm import assemble
from xenlab.machine import Machine
from xenlab.machine import regs as R
from xenlab.xen import KernelImage, Segment, Xen, abi, check_invariants
from xenlab.xen.build import hypercall_page_bytes32, is_pv32

from .guestlib import Port80

KBASE = 0xFFFFFFFF80000000
HP = KBASE + 0x1000
DATA = KBASE + 0x2000




def build(src: str, data: dict, *, pv32=True, debug=False, code_at: dict | None = None):
    """A dom0 from assembly at KBASE (the hypercall page at +0x1000, more
    code pieces at ``code_at`` offsets, data blocks at given offsets)."""
    prog = assemble(src, base=KBASE)
    img = bytearray(0x4000)
    code = prog.image()
    img[:len(code)] = code
    for off, piece in (code_at or {}).items():
        raw = assemble(piece, base=KBASE + off).image()
        img[off:off + len(raw)] = raw
    for off, raw in data.items():
        img[off:off + len(raw)] = raw
    m = Machine("256M")
    dev = Port80()
    m.ports.claim(0x80, 1, dev, "post")
    xen = Xen(m, debug=debug)
    xen.build_dom0(KernelImage([Segment(KBASE, bytes(img))], entry=KBASE, virt_base=KBASE,
                               hypercall_page=HP), pv32=pv32)
    xen.check_hook = check_invariants
    return xen, dev, prog


def hcall(nr):
    return f"call {HP + 32 * nr:#x}"


SHUTDOWN = f"""
        movl ${abi.SCHEDOP_shutdown}, %ebx
        movabsq ${DATA + 0x20:#x}, %rcx
        {hcall(abi.HYPERVISOR_sched_op)}
1:      jmp 1b
"""


def test_the_ring1_kernel_makes_hypercalls_with_int_0x82():
    src = f"""
        movw %cs, %ax
        movq %rax, %r12
        movl ${abi.XENVER_version}, %ebx
        xorl %ecx, %ecx
        {hcall(abi.HYPERVISOR_xen_version)}
        movq %rax, %r15
        movl ${abi.CONSOLEIO_write}, %ebx
        movl $6, %ecx
        movabsq ${DATA:#x}, %rdx
        {hcall(abi.HYPERVISOR_console_io)}
        movl ${abi.PHYSDEVOP_set_iopl}, %ebx
        movabsq ${DATA + 0x10:#x}, %rcx
        {hcall(abi.HYPERVISOR_physdev_op)}
        movb $0x42, %al
        outb %al, $0x80
        inb $0x80, %al
        movq %rax, %r14
    """ + SHUTDOWN
    xen, dev, _ = build(src, {0x2000: b"hello\n", 0x2010: struct.pack("<I", 1),
                              0x2020: struct.pack("<I", abi.SHUTDOWN_poweroff)})
    d = xen.dom0
    assert d.pv32 and d.vcpus[0].hw.state[R.CPL] == 1
    xen.run(100_000)
    v = d.vcpus[0]
    assert v.reg("r12") & 0xFFFF == abi.FLAT_RING1_CS
    assert v.reg("r15") == 0x30001
    assert "hello" in xen.console
    assert dev.writes == [0x42] and v.reg("r14") & 0xFF == 0x5A
    assert xen.shutdown == (0, abi.SHUTDOWN_poweroff)
    assert d.hypercall_entries["int82"] == 4 and d.hypercall_entries["syscall"] == 0


def test_the_hypercall_page_of_a_ring1_kernel():
    page = hypercall_page_bytes32()
    e = page[32 * abi.HYPERVISOR_console_io:32 * abi.HYPERVISOR_console_io + 8]
    assert e == b"\xb8" + struct.pack("<I", abi.HYPERVISOR_console_io) + b"\xcd\x82\xc3"
    it = page[32 * abi.HYPERVISOR_iret:32 * abi.HYPERVISOR_iret + 8]
    assert it == b"\x50\xb8" + struct.pack("<I", abi.HYPERVISOR_iret) + b"\xcd\x82"
    img = KernelImage([Segment(KBASE, b"\x90")], entry=KBASE,
                      notes={abi.XEN_ELFNOTE_PAE_MODE: b"yes\0"})
    assert is_pv32(img) and not is_pv32(KernelImage([Segment(KBASE, b"\x90")], entry=KBASE))


def test_no_user_bit_rewriting_and_no_writable_xen_slots():
    xen, _, _ = build("1: jmp 1b", {}, pv32=True)
    xen64, _, _ = build("1: jmp 1b", {}, pv32=False)
    for x, user in ((xen, False), (xen64, True)):
        v = x.dom0.vcpus[0]
        w = v.hw.mmu.walk(KBASE)
        leaf = w.steps[-1].raw
        assert bool(leaf & abi._PAGE_USER) == user
        assert bool(leaf >> 52 & 1) == user                 # _PAGE_GUEST_KERNEL
        l4 = np.frombuffer(x.memory.read_bytes(v.guest_table << 12, 4096), dtype=np.uint64)
        xen_slots = {i for i in range(256, 272) if l4[i] & 1}
        if user:
            assert {abi.L4_SLOT_DIRECTMAP, abi.L4_SLOT_LINEAR_PT} <= xen_slots
        else:
            assert xen_slots == {abi.L4_SLOT_RO_MPT, abi.L4_SLOT_PERDOMAIN}


def test_a_ring1_kernel_cannot_write_xens_memory():
    """Ring 1 is a supervisor to the MMU: Xen's direct map must not be there,
    and its GDT page is read-only."""
    src = f"""
        movabsq ${abi.DIRECTMAP_VIRT_START + 0x1000:#x}, %rax
        movq $1, (%rax)
1:      jmp 1b
    """
    xen, _, _ = build(src, {})
    xen.run(10_000)
    assert xen.dom0.shutdown_reason == abi.SHUTDOWN_crash
    assert "[#14]" in xen.console                       # #PF, no handler: crash
    src = f"""
        movabsq ${abi.PERDOMAIN_VIRT_START + (abi.FIRST_RESERVED_GDT_PAGE << 12):#x}, %rax
        movq $0, 24(%rax)
1:      jmp 1b
    """
    xen, _, _ = build(src, {})
    gdt = xen.memory.read64((xen.compat_gdt_mfn << 12) + 24)
    xen.run(10_000)
    assert xen.dom0.shutdown_reason == abi.SHUTDOWN_crash
    assert xen.memory.read64((xen.compat_gdt_mfn << 12) + 24) == gdt, "the GDT is untouched"


def test_a_trap_bounces_to_ring1_without_rcx_r11_and_returns_with_iret():
    """HLT in ring 1 is #GP: Xen bounces it through the trap table with the
    frame [error, RIP, CS, RFLAGS, RSP, SS]; the handler skips the HLT and
    returns with IRETQ (allowed from ring 1 to ring 1)."""
    handler = KBASE + 0x300
    src = f"""
        movabsq ${DATA:#x}, %rbx
        {hcall(abi.HYPERVISOR_set_trap_table)}
        hlt
        addq $1, %r12
    """ + SHUTDOWN
    handler_src = """
        addq $1, %r13
        movq 16(%rsp), %r14
        addq $1, 8(%rsp)
        addq $8, %rsp
        iretq
    """
    ti = np.zeros(2, dtype=abi.trap_info)
    ti[0] = (13, 0, abi.FLAT_RING1_CS, handler)
    xen, _, _ = build(src, {0x2000: ti.tobytes(),
                            0x2020: struct.pack("<I", abi.SHUTDOWN_poweroff)},
                      code_at={0x300: handler_src})
    xen.run(100_000)
    v = xen.dom0.vcpus[0]
    assert xen.shutdown == (0, abi.SHUTDOWN_poweroff), xen.console
    assert v.reg("r13") == 1 and v.reg("r12") == 1
    assert v.reg("r14") & 0xFFFF == abi.FLAT_RING1_CS, "the frame's CS is ring 1's"


def test_user_mode_under_a_ring1_kernel():
    """The kernel IRETs to ring 3 (the compat user selectors) on a user page it
    mapped itself; the user's IN traps back to the kernel on its kernel stack,
    and an int $0x82 from ring 3 is no hypercall."""
    handler = KBASE + 0x300
    user = KBASE + 0x3000
    src = f"""
        movabsq ${DATA:#x}, %rbx
        {hcall(abi.HYPERVISOR_set_trap_table)}
        movl ${abi.FLAT_RING1_SS}, %ebx
        movabsq ${KBASE + 0x2F00:#x}, %rcx
        {hcall(abi.HYPERVISOR_stack_switch)}
        movabsq ${user:#x}, %rbx
        movabsq ${(0x3 << 0) | 0x4 | 0x20:#x}, %rdx
        movl ${abi.UVMF_INVLPG}, %esi
        movabsq ${DATA + 0x100:#x}, %rax
        movq (%rax), %rcx
        {hcall(abi.HYPERVISOR_update_va_mapping)}
        pushq ${abi.FLAT_COMPAT_RING3_SS | 3}
        movabsq ${user + 0xF00:#x}, %rax
        pushq %rax
        pushq $0x202
        pushq ${abi.FLAT_COMPAT_RING3_CS | 3}
        movabsq ${user:#x}, %rax
        pushq %rax
        iretq
    """
    handler_src = """
        movq 16(%rsp), %r14
        movq 8(%rsp), %r15
        movq %rsp, %r13
    """ + SHUTDOWN
    user_src = """
        inb $0x80, %al
1:      jmp 1b
    """
    ti = np.zeros(2, dtype=abi.trap_info)
    ti[0] = (13, 0, abi.FLAT_RING1_CS, handler)
    xen, dev, _ = build(src, {0x2000: ti.tobytes(),
                              0x2020: struct.pack("<I", abi.SHUTDOWN_poweroff)},
                        code_at={0x300: handler_src, 0x3000: user_src})
    d = xen.dom0
    mfn = d.pfn_to_mfn(3)                           # the user page's frame (KBASE + 0x3000)
    xen.memory.write64((d.pfn_to_mfn(2) << 12) + 0x100,
                       (mfn << 12) | 0x1 | 0x4 | 0x20)
    v = d.vcpus[0]
    v.iopl = 1                                      # the kernel may do port I/O, not the user
    xen.run(200_000)
    assert xen.shutdown == (0, abi.SHUTDOWN_poweroff), xen.console
    assert v.reg("r14") & 3 == 3, "the trap came from ring 3"
    assert v.reg("r15") == user, "at the user's IN"
    assert KBASE + 0x2E00 < v.reg("r13") <= KBASE + 0x2F00, "on the kernel stack"
    assert dev.writes == []
