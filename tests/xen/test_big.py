"""Big machines (behind -m slow): a 64 GiB dom0 is built and every invariant holds."""

import pytest

from xenlab.machine import Machine
from xenlab.xen import Xen, check_invariants

from .guestlib import make_image


@pytest.mark.slow
@pytest.mark.parametrize("size", ["16G", "64G"])
def test_big_dom0_build(size):
    m = Machine(size)
    xen = Xen(m, cpu=False)
    d = xen.build_dom0(make_image())
    check_invariants(xen, check_heap=True)
    assert d.tot_pages > (m.memory_bytes >> 12) * 0.95
    # memory in proportion to what is touched: M2P + P2M list + page tables
    assert m.memory.touched_frames * 4096 < m.memory_bytes * 0.005
    p = xen.p2m_frame(0)
    assert (p.m2p == p.pfn).all()
