"""Adapters over a real hypervisor with a real dom0 (tests/xen's small boot)."""

import numpy as np
import pytest

from xenlab.viz import MachineRegions, MemoryMapView, P2MView, PageTableExplorer, PteDecoder
from xenlab.viz.adapters.xen import (DOMID_IO, DOMID_XEN, XenP2M, XenPageTables, XenRegions,
                                     xen_route_layer)

guestlib = pytest.importorskip("tests.xen.guestlib")
KBASE = guestlib.KBASE


@pytest.fixture
def dom0():
    return guestlib.boot("512M", debug=True)


def test_explorer_walks_dom0_with_pfns_from_the_m2p(dom0):
    xen, g = dom0
    ex = PageTableExplorer(XenPageTables(xen), va=KBASE + 0x1000)
    assert ex.walk.ok
    assert ex.walk.maddr >> 12 == g.d.pfn_to_mfn(1)             # the image's second page
    for row in ex.frame.itertuples():                             # every frame is dom0's
        assert row.pfn == xen.m2p.get(row.mfn) and g.d.pfn_to_mfn(row.pfn) == row.mfn
    assert "(pfn 0x1)" in ex.result_html.value
    # Xen's own slots of the L4 point at Xen's frames: the explorer says the
    # M2P does not lead back to them (slot 258 is the linear map of dom0's L4)
    top = ex.list_table(4)
    owner = xen.frametable.frame().set_index("mfn")["owner"]
    for r in top[(top["index"] >= 256) & (top["index"] < 272)].itertuples():
        text = ex._frame_text(int(r.mfn))
        if owner.get(r.mfn) == DOMID_XEN:
            assert "M2P says" in text or "not in the P2M" in text
        else:
            assert owner.get(r.mfn) == 0 and f"(pfn {r.pfn:#x})" in text


def test_decoder_writes_go_through_mmu_update(dom0):
    xen, g = dom0
    src = XenPageTables(xen)
    va = KBASE + 0x2000
    d = PteDecoder(src, g.l1_entry_maddr(va)[0], va=va)
    before = d.value
    v = d.toggle(11)                     # the debug build claims _PAGE_GNTTAB (bit 11)
    assert v.rc == -22 and d.value == before == xen.memory.read64(d.entry_maddr)
    v = d.toggle(10)                     # another software bit is the guest's
    assert v.ok and d.value == before | (1 << 10) == xen.memory.read64(d.entry_maddr)


def test_page_tables_cannot_be_mapped_writable(dom0):
    xen, g = dom0
    lay = g.d.layout
    src = XenPageTables(xen)
    d = PteDecoder(src, g.l1_entry_maddr(lay.vpt_start)[0], va=lay.vpt_start)
    assert not d.value & 2
    v = d.toggle(1)
    assert v.rc == -22 and "refused" in str(v) and not d.value & 2


def test_release_xen_accepts_the_software_bit():
    xen, g = guestlib.boot("512M", debug=False)
    va = KBASE + 0x2000
    d = PteDecoder(XenPageTables(xen), g.l1_entry_maddr(va)[0], va=va)
    assert d.toggle(11).ok


def test_p2m_view_of_dom0(dom0):
    xen, g = dom0
    v = P2MView(XenP2M(xen), highlight=(0, 16))
    assert len(v.p2m) == g.d.tot_pages
    assert (v.p2m == g.d.p2m[:len(v.p2m)]).all()
    pfns = np.arange(0, len(v.p2m), 997)
    assert all(xen.m2p.get(int(v.p2m[p])) == p for p in pfns)
    # the runs rebuild the map
    rebuilt = np.full(len(v.p2m), -1)
    for r in v.frame.itertuples():
        rebuilt[r.pfn:r.pfn + r.count] = np.arange(r.mfn, r.mfn + r.count)
    assert (rebuilt == v.p2m).all()


def test_memory_map_with_xen(dom0):
    xen, g = dom0
    v = MemoryMapView(MachineRegions(xen.machine, XenRegions(xen)))
    f = v.frame
    dom0_frames = int((f[f["kind"] == "dom0"]["size"] // 4096).sum())
    assert dom0_frames == int((xen.frametable.frame()["owner"] == 0).sum())
    owned = xen.frametable.frame()
    for kind, domid in (("xen", DOMID_XEN), ("io", DOMID_IO)):
        assert int((f[f["kind"] == kind]["size"] // 4096).sum()) == int(
            (owned["owner"] == domid).sum())
    free = int((f[f["kind"] == "free"]["size"] // 4096).sum())
    assert free == int(xen.heap.avail())
    some = int(g.d.p2m[5]) << 12
    assert "dom0" in set(v.at(some)["kind"])


def test_route_layer_from_bound_pirqs(dom0):
    xen, g = dom0
    from xenlab.xen import abi
    rc = g.call(abi.HYPERVISOR_event_channel_op, abi.EVTCHNOP_bind_pirq,
                g.put(g.rec(abi.evtchn_bind_pirq, pirq=14)))
    assert rc == 0
    layer = xen_route_layer(xen)
    assert layer.values.tolist() == [[14, 14, g.d.pirq_to_evtchn[14]]]


def test_routes_through_xen_on_a_profile_machine():
    """dom0 asks Xen for a vector, programs the IOAPIC entry through Xen and
    binds the PIRQ: the routing view shows every stage but the handler, and
    the kernel's layer completes it."""
    import pandas as pd

    from xenlab.machine import Machine
    from xenlab.machine.profile import list_profiles
    from xenlab.viz import MachineRoutes, RoutingView
    from xenlab.xen import Xen, abi
    if "qemu-i440fx" not in list_profiles():
        pytest.skip("the qemu-i440fx profile is not shipped")
    m = Machine.from_profile("qemu-i440fx", memory="512M")
    xen = Xen(m)
    d = xen.build_dom0(guestlib.make_image(), cmdline="test")
    g = guestlib.Guest(xen, d)
    gsi = m.interrupts.isa_gsi(4)[0]                       # COM1
    io, pin = m.interrupts.ioapic_for(gsi)
    r = g.put(g.rec(abi.physdev_irq, irq=gsi))
    assert g.call(abi.HYPERVISOR_physdev_op, abi.PHYSDEVOP_alloc_irq_vector, r) == 0
    vector = int(np.frombuffer(g.get(r, 8), abi.physdev_irq)[0]["vector"])
    apic = g.rec(abi.physdev_apic, apic_physbase=io.address, reg=0x10 + 2 * pin, value=vector)
    assert g.call(abi.HYPERVISOR_physdev_op, abi.PHYSDEVOP_apic_write, g.put(apic)) == 0
    b = g.put(g.rec(abi.evtchn_bind_pirq, pirq=gsi, flags=0))
    assert g.call(abi.HYPERVISOR_event_channel_op, abi.EVTCHNOP_bind_pirq, b) == 0
    port = int(np.frombuffer(g.get(b, 12), abi.evtchn_bind_pirq)[0]["port"])

    view = RoutingView(MachineRoutes(m, lambda: xen_route_layer(xen)))
    com1 = view.frame[view.frame["gsi"] == gsi].iloc[0]
    assert com1["vector"] == vector and com1["pirq"] == gsi and com1["evtchn"] == port
    assert not com1["routed"] and com1["broken_at"] == "handler"
    handlers = pd.DataFrame({"evtchn": [port], "handler": ["asyintr"]})
    view = RoutingView(MachineRoutes(m, lambda: xen_route_layer(xen), handlers))
    assert view.route(com1["device"])["routed"].all()
