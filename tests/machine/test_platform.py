"""Whole machines built from every profile: enumeration, routing, devices, views."""

import numpy as np
import pytest

from xenlab.machine import Machine
from xenlab.machine.devices import lapic as L
from xenlab.machine.profile import list_profiles, load_profile

PROFILES = list_profiles()


@pytest.fixture(scope="module", params=PROFILES)
def machine(request):
    return Machine.from_profile(request.param, seed=1)


def cfg_read(ports, bus, dev, fn, reg, size=4):
    ports.write(0xCF8, 4, 0x80000000 | bus << 16 | dev << 11 | fn << 8 | (reg & 0xFC))
    return ports.read(0xCFC + (reg & 3), size)


def scan(ports):
    """A firmware-style recursive bus scan through configuration mechanism #1."""
    found = {}

    def bus_scan(bus):
        for dev in range(32):
            for fn in range(8):
                vid = cfg_read(ports, bus, dev, fn, 0, 2)
                if vid == 0xFFFF:
                    if fn == 0:
                        break
                    continue
                ids = cfg_read(ports, bus, dev, fn, 0)
                cls = cfg_read(ports, bus, dev, fn, 8) >> 8
                hdr = cfg_read(ports, bus, dev, fn, 0x0E, 1)
                found[f"{bus:02x}:{dev:02x}.{fn}"] = (ids & 0xFFFF, ids >> 16, cls)
                if hdr & 0x7F == 1:
                    bus_scan(cfg_read(ports, bus, dev, fn, 0x19, 1))
                if fn == 0 and not hdr & 0x80:
                    break
    for r in (0, 0x7F, 0x80, 0xFF):
        bus_scan(r)
    return found


def test_mechanism1_scan_finds_exactly_the_profile(machine):
    prof = machine.profile
    roots = {r["bus"] for r in prof["pci_host"]["root_buses"]}
    expect = {f["bdf"]: (f["vendor"], f["device"], f["class"]) for f in prof["pci"]}
    got = scan(machine.ports)
    if roots <= {0, 0x7F, 0x80, 0xFF}:
        assert got == expect


def test_every_intx_reaches_its_gsi_as_a_vector(machine):
    """The routing test: each PCI function's INTx# arrives at the IOAPIC input the
    profile names and leaves it as the vector programmed there."""
    prof = machine.profile
    bsp = machine.lapics[0]
    apic_id = bsp.apic_id
    byfn = {f.bdf: f for f in machine.pci.walk()}
    checked = 0
    for k, f in enumerate(prof["pci"]):
        irq = f.get("interrupt")
        if not irq or irq["gsi"] is None:
            continue
        gsi = irq["gsi"]
        io, pin = machine.interrupts.ioapic_for(gsi)
        vector = 0x40 + (gsi % 0xB0)
        low = machine.interrupts.pci_polarity(gsi) == "low"
        lo = vector | 1 << 15 | (1 << 13 if low else 0)
        base = io.address
        machine.mmio.write(base, 4, 0x11 + 2 * pin)
        machine.mmio.write(base + 0x10, 4, apic_id << 24)
        machine.mmio.write(base, 4, 0x10 + 2 * pin)
        machine.mmio.write(base + 0x10, 4, lo)
        assert bsp.pending_vector() is None, f"{f['bdf']}: GSI {gsi} fired while idle"
        fn = byfn[f["bdf"]]
        fn.set_intx(True)
        assert bsp.pending_vector() == vector, f"{f['bdf']} INT{irq['pin']} did not reach GSI {gsi}"
        assert machine.interrupts.acknowledge(0) == vector
        fn.set_intx(False)
        machine.mmio.write(L.ID + 0xFEE00000 - L.ID + L.EOI, 4, 0)    # EOI through MMIO
        assert bsp.isr == 0 and not io.rte[pin] & (1 << 14)
        machine.mmio.write(base, 4, 0x10 + 2 * pin)
        machine.mmio.write(base + 0x10, 4, 1 << 16)                    # mask again
        checked += 1
    assert checked == sum(1 for f in prof["pci"] if f.get("interrupt"))


def test_isa_irq0_follows_the_override(machine):
    ovr = {o["bus_irq"]: o["gsi"] for o in machine.profile["overrides"]}
    gsi = ovr.get(0, 0)
    io, pin = machine.interrupts.ioapic_for(gsi)
    machine.mmio.write(io.address, 4, 0x10 + 2 * pin)
    machine.mmio.write(io.address + 0x10, 4, 0x30)                     # edge, high, unmasked
    machine.mmio.write(io.address, 4, 0x11 + 2 * pin)
    machine.mmio.write(io.address + 0x10, 4, machine.lapics[0].apic_id << 24)
    machine.ports.write(0x43, 1, 0x34)
    machine.ports.write(0x40, 1, 0x00); machine.ports.write(0x40, 1, 0x10)   # 4096 ticks
    machine.clock.advance(4_000_000)
    assert machine.interrupts.acknowledge(0) == 0x30
    machine.lapics[0].eoi()
    machine.mmio.write(io.address, 4, 0x10 + 2 * pin)
    machine.mmio.write(io.address + 0x10, 4, 1 << 16)
    machine.ports.write(0x43, 1, 0x30)                                 # stop: mode 0, no reload


def test_absent_isa_devices_read_ff_present_ones_answer(machine):
    isa = machine.profile["isa"]
    p = machine.ports
    assert (p.read(0x64, 1) != 0xFF) == isa["i8042"]
    assert (p.read(0x3F4, 1) != 0xFF) == isa["floppy"]
    p.write(0x378, 1, 0x5A)
    assert (p.read(0x378, 1) == 0x5A) == isa["parallel"]
    p.write(0x70, 1, 0x0D)
    assert p.read(0x71, 1) == 0x80


def test_device_registers_at_machine_addresses(machine):
    n = 0
    for f in machine.pci.walk():
        if f.model is not None:
            continue
        for b in f.bars:
            if b is not None and not b.is_io and b.decoded is not None:
                assert machine.mmio.read(b.decoded, 4) == f.vendor | f.device << 16
                n += 1
    assert n > 0


def test_each_cpu_sees_its_own_lapic(machine):
    ids = []
    for i in range(len(machine.lapics)):
        machine.current_cpu = i
        ids.append(machine.mmio.read(0xFEE00020, 4) >> 24)
    machine.current_cpu = 0
    assert ids == [c["apic_id"] for c in machine.profile.cpus]
    assert machine.mmio.read(0xFEE000F0, 4) & 0x100          # BSP left in virtual wire mode


def test_serial_console(machine):
    if not machine.uarts:
        pytest.skip("no serial port")
    base = machine.uarts[0].base
    for ch in b"ok\n":
        while not machine.ports.read(base + 5, 1) & 0x20:
            pass
        machine.ports.write(base, 1, ch)
    assert machine.console.endswith("ok\n")


def test_views(machine):
    pf = machine.pci_frame()
    assert len(pf) == len(machine.profile["pci"])
    assert set(pf.bdf) == {f["bdf"] for f in machine.profile["pci"]}
    rf = machine.irq_routing_frame()
    pci = rf[rf.kind == "pci"]
    want = {f["bdf"]: f["interrupt"]["gsi"] for f in machine.profile["pci"] if f.get("interrupt")}
    assert dict(zip(pci.source, pci.gsi)) == want
    isa = rf[rf.kind == "isa"].set_index("pin")
    for o in machine.profile["overrides"]:
        row = isa.loc[f"IRQ{o['bus_irq']}"] if f"IRQ{o['bus_irq']}" in isa.index else None
        if row is not None:
            assert row.gsi == o["gsi"] and row.override
    ef = machine.e820_frame()
    assert len(ef) == len(machine.profile["e820"])


@pytest.mark.parametrize("name", PROFILES)
def test_same_seed_same_machine(name):
    a = Machine.from_profile(name, memory="64G", seed=5)
    b = Machine.from_profile(name, memory="64G", seed=5)
    c = Machine.from_profile(name, memory="64G", seed=6)
    assert a.state_hash() == b.state_hash() != c.state_hash()
    b.ports.write(0x80 if "rtc" not in b.isa else 0x70, 1, 0x0E)
    b.ports.write(0x71, 1, 0x42)
    if "rtc" in b.isa:
        assert a.state_hash() != b.state_hash()


def test_memory_override_big_and_small():
    m = Machine.from_profile("sun-x2200m2", memory="64G")
    assert abs(m.memory_bytes - (64 << 30)) < (600 << 20)
    assert m.memory.touched_frames < 16
    acpi = [e for e in m.e820 if e.type == 3]
    for sig, addr in m.firmware.tables.items():
        if sig != "FACS":
            assert any(e.base <= addr < e.end for e in acpi), sig
    s = Machine.from_profile("sun-x2200m2", memory="512M")
    acpi = [e for e in s.e820 if e.type == 3]
    assert acpi[0].end <= 512 << 20
    assert any(acpi[0].base <= s.firmware.tables["APIC"] < acpi[0].end for _ in [0])


def test_ide_dma_on_a_profile_machine():
    m = Machine.from_profile("qemu-i440fx", seed=2)
    ctrl = m.ide[0]
    bm = ctrl.function.bars[4].decoded
    disk = m.disks[0]
    m.memory.write32(0x9000, 0x200000)
    m.memory.write32(0x9004, 0x1000 | 0x80000000)
    p = m.ports
    p.write(bm + 4, 4, 0x9000); p.write(bm, 1, 0x08)
    p.write(0x1F6, 1, 0xE0); p.write(0x1F2, 1, 8)
    for r in (0x1F3, 0x1F4, 0x1F5):
        p.write(r, 1, 0)
    p.write(0x1F7, 1, 0xC8); p.write(bm, 1, 0x09)
    assert m.memory.read_bytes(0x200000, 4096) == disk.read(0, 8)
    assert m.interrupts.pic.master.irr == 0                  # PIC not initialised: IRR latches
    assert m.pic.slave.irr & (1 << 6)                        # IRQ14 requested


def test_profile_object_can_be_passed_and_repr():
    p = load_profile("qemu-i440fx")
    m = Machine.from_profile(p)
    assert "qemu-i440fx" in repr(m) and m.ncpus == 2


def test_raise_interrupt_api():
    m = Machine.from_profile("qemu-i440fx")
    io = m.ioapics[0]
    io.write_register(0x10 + 2 * 11, 0x51 | 1 << 15)               # GSI 11: level, active high
    m.raise_interrupt("00:03.0")                                    # the e1000's INTA#
    assert m.interrupts.acknowledge(0) == 0x51
    m.raise_interrupt("00:03.0", False)
    m.lapics[0].eoi()
    io.write_register(0x10 + 2 * 4, 0x52)
    m.raise_interrupt(4)
    assert m.interrupts.acknowledge(0) == 0x52
    m.pic.io_write(0x21, 1, 0xEB)                                   # unmask IRQ4 on the PIC
    m.raise_interrupt(4, False); m.raise_interrupt(4)
    assert m.pic.master.irr & 0x10
    with pytest.raises(ValueError, match="no such PCI function"):
        m.raise_interrupt("00:09.0")
    with pytest.raises(ValueError, match="no interrupt pin"):
        m.raise_interrupt("00:00.0")


@pytest.mark.parametrize("name", PROFILES)
def test_every_intx_with_a_pic_irq_reaches_the_pic(name):
    """PIC mode: the chipset's PIRQ router steers INTx# to the PIC IRQ the profile names."""
    m = Machine.from_profile(name)
    byfn = {f.bdf: f for f in m.pci.walk()}
    n = 0
    for f in m.profile["pci"]:
        irq = (f.get("interrupt") or {}).get("pic_irq")
        if irq is None:
            continue
        m.pic.io_write(0x21, 1, 0xFF & ~0x04 & ~((1 << irq) if irq < 8 else 0))
        m.pic.io_write(0xA1, 1, 0xFF & ~(1 << (irq - 8)) if irq >= 8 else 0xFF)
        byfn[f["bdf"]].set_intx(True)
        assert m.interrupts.acknowledge(0) == (0x08 + irq if irq < 8 else 0x70 + irq - 8)
        byfn[f["bdf"]].set_intx(False)
        m.pic.io_write(0xA0, 1, 0x20)
        m.pic.io_write(0x20, 1, 0x20)
        n += 1
    assert n == sum(1 for f in m.profile["pci"] if (f.get("interrupt") or {}).get("pic_irq") is not None)
