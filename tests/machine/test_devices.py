"""Device registers against their datasheets.

UART: PC16550D datasheet Table 2/Table 4; IDE: ATA/ATAPI-6 §7-8 and SFF-8038i;
8254: Intel 82C54 datasheet; MC146818A; 8042 and 82077AA as cited in the modules.
"""

import datetime as dt

import numpy as np
import pytest

from xenlab.machine.clock import Clock
from xenlab.machine.devices import uart16550 as U
from xenlab.machine.devices.disk import SECTOR, DiskImage
from xenlab.machine.devices.ide import AtaDisk, IdeController
from xenlab.machine.devices.isa import Floppy82077, I8042, ParallelPort
from xenlab.machine.devices.pit8254 import Pit8254
from xenlab.machine.devices.rtc import Rtc
from xenlab.machine.memory import Memory
from xenlab.machine.mmio import MmioBus
from xenlab.machine.pci import PciFunction, PciHost
from xenlab.machine.ports import PortBus


class Line:
    def __init__(self):
        self.level, self.history = False, []

    def set(self, v):
        self.level = bool(v)
        self.history.append(self.level)

    def pulse(self):
        self.history.append("pulse")


def uart():
    ports, irq = PortBus(), Line()
    u = U.Uart16550(0x3F8, irq)
    u.attach(ports)
    return ports, u, irq


def test_uart_reset_values_and_scratch():
    ports, u, irq = uart()
    assert ports.read(0x3FD, 1) == 0x60                 # THRE | TEMT
    assert ports.read(0x3FA, 1) == 0x01                 # no interrupt pending
    ports.write(0x3FF, 1, 0x5A)
    assert ports.read(0x3FF, 1) == 0x5A


def test_uart_divisor_latch():
    ports, u, irq = uart()
    ports.write(0x3FB, 1, 0x80)                          # DLAB
    ports.write(0x3F8, 1, 0x01); ports.write(0x3F9, 1, 0x00)
    assert ports.read(0x3F8, 1) == 0x01
    ports.write(0x3FB, 1, 0x03)                          # 8N1, DLAB off
    assert u.baud == 115200 and ports.read(0x3F9, 1) == 0
    ports.write(0x3F8, 1, ord("A"))
    assert u.console_text() == "A"                       # the write went to THR, not DLL
    assert u.divisor == 1


def test_uart_transmit_interrupt_needs_out2_and_clears_on_iir_read():
    ports, u, irq = uart()
    ports.write(0x3F9, 1, U.IER_THRE)
    assert not irq.level                                 # OUT2 low gates the line
    ports.write(0x3FC, 1, U.MCR_OUT2 | U.MCR_DTR | U.MCR_RTS)
    assert irq.level
    assert ports.read(0x3FA, 1) == U.IIR_THRE
    assert not irq.level and ports.read(0x3FA, 1) == U.IIR_NONE
    ports.write(0x3F8, 1, ord("x"))
    assert irq.level


def test_uart_fifo_trigger_and_timeout():
    ports, u, irq = uart()
    ports.write(0x3FA, 1, 0x87)                          # enable FIFO, clear, trigger 8
    assert ports.read(0x3FA, 1) & 0xC0 == 0xC0
    ports.write(0x3F9, 1, U.IER_RDA)
    ports.write(0x3FC, 1, U.MCR_OUT2)
    u.feed(b"abc")
    assert ports.read(0x3FA, 1) & 0x0F == U.IIR_CTI      # below trigger: timeout
    u.feed(b"defghij")
    assert ports.read(0x3FA, 1) & 0x0F == U.IIR_RDA      # 10 >= 8
    got = bytes(ports.read(0x3F8, 1) for _ in range(10))
    assert got == b"abcdefghij"
    assert not ports.read(0x3FD, 1) & U.LSR_DR and not irq.level


def test_uart_overrun():
    ports, u, irq = uart()
    ports.write(0x3FA, 1, 0x01)
    u.feed(bytes(range(20)))
    lsr = ports.read(0x3FD, 1)
    assert lsr & U.LSR_OE and lsr & U.LSR_DR
    assert not ports.read(0x3FD, 1) & U.LSR_OE          # cleared by reading LSR
    assert bytes(ports.read(0x3F8, 1) for _ in range(16)) == bytes(range(16))


def test_uart_loopback():
    ports, u, irq = uart()
    ports.write(0x3FC, 1, U.MCR_LOOP | U.MCR_RTS | U.MCR_OUT2)
    ports.write(0x3F8, 1, 0x42)
    assert ports.read(0x3F8, 1) == 0x42 and u.console_text() == ""
    msr = ports.read(0x3FE, 1)
    assert msr & U.MSR_CTS and msr & U.MSR_DCD and not msr & U.MSR_DSR


def test_uart_line_status_interrupt_priority():
    ports, u, irq = uart()
    ports.write(0x3F9, 1, U.IER_RLS | U.IER_RDA | U.IER_THRE)
    ports.write(0x3FC, 1, U.MCR_OUT2)
    u.feed(b"ab")                                        # no FIFO: second overruns
    assert ports.read(0x3FA, 1) == U.IIR_RLS
    ports.read(0x3FD, 1)
    assert ports.read(0x3FA, 1) == U.IIR_RDA


# -- IDE ----------------------------------------------------------------------------

def ide_setup(prog=0x8A, size=64 * SECTOR):
    mem = Memory()
    ports = PortBus()
    host = PciHost(ports, MmioBus(mem))
    fn = PciFunction(0x8086, 0x7010, 0x010100 | prog)
    fn.set_bar(4, "io", 16, base=0xC000)
    if prog & 0x05:
        fn.set_bar(0, "io", 8, base=0xD000); fn.set_bar(1, "io", 4, base=0xD100)
    host.attach(host.add_root_bus(0), 1, 1, fn)
    fn.config_write(4, 2, 0x5)
    ctrl = IdeController(mem, fn)
    img = DiskImage(size, seed=3)
    ctrl.attach_disk(0, 0, AtaDisk(img))
    ctrl.attach_legacy(ports)
    return mem, ports, fn, ctrl, img


def test_ide_identify_by_pio():
    mem, ports, fn, ctrl, img = ide_setup()
    ports.write(0x1F6, 1, 0xA0)
    ports.write(0x1F7, 1, 0xEC)
    assert ports.read(0x1F7, 1) & 0x08                  # DRQ
    words = [ports.read(0x1F0, 2) for _ in range(256)]
    assert words[0] == 0x0040 and words[49] & 0x0300 == 0x0300
    assert words[60] | words[61] << 16 == 64
    model = b"".join(w.to_bytes(2, "big") for w in words[27:47]).decode().strip()
    assert model == "XENLAB VIRTUAL DISK"
    assert not ports.read(0x1F7, 1) & 0x08


def test_ide_absent_channel_floats_high():
    mem, ports, fn, ctrl, img = ide_setup()
    assert ports.read(0x177, 1) == 0xFF
    ports.write(0x1F6, 1, 0xB0)                           # device 1 absent: reads 0
    assert ports.read(0x1F7, 1) == 0x00


def test_ide_pio_write_read_round_trip():
    mem, ports, fn, ctrl, img = ide_setup()
    ports.write(0x1F6, 1, 0xE0); ports.write(0x1F2, 1, 1)
    ports.write(0x1F3, 1, 5); ports.write(0x1F4, 1, 0); ports.write(0x1F5, 1, 0)
    ports.write(0x1F7, 1, 0x30)
    for i in range(256):
        ports.write(0x1F0, 2, i)
    assert img.read(5)[:4] == bytes([0, 0, 1, 0])
    ports.write(0x1F7, 1, 0x20)
    assert [ports.read(0x1F0, 2) for _ in range(3)] == [0, 1, 2]


def dma_read(ports, lba, count, prdt, cmd=0xC8, bm=0xC000):
    ports.write(bm + 4, 4, prdt)
    ports.write(bm + 2, 1, 0x06)                          # clear error/interrupt
    ports.write(bm + 0, 1, 0x08)                          # direction: to memory
    ports.write(0x1F6, 1, 0xE0 | (lba >> 24 & 0xF))
    ports.write(0x1F2, 1, count)
    ports.write(0x1F3, 1, lba & 0xFF); ports.write(0x1F4, 1, lba >> 8 & 0xFF)
    ports.write(0x1F5, 1, lba >> 16 & 0xFF)
    ports.write(0x1F7, 1, cmd)
    ports.write(bm + 0, 1, 0x09)                          # start


def test_ide_dma_scatter_gather_lands_at_machine_addresses():
    mem, ports, fn, ctrl, img = ide_setup()
    fn.config_write(4, 2, 0x5)
    irq = []
    ctrl.legacy_lines[0] = type("L", (), {"set": lambda self, v: irq.append(v)})()
    # a 4-page buffer whose machine frames are scattered: 0x300, 0x120, 0x555, 0x201
    frames = [0x300, 0x120, 0x555, 0x201]
    prdt = 0x1000
    for i, mfn in enumerate(frames):
        mem.write32(prdt + 8 * i, mfn << 12)
        mem.write32(prdt + 8 * i + 4, 0x1000 | (0x80000000 if i == 3 else 0))
    dma_read(ports, 8, 32, prdt)
    for i, mfn in enumerate(frames):
        assert mem.read_bytes(mfn << 12, 4096) == img.read(8 + 8 * i, 8)
    st = ports.read(0xC002, 1)
    assert st & 0x04 and not st & 0x01 and not st & 0x02  # interrupt, done, no error
    assert irq[-1] is True
    assert ports.read(0x1F7, 1) == 0x50 and irq[-1] is False


def test_ide_dma_with_pseudo_physical_addresses_corrupts_other_frames():
    """The story's bug: cookies built from PFNs instead of MFNs."""
    mem, ports, fn, ctrl, img = ide_setup()
    p2m = {0x100: 0x300, 0x101: 0x120}                    # the guest's view of its buffer
    victim = 0x101                                        # machine frame of something else
    mem.write_bytes(victim << 12, b"precious" * 512)
    mem.write32(0x1000, 0x100 << 12)                      # wrong: a PFN-based address
    mem.write32(0x1004, 0x2000 | 0x80000000)
    dma_read(ports, 0, 16, 0x1000)
    assert mem.read_bytes(victim << 12, 8) != b"precious"
    assert mem.read_bytes(victim << 12, 4096) == img.read(8, 8)
    assert mem.read_bytes(p2m[0x100] << 12, 8) == bytes(8)   # the real buffer got nothing


def test_ide_dma_write_and_short_prd_error():
    mem, ports, fn, ctrl, img = ide_setup()
    mem.write_bytes(0x5000, bytes(range(256)) * 2)
    mem.write32(0x1000, 0x5000); mem.write32(0x1004, 512 | 0x80000000)
    ports.write(0xC004, 4, 0x1000)
    ports.write(0xC000, 1, 0x00)                          # direction: from memory
    ports.write(0x1F6, 1, 0xE0); ports.write(0x1F2, 1, 1)
    ports.write(0x1F3, 1, 2); ports.write(0x1F4, 1, 0); ports.write(0x1F5, 1, 0)
    ports.write(0x1F7, 1, 0xCA)
    ports.write(0xC000, 1, 0x01)
    assert img.read(2) == bytes(range(256)) * 2
    dma_read(ports, 0, 4, 0x1000)                          # 2 KiB into a 512-byte PRD
    assert ports.read(0xC002, 1) & 0x02                    # error: PRD too short


def test_ide_48bit_read_dma_ext():
    mem, ports, fn, ctrl, img = ide_setup(size=1 << 20)
    lba = 0x123
    ports.write(0xC004, 4, 0x1000)
    mem.write32(0x1000, 0x8000); mem.write32(0x1004, 512 | 0x80000000)
    ports.write(0xC000, 1, 0x08)
    ports.write(0x1F6, 1, 0x40)
    ports.write(0x1F2, 1, 0); ports.write(0x1F2, 1, 1)
    ports.write(0x1F3, 1, 0); ports.write(0x1F3, 1, lba & 0xFF)
    ports.write(0x1F4, 1, 0); ports.write(0x1F4, 1, lba >> 8)
    ports.write(0x1F5, 1, 0); ports.write(0x1F5, 1, 0)
    ports.write(0x1F7, 1, 0x25)
    ports.write(0xC000, 1, 0x09)
    assert mem.read_bytes(0x8000, 512) == img.read(lba)


def test_native_mode_uses_pci_intx():
    mem, ports, fn, ctrl, img = ide_setup(prog=0x85)
    assert ctrl.native == [True, True]
    ports.write(0xD006, 1, 0xA0)
    ports.write(0xD007, 1, 0xEC)
    assert fn.intx_asserted
    ports.read(0xD102, 1)                                  # alt status: does not clear
    assert fn.intx_asserted
    ports.read(0xD007, 1)
    assert not fn.intx_asserted


def test_disk_image_pattern_file_and_bounds(tmp_path):
    d = DiskImage(8 * SECTOR, seed=7)
    w = np.frombuffer(d.read(3), "<u8")
    assert int(w[5]) == (7 << 48) | (3 << 6) | 5
    f = DiskImage(1 << 30, path=tmp_path / "d.img")
    f.write(100, b"\x11" * 512)
    assert f.read(100)[:2] == b"\x11\x11" and f.read(101) == bytes(512)
    assert (tmp_path / "d.img").stat().st_blocks * 512 < 1 << 20     # sparse
    with pytest.raises(ValueError, match="beyond the end"):
        d.read(8)


# -- ISA ------------------------------------------------------------------------------

def test_absent_isa_devices_read_ff():
    ports = PortBus()
    assert [ports.read(p, 1) for p in (0x60, 0x64, 0x3F4, 0x378, 0x71)] == [0xFF] * 5


def test_i8042_self_test_and_command_byte():
    ports, irq = PortBus(), Line()
    k = I8042(irq); k.attach(ports)
    ports.write(0x64, 1, 0xAA)
    assert ports.read(0x64, 1) & 1 and ports.read(0x60, 1) == 0x55
    ports.write(0x64, 1, 0x60); ports.write(0x60, 1, 0x44)
    ports.write(0x64, 1, 0x20)
    assert ports.read(0x60, 1) == 0x44
    ports.write(0x60, 1, 0xFF)
    assert [ports.read(0x60, 1), ports.read(0x60, 1)] == [0xFA, 0xAA]


def test_floppy_version_and_reset_interrupt():
    ports, irq = PortBus(), Line()
    f = Floppy82077(irq); f.attach(ports)
    assert ports.read(0x3F4, 1) & 0x80
    ports.write(0x3F5, 1, 0x10)
    assert ports.read(0x3F5, 1) == 0x90
    ports.write(0x3F2, 1, 0x00); ports.write(0x3F2, 1, 0x0C)
    assert irq.level
    ports.write(0x3F5, 1, 0x08)
    assert [ports.read(0x3F5, 1), ports.read(0x3F5, 1)] == [0xC0, 0x00] and not irq.level


def test_parallel_port_probe():
    ports = PortBus()
    ParallelPort().attach(ports)
    ports.write(0x378, 1, 0xAA)
    assert ports.read(0x378, 1) == 0xAA


def test_pit_counts_down_latches_and_irq0():
    clock, ports, irq = Clock(), PortBus(), Line()
    pit = Pit8254(clock, irq); pit.attach(ports); clock.add(pit)
    ports.write(0x43, 1, 0x34)                             # counter 0, LSB/MSB, mode 2
    ports.write(0x40, 1, 0x9C); ports.write(0x40, 1, 0x2E)   # 11932: ~100 Hz
    clock.advance(5_000_000)                               # 5 ms = 5966 ticks
    ports.write(0x43, 1, 0x00)                             # latch counter 0
    count = ports.read(0x40, 1) | ports.read(0x40, 1) << 8
    assert abs(count - (11932 - 5965)) <= 2
    assert irq.history.count("pulse") == 0
    clock.advance(20_000_000)
    assert irq.history.count("pulse") == 2
    ports.write(0x43, 1, 0xE2)                             # read-back status of counter 0
    assert ports.read(0x40, 1) & 0x3F == 0x34


def test_pit_channel2_gate_and_output_on_port61():
    clock, ports = Clock(), PortBus()
    pit = Pit8254(clock); pit.attach(ports)
    ports.write(0x61, 1, 0x01)
    ports.write(0x43, 1, 0xB0)                             # counter 2, mode 0
    ports.write(0x42, 1, 0xFF); ports.write(0x42, 1, 0x00)   # 255 ticks
    assert not ports.read(0x61, 1) & 0x20
    clock.advance(300_000)
    assert ports.read(0x61, 1) & 0x20


def test_rtc_time_bcd_and_binary_and_status():
    clock, ports = Clock(), PortBus()
    r = Rtc(clock, dt.datetime(2007, 3, 14, 15, 9, 26)); r.attach(ports)
    def rd(i):
        ports.write(0x70, 1, i); return ports.read(0x71, 1)
    assert (rd(9), rd(8), rd(7), rd(4), rd(2), rd(0)) == (0x07, 0x03, 0x14, 0x15, 0x09, 0x26)
    clock.advance(61 * 10**9)
    assert rd(2) == 0x10 and rd(0) == 0x27
    ports.write(0x70, 1, 0x0B); ports.write(0x71, 1, 0x06)  # binary, 24h
    assert rd(4) == 15
    assert rd(0x0D) == 0x80
    ports.write(0x70, 1, 0x40); ports.write(0x71, 1, 0x99)
    assert rd(0x40) == 0x99
    ports.write(0x70, 1, 0x8F)
    assert r.nmi_masked
