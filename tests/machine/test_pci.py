"""PCI configuration space through the port bus, as a driver sees it.

References: PCI Local Bus Specification 3.0 §3.2.2.3.2 (mechanism #1),
PCI 2.0 §3.6.4.1.2 (mechanism #2), §6.2.5.1 (BAR sizing), PCI-to-PCI Bridge
Architecture Specification 1.2 §3.2.5 (bus numbers), §6.7 (capabilities).
"""

import pytest

from xenlab.machine.memory import Memory
from xenlab.machine.mmio import MmioBus
from xenlab.machine.pci import PciFunction, PciHost
from xenlab.machine.pci import config as C
from xenlab.machine.ports import PortBus


def make_host(mechanisms=(1, 2)):
    mem = Memory(addr_bits=40)
    ports, mmio = PortBus(), MmioBus(mem)
    host = PciHost(ports, mmio, mechanisms=mechanisms)
    root = host.add_root_bus(0, 0xFF)
    nic = PciFunction(0x8086, 0x100E, 0x020000, revision=3, name="nic")
    nic.set_bar(0, "mem32", 0x20000, base=0xFEB00000)
    nic.set_bar(1, "io", 0x40, base=0xC000)
    nic.set_bar(2, "mem64", 0x4000, base=0x1_0000_0000, prefetch=True)
    nic.set_interrupt(1, 11)
    nic.add_capability(C.CAP_PM, 8, bytes([0x03, 0x00, 0x00, 0x00]), bytes([0, 0, 3, 0]))
    nic.add_capability(C.CAP_MSI, 14, bytes(12), bytes([1, 0]) + b"\xff" * 10)
    host.attach(root, 3, 0, nic)
    br = PciFunction(0x8086, 0x244E, 0x060401, header=1, name="bridge")
    br.set_bridge(0, 1, 2)
    host.attach(root, 0x1E, 0, br)
    disk = PciFunction(0x1000, 0x0050, 0x010000, name="sas")
    disk.set_bar(0, "io", 0x100, base=0xD000)
    host.attach(br.child, 4, 0, disk)
    disk2 = PciFunction(0x1000, 0x0050, 0x010000, name="sas-fn1")
    host.attach(br.child, 4, 1, disk2)
    for f in (nic, disk):
        f.config_write(C.COMMAND, 2, C.CMD_IO | C.CMD_MEMORY | C.CMD_MASTER)
    return host, ports, mmio, nic, br, disk


def cfg1(ports, bus, dev, fn, reg=0, size=4, value=None):
    ports.write(0xCF8, 4, 0x80000000 | bus << 16 | dev << 11 | fn << 8 | (reg & 0xFC))
    port = 0xCFC + (reg & 3)
    if value is None:
        return ports.read(port, size)
    ports.write(port, size, value)


def test_mechanism1_reads_ids_and_any_width_inside_the_dword():
    host, ports, *_ = make_host()
    assert cfg1(ports, 0, 3, 0, 0) == 0x100E8086
    assert cfg1(ports, 0, 3, 0, 2, 2) == 0x100E
    assert cfg1(ports, 0, 3, 0, 1, 1) == 0x80
    assert cfg1(ports, 0, 3, 0, 0x0B, 1) == 0x02           # base class: network
    assert cfg1(ports, 0, 3, 0, 0x09, 2) == 0x0000           # prog-if 0, subclass 0
    assert cfg1(ports, 0, 3, 0, 0x3D, 1) == 1                # INTA#
    assert ports.read(0xCF8, 4) == 0x80000000 | 3 << 11 | 0x3C


def test_mechanism1_absent_function_and_disabled_reads_all_ones():
    host, ports, *_ = make_host()
    assert cfg1(ports, 0, 4, 0, 0) == 0xFFFFFFFF
    assert cfg1(ports, 0x10, 0, 0, 0) == 0xFFFFFFFF          # no bridge forwards bus 0x10
    ports.write(0xCF8, 4, 3 << 11)                            # enable bit clear
    assert ports.read(0xCFC, 4) == 0xFFFFFFFF


def test_byte_write_to_cf8_does_not_change_config_address():
    host, ports, *_ = make_host(mechanisms=(1,))
    ports.write(0xCF8, 4, 0x80001800)
    ports.write(0xCF8, 1, 0x00)
    assert ports.read(0xCF8, 4) == 0x80001800


def test_interrupt_line_round_trip_and_read_only_fields():
    host, ports, mmio, nic, br, disk = make_host()
    cfg1(ports, 0, 3, 0, 0x3C, 1, 0x0A)
    assert cfg1(ports, 0, 3, 0, 0x3C, 1) == 0x0A
    cfg1(ports, 0, 3, 0, 0x3D, 1, 0x04)                       # pin is read-only
    assert cfg1(ports, 0, 3, 0, 0x3D, 1) == 1
    cfg1(ports, 0, 3, 0, 0x00, 4, 0)                          # IDs are read-only
    assert cfg1(ports, 0, 3, 0, 0) == 0x100E8086


def test_status_bits_are_write_one_to_clear():
    host, ports, mmio, nic, br, disk = make_host()
    nic._put(C.STATUS, 2, nic.get(C.STATUS, 2) | 0x2000)      # received master abort
    cfg1(ports, 0, 3, 0, 6, 2, 0x0000)
    assert cfg1(ports, 0, 3, 0, 6, 2) & 0x2000
    cfg1(ports, 0, 3, 0, 6, 2, 0x2000)
    assert not cfg1(ports, 0, 3, 0, 6, 2) & 0x2000
    assert cfg1(ports, 0, 3, 0, 6, 2) & C.STS_CAP_LIST        # read-only bit kept


def test_mechanism2_reaches_the_same_space():
    host, ports, mmio, nic, br, disk = make_host()
    ports.write(0xCFA, 1, 0)                                  # bus 0
    ports.write(0xCF8, 1, 0x80)                               # key, function 0
    assert ports.read(0xC300, 4) == 0x100E8086                # device 3
    assert ports.read(0xC30B, 1) == 0x02
    ports.write(0xC33C, 1, 0x05)
    ports.write(0xCF8, 1, 0x00)                               # window closes
    assert cfg1(ports, 0, 3, 0, 0x3C, 1) == 0x05
    # closed: 0xC000 is the NIC's I/O BAR again, not config space
    assert ports.read(0xC000, 4) == 0x100E8086                # ID register in its BAR
    ports.write(0xCFA, 1, 1)                                  # behind the bridge
    ports.write(0xCF8, 1, 0x80 | 1 << 1)                      # function 1
    assert ports.read(0xC400, 2) == 0x1000
    assert ports.read(0xC402, 2) == 0x0050
    ports.write(0xCF8, 1, 0)
    assert ports.read(0xCF8, 1) == 0 and ports.read(0xCFA, 1) == 1


def test_mechanism2_absent_on_a_mechanism1_only_host():
    host, ports, *_ = make_host(mechanisms=(1,))
    ports.write(0xCF8, 1, 0x80)
    assert ports.read(0xC300, 4) == 0xFFFFFFFF


def test_bar_sizing_io_mem32_mem64():
    host, ports, mmio, nic, br, disk = make_host()
    cfg1(ports, 0, 3, 0, 0x10, 4, 0xFFFFFFFF)
    assert cfg1(ports, 0, 3, 0, 0x10) == 0xFFFE0000           # 128 KiB, mem32, non-prefetch
    cfg1(ports, 0, 3, 0, 0x14, 4, 0xFFFFFFFF)
    assert cfg1(ports, 0, 3, 0, 0x14) == 0x0000FFC1           # 64 ports, I/O
    cfg1(ports, 0, 3, 0, 0x18, 4, 0xFFFFFFFF)
    cfg1(ports, 0, 3, 0, 0x1C, 4, 0xFFFFFFFF)
    lo, hi = cfg1(ports, 0, 3, 0, 0x18), cfg1(ports, 0, 3, 0, 0x1C)
    assert lo == 0xFFFFC00C and hi == 0xFFFFFFFF              # 16 KiB, 64-bit, prefetchable
    size = (~((hi << 32) | (lo & ~0xF)) & (2**64 - 1)) + 1
    assert size == 0x4000
    cfg1(ports, 0, 3, 0, 0x20, 4, 0xFFFFFFFF)                 # unimplemented BAR
    assert cfg1(ports, 0, 3, 0, 0x20) == 0


def test_bar_moves_its_registers_and_sizing_stops_decoding():
    host, ports, mmio, nic, br, disk = make_host()
    assert mmio.read(0xFEB00000, 4) == 0x100E8086
    mmio.write(0xFEB00010, 4, 0x1234)
    cfg1(ports, 0, 3, 0, 0x10, 4, 0xFFFFFFFF)                 # sizing: nothing decodes
    assert mmio.read(0xFEB00000, 4) == 0xFFFFFFFF
    cfg1(ports, 0, 3, 0, 0x10, 4, 0xFE000000)
    assert mmio.read(0xFE000000, 4) == 0x100E8086
    assert mmio.read(0xFE000010, 4) == 0x1234                 # same registers, new address
    assert mmio.read(0xFEB00000, 4) == 0xFFFFFFFF
    cfg1(ports, 0, 3, 0, 4, 2, 0)                             # memory decode off
    assert mmio.read(0xFE000000, 4) == 0xFFFFFFFF
    assert ports.read(0xC000, 4) == 0xFFFFFFFF                # I/O decode off too


def test_64bit_bar_above_4g_decodes():
    host, ports, mmio, nic, br, disk = make_host()
    assert mmio.read(0x1_0000_0000, 2) == 0x8086
    cfg1(ports, 0, 3, 0, 0x1C, 4, 0x2)                        # move to 0x2_0000_0000
    assert mmio.read(0x2_0000_0000, 4) == 0x100E8086


def test_sub_page_bars_of_two_functions_share_a_frame():
    host, ports, mmio, *_ = make_host()
    root = host.roots[0][2]
    a = PciFunction(0x10DE, 0x0373, 0x068000); a.set_bar(0, "mem32", 0x100, base=0xFCFFA000)
    b = PciFunction(0x10DE, 0x0374, 0x068000); b.set_bar(0, "mem32", 0x10, base=0xFCFFA400)
    host.attach(root, 8, 0, a); host.attach(root, 9, 0, b)
    for f in (a, b):
        f.config_write(C.COMMAND, 2, C.CMD_MEMORY)
    assert mmio.read(0xFCFFA000, 4) == 0x037310DE
    assert mmio.read(0xFCFFA400, 4) == 0x037410DE
    assert mmio.read(0xFCFFA200, 4) == 0xFFFFFFFF


def test_bridge_forwards_by_secondary_and_subordinate():
    host, ports, mmio, nic, br, disk = make_host()
    assert cfg1(ports, 1, 4, 0) == 0x00501000
    assert cfg1(ports, 0, 0x1E, 0, 0x18) & 0xFFFFFF == 0x020100   # pri 0, sec 1, sub 2
    assert cfg1(ports, 0, 0, 0, 0) == 0xFFFFFFFF
    assert cfg1(ports, 1, 4, 0, 0x0C) >> 16 & 0x80                 # multi-function device
    cfg1(ports, 0, 0x1E, 0, 0x19, 1, 5)                            # renumber: secondary 5
    cfg1(ports, 0, 0x1E, 0, 0x1A, 1, 5)
    assert cfg1(ports, 1, 4, 0) == 0xFFFFFFFF
    assert cfg1(ports, 5, 4, 0) == 0x00501000
    assert disk.bdf == "05:04.0"


def test_bridge_windows_round_trip():
    f = PciFunction(0x8086, 0x2940, 0x060400, header=1)
    f.set_bridge(0, 2, 2, io=(0x1000, 0x1FFF), mem=(0xF9F00000, 0xF9FFFFFF),
                 pref=(0x1_F000_0000, 0x1_F01F_FFFF))
    w = f.bridge_windows()
    assert w["io"] == (0x1000, 0x1FFF)
    assert w["mem"] == (0xF9F00000, 0xF9FFFFFF)
    assert w["pref"] == (0x1_F000_0000, 0x1_F01F_FFFF)
    g = PciFunction(0x8086, 0x2940, 0x060400, header=1)
    g.set_bridge(0, 3, 3)
    assert g.bridge_windows() == {"io": None, "mem": None, "pref": None}


def test_capability_list_walk():
    host, ports, mmio, nic, br, disk = make_host()
    ids, ptr = [], cfg1(ports, 0, 3, 0, 0x34, 1)
    while ptr:
        ids.append(cfg1(ports, 0, 3, 0, ptr, 1))
        ptr = cfg1(ports, 0, 3, 0, ptr + 1, 1)
    assert ids == [C.CAP_PM, C.CAP_MSI]
    pm = nic.caps[C.CAP_PM]
    cfg1(ports, 0, 3, 0, pm + 4, 2, 0xFFFF)                     # PMCSR: only power state
    assert cfg1(ports, 0, 3, 0, pm + 4, 2) == 3


def test_ecam_sees_the_same_functions():
    host, ports, mmio, nic, br, disk = make_host()
    host.enable_ecam(0xE0000000, 0, 255)
    assert mmio.read(0xE0000000 + (3 << 15), 4) == 0x100E8086
    assert mmio.read(0xE0000000 + (1 << 20) + (4 << 15), 4) == 0x00501000
    assert mmio.read(0xE0000000 + (3 << 15) + 0x100, 4) == 0          # no extended caps
    mmio.write(0xE0000000 + (3 << 15) + 0x3C, 1, 9)
    assert cfg1(ports, 0, 3, 0, 0x3C, 1) == 9


def test_bad_bar_is_refused_by_name():
    f = PciFunction(1, 2, 3)
    with pytest.raises(ValueError, match="size 3000 is not a power of two"):
        f.set_bar(0, "mem32", 3000)


from hypothesis import given
from hypothesis import strategies as st


@given(reg=st.integers(0, 255), size=st.sampled_from([1, 2, 4]))
def test_any_width_any_offset_matches_the_config_bytes(reg, size):
    """Mechanism #1, #2 and ECAM all read the same little-endian bytes of the space."""
    if (reg & 3) + size > 4:
        size = 4 - (reg & 3)
    host, ports, mmio, nic, br, disk = make_host()
    want = int.from_bytes(nic.cfg[reg:reg + size].tobytes(), "little")
    assert cfg1(ports, 0, 3, 0, reg, size) == want
    ports.write(0xCFA, 1, 0)
    ports.write(0xCF8, 1, 0x80)
    assert ports.read(0xC300 + reg, size) == want
    ports.write(0xCF8, 1, 0)
    host.enable_ecam(0xE0000000, 0, 0)
    assert mmio.read(0xE0000000 + (3 << 15) + reg, size) == want


@given(reg=st.integers(0x3C, 0x3C), size=st.sampled_from([1, 2, 4]), value=st.integers(0, 2**32 - 1))
def test_writes_respect_the_masks(reg, size, value):
    host, ports, mmio, nic, br, disk = make_host()
    before = nic.cfg.copy()
    cfg1(ports, 0, 3, 0, reg, size, value & ((1 << 8 * size) - 1))
    assert nic.cfg[0x3C] == value & 0xFF                     # interrupt line: writable
    assert nic.cfg[0x3D] == before[0x3D]                     # pin: read-only
