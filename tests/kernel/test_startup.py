"""The kernel's boot phases, run directly (no stage runner), on Xen and natively."""

import pytest

from xenlab.kernel import KernelHang, KernelPanic
from xenlab.kernel.intel.cmn_err import read_msgbuf
from xenlab.xen import abi

from .kernlib import PRIMARY, archive, fixed_hooks, native_kernel, xen_kernel


def expected_functions(machine):
    """Every PCI function reachable from bus 0 through bridges, from the machine's own bus walk."""
    df = machine.pci_frame()
    return sorted(tuple(int(x, 16) for x in bdf.replace(".", ":").split(":")) for bdf in df.bdf)


def found_functions(kernel):
    return sorted((f["bus"], f["dev"], f["func"]) for f in kernel.pci_functions)


def run_all(k):
    for phase in ("enter", "krtld", "startup_kmdb", "mlsetup", "pci_check", "mp_startup"):
        getattr(k, phase)()


def test_dom0_boots_through_every_phase():
    m, xen, d, k = xen_kernel("sun-x4200", memory="2G")
    run_all(k)
    assert k.milestones == ["enter", "krtld", "startup_kmdb", "mlsetup", "pci_check",
                            "mp_startup"]
    assert k.modules[4:] == PRIMARY
    assert k.console.name == "hypervisor"
    assert found_functions(k) == expected_functions(m)         # all 25 functions, 4 buses
    assert k.cpus_started == [0, 1]
    assert [v.iopl for v in d.vcpus] == [1, 1]
    # kmdb stopped, the operator typed :c on Xen's console
    assert "Welcome to kmdb" in xen.console and "[0]> :c" in xen.console
    # every message is in the message buffer in guest memory, as the console showed it
    msgs = read_msgbuf(k.kcpu.read, k.sym("msgbuf"))
    assert "pci: 25 functions on 4 buses" in msgs and msgs in xen.console


def test_start_info_is_read_through_the_mmu():
    m, xen, d, k = xen_kernel()
    k.enter()
    si = k.xen_info()
    assert si["nr_pages"] == d.tot_pages
    assert si["mfn_list"] == d.layout.vphysmap_start
    assert si["flags"] & abi.SIF_INITDOMAIN
    assert si["cmd_line"] == "-kd" and k.boot_flags == "kd"
    assert si["magic"].startswith("xen-3.1")
    # pfn_to_mfn reads the guest's mfn_list: it agrees with Xen's P2M
    for pfn in (0, 5, d.tot_pages - 1):
        assert k.plat.pfn_to_mfn(pfn) == d.p2m[pfn]
    assert d.vcpus[0].trap_ctxt[13].address == k.sym("trap_13")
    assert d.vcpus[0].event_addr == k.sym("hypervisor_callback")


def test_native_kernel_boots_with_the_bios_and_no_hooks_fixed():
    hooks = fixed_hooks(set_io_privilege=lambda cpu: None,
                        early_console=lambda p, props, si: props.get("console", "text"),
                        pci_config_mechanism=lambda p, probe: probe())
    m, k = native_kernel("sun-x4200", hooks=hooks, initrd=archive(placement={}))
    run_all(k)
    assert k.pci_mechanism == 1, "the PCI BIOS answered: mechanism #1"
    assert ("cpu0", 0xF0110) in [("cpu0", a) for _, a, _, _ in m.firmware_log]
    assert found_functions(k) == expected_functions(m)
    assert "[0]> :c" in m.console.replace("\r", "")
    assert k.cpus_started == [0]
    kind, frame = k.user_io_probe(0x80)
    assert kind == "trap" and frame.vector == 13 and frame.from_user
    assert frame.cs == 0x2B


def test_a_missing_primary_module_stops_krtld():
    m, xen, d, k = xen_kernel(initrd=archive(placement={}))        # everything in i86pc
    k.enter()
    with pytest.raises(KernelPanic, match="krtld: unable to load primary module drv/rootnex"):
        k.krtld()
    assert "krtld: failed to load drv/rootnex" in xen.console


def test_kmdb_with_no_way_to_its_prompt_is_a_hang():
    hooks = fixed_hooks(early_console=lambda p, props, si: "text")
    m, xen, d, k = xen_kernel(hooks=hooks)
    k.enter()
    k.krtld()
    with pytest.raises(KernelHang, match="no command arrived on its console"):
        k.startup_kmdb()
    assert "Welcome to kmdb" not in xen.console
    # the banner went to pseudo-physical 0xB8000: whatever RAM page dom0's P2M says that is
    mfn = d.p2m[0xB8]
    text = xen.memory.read_bytes(mfn << 12, 4000)[::2]
    assert b"Welcome to kmdb" in text
    assert "Welcome to kmdb" in k.messages


def test_no_bios_in_a_pv_domain_means_a_null_call():
    hooks = fixed_hooks(pci_config_mechanism=lambda p, probe: probe())
    m, xen, d, k = xen_kernel(hooks=hooks)
    for phase in ("enter", "krtld", "startup_kmdb"):
        getattr(k, phase)()
    with pytest.raises(KernelPanic) as e:
        k.mlsetup()
    assert e.value.trap.vector == 14 and e.value.trap.rip == 0
    assert "due to a NULL pointer dereference" in e.value.message
    assert k.kcpu.read64(k.sym("bios_pci_entry")) == 0


def test_iopl_only_on_the_boot_cpu_faults_on_the_second():
    hooks = fixed_hooks(set_io_privilege=lambda cpu: (
        cpu.physdev_op(abi.PHYSDEVOP_set_iopl, iopl=1) if cpu.id == 0 else None))
    m, xen, d, k = xen_kernel(hooks=hooks)
    for phase in ("enter", "krtld", "startup_kmdb", "mlsetup", "pci_check"):
        getattr(k, phase)()
    with pytest.raises(KernelPanic) as e:
        k.mp_startup()
    assert e.value.text.lstrip().startswith("panic[cpu1]")
    assert e.value.trap.vector == 13
    assert [v.iopl for v in d.vcpus] == [1, 0]


def test_a_fault_in_the_kernels_own_access_is_a_bad_trap_panic():
    m, xen, d, k = xen_kernel()
    k.enter()
    k.boot_archive = (0x800, 512)                    # nothing is mapped in the first page
    with pytest.raises(KernelPanic) as e:
        k.krtld()
    assert e.value.message.startswith("BAD TRAP: type=e (#pf Page fault)")
    assert "addr=800" in e.value.message and "NULL pointer" in e.value.message
    assert "unix:krtld ()" in e.value.text and "the kernel read it" in e.value.text
