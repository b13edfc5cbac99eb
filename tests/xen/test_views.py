"""pandas views of the hypervisor's state, and multicall."""

import numpy as np

from xenlab.xen import abi


def test_views(dom0):
    xen, g = dom0
    ft = xen.frame_table()
    l4 = ft[ft.mfn == g.v.guest_table].iloc[0]
    assert l4.type == "L4" and l4.pinned and l4.validated and l4.owner == 0
    assert (ft[ft.type == "L1"].validated).all()
    p = xen.p2m_frame(0)
    assert len(p) == g.d.tot_pages and (p.m2p == p.pfn).all()
    alloc = xen.allocations()
    assert alloc.iloc[0].domid == abi.DOMID_XEN and (alloc.domid == 0).any()
    assert list(xen.evtchn_frame(0).columns)[:3] == ["port", "state", "vcpu"]
    zones = xen.heap.zones_frame()
    assert zones.free_frames.sum() == xen.heap.avail()


def test_multicall(dom0):
    xen, g = dom0
    calls = np.zeros(3, dtype=abi.multicall_entry)
    calls[0]["op"] = abi.HYPERVISOR_xen_version
    calls[1]["op"] = abi.HYPERVISOR_fpu_taskswitch
    calls[1]["args"][0] = 1
    calls[2]["op"] = 11
    va = g.put(calls)
    assert g.call(abi.HYPERVISOR_multicall, va, 3) == 0
    res = np.frombuffer(g.get(va, 64 * 3), abi.multicall_entry)["result"]
    assert list(res[:2]) == [0x30001, 0] and res[2] == (-abi.ENOSYS) & (2**64 - 1)
