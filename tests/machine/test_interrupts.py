"""8259A, IOAPIC and local APIC at register level, and the wiring between them.

References: Intel 8259A datasheet (ICW/OCW formats, fully nested mode);
82093AA I/O APIC datasheet §3.2; Intel SDM Vol. 3A §11.5-11.9 (LAPIC).
"""

import pytest

from xenlab.machine.clock import Clock
from xenlab.machine.devices import lapic as L
from xenlab.machine.devices.ioapic import IoApic
from xenlab.machine.devices.lapic import Lapic
from xenlab.machine.devices.pic8259 import PicPair
from xenlab.machine.irq import InterruptRouter, Override
from xenlab.machine.ports import PortBus


def init_pics(ports, base_m=0x20, base_s=0x28):
    """The classic PC initialisation sequence (ICW1..ICW4 for both chips)."""
    for port, base, icw3 in ((0x20, base_m, 0x04), (0xA0, base_s, 0x02)):
        ports.write(port, 1, 0x11)          # ICW1: edge, cascade, ICW4 needed
        ports.write(port + 1, 1, base)      # ICW2: vector base
        ports.write(port + 1, 1, icw3)      # ICW3: slave on IR2 / slave id 2
        ports.write(port + 1, 1, 0x01)      # ICW4: 8086 mode
    ports.write(0x21, 1, 0x00)
    ports.write(0xA1, 1, 0x00)


def make(ncpu=2, overrides=(Override(0, 2),)):
    ports = PortBus()
    pic = PicPair()
    pic.attach(ports)
    clock = Clock()
    io = IoApic(apic_id=8, address=0xFEC00000, gsi_base=0, pins=24, version=0x20)
    lapics = [Lapic(i, apic_id=2 * i, clock=clock) for i in range(ncpu)]
    r = InterruptRouter(pic, [io], lapics, overrides)
    return ports, pic, io, lapics, r, clock


def enable_virtual_wire(lapic):
    lapic.write_register(L.SVR, 0x1FF)
    lapic.write_register(L.LVT_LINT0, L.DM_EXTINT << 8)
    lapic.write_register(L.LVT_LINT1, L.DM_NMI << 8)


def test_pic_vectors_priorities_and_eoi():
    ports, pic, io, lapics, r, _ = make()
    init_pics(ports)
    enable_virtual_wire(lapics[0])
    kbd, com1 = r.isa_line(1), r.isa_line(4)
    com1.set(True); kbd.set(True)
    assert r.pending(0)
    assert r.acknowledge(0) == 0x21                  # IRQ1 beats IRQ4
    ports.write(0x20, 1, 0x0B)                       # OCW3: read ISR
    assert ports.read(0x20, 1) == 0x02
    assert not r.pending(0)                          # IRQ4 waits: lower priority in service
    ports.write(0x20, 1, 0x20)                       # OCW2: non-specific EOI
    assert r.acknowledge(0) == 0x24
    ports.write(0x20, 1, 0x0A)                       # OCW3: read IRR
    assert ports.read(0x20, 1) & 0x12 == 0           # edge requests consumed


def test_pic_mask_and_slave_cascade():
    ports, pic, io, lapics, r, _ = make()
    init_pics(ports, 0x30, 0x38)
    enable_virtual_wire(lapics[0])
    ide = r.isa_line(14)
    ports.write(0xA1, 1, 0x40)                       # mask IRQ14 on the slave
    ide.set(True)
    assert not r.pending(0)
    assert ports.read(0xA1, 1) == 0x40
    ports.write(0xA1, 1, 0x00)
    assert r.pending(0) and r.acknowledge(0) == 0x3E
    ports.write(0xA0, 1, 0x0B)
    assert ports.read(0xA0, 1) == 0x40 and (ports.write(0x20, 1, 0x0B) or ports.read(0x20, 1)) == 0x04


def test_pic_spurious_irq7():
    ports, pic, io, lapics, r, _ = make()
    init_pics(ports)
    assert pic.acknowledge() == 0x27


def test_elcr_level_mode_keeps_request_until_line_drops():
    ports, pic, io, lapics, r, _ = make()
    init_pics(ports)
    enable_virtual_wire(lapics[0])
    ports.write(0x4D1, 1, 0x02)                       # IRQ9 level (ELCR2 bit 1)
    assert ports.read(0x4D1, 1) == 0x02
    ports.write(0x4D0, 1, 0x07)                       # IRQ0-2 can't be level
    assert ports.read(0x4D0, 1) == 0x00
    sci = r.isa_line(9)
    sci.set(True)
    assert r.acknowledge(0) == 0x29
    ports.write(0xA0, 1, 0x20); ports.write(0x20, 1, 0x20)
    assert r.pending(0)                               # still asserted: requested again
    sci.set(False)
    assert not r.pending(0)


def test_ioapic_registers():
    io = IoApic(apic_id=4, address=0xFEC00000, pins=24, version=0x11)
    io.mmio_write(0, 4, 0x01)
    assert io.mmio_read(0x10, 4) == 0x00170011         # 24 entries, version 0x11
    io.mmio_write(0, 4, 0x00)
    assert io.mmio_read(0x10, 4) == 0x04000000
    io.mmio_write(0, 4, 0x10 + 2 * 5)
    assert io.mmio_read(0x10, 4) == 0x00010000         # masked after reset
    io.mmio_write(0x10, 4, 0x00008031 | 1 << 12 | 1 << 14)   # RO bits ignored
    assert io.mmio_read(0x10, 4) == 0x00008031
    io.mmio_write(0, 4, 0x10 + 2 * 5 + 1)
    io.mmio_write(0x10, 4, 0x03000000)
    assert io.rte[5] == 0x03000000_00008031


def program_rte(io, pin, vector, dest, level=False, low=False, masked=False):
    lo = vector | (1 << 15 if level else 0) | (1 << 13 if low else 0) | (1 << 16 if masked else 0)
    io.mmio_write(0, 4, 0x11 + 2 * pin); io.mmio_write(0x10, 4, dest << 24)
    io.mmio_write(0, 4, 0x10 + 2 * pin); io.mmio_write(0x10, 4, lo)


def test_isa_irq_through_override_to_lapic():
    ports, pic, io, lapics, r, _ = make()
    for l in lapics:
        l.write_register(L.SVR, 0x1FF)
    program_rte(io, 2, 0x30, dest=2)                  # GSI 2 (timer, via override) -> cpu 1
    pit = r.isa_line(0)
    pit.pulse()
    assert r.pending(1) and not r.pending(0)
    assert r.acknowledge(1) == 0x30
    assert lapics[1].read_register(L.ISR0 + 0x10) == 1 << 16
    lapics[1].write_register(L.EOI, 0)
    assert lapics[1].isr == 0


def test_level_interrupt_remote_irr_and_eoi_broadcast():
    ports, pic, io, lapics, r, _ = make()
    lapics[0].write_register(L.SVR, 0x1FF)
    from xenlab.machine.pci import PciFunction
    fn = PciFunction(0x8086, 0x100E, 0x020000)
    fn.set_interrupt(1)
    r.route_pci(fn, 16, 11)
    program_rte(io, 16, 0x41, dest=0, level=True, low=True)
    assert not r.pending(0)                           # idle wire is high: not active
    r.pci_intx(fn, True)
    assert r.acknowledge(0) == 0x41
    assert io.rte[16] & (1 << 14)                      # remote IRR
    lapics[0].write_register(L.EOI, 0)                # still asserted: delivered again
    assert r.acknowledge(0) == 0x41
    r.pci_intx(fn, False)
    lapics[0].write_register(L.EOI, 0)
    assert not io.rte[16] & (1 << 14) and not r.pending(0)


def test_wrong_polarity_storms():
    """Programming a PCI pin active-high makes the idle (high) wire look asserted."""
    ports, pic, io, lapics, r, _ = make()
    lapics[0].write_register(L.SVR, 0x1FF)
    from xenlab.machine.pci import PciFunction
    fn = PciFunction(1, 2, 3); fn.set_interrupt(1)
    r.route_pci(fn, 17, None)
    program_rte(io, 17, 0x42, dest=0, level=True, low=False)
    assert r.acknowledge(0) == 0x42


def test_tpr_blocks_lower_classes():
    lap = Lapic(0, 0)
    lap.write_register(L.SVR, 0x1FF)
    lap.write_register(L.TPR, 0x50)
    lap.accept(0x45)
    assert lap.pending_vector() is None
    lap.accept(0x61)
    assert lap.pending_vector() == 0x61 and lap.read_register(L.PPR) == 0x50
    lap.acknowledge()
    assert lap.read_register(L.PPR) == 0x60


def test_disabled_lapic_takes_no_fixed_interrupts_and_masks_lvts():
    lap = Lapic(0, 0)
    assert lap.read_register(L.SVR) == 0xFF
    lap.accept(0x40)
    assert lap.irr == 0
    lap.write_register(L.LVT_TIMER, 0x20)
    assert lap.read_register(L.LVT_TIMER) & L.LVT_MASKED
    assert lap.read_register(L.VERSION) & 0xFF == 0x14


def test_ipi_fixed_init_sipi_and_shorthand():
    ports, pic, io, lapics, r, _ = make(ncpu=3)
    for l in lapics:
        l.write_register(L.SVR, 0x1FF)
    b = lapics[0]
    b.write_register(L.ICR_HI, 4 << 24)               # APIC id 4 = cpu 2
    b.write_register(L.ICR_LO, 0x000000F0)
    assert lapics[2].pending_vector() == 0xF0 and lapics[1].pending_vector() is None
    b.write_register(L.ICR_LO, 0x000C4500)            # INIT to all but self
    assert lapics[1].init_received == 1 and lapics[0].init_received == 0
    b.write_register(L.ICR_LO, 0x000C4610)            # SIPI, vector 0x10
    assert lapics[2].sipi_vector == 0x10
    assert not b.read_register(L.ICR_LO) & (1 << 12)  # delivery status idle


def test_logical_flat_destination():
    ports, pic, io, lapics, r, _ = make(ncpu=2)
    for i, l in enumerate(lapics):
        l.write_register(L.SVR, 0x1FF)
        l.write_register(L.LDR, (1 << i) << 24)
    program_rte(io, 4, 0x50, dest=0x02)
    io.rte[4] |= 1 << 11
    r.isa_line(4).set(True)
    assert lapics[1].pending_vector() == 0x50 and lapics[0].pending_vector() is None


def test_lapic_timer_one_shot_and_periodic():
    clock = Clock()
    lap = Lapic(0, 0, clock=clock)
    lap.write_register(L.SVR, 0x1FF)
    lap.write_register(L.TIMER_DIVIDE, 0xB)             # divide by 1: 100 MHz, 10 ns/tick
    lap.write_register(L.LVT_TIMER, 0x40)
    lap.write_register(L.TIMER_INITIAL, 1000)
    clock.add(lap)
    clock.advance(5000)
    assert lap.read_register(L.TIMER_CURRENT) == 500 and lap.irr == 0
    clock.advance(5000)
    assert lap.pending_vector() == 0x40 and lap.read_register(L.TIMER_CURRENT) == 0
    lap.acknowledge(); lap.eoi()
    clock.advance(100000)
    assert lap.irr == 0                                  # one shot: no more
    lap.write_register(L.LVT_TIMER, 0x41 | L.TIMER_PERIODIC)
    lap.write_register(L.TIMER_DIVIDE, 0x0)             # divide by 2
    lap.write_register(L.TIMER_INITIAL, 100)            # 2 us period
    clock.advance(2000)
    assert lap.pending_vector() == 0x41
    lap.acknowledge(); lap.eoi()
    clock.advance(1000)
    assert lap.irr == 0 and lap.read_register(L.TIMER_CURRENT) == 50
    clock.advance(1000)
    assert lap.pending_vector() == 0x41


def test_divide_configuration():
    assert [L.divide_value(v) for v in (0, 1, 2, 3, 8, 9, 10, 11)] == [2, 4, 8, 16, 32, 64, 128, 1]


def test_msi_delivery():
    ports, pic, io, lapics, r, _ = make(ncpu=2)
    for l in lapics:
        l.write_register(L.SVR, 0x1FF)
    from xenlab.machine.pci import PciFunction
    from xenlab.machine.pci import config as C
    fn = PciFunction(1, 2, 3)
    off = fn.add_capability(C.CAP_MSI, 14, bytes([0x80, 0]) + bytes(10), bytes([1, 0]) + b"\xff" * 10)
    fn.config_write(off + 4, 4, 0xFEE00000 | 2 << 12)
    fn.config_write(off + 12, 2, 0x0065)
    fn.config_write(off + 2, 2, 1)
    r.pci_intx(fn, True)
    assert lapics[1].pending_vector() == 0x65


def test_lint1_nmi():
    ports, pic, io, lapics, r, _ = make()
    enable_virtual_wire(lapics[0])
    lapics[0].set_lint(1, True)
    assert r.acknowledge(0) == 2
