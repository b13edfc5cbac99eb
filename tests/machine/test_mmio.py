import pytest

from xenlab.machine.memory import Memory, MemoryError_
from xenlab.machine.mmio import MmioBus, MmioConflict


class Regs:
    def __init__(self):
        self.regs = {}

    def mmio_read(self, offset, size):
        return self.regs.get(offset, 0)

    def mmio_write(self, offset, size, value):
        self.regs[offset] = value


def test_device_registers_at_machine_addresses():
    m = Memory()
    bus = MmioBus(m)
    dev = Regs()
    bus.map(0xFEC0_0000, 0x1000, dev, "ioapic")
    bus.write(0xFEC0_0010, 4, 0x1_2345_6789)
    assert dev.regs == {0x10: 0x2345_6789}          # truncated to the access size
    assert bus.read(0xFEC0_0010, 4) == 0x2345_6789
    assert m.mmio_region(0xFEC00) is not None
    with pytest.raises(MemoryError_):
        m.read32(0xFEC0_0010)                       # not RAM
    assert bus.read(0xFED0_0000, 4) == 0xFFFF_FFFF  # nobody there


def test_overlaps_and_ram_are_refused_and_unmap_frees():
    m = Memory()
    bus = MmioBus(m)
    dev = Regs()
    bus.map(0xFEE0_0000, 0x1000, dev, "lapic")
    with pytest.raises(MmioConflict, match="overlaps lapic"):
        bus.map(0xFEE0_0000, 0x2000, Regs(), "other")
    m.write64(0x10_0000, 1)
    with pytest.raises(MmioConflict, match="holds RAM"):
        bus.map(0x10_0000, 0x1000, Regs(), "bar")
    with pytest.raises(ValueError, match="4 KiB boundary"):
        bus.map(0x123, 0x1000, Regs())
    bus.unmap(dev)
    assert m.mmio_region(0xFEE00) is None and bus.frame().empty


def test_frame_lists_regions():
    bus = MmioBus(Memory())
    bus.map(0xFEC0_0000, 0x1000, Regs(), "ioapic")
    bus.map(0xE000_0000, 0x10_0000, Regs(), "bar0")
    assert list(bus.frame().device) == ["bar0", "ioapic"]
