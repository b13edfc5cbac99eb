"""memory_op, event channels, console, sched, misc hypercalls."""

import numpy as np
import pytest

from xenlab.machine import regs as R
from xenlab.xen import abi

from .guestlib import boot


def reservation(g, ext_va, n, order=0, bits=0, domid=abi.DOMID_SELF):
    return g.put(g.rec(abi.xen_memory_reservation, extent_start=ext_va, nr_extents=n,
                       extent_order=order, address_bits=bits, domid=domid))


@pytest.fixture(scope="module")
def big():
    """An 8 GiB machine: dom0 takes memory from above 4 GiB first."""
    return boot("8G", check=False)


def test_dom0_size_and_where_it_came_from(big):
    xen, g = big
    free = xen.heap.avail()
    assert free == pytest.approx(128 << 8, rel=0.02), "1/16 held back, capped at 128 MiB"
    hist = xen.heap.history()
    d0 = hist[(hist.domid == 0) & hist.ok]
    assert d0.iloc[0].mfn >= 0x100000, "the boot chunk comes from above 4 GiB"
    assert (d0.order <= 9).iloc[1:].all(), "the rest in chunks of at most 2 MiB"
    high = (d0.mfn >= 0x100000).sum()
    assert d0.iloc[:high].mfn.min() >= 0x100000, "all memory above 4 GiB is used first"


@pytest.mark.parametrize("lowmem", [False, True])
def test_increase_reservation_address_bits(lowmem):
    xen, g = boot("8G", lowmem_2g_4g=lowmem, check=False)
    ext = g.put(np.zeros(4, dtype=np.uint64))
    # dom0 used 2-4 GiB; what is left is low memory
    rc = g.call(abi.HYPERVISOR_memory_op, abi.XENMEM_increase_reservation,
                reservation(g, ext, 4, bits=32))
    if lowmem:
        assert rc == 0, "2007: the low allocator only knew 2-4 GiB, which dom0 already has"
    else:
        assert rc == 4
        mfns = np.frombuffer(g.get(ext, 32), dtype=np.uint64)
        assert (mfns < 0x100000).all() and all(xen.frametable.owner_of(int(m)) == 0
                                               for m in mfns)


def test_increase_and_decrease_reservation_counts(dom0):
    xen, g = dom0
    before = g.d.tot_pages
    ext = g.put(np.zeros(3, dtype=np.uint64))
    assert g.call(abi.HYPERVISOR_memory_op, abi.XENMEM_increase_reservation,
                  reservation(g, ext, 3)) == 3
    assert g.d.tot_pages == before + 3
    cur = g.put(np.array([abi.DOMID_SELF], dtype=np.uint16))
    assert g.call(abi.HYPERVISOR_memory_op, abi.XENMEM_current_reservation, cur) == before + 3
    assert g.call(abi.HYPERVISOR_memory_op, abi.XENMEM_decrease_reservation,
                  reservation(g, ext, 3)) == 3
    assert g.d.tot_pages == before
    # a frame still mapped stays until its mapping goes; a bad argument block gives 0 done
    assert g.call(abi.HYPERVISOR_memory_op, abi.XENMEM_increase_reservation,
                  abi.HYPERVISOR_VIRT_START) == 0


def test_populate_physmap_sets_m2p(dom0):
    xen, g = dom0
    gpfns = np.array([g.d.tot_pages + 100, g.d.tot_pages + 101], dtype=np.uint64)
    ext = g.put(gpfns)
    assert g.call(abi.HYPERVISOR_memory_op, abi.XENMEM_populate_physmap,
                  reservation(g, ext, 2)) == 2
    mfns = np.frombuffer(g.get(ext, 16), dtype=np.uint64)
    for pfn, mfn in zip(gpfns, mfns):
        assert xen.m2p.get(int(mfn)) == pfn and g.d.p2m[int(pfn)] == mfn


def test_exchange_for_low_contiguous_memory():
    xen, g = boot("8G", check=False)
    pfns = [((g.d.layout.v_end - g.d.layout.v_start) >> 12) + 50 + i for i in range(4)]
    ins = np.array([g.d.p2m[p] for p in pfns], dtype=np.uint64)
    assert (ins >= 0x100000).all()
    in_va = g.put(ins)
    out_va = g.put(np.array([pfns[0]], dtype=np.uint64))
    exch = np.zeros((), dtype=abi.xen_memory_exchange)
    exch["in"] = (in_va, 4, 0, 0, abi.DOMID_SELF)
    exch["out"] = (out_va, 1, 2, 32, abi.DOMID_SELF)
    va = g.put(exch)
    assert g.call(abi.HYPERVISOR_memory_op, abi.XENMEM_exchange, va) == 0
    res = np.frombuffer(g.get(va, 72), abi.xen_memory_exchange)[0]
    assert res["nr_exchanged"] == 4
    out = int(np.frombuffer(g.get(out_va, 8), np.uint64)[0])
    assert out % 4 == 0 and out + 4 <= 0x100000, "4 machine-contiguous frames below 4 GiB"
    assert [g.d.p2m[p] for p in pfns] == [out, out + 1, out + 2, out + 3]
    assert all(xen.frametable.owner_of(int(m)) is None for m in ins)
    from xenlab.xen import check_invariants
    check_invariants(xen)


def test_exchange_rejects_mismatched_sizes(dom0):
    xen, g = dom0
    exch = np.zeros((), dtype=abi.xen_memory_exchange)
    exch["in"] = (g.put(b"\0" * 8), 1, 0, 0, abi.DOMID_SELF)
    exch["out"] = (g.put(b"\0" * 8), 1, 1, 0, abi.DOMID_SELF)
    assert g.call(abi.HYPERVISOR_memory_op, abi.XENMEM_exchange, g.put(exch)) == -abi.EINVAL


def test_memory_maps_and_m2p_list(dom0):
    xen, g = dom0
    buf = g.alloc(20 * 32)
    mm = g.put(g.rec(abi.xen_memory_map, nr_entries=32, buffer=buf))
    assert g.call(abi.HYPERVISOR_memory_op, abi.XENMEM_machine_memory_map, mm) == 0
    n = int(np.frombuffer(g.get(mm, 16), abi.xen_memory_map)[0]["nr_entries"])
    ents = np.frombuffer(g.get(buf, 20 * n), abi.e820entry)
    assert [(int(e["addr"]), int(e["size"]), int(e["type"])) for e in ents] == \
        [(e.base, e.length, e.type) for e in sorted(xen.machine.e820)]
    assert g.call(abi.HYPERVISOR_memory_op, abi.XENMEM_memory_map, mm) == -abi.ENOSYS
    assert g.call(abi.HYPERVISOR_memory_op, abi.XENMEM_maximum_ram_page, 0) == xen.max_page
    ext = g.alloc(64)
    ml = g.put(g.rec(abi.xen_machphys_mfn_list, max_extents=8, extent_start=ext))
    assert g.call(abi.HYPERVISOR_memory_op, abi.XENMEM_machphys_mfn_list, ml) == 0
    first = int(np.frombuffer(g.get(ext, 8), np.uint64)[0])
    assert first == xen.m2p.chunks[0]
    # and the guest (ring 3) reads the M2P itself at MACH2PHYS_VIRT_START, read-only
    from xenlab.machine import mmu
    mfn = int(g.d.p2m[7])
    st = g.v.hw.state
    w = mmu.walk(xen.memory, 0, abi.MACH2PHYS_VIRT_START + 8 * mfn, state=st,
                 access=mmu.ACC_USER, check=True)
    assert w.ok and xen.memory.read64(w.maddr) == 7
    w = mmu.walk(xen.memory, 0, abi.MACH2PHYS_VIRT_START, state=st,
                 access=mmu.ACC_USER | mmu.ACC_WRITE, check=True)
    assert not w.ok
    # Xen's own copy_from_guest refuses pointers into its hole
    from xenlab.xen.guest import GuestMemory
    assert GuestMemory(xen, g.v).read(abi.MACH2PHYS_VIRT_START, 8) is None


def test_event_channels_interdomain_loop_and_status(dom0):
    xen, g = dom0
    a = g.put(g.rec(abi.evtchn_alloc_unbound, dom=abi.DOMID_SELF, remote_dom=0))
    assert g.call(abi.HYPERVISOR_event_channel_op, abi.EVTCHNOP_alloc_unbound, a) == 0
    p1 = int(np.frombuffer(g.get(a, 8), abi.evtchn_alloc_unbound)[0]["port"])
    b = g.put(g.rec(abi.evtchn_bind_interdomain, remote_dom=abi.DOMID_SELF, remote_port=p1))
    assert g.call(abi.HYPERVISOR_event_channel_op, abi.EVTCHNOP_bind_interdomain, b) == 0
    p2 = int(np.frombuffer(g.get(b, 12), abi.evtchn_bind_interdomain)[0]["local_port"])
    s = g.put(g.rec(abi.evtchn_status, dom=abi.DOMID_SELF, port=p1))
    assert g.call(abi.HYPERVISOR_event_channel_op, abi.EVTCHNOP_status, s) == 0
    st = np.frombuffer(g.get(s, 24), abi.evtchn_status)[0]
    assert st["status"] == abi.EVTCHNSTAT_interdomain and st["u_port"] == p2
    # mask p1, send from p2: pending but no upcall; unmask: the upcall flag comes
    si_mask = xen.shared_info_addr(g.d, "evtchn_mask")
    xen.memory.write64(si_mask, 1 << p1)
    xen.write_vcpu_info(g.d, 0, "evtchn_upcall_pending", 0)
    xen.write_vcpu_info(g.d, 0, "evtchn_pending_sel", 0)     # as a guest's handler would
    assert g.call(abi.HYPERVISOR_event_channel_op, abi.EVTCHNOP_send,
                  g.put(g.rec(abi.evtchn_send, port=p2))) == 0
    assert xen.shared_info(g.d)["evtchn_pending"][0] >> p1 & 1
    assert xen.read_vcpu_info(g.d, 0, "evtchn_upcall_pending") == 0
    assert g.call(abi.HYPERVISOR_event_channel_op, abi.EVTCHNOP_unmask,
                  g.put(g.rec(abi.evtchn_unmask, port=p1))) == 0
    assert xen.read_vcpu_info(g.d, 0, "evtchn_upcall_pending") == 1
    assert g.call(abi.HYPERVISOR_event_channel_op, abi.EVTCHNOP_close,
                  g.put(g.rec(abi.evtchn_close, port=p1))) == 0
    assert g.call(abi.HYPERVISOR_event_channel_op, abi.EVTCHNOP_send,
                  g.put(g.rec(abi.evtchn_send, port=p1))) == -abi.EINVAL
    assert g.call(abi.HYPERVISOR_event_channel_op, 99, 0) == -abi.ENOSYS
    from xenlab.xen.evtchn import channels_frame
    df = channels_frame(xen, g.d)
    assert list(df.state) == ["reserved", "unbound"]


def test_pirq_delivery_and_eoi(dom0):
    xen, g = dom0
    p = g.put(g.rec(abi.evtchn_bind_pirq, pirq=9, flags=0))
    assert g.call(abi.HYPERVISOR_event_channel_op, abi.EVTCHNOP_bind_pirq, p) == 0
    port = int(np.frombuffer(g.get(p, 12), abi.evtchn_bind_pirq)[0]["port"])
    assert g.call(abi.HYPERVISOR_event_channel_op, abi.EVTCHNOP_bind_pirq, p) == -abi.EEXIST
    vec = g.put(g.rec(abi.physdev_irq, irq=9))
    assert g.call(abi.HYPERVISOR_physdev_op, abi.PHYSDEVOP_alloc_irq_vector, vec) == 0
    vector = int(np.frombuffer(g.get(vec, 8), abi.physdev_irq)[0]["vector"])
    assert 0x20 <= vector <= 0xDF and vector != 0x82
    xen.irq_level[9] = True
    from xenlab.xen.physdev import do_irq
    assert do_irq(xen, vector)
    assert xen.shared_info(g.d)["evtchn_pending"][port >> 6] >> (port & 63) & 1
    q = g.put(g.rec(abi.physdev_irq_status_query, irq=9))
    assert g.call(abi.HYPERVISOR_physdev_op, abi.PHYSDEVOP_irq_status_query, q) == 0
    assert np.frombuffer(g.get(q, 8), abi.physdev_irq_status_query)[0]["flags"] & 1
    assert 9 in g.d.pirq_mask
    assert g.call(abi.HYPERVISOR_physdev_op, abi.PHYSDEVOP_eoi,
                  g.put(g.rec(abi.physdev_eoi, irq=9))) == 0
    assert 9 not in g.d.pirq_mask


def test_console_io(dom0):
    xen, g = dom0
    msg = b"SunOS Release 5.11 Version xen 64-bit\n"
    assert g.call(abi.HYPERVISOR_console_io, abi.CONSOLEIO_write, len(msg), g.put(msg)) == 0
    assert "SunOS Release 5.11" in xen.console
    xen.console_input += b"ok\n"
    buf = g.alloc(16)
    assert g.call(abi.HYPERVISOR_console_io, abi.CONSOLEIO_read, 16, buf) == 3
    assert g.get(buf, 3) == b"ok\n"
    assert g.call(abi.HYPERVISOR_console_io, abi.CONSOLEIO_write, 5,
                  abi.HYPERVISOR_VIRT_START) == -abi.EFAULT


def test_misc_hypercalls(dom0):
    xen, g = dom0
    assert g.call(abi.HYPERVISOR_xen_version, abi.XENVER_version, 0) == 0x30001
    assert g.call(abi.HYPERVISOR_stack_switch, abi.FLAT_KERNEL_SS, 0x1000) == 0
    assert g.v.kernel_sp == 0x1000
    assert g.call(abi.HYPERVISOR_set_segment_base, abi.SEGBASE_FS, 0x7000) == 0
    assert g.call(abi.HYPERVISOR_set_segment_base, abi.SEGBASE_FS, 1 << 63) == -abi.EFAULT
    assert g.call(abi.HYPERVISOR_set_segment_base, 9, 0) == -abi.EINVAL
    assert g.call(abi.HYPERVISOR_fpu_taskswitch, 1) == 0 and g.v.ctrlreg0_ts
    assert g.call(abi.HYPERVISOR_vcpu_op, abi.VCPUOP_is_up, 0, 0) == 1
    assert g.call(abi.HYPERVISOR_vcpu_op, abi.VCPUOP_is_up, 5, 0) == -abi.ENOENT
    assert g.call(11, 0) == -abi.ENOSYS
    assert g.call(abi.HYPERVISOR_sched_op, abi.SCHEDOP_yield, 0) == 0
    assert g.call(abi.HYPERVISOR_sched_op, abi.SCHEDOP_shutdown,
                  g.put(g.rec(abi.sched_shutdown, reason=abi.SHUTDOWN_poweroff))) == 0
    assert xen.shutdown == (0, abi.SHUTDOWN_poweroff)


def test_physdev_compat_and_evtchn_compat(dom0):
    xen, g = dom0
    op = np.zeros(24, dtype=np.uint8)
    op[:4] = np.frombuffer(np.uint32(abi.PHYSDEVOP_set_iopl).tobytes(), np.uint8)
    op[8] = 1
    assert g.call(abi.HYPERVISOR_physdev_op_compat, g.put(op)) == 0 and g.v.iopl == 1


def test_serial_input_raises_virq_console_and_time_is_published(dom0):
    xen, g = dom0
    r = g.put(g.rec(abi.evtchn_bind_virq, virq=abi.VIRQ_CONSOLE, vcpu=0))
    assert g.call(abi.HYPERVISOR_event_channel_op, abi.EVTCHNOP_bind_virq, r) == 0
    port = int(np.frombuffer(g.get(r, 12), abi.evtchn_bind_virq)[0]["port"])
    xen.serial_input("b\n")
    assert xen.shared_info(g.d)["evtchn_pending"][0] >> port & 1
    buf = g.alloc(8)
    assert g.call(abi.HYPERVISOR_console_io, abi.CONSOLEIO_read, 8, buf) == 2
    t = xen.shared_info(g.d)["vcpu_info"][0]["time"]
    assert t["version"] % 2 == 0 and t["tsc_to_system_mul"] == 1 << 31 and t["tsc_shift"] == 1


@pytest.mark.parametrize("lowmem", [False, True])
def test_isa_dma_memory_below_16m(lowmem):
    """A 16 MiB limit (ISA DMA): the fixed allocator finds frames, the 2007 one cannot."""
    xen, g = boot("2G", lowmem_2g_4g=lowmem, check=False)
    ext = g.put(np.zeros(1, dtype=np.uint64))
    rc = g.call(abi.HYPERVISOR_memory_op, abi.XENMEM_increase_reservation,
                reservation(g, ext, 1, order=2, bits=24))
    if lowmem:
        assert rc == 0
    else:
        assert rc == 1
        mfn = int(np.frombuffer(g.get(ext, 8), np.uint64)[0])
        assert mfn + 4 <= 0x1000 and mfn % 4 == 0


def test_apic_ops_refuse_addresses_that_are_not_ioapics(dom0):
    """Found by the fuzzer: a physbase beyond the machine's address space."""
    xen, g = dom0
    for base in (0, 0xFEE00000, 1 << 40, (1 << 64) - 4096):
        r = g.put(g.rec(abi.physdev_apic, apic_physbase=base, reg=0x10, value=0))
        assert g.call(abi.HYPERVISOR_physdev_op, abi.PHYSDEVOP_apic_read, r) == -abi.EINVAL
        assert g.call(abi.HYPERVISOR_physdev_op, abi.PHYSDEVOP_apic_write, r) == -abi.EINVAL
