"""KCpu on a bare dom0 and on the bare machine: stubs run on the vCPU, memory
goes through its MMU, traps come back as frames, hangs are detected."""

import numpy as np
import pytest

from xenlab.kernel import KCpu, KernelFault, KernelHang, KernelPanic, build_unix
from xenlab.machine import Machine
from xenlab.xen import KernelImage, Xen, abi

from .kernlib import native_kernel


@pytest.fixture(scope="module")
def dom0():
    u = build_unix()
    m = Machine.from_profile("qemu-i440fx")
    xen = Xen(m)
    d = xen.build_dom0(KernelImage.from_elf(u.elf_i86xen()), cmdline="-kd")
    v = d.vcpus[0]
    k = KCpu(v.hw, lambda b: xen.run(b, vcpu=v), u, pv=True)
    k.start()
    return xen, d, k


def test_start_stops_at_kpy_entry_with_start_info_saved(dom0):
    xen, d, k = dom0
    assert k.reg("rip") == k.unix.sym("kpy_entry")
    assert k.read64(k.unix.sym("boot_info")) == d.start_info_va
    assert k.reg("rsp") == k.unix.sym("kstack_top")


def test_hypercalls_run_through_the_hypercall_page(dom0):
    xen, d, k = dom0
    assert k.hypercall(abi.HYPERVISOR_xen_version, abi.XENVER_version, 0) == \
        (abi.XEN_VERSION_MAJOR << 16) | abi.XEN_VERSION_MINOR
    buf = k.unix.sym("hcall_args")
    k.write(buf, b"written by dom0\n")
    before = xen.system_time_ns
    assert k.hypercall(abi.HYPERVISOR_console_io, abi.CONSOLEIO_write, 16, buf) == 0
    assert xen.console.endswith("written by dom0\n")
    assert xen.system_time_ns > before, "the stub ran as instructions on the CPU"
    assert k.hypercall(abi.HYPERVISOR_console_io, 99, 0, 0) < 0      # Xen's errno


def test_memory_goes_through_the_mmu(dom0):
    xen, d, k = dom0
    va = k.unix.sym("msgbuf")
    k.write64(va, 0x1122334455667788)
    ma = k.vcpu.mmu.translate(va)
    assert xen.memory.read64(ma) == 0x1122334455667788
    assert ma >> 12 == d.p2m[(va - k.unix.base) >> 12], "the P2M's frame"
    # the bootstrap page tables are mapped read-only for the guest
    with pytest.raises(KernelFault) as e:
        k.write64(d.layout.vpt_start, 0)
    assert e.value.vector == 14 and e.value.code & 2
    with pytest.raises(KernelFault):
        k.read(0x1000, 8)                                  # nothing mapped there


def test_a_trap_comes_back_as_xens_bounce_frame(dom0):
    xen, d, k = dom0
    ti = np.zeros(33, dtype=abi.trap_info)
    for n in range(32):
        ti[n] = (n, 0, abi.FLAT_KERNEL_CS, k.unix.sym(f"trap_{n}"))
    k.write(k.unix.sym("trap_table"), ti.tobytes())
    assert k.hypercall(abi.HYPERVISOR_set_trap_table, k.unix.sym("trap_table")) == 0
    seen = []

    def handler(frame):
        seen.append(frame)
        raise KernelPanic("bad trap")

    k.trap_handler = handler
    rsp = k.reg("rsp")
    with pytest.raises(KernelPanic):
        k.call("outb", 0x80, 1)
    f = seen[0]
    assert f.vector == 13 and f.err == 0 and not f.from_user
    assert f.rip == k.unix.sym("outb") + 4, "at the OUT instruction (after two 2-byte movs)"
    assert f.regs["rdx"] == 0x80
    assert f.rsp == rsp - 8, "the interrupted stack holds kpy_return"
    assert k.read64(f.rsp) == k.unix.sym("kpy_return")


def test_a_stub_that_never_returns_is_a_hang(dom0):
    xen, d, k = dom0
    k.set_reg("rsp", k.unix.sym("kstack_top"))       # a clean stack after the panic above
    with pytest.raises(KernelHang, match="no progress: kdelay ran"):
        k.call("kdelay", 10**9, budget=50_000)


def test_native_kcpu_runs_at_cpl0_through_dboots_tables():
    m, kernel = native_kernel()
    k = kernel.kcpu
    k.start()
    assert k.vcpu.get("cpl") == 0 and k.vcpu.get("efer") & (1 << 10), "long mode, ring 0"
    assert k.vcpu.get("cs") == 0x08
    assert k.call("getcr3") == k.vcpu.get("cr3")
    # the identity map lets the kernel read the BIOS's BIOS32 directory
    assert k.read(0xF0000, 4) == b"_32_"
    va = k.unix.sym("boot_info")
    from xenlab.kernel.image import KERNEL_PADDR, KERNELBASE
    assert k.vcpu.mmu.translate(va) == KERNEL_PADDR + (va - KERNELBASE)
