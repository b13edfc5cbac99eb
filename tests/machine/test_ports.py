import pytest

from xenlab.machine.ports import PortBus, PortConflict


class Latch:
    def __init__(self):
        self.log = []
        self.value = 0

    def io_read(self, port, size):
        self.log.append(("r", port, size))
        return self.value

    def io_write(self, port, size, value):
        self.log.append(("w", port, size, value))
        self.value = value


def test_unclaimed_ports_read_all_ones_of_the_access_size():
    bus = PortBus()
    assert bus.read(0x3F0, 1) == 0xFF
    assert bus.read(0x3F0, 2) == 0xFFFF
    assert bus.read(0x3F0, 4) == 0xFFFF_FFFF
    bus.write(0x378, 1, 0x12)       # vanishes


def test_claimed_ranges_dispatch_with_size():
    bus, dev = PortBus(), Latch()
    bus.claim(0xCF8, 8, dev, "pci")
    bus.write(0xCF8, 4, 0x8000_0000)
    assert bus.read(0xCF8, 4) == 0x8000_0000
    assert dev.log == [("w", 0xCF8, 4, 0x8000_0000), ("r", 0xCF8, 4)]
    assert int(bus.owner[0xCFF]) == 1 and int(bus.owner[0xD00]) == 0


def test_access_straddling_a_device_edge_is_split():
    bus, dev = PortBus(), Latch()
    dev.value = 0x5A
    bus.claim(0x61, 1, dev, "speaker")
    assert bus.read(0x60, 2) == 0x5AFF      # 0x60 unclaimed, 0x61 claimed
    assert dev.log == [("r", 0x61, 1)]


def test_overlapping_claims_are_refused_with_names():
    bus = PortBus()
    bus.claim(0x3F8, 8, Latch(), "com1")
    with pytest.raises(PortConflict, match="0x3fc.*com1"):
        bus.claim(0x3FC, 4, Latch(), "other")


def test_release_frees_every_range_of_a_device():
    bus, dev = PortBus(), Latch()
    bus.claim(0x1F0, 8, dev, "ide")
    bus.claim(0x3F6, 1, dev, "ide")
    bus.release(dev)
    assert bus.read(0x1F0, 1) == 0xFF and bus.read(0x3F6, 1) == 0xFF
    assert bus.frame().empty


def test_frame_lists_claims_and_trace_records_accesses():
    bus = PortBus()
    bus.claim(0x40, 4, Latch(), "pit")
    bus.trace = []
    bus.write(0x43, 1, 0x34)
    bus.read(0x40, 1)
    assert bus.trace == [("out", 0x43, 1, 0x34), ("in", 0x40, 1, 0x34)]
    df = bus.frame()
    assert df.iloc[0].to_dict() == {"first": 0x40, "last": 0x43, "count": 4, "device": "pit"}


def test_bad_ranges_are_refused():
    with pytest.raises(ValueError, match="outside the 64 KiB"):
        PortBus().claim(0xFFFF, 2, Latch())
