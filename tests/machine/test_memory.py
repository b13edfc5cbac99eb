import numpy as np
import pytest
from numba import njit

from xenlab.machine import memory as M
from xenlab.machine.memory import Memory, MemoryError_, PAGE_SIZE


def test_untouched_reads_zero_and_allocate_nothing():
    m = Memory()
    assert m.read64(0x12345678) == 0
    assert m.read_bytes((1 << 40) - 4096, 4096) == bytes(4096)   # the top of 1 TiB
    assert m.touched_frames == 0
    assert len(m.frame()) == 0


def test_writes_allocate_one_frame_each_and_read_back():
    m = Memory()
    m.write8(0x1000, 0xAB)
    m.write16(0x2002, 0xBEEF)
    m.write32(0x3004, 0xDEADBEEF)
    m.write64(0x4008, 0x0123456789ABCDEF)
    assert m.touched_frames == 4
    assert m.read8(0x1000) == 0xAB
    assert m.read16(0x2002) == 0xBEEF
    assert m.read32(0x3004) == 0xDEADBEEF
    assert m.read64(0x4008) == 0x0123456789ABCDEF
    assert m.read32(0x400C) == 0x01234567   # little-endian halves
    assert m.read64(0xFFFF_F000) == 0


def test_values_with_the_top_bit_round_trip():
    m = Memory()
    m.write64(0x100, 0xFFFF_FFFF_FFFF_FFFF)
    m.write64(0x108, 1 << 63)
    assert m.read64(0x100) == 0xFFFF_FFFF_FFFF_FFFF
    assert m.read64(0x108) == 1 << 63


@pytest.mark.parametrize("size", [2, 4, 8])
def test_access_crossing_a_page_boundary(size):
    m = Memory()
    addr = 0x5000 - 1
    value = int.from_bytes(bytes(range(1, size + 1)), "little")
    m.write(addr, size, value)
    assert m.touched_frames == 2
    assert m.read(addr, size) == value
    assert m.read8(0x4FFF) == 1 and m.read8(0x5000) == 2


def test_unaligned_reads_inside_a_page():
    m = Memory()
    m.write_bytes(0x7000, bytes(range(16)))
    assert m.read32(0x7001) == 0x04030201
    assert m.read64(0x7003) == int.from_bytes(bytes(range(3, 11)), "little")


def test_bulk_write_grows_the_pool_and_keeps_data(rng):
    m = Memory(initial_frames=4)
    data = rng.integers(0, 256, 300 * PAGE_SIZE + 123, dtype=np.uint8)
    m.write_bytes(0x10_0000_0000 + 17, data)                 # at 64 GiB + 17
    assert m.touched_frames == 301          # 17 + 300 pages + 123 bytes
    assert (m.read_array(0x10_0000_0000 + 17, len(data)) == data).all()


def test_sparse_64gib_machine_costs_only_touched_frames():
    m = Memory()
    stride = ((64 << 30) // 1000) & ~0xFFF
    for i in range(1000):
        m.write64(i * stride, i + 1)
    assert m.touched_frames == 1000
    assert m.capacity_frames < 4 * 1000 + M.HEADROOM * 2
    assert [m.read64(i * stride) for i in (0, 500, 999)] == [1, 501, 1000]


def test_outside_the_address_space_is_a_clear_error():
    m = Memory(addr_bits=36)
    with pytest.raises(MemoryError_, match="outside the 36-bit"):
        m.read64(1 << 36)
    with pytest.raises(ValueError, match="addr_bits=48"):
        Memory(addr_bits=48)
    with pytest.raises(ValueError, match="size=3"):
        m.read(0, 3)


def test_mmio_frames_refuse_ram_access_and_cannot_cover_data():
    m = Memory()
    m.map_mmio(0xFEE00, 1, region=2)
    assert m.mmio_region(0xFEE00) == 2
    with pytest.raises(MemoryError_, match="MMIO"):
        m.read32(0xFEE0_0020)
    m.write64(0x1000, 5)
    with pytest.raises(MemoryError_, match="holds RAM"):
        m.map_mmio(1, 1, region=3)
    m.unmap_mmio(2)
    assert m.read32(0xFEE0_0020) == 0


def test_fill_sets_whole_frames_and_zero_fill_allocates_nothing():
    m = Memory()
    m.fill(0x100, 3, 0x5A)
    assert m.touched_frames == 3
    assert m.read_bytes(0x100000, 8) == b"\x5a" * 8
    m.fill(0x200, 1000, 0)
    assert m.touched_frames == 3
    m.fill(0x100, 1, 0)
    assert m.read64(0x100000) == 0


def test_snapshot_restore_rewinds_data_and_touches():
    m = Memory()
    m.write64(0x1000, 1)
    snap = m.snapshot()
    m.write64(0x1000, 2)
    m.write64(0x9000, 3)
    assert m.touched_frames == 2
    m.restore(snap)
    assert m.read64(0x1000) == 1
    assert m.read64(0x9000) == 0
    assert m.touched_frames == 1
    assert m.generation == 1


def test_restore_to_a_later_snapshot_after_diverging():
    m = Memory()
    m.write64(0x1000, 1)
    early = m.snapshot()
    m.write64(0x2000, 2)          # slot 2 holds mfn 2
    late = m.snapshot()
    m.restore(early)
    m.write64(0x3000, 3)          # slot 2 now holds mfn 3
    m.restore(late)
    assert (m.read64(0x1000), m.read64(0x2000), m.read64(0x3000)) == (1, 2, 0)
    assert m.touched_frames == 2
    assert sorted(m.frame().mfn) == [1, 2]


def test_snapshot_size_is_proportional_to_touched_frames():
    m = Memory()
    for i in range(10):
        m.write8((i * 1000) << 12, 1)
    snap = m.snapshot()
    assert snap.data.nbytes == 11 * PAGE_SIZE     # ten frames and the zero frame


def test_frame_view_orders_and_counts():
    m = Memory()
    m.write_bytes(0x5000, b"\x01\x00\x02")
    m.write64(0x2000, 0xFF)
    df = m.frame()
    assert list(df.columns) == ["mfn", "order", "nonzero_bytes"]
    assert list(df.mfn) == [5, 2]
    assert list(df.order) == [0, 1]
    assert list(df.nonzero_bytes) == [2, 1]


def test_kernels_are_callable_from_user_njit_code():
    @njit
    def checksum(mem, base, n):
        s = 0
        for i in range(n):
            s += M.load(mem, base + 8 * i, 8)
        M.store(mem, base + 8 * n, 8, s)
        return s

    m = Memory()
    for i in range(600):                 # crosses a page
        m.write64(0x10000 + 8 * i, i)
    m.reserve()
    assert checksum(m.arrays, 0x10000, 600) == sum(range(600))
    assert m.read64(0x10000 + 8 * 600) == sum(range(600))


def test_store_reports_a_full_pool_and_wrapper_recovers():
    m = Memory(initial_frames=2)
    mem = m.arrays
    assert M.store(mem, 0x1000, 8, 7)          # the one free slot
    assert not M.store(mem, 0x2000, 8, 7)      # no room: caller must grow
    m.write64(0x2000, 8)                       # the wrapper grows and retries
    assert (m.read64(0x1000), m.read64(0x2000)) == (7, 8)
