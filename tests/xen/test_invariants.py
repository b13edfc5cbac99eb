"""check_invariants must catch each kind of corruption it claims to check."""

import pytest

from xenlab.xen import InvariantError, abi, check_invariants

from .guestlib import boot


@pytest.fixture
def fresh():
    return boot("128M", check=False)


def test_clean_state_passes(fresh):
    xen, g = fresh
    check_invariants(xen)


def test_wrong_count_is_caught(fresh):
    xen, g = fresh
    mfn = g.free_frame()
    xen.frametable.count[mfn] += 1
    with pytest.raises(InvariantError, match="general count"):
        check_invariants(xen)


def test_writable_mapping_of_page_table_is_caught(fresh):
    xen, g = fresh
    from xenlab.xen.guest import GuestMemory
    va = g.scratch + 0x40000
    maddr, _ = g.l1_entry_maddr(va)
    xen.memory.write64(maddr, (g.v.guest_table << 12) | 7)     # behind Xen's back
    with pytest.raises(InvariantError, match="mapped writable"):
        check_invariants(xen)


def test_broken_p2m_is_caught(fresh):
    xen, g = fresh
    g.d.p2m[5], g.d.p2m[6] = g.d.p2m[6], g.d.p2m[5]
    with pytest.raises(InvariantError, match="M2P"):
        check_invariants(xen)


def test_foreign_mapping_without_right_is_caught(fresh):
    xen, g = fresh
    g.d.iomem_all = False                                          # take dom0's I/O rights
    va = g.scratch + 0x40000
    assert g.call(abi.HYPERVISOR_update_va_mapping, va, (0xB8 << 12) | 1, 0) == -abi.EINVAL
    g.d.iomem_all = True
    assert g.call(abi.HYPERVISOR_update_va_mapping, va, (0xB8 << 12) | 1, 0) == 0
    g.d.iomem_all = False
    with pytest.raises(InvariantError, match="without the right"):
        check_invariants(xen)


def test_xen_slot_tamper_is_caught(fresh):
    xen, g = fresh
    xen.memory.write64((g.v.guest_table << 12) + 8 * 256, 0)
    with pytest.raises(InvariantError, match="slots 256-271"):
        check_invariants(xen)


def test_owned_free_frame_is_caught(fresh):
    xen, g = fresh
    m = int(xen.heap.free_blocks()[0][0])
    xen.frametable.owner[m] = 1
    with pytest.raises(InvariantError, match="free heap block"):
        check_invariants(xen)
