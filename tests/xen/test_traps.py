"""Trap and emulate: hypercalls by SYSCALL, I/O emulation under the virtual IOPL,
bounce frames, iret, event upcalls."""

import numpy as np
import pytest

from xenlab.machine import regs as R
from xenlab.machine.pte import s64
from xenlab.xen import abi, hypercall_page_bytes
from xenlab.xen.guest import GuestMemory
from xenlab.xen.traps import handle_exception, handle_syscall

from .guestlib import KBASE, Port80




def put_code(g, code: bytes) -> int:
    va = g.alloc(64)
    assert GuestMemory(g.xen, g.v).write(va, code)
    return va


def set_traps(g, handlers):
    arr = np.zeros(len(handlers) + 1, dtype=abi.trap_info)
    for i, (vec, addr) in enumerate(handlers.items()):
        arr[i] = (vec, 0, abi.FLAT_KERNEL_CS, addr)
    assert g.call(abi.HYPERVISOR_set_trap_table, g.put(arr)) == 0


def test_hypercall_page_layout():
    page = hypercall_page_bytes()
    assert page[17 * 32:17 * 32 + 14] == bytes.fromhex("514153b8110000000f05415b59c3")
    assert page[23 * 32:23 * 32 + 11] == bytes.fromhex("51415350b8170000000f05")


def test_builder_writes_hypercall_page_and_start_info(dom0):
    xen, g = dom0
    assert g.get(KBASE + 0x1000, 4096) == hypercall_page_bytes()
    si = np.frombuffer(g.get(g.d.start_info_va, abi.start_info.itemsize), abi.start_info)[0]
    assert si["magic"] == b"xen-3.1-x86_64"
    assert si["flags"] == abi.SIF_PRIVILEGED | abi.SIF_INITDOMAIN
    assert si["nr_pages"] == g.d.tot_pages
    assert si["shared_info"] == g.d.shared_info_mfn << 12
    assert si["cmd_line"] == b"test"
    st = g.v.hw.state
    assert int(st[R.RSI]) & (2**64 - 1) == g.d.start_info_va
    assert st[R.CS] == abi.FLAT_KERNEL_CS64 and st[R.CPL] == 3
    # the P2M list the guest sees is Xen's P2M
    lst = np.frombuffer(g.get(int(si["mfn_list"]), 8 * 64), dtype=np.int64)
    assert (lst == g.d.p2m[:64]).all()
    # the page tables are mapped read-only at pt_base
    assert GuestMemory(xen, g.v).translate(int(si["pt_base"]), True) is None
    assert GuestMemory(xen, g.v).translate(int(si["pt_base"]), False) == g.v.guest_table << 12


def test_syscall_hypercall_returns_to_rcx(dom0):
    xen, g = dom0
    st = g.v.hw.state
    st[R.RAX] = s64(abi.HYPERVISOR_xen_version)
    st[R.RDI] = s64(abi.XENVER_version)
    st[R.RCX] = s64(KBASE + 0x1000 + 17 * 32 + 10)
    st[R.R11] = s64(0x202)
    handle_syscall(xen, g.v)
    assert st[R.RAX] == 0x30001
    assert int(st[R.RIP]) & (2**64 - 1) == KBASE + 0x1000 + 17 * 32 + 10


def test_in_out_need_virtual_iopl_1_in_kernel_mode(dom0):
    xen, g = dom0
    dev = Port80()
    xen.machine.ports.claim(0x80, 1, dev, "post")
    gp = put_code(g, b"\xcc")
    set_traps(g, {13: gp})
    code = put_code(g, b"\xe6\x80\xe4\x80\x90")       # out %al,$0x80; in $0x80,%al
    st = g.v.hw.state
    st[R.RIP] = s64(code)
    st[R.RAX] = s64(0x11)
    st[R.RSP] = s64(g.alloc(4096) + 4096)
    handle_exception(xen, g.v, 13, 0)
    assert int(st[R.RIP]) & (2**64 - 1) == gp, "IOPL 0: #GP bounced to the guest"
    assert dev.accesses == []
    # the IOPL is per vCPU: set it, then the same instruction is emulated
    assert g.call(abi.HYPERVISOR_physdev_op, abi.PHYSDEVOP_set_iopl,
                  g.put(g.rec(abi.physdev_set_iopl, iopl=1))) == 0
    st[R.RIP] = s64(code)
    handle_exception(xen, g.v, 13, 0)
    assert dev.accesses == [(0x80, 1, 0x11)]
    assert int(st[R.RIP]) & (2**64 - 1) == code + 2
    handle_exception(xen, g.v, 13, 0)
    assert int(st[R.RAX]) & 0xFF == 0x5A and int(st[R.RIP]) & (2**64 - 1) == code + 4
    assert g.call(abi.HYPERVISOR_physdev_op, abi.PHYSDEVOP_set_iopl,
                  g.put(g.rec(abi.physdev_set_iopl, iopl=4))) == -abi.EINVAL


def test_denied_ports_read_all_ones(dom0):
    xen, g = dom0
    assert g.call(abi.HYPERVISOR_physdev_op, abi.PHYSDEVOP_set_iopl,
                  g.put(g.rec(abi.physdev_set_iopl, iopl=1))) == 0
    code = put_code(g, b"\xe4\x21")                   # in $0x21,%al: the PIC is Xen's
    st = g.v.hw.state
    st[R.RIP] = s64(code)
    st[R.RAX] = s64(0)
    handle_exception(xen, g.v, 13, 0)
    assert int(st[R.RAX]) & 0xFF == 0xFF


def test_string_io_through_guest_memory(dom0):
    xen, g = dom0
    dev = Port80()
    xen.machine.ports.claim(0x80, 1, dev, "post")
    g.v.iopl = 1
    buf = g.put(b"ABC")
    code = put_code(g, b"\xf3\x6e")                   # rep outsb
    st = g.v.hw.state
    st[R.RIP] = s64(code)
    st[R.RSI] = s64(buf)
    st[R.RCX] = s64(3)
    st[R.RDX] = s64(0x80)
    handle_exception(xen, g.v, 13, 0)
    assert [w[2] for w in dev.accesses] == [0x41, 0x42, 0x43]
    assert st[R.RCX] == 0 and int(st[R.RSI]) & (2**64 - 1) == buf + 3


def test_unhandled_gp_crashes_dom0(dom0):
    xen, g = dom0
    code = put_code(g, b"\xf4")                       # hlt in a PV kernel: #GP
    g.v.hw.state[R.RIP] = s64(code)
    handle_exception(xen, g.v, 13, 0)
    assert "Unhandled general protection fault/trap [#13] in domain 0" in xen.console
    assert "Domain 0 crashed" in xen.console
    assert g.d.shutdown_reason == abi.SHUTDOWN_crash


def test_bounce_frame_layout(dom0):
    xen, g = dom0
    handler = put_code(g, b"\x90")
    set_traps(g, {13: handler})
    st = g.v.hw.state
    rsp = g.alloc(4096) + 4096
    code = put_code(g, b"\xf4")
    st[R.RIP] = s64(code)
    st[R.RSP] = s64(rsp)
    st[R.RCX] = s64(0x1111)
    st[R.R11] = s64(0x2222)
    handle_exception(xen, g.v, 13, 0)
    new = int(st[R.RSP]) & (2**64 - 1)
    words = np.frombuffer(g.get(new, 8 * 8), dtype=np.uint64)
    assert list(words[:3]) == [0x1111, 0x2222, 0]           # rcx, r11, error code
    assert words[3] == code                                   # rip
    assert words[4] & 0xFFFF == abi.FLAT_KERNEL_CS & ~3       # kernel context
    assert words[4] >> 32 == 1                                # events were masked at boot
    assert words[6] == rsp and words[7] == abi.FLAT_KERNEL_SS
    assert int(st[R.RIP]) & (2**64 - 1) == handler


def test_iret_returns_and_restores_event_mask(dom0):
    xen, g = dom0
    frame = np.zeros((), dtype=abi.iret_context)
    # RPL 0 in the saved CS means "return to guest kernel mode" (both run in ring 3)
    frame["rax"], frame["rip"], frame["cs"] = 7, KBASE + 0x10, abi.FLAT_KERNEL_CS & ~3
    frame["rflags"], frame["rsp"], frame["ss"] = 0x202, 0x1234560, abi.FLAT_KERNEL_SS
    st = g.v.hw.state
    st[R.RSP] = s64(g.put(frame))
    st[R.RAX] = s64(abi.HYPERVISOR_iret)
    handle_syscall(xen, g.v)
    assert st[R.RAX] == 7 and int(st[R.RIP]) & (2**64 - 1) == KBASE + 0x10
    assert st[R.RSP] == 0x1234560
    assert xen.read_vcpu_info(g.d, 0, "evtchn_upcall_mask") == 0
    # returning to user mode without user page tables crashes the domain
    frame["cs"] = abi.FLAT_USER_CS
    st[R.RSP] = s64(g.put(frame))
    st[R.RAX] = s64(abi.HYPERVISOR_iret)
    handle_syscall(xen, g.v)
    assert g.d.shutdown_reason == abi.SHUTDOWN_crash


def test_event_upcall(dom0):
    xen, g = dom0
    cb = put_code(g, b"\x90")
    assert g.call(abi.HYPERVISOR_set_callbacks, cb, cb, cb) == 0
    r = g.rec(abi.evtchn_bind_virq, virq=abi.VIRQ_CONSOLE, vcpu=0)
    va = g.put(r)
    assert g.call(abi.HYPERVISOR_event_channel_op, abi.EVTCHNOP_bind_virq, va) == 0
    port = int(np.frombuffer(g.get(va, 12), abi.evtchn_bind_virq)[0]["port"])
    assert port == 1
    assert g.call(abi.HYPERVISOR_event_channel_op, abi.EVTCHNOP_bind_virq, va) == -abi.EEXIST
    from xenlab.xen.evtchn import send_global_virq
    send_global_virq(xen, g.d, abi.VIRQ_CONSOLE)
    si = xen.shared_info(g.d)
    assert si["evtchn_pending"][0] & 2 and si["vcpu_info"][0]["evtchn_pending_sel"] & 1
    assert si["vcpu_info"][0]["evtchn_upcall_pending"] == 1
    st = g.v.hw.state
    st[R.RSP] = s64(g.alloc(4096) + 4096)
    xen.write_vcpu_info(g.d, 0, "evtchn_upcall_mask", 0)
    from xenlab.xen.traps import resume_guest
    resume_guest(xen, g.v)
    assert int(st[R.RIP]) & (2**64 - 1) == cb
    assert xen.read_vcpu_info(g.d, 0, "evtchn_upcall_mask") == 1


def test_mov_cr3_emulated_and_cr4_write_refused(dom0):
    xen, g = dom0
    st = g.v.hw.state
    code = put_code(g, b"\x0f\x20\xd8\x0f\x22\xd8\x0f\x20\xe0")  # mov %cr3,%rax; mov %rax,%cr3; mov %cr4,%rax
    st[R.RIP] = s64(code)
    handle_exception(xen, g.v, 13, 0)
    assert st[R.RAX] == g.v.guest_table << 12
    handle_exception(xen, g.v, 13, 0)
    assert int(st[R.RIP]) & (2**64 - 1) == code + 6
    handle_exception(xen, g.v, 13, 0)
    assert not int(st[R.RAX]) & R.CR4_PGE


def test_initrd_and_dom0_mem():
    from .guestlib import Guest, make_image
    from xenlab.machine import Machine
    from xenlab.xen import Xen
    xen = Xen(Machine("1G"), cpu=False)
    d = xen.build_dom0(make_image(), initrd=b"RAMDISK!" * 1000, dom0_mem="256M")
    g = Guest(xen, d)
    si = np.frombuffer(g.get(d.start_info_va, abi.start_info.itemsize), abi.start_info)[0]
    assert si["mod_len"] == 8000 and g.get(int(si["mod_start"]), 8) == b"RAMDISK!"
    assert d.tot_pages == (256 << 20) >> 12
    lay = d.layout
    assert lay.vinitrd_start < lay.vphysmap_start < lay.vstartinfo_start < lay.vpt_start
    assert (lay.v_end & ((1 << 22) - 1)) == 0 and lay.v_end - lay.vstack_end >= 512 << 10


@pytest.mark.parametrize("debug", [False, True])
def test_debug_build_clobbers_used_argument_registers(debug):
    from .guestlib import boot
    xen, g = boot("128M", debug=debug, check=False)
    st = g.v.hw.state
    st[R.RAX] = abi.HYPERVISOR_xen_version
    st[R.RDI], st[R.RSI], st[R.RDX] = 0, 0, 7
    st[R.RCX] = s64(KBASE + 0x1000)
    handle_syscall(xen, g.v)
    assert st[R.RAX] == 0x30001
    used = [int(st[R.RDI]) & (2**64 - 1), int(st[R.RSI]) & (2**64 - 1)]
    if debug:
        assert used == [0xDEADBEEFDEADF00D] * 2 and st[R.RDX] == 7
    else:
        assert used == [0, 0]
