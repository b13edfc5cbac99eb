"""Regression tests re-enacting known Xen security advisories against the model.

Each test names the advisory; the model must refuse what the vulnerable Xen
allowed.  The invariant checker runs after every hypercall (fixture)."""

import numpy as np

from xenlab.xen import abi
from xenlab.xen.guest import GuestMemory

P, RW, US, PS = 1, 2, 4, 0x80


def _copy_l4(xen, g):
    """A second L4: the current one's guest half in a fresh frame, pinned."""
    new = g.free_frame()
    va = g.scratch + 0x40000
    assert g.call(abi.HYPERVISOR_update_va_mapping, va, (new << 12) | P | RW, abi.UVMF_INVLPG) == 0
    tab = np.frombuffer(xen.memory.read_bytes(g.v.guest_table << 12, 4096), np.uint64).copy()
    tab[256:272] = 0
    GuestMemory(xen, g.v).write(va, tab.tobytes())
    assert g.call(abi.HYPERVISOR_update_va_mapping, va, 0, abi.UVMF_INVLPG) == 0
    assert g.mmuext(abi.MMUEXT_PIN_L4_TABLE, new) == 0
    return new


def _l2_of(xen, g):
    from xenlab.xen.mm import e_pfn
    l4 = g.v.guest_table
    va = g.d.layout.v_start
    l3 = e_pfn(xen.memory.read64((l4 << 12) + 8 * ((va >> 39) & 511)))
    return e_pfn(xen.memory.read64((l3 << 12) + 8 * ((va >> 30) & 511)))


def test_xsa148_no_writable_superpage_in_l2(dom0):
    """XSA-148 (CVE-2015-7835): a PV guest made a writable 2 MiB L2 superpage
    mapping covering its own page tables.  L2 entries with PSE are refused."""
    xen, g = dom0
    l2 = _l2_of(xen, g)
    target = g.v.guest_table & ~511                  # a 2 MiB region holding page tables
    rc, done = g.mmu_update([((l2 << 12) + 8 * 500, (target << 12) | P | RW | US | PS)])
    assert (rc, done) == (-abi.EINVAL, 0)
    assert xen.memory.read64((l2 << 12) + 8 * 500) == 0


def test_xsa182_fast_path_cannot_make_linear_l4_writable(dom0):
    """XSA-182 (CVE-2016-6258): mod_l4_entry's "nothing important changed" fast
    path let a guest set _PAGE_RW on a read-only linear (self-referencing) L4
    entry, giving it write access to its own page tables."""
    xen, g = dom0
    l4 = g.v.guest_table
    slot = 100
    ptr = (l4 << 12) + 8 * slot
    rc, _ = g.mmu_update([(ptr, (l4 << 12) | P | US)])     # read-only self map: allowed
    assert rc == 0
    rc, done = g.mmu_update([(ptr, (l4 << 12) | P | US | RW)])
    assert (rc, done) == (-abi.EINVAL, 0)
    assert not xen.memory.read64(ptr) & RW
    # and the same flip on an ordinary entry's accessed bit still takes the fast path
    rc, _ = g.mmu_update([(ptr, (l4 << 12) | P | US | 0x20)])
    assert rc == 0


def test_xsa240_no_linear_page_table_chains(dom0):
    """XSA-240 (CVE-2017-15595): chains of linear page tables let a guest recurse
    without bound when tearing them down.  A table that is a linear target may
    not hold linear entries, and a table holding them may not be a target."""
    xen, g = dom0
    a = g.v.guest_table
    b = _copy_l4(xen, g)
    c = _copy_l4(xen, g)
    rc, _ = g.mmu_update([((a << 12) + 8 * 101, (b << 12) | P | US)])   # A -> B linear
    assert rc == 0
    assert xen.frametable.linear[b] == 1 and xen.frametable.linear[a] == -1
    rc, _ = g.mmu_update([((b << 12) + 8 * 101, (c << 12) | P | US)])   # B -> C: chain
    assert rc == -abi.EINVAL
    rc, _ = g.mmu_update([((c << 12) + 8 * 101, (a << 12) | P | US)])   # C -> A: A holds one
    assert rc == -abi.EINVAL
    # undo: removing the entry restores the counters
    rc, _ = g.mmu_update([((a << 12) + 8 * 101, 0)])
    assert rc == 0 and xen.frametable.linear[b] == 0 and xen.frametable.linear[a] == 0


def test_linear_page_table_must_be_read_only(dom0):
    """Xen 3.1's own rule (get_l4_linear_pagetable): a writable linear entry
    would make page tables writable."""
    xen, g = dom0
    l4 = g.v.guest_table
    rc, _ = g.mmu_update([((l4 << 12) + 8 * 102, (l4 << 12) | P | US | RW)])
    assert rc == -abi.EINVAL


def test_xsa212_memory_exchange_pointer_into_xen(dom0):
    """XSA-212 (CVE-2017-7228): memory_exchange did not properly check the guest
    handles, so a guest could have Xen write MFNs into Xen's own memory."""
    xen, g = dom0
    pfn = ((g.d.layout.v_end - g.d.layout.v_start) >> 12) + 60
    before = (g.d.tot_pages, int(g.d.p2m[pfn]))
    exch = np.zeros((), dtype=abi.xen_memory_exchange)
    exch["in"] = (g.put(np.array([g.d.p2m[pfn]], np.uint64)), 1, 0, 0, abi.DOMID_SELF)
    exch["out"] = (abi.HYPERVISOR_VIRT_START + 0x1000, 1, 0, 0, abi.DOMID_SELF)
    assert g.call(abi.HYPERVISOR_memory_op, abi.XENMEM_exchange, g.put(exch)) == -abi.EFAULT
    assert (g.d.tot_pages, int(g.d.p2m[pfn])) == before


def test_xsa7_spirit_no_noncanonical_entry_points(dom0):
    """In the spirit of XSA-7 (CVE-2012-0217, SYSRET to a non-canonical RIP): the
    model never accepts a non-canonical guest entry point."""
    xen, g = dom0
    bad = 0x0000800000000000
    arr = np.zeros(2, dtype=abi.trap_info)
    arr[0] = (13, 0, abi.FLAT_KERNEL_CS, bad)
    assert g.call(abi.HYPERVISOR_set_trap_table, g.put(arr)) == -abi.EINVAL
    assert g.call(abi.HYPERVISOR_set_callbacks, bad, 0, 0) == -abi.EINVAL


def test_xen_slots_and_m2p_stay_read_only(dom0):
    """Guests can never write Xen's M2P or edit Xen's L4 slots."""
    xen, g = dom0
    m2p_frame = int(xen.m2p.chunks[0])
    va = g.scratch + 0x40000
    assert g.call(abi.HYPERVISOR_update_va_mapping, va, (m2p_frame << 12) | P | RW, 0) \
        == -abi.EINVAL
    rc, _ = g.mmu_update([((m2p_frame << 12) | abi.MMU_NORMAL_PT_UPDATE, 0)])
    assert rc == -abi.EINVAL
    # mapping it read-only needs DOMID_XEN as the foreign domain
    rc, _ = g.mmu_update([(g.l1_entry_maddr(va)[0], (m2p_frame << 12) | P)], abi.DOMID_XEN)
    assert rc == 0
