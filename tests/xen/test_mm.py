"""PV MMU: mapping rules, page-table types, pins, Xen's slots, the debug PTE bit."""

import numpy as np
import pytest

from xenlab.xen import abi
from xenlab.xen.guest import GuestMemory

from .guestlib import boot

P, RW, US = 1, 2, 4


def scratch_va(g):
    return g.scratch + 0x40000        # inside the boot region's padding, mapped


def test_update_va_mapping_maps_own_frame(dom0):
    xen, g = dom0
    mfn = g.free_frame()
    va = scratch_va(g)
    assert g.call(abi.HYPERVISOR_update_va_mapping, va, (mfn << 12) | P | RW, abi.UVMF_INVLPG) == 0
    assert GuestMemory(xen, g.v).write(va, b"hello")
    assert xen.memory.read_bytes(mfn << 12, 5) == b"hello"
    e = xen.memory.read64(g.l1_entry_maddr(va)[0])
    assert e & US and e & (1 << 52), "kernel mapping gets U and _PAGE_GUEST_KERNEL"


def test_page_table_frame_cannot_be_mapped_writable(dom0):
    xen, g = dom0
    l4 = g.v.guest_table
    va = scratch_va(g)
    assert g.call(abi.HYPERVISOR_update_va_mapping, va, (l4 << 12) | P | RW, 0) == -abi.EINVAL
    assert g.call(abi.HYPERVISOR_update_va_mapping, va, (l4 << 12) | P, 0) == 0


def test_foreign_frame_refused_for_unprivileged_mapping(dom0):
    xen, g = dom0
    va = scratch_va(g)
    xen_frame = xen.idle_l4                      # Xen-private
    assert g.call(abi.HYPERVISOR_update_va_mapping, va, (xen_frame << 12) | P, 0) == -abi.EINVAL
    free = xen.heap.free_blocks()[0][0]          # a free heap frame: nobody's
    assert g.call(abi.HYPERVISOR_update_va_mapping, va, (int(free) << 12) | P, 0) == -abi.EINVAL


def test_new_l1_pin_and_type_rules(dom0):
    xen, g = dom0
    l1 = g.free_frame()
    data = g.free_frame()
    va = scratch_va(g)
    # write a table through a writable mapping of the frame
    assert g.call(abi.HYPERVISOR_update_va_mapping, va, (l1 << 12) | P | RW, abi.UVMF_INVLPG) == 0
    GuestMemory(xen, g.v).write(va, ((data << 12) | P | RW).to_bytes(8, "little"))
    # pinning fails while a writable mapping exists
    assert g.mmuext(abi.MMUEXT_PIN_L1_TABLE, l1) == -abi.EINVAL
    assert g.call(abi.HYPERVISOR_update_va_mapping, va, 0, abi.UVMF_INVLPG) == 0
    assert g.mmuext(abi.MMUEXT_PIN_L1_TABLE, l1) == 0
    assert xen.frametable.ptype(l1) == abi.PGT_l1_page_table and xen.frametable.pinned(l1)
    assert xen.frametable.ptype(data) == abi.PGT_writable_page
    # now the L1 cannot be mapped writable, and pinning twice fails
    assert g.call(abi.HYPERVISOR_update_va_mapping, va, (l1 << 12) | P | RW, 0) == -abi.EINVAL
    assert g.mmuext(abi.MMUEXT_PIN_L1_TABLE, l1) == -abi.EINVAL
    # an entry in it is changed with mmu_update
    rc, done = g.mmu_update([((l1 << 12) + 8, (data << 12) | P)])
    assert (rc, done) == (0, 1)
    assert g.mmuext(abi.MMUEXT_UNPIN_TABLE, l1) == 0
    assert xen.frametable.type_count(l1) == 0 and not xen.frametable.validated(l1)
    assert g.mmuext(abi.MMUEXT_UNPIN_TABLE, l1) == -abi.EINVAL


def test_l4_xen_slots_protected(dom0):
    xen, g = dom0
    l4 = g.v.guest_table
    for slot in (256, 258, 271):
        rc, done = g.mmu_update([((l4 << 12) + 8 * slot, 0)])
        assert rc == -abi.EINVAL and done == 0


def test_disallowed_flags(dom0):
    xen, g = dom0
    l4 = g.v.guest_table
    mfn = g.free_frame()
    va = scratch_va(g)
    # PAT/PSE bit in an L1 entry
    assert g.call(abi.HYPERVISOR_update_va_mapping, va, (mfn << 12) | P | 0x80, 0) == -abi.EINVAL
    # release build: AVL bit 11 is the guest's
    assert g.call(abi.HYPERVISOR_update_va_mapping, va, (mfn << 12) | P | 0x800, 0) == 0


def test_debug_build_claims_pte_bit_11(dom0_debug):
    xen, g = dom0_debug
    mfn = g.free_frame()
    va = scratch_va(g)
    # illumos' 2007 foreign-mapping mark (AVL bit 2 = PTE bit 11) is refused ...
    assert g.call(abi.HYPERVISOR_update_va_mapping, va, (mfn << 12) | P | 0x800, 0) == -abi.EINVAL
    assert "Bad L1 flags 800" in xen.console
    # ... while the encoded value PT_FOREIGN = 0x600 (bits 9 and 10) is accepted
    assert g.call(abi.HYPERVISOR_update_va_mapping, va, (mfn << 12) | P | 0x600, 0) == 0


def test_io_frames(dom0):
    xen, g = dom0
    va = scratch_va(g)
    # the first MiB (BIOS tables) belongs to DOMID_IO: dom0 may map it
    assert g.call(abi.HYPERVISOR_update_va_mapping, va, (0xF0 << 12) | P, 0) == 0
    # a frame in the PCI hole (not RAM) too, directly or with DOMID_IO as foreign domain
    hole = 0xE0000
    assert g.call(abi.HYPERVISOR_update_va_mapping, va, (hole << 12) | P | RW, 0) == 0
    rc, _ = g.mmu_update([(g.l1_entry_maddr(va)[0], (hole << 12) | P | RW)], abi.DOMID_IO)
    assert rc == 0
    # the IOAPIC and LAPIC pages are Xen's: denied to dom0
    assert g.call(abi.HYPERVISOR_update_va_mapping, va, (0xFEC00 << 12) | P, 0) == -abi.EINVAL
    assert g.call(abi.HYPERVISOR_update_va_mapping, va, (0xFEE00 << 12) | P, 0) == -abi.EINVAL


def test_mmu_update_stops_at_first_failure_and_reports_done(dom0):
    xen, g = dom0
    va = scratch_va(g)
    ptr = g.l1_entry_maddr(va)[0]
    a, b = g.free_frame(), g.free_frame()
    rc, done = g.mmu_update([(ptr, (a << 12) | P), (ptr, (g.v.guest_table << 12) | P | RW),
                             (ptr, (b << 12) | P)])
    assert (rc, done) == (-abi.EINVAL, 1)
    assert (xen.memory.read64(ptr) >> 12) & 0xFFFFFFF == a


def test_machphys_update_keeps_tables_inverse(dom0):
    xen, g = dom0
    mfn = g.free_frame()
    old_pfn = xen.m2p.get(mfn)
    rc, done = g.mmu_update([((mfn << 12) | abi.MMU_MACHPHYS_UPDATE, 5)])
    assert (rc, done) == (0, 1)
    assert xen.m2p.get(mfn) == 5 and g.d.p2m[5] == mfn and g.d.p2m[old_pfn] == -1


def test_bad_command_and_bad_pointer(dom0):
    xen, g = dom0
    rc, done = g.mmu_update([(0x1000 | 3, 0)])
    assert rc == -abi.ENOSYS
    assert g.call(abi.HYPERVISOR_mmu_update, abi.HYPERVISOR_VIRT_START, 1, 0,
                  abi.DOMID_SELF) == -abi.EFAULT
    assert g.call(abi.HYPERVISOR_mmu_update, 0x1000, 1, 0, abi.DOMID_SELF) == -abi.EFAULT
    assert g.call(abi.HYPERVISOR_mmu_update, g.put(b"\0" * 16), 1, 0, 0x1234) == -abi.ESRCH


def test_new_baseptr_switches_cr3(dom0):
    from xenlab.machine import regs as R
    xen, g = dom0
    old = g.v.guest_table
    # build a second L4 by copying the guest half of the first
    new = g.free_frame()
    va = scratch_va(g)
    assert g.call(abi.HYPERVISOR_update_va_mapping, va, (new << 12) | P | RW, abi.UVMF_INVLPG) == 0
    tab = np.frombuffer(xen.memory.read_bytes(old << 12, 4096), dtype=np.uint64).copy()
    tab[256:272] = 0
    GuestMemory(xen, g.v).write(va, tab.tobytes())
    assert g.call(abi.HYPERVISOR_update_va_mapping, va, 0, abi.UVMF_INVLPG) == 0
    assert g.mmuext(abi.MMUEXT_NEW_BASEPTR, new) == 0
    assert g.v.guest_table == new and int(g.v.hw.state[R.CR3]) == new << 12
    assert xen.memory.read64((new << 12) + 8 * 256) != 0, "Xen slots installed"
    # a data frame cannot be a base pointer
    assert g.mmuext(abi.MMUEXT_NEW_BASEPTR, g.free_frame()) in (0, -abi.EINVAL)


def test_heap_zones_and_lowmem_switch():
    from xenlab.xen.heap import Heap
    h = Heap(1 << 21)                            # 8 GiB of frames
    h.add_range(0x1000, 0xC0000 - 0x1000)       # 16 MiB .. 3 GiB
    h.add_range(0x100000, 0x100000)             # 4 .. 8 GiB
    assert h.alloc(0) >> 20 == 1, "no limit: from above 4 GiB first"
    m = h.alloc(0, address_bits=32)
    assert 0x80000 <= m < 0xC0000, "32-bit limit: the highest frames below 4 GiB"
    m = h.alloc(0, address_bits=30)
    assert m < 0x40000
    old = Heap(1 << 21, lowmem_2g_4g=True)
    old.add_range(0x1000, 0xC0000 - 0x1000)
    assert 0x80000 <= old.alloc(0, address_bits=32) < 0xC0000
    assert old.alloc(0, address_bits=30) is None, "2007: nothing below 2 GiB"
    assert old.alloc(0, address_bits=24) is None, "2007: no ISA-DMA memory"
    hist = old.history()
    assert list(hist["ok"]) == [True, False, False]


def test_heap_buddy_matches_slow_model():
    """Random allocs/frees against a set-of-free-frames model."""
    from xenlab.xen.heap import Heap
    rng = np.random.Generator(np.random.PCG64(3))
    h = Heap(1 << 14)
    h.add_range(0x100, (1 << 14) - 0x100)
    free = set(range(0x100, 1 << 14))
    held = []
    for _ in range(400):
        if held and rng.random() < 0.4:
            mfn, order = held.pop(int(rng.integers(len(held))))
            h.free(mfn, order)
            free |= set(range(mfn, mfn + (1 << order)))
        else:
            order = int(rng.integers(0, 5))
            mfn = h.alloc(order)
            if mfn is None:
                continue
            block = set(range(mfn, mfn + (1 << order)))
            assert block <= free and mfn % (1 << order) == 0
            free -= block
            held.append((mfn, order))
        assert h.avail() == len(free)


def test_mmio_inside_e820_ram_is_io():
    """A device window the machine decodes inside a range the E820 calls RAM is
    still I/O to Xen: never given to a domain, mappable by dom0."""
    from xenlab.machine import Machine
    from xenlab.xen import Xen

    from .guestlib import Guest, make_image

    class Dev:
        def mmio_read(self, off, size):
            return 0x1234

        def mmio_write(self, off, size, value):
            pass

    m = Machine("512M")
    m.mmio.map(0x10000000, 0x2000, Dev(), "odd device")
    xen = Xen(m, cpu=False)
    d = xen.build_dom0(make_image())
    assert xen.frametable.owner_of(0x10000) == abi.DOMID_IO
    assert 0x10000 not in set(d.p2m.tolist())
    g = Guest(xen, d)
    assert g.call(abi.HYPERVISOR_update_va_mapping, g.scratch + 0x40000,
                  (0x10001 << 12) | P | RW, 0) == 0


def test_recursive_validation_of_a_new_tree_and_teardown(dom0):
    """Pinning an L4 validates the L3, L2 and L1 below it (types and references
    flow down); unpinning devalidates the whole tree again."""
    xen, g = dom0
    ft = xen.frametable
    l4, l3, l2, l1, data = (g.free_frame() for _ in range(5))
    va = scratch_va(g)
    gm = GuestMemory(xen, g.v)

    def write_table(mfn, entries):
        assert g.call(abi.HYPERVISOR_update_va_mapping, va, (mfn << 12) | P | RW,
                      abi.UVMF_INVLPG) == 0
        tab = np.zeros(512, dtype=np.uint64)
        for i, e in entries.items():
            tab[i] = e
        gm.write(va, tab.tobytes())
        assert g.call(abi.HYPERVISOR_update_va_mapping, va, 0, abi.UVMF_INVLPG) == 0

    write_table(l1, {0: (data << 12) | P | RW | US})
    write_table(l2, {0: (l1 << 12) | P | RW | US})
    write_table(l3, {0: (l2 << 12) | P | RW | US})
    write_table(l4, {5: (l3 << 12) | P | RW | US})
    assert g.mmuext(abi.MMUEXT_PIN_L4_TABLE, l4) == 0
    assert [abi.PGT_NAMES[ft.ptype(m)] for m in (l4, l3, l2, l1, data)] == \
        ["L4", "L3", "L2", "L1", "writable"]
    assert all(ft.validated(m) for m in (l4, l3, l2, l1))
    assert xen.memory.read64((l4 << 12) + 8 * 256) != 0, "Xen's slots were installed"
    # as the user page tables of the vCPU
    assert g.mmuext(abi.MMUEXT_NEW_USER_BASEPTR, l4) == 0
    assert ft.type_count(l4) == 2
    assert g.mmuext(abi.MMUEXT_NEW_USER_BASEPTR, 0) == 0
    assert g.mmuext(abi.MMUEXT_UNPIN_TABLE, l4) == 0
    assert not any(ft.validated(m) for m in (l4, l3, l2, l1))
    assert all(ft.type_count(m) == 0 for m in (l4, l3, l2, l1, data))
    # so they may be written again
    assert g.call(abi.HYPERVISOR_update_va_mapping, va, (l2 << 12) | P | RW, 0) == 0


def test_pin_fails_cleanly_when_a_lower_entry_is_bad(dom0):
    """One bad L1 entry deep in the tree: the pin fails and every reference
    taken on the way down is released (checked by the invariant hook)."""
    xen, g = dom0
    ft = xen.frametable
    l2, l1, data = (g.free_frame() for _ in range(3))
    va = scratch_va(g)
    gm = GuestMemory(xen, g.v)
    for mfn, entries in ((l1, {0: (data << 12) | P, 1: (g.v.guest_table << 12) | P | RW}),
                         (l2, {0: (l1 << 12) | P | RW})):
        assert g.call(abi.HYPERVISOR_update_va_mapping, va, (mfn << 12) | P | RW,
                      abi.UVMF_INVLPG) == 0
        tab = np.zeros(512, dtype=np.uint64)
        for i, e in entries.items():
            tab[i] = e
        gm.write(va, tab.tobytes())
        assert g.call(abi.HYPERVISOR_update_va_mapping, va, 0, abi.UVMF_INVLPG) == 0
    assert g.mmuext(abi.MMUEXT_PIN_L2_TABLE, l2) == -abi.EINVAL
    assert ft.type_count(l2) == 0 and ft.type_count(l1) == 0 and ft.refs(data) == 1
