"""The HPET at register level (IA-PC HPET Specification 1.0a §2.3)."""

from xenlab.machine import Machine
from xenlab.machine.devices import hpet as H


def machine():
    m = Machine.from_profile("qemu-i440fx")
    return m, m.profile["acpi"]["hpet"]


def test_capabilities_and_counter():
    m, base = machine()
    cap = m.mmio.read(base, 8)
    assert cap & 0xFFFFFFFF == 0x8086A201                       # as the table says
    assert ((cap >> 8) & 0x1F) + 1 == 3 and cap >> 13 & 1
    period = cap >> 32
    assert m.mmio.read(base + H.MAIN_COUNTER, 8) == 0
    m.clock.advance(1000)
    assert m.mmio.read(base + H.MAIN_COUNTER, 8) == 0          # not enabled: stopped
    m.mmio.write(base + H.GEN_CONF, 4, H.CONF_ENABLE)
    m.clock.advance(1_000_000)                                  # 1 ms
    c = m.mmio.read(base + H.MAIN_COUNTER, 8)
    assert abs(c - 1_000_000_000_000 // period) <= 1            # ~14318 ticks
    m.mmio.write(base + H.GEN_CONF, 4, 0)
    m.clock.advance(1_000_000)
    assert m.mmio.read(base + H.MAIN_COUNTER, 8) == c


def test_legacy_replacement_timer0_to_irq0_and_periodic():
    m, base = machine()
    io = m.ioapics[0]
    io.write_register(0x10 + 2 * 2, 0x60)                       # GSI 2 (IRQ 0 via override)
    t0 = base + H.TIMER0
    m.mmio.write(t0, 4, H.TN_ENABLE | H.TN_PERIODIC | H.TN_VAL_SET)
    m.mmio.write(t0 + 8, 8, 1432)                               # first match
    m.mmio.write(t0 + 8, 8, 1432)                               # then the period (~100 us)
    m.mmio.write(base + H.GEN_CONF, 4, H.CONF_ENABLE | H.CONF_LEGACY)
    m.clock.advance(99_000)
    assert m.interrupts.acknowledge(0) is None
    m.clock.advance(2_000)
    assert m.interrupts.acknowledge(0) == 0x60
    m.lapics[0].eoi()
    m.clock.advance(100_000)
    assert m.interrupts.acknowledge(0) == 0x60                  # periodic: again


def test_routed_level_timer_and_status_clear():
    m, base = machine()
    io = m.ioapics[0]
    io.write_register(0x10 + 2 * 20, 0x61 | 1 << 15)            # GSI 20: level
    t1 = base + H.TIMER0 + H.TIMER_STRIDE
    assert m.mmio.read(t1 + 4, 4) & (1 << 20)                   # may route to GSI 20
    m.mmio.write(t1, 4, H.TN_ENABLE | H.TN_LEVEL | 20 << H.TN_ROUTE_SHIFT)
    m.mmio.write(t1 + 8, 8, 100)
    m.mmio.write(base + H.GEN_CONF, 4, H.CONF_ENABLE)
    m.clock.advance(10_000)
    assert m.mmio.read(base + H.GINTR_STA, 4) == 2
    assert m.interrupts.acknowledge(0) == 0x61
    m.mmio.write(base + H.GINTR_STA, 4, 2)
    m.lapics[0].eoi()
    assert m.mmio.read(base + H.GINTR_STA, 4) == 0 and not m.interrupts.pending(0)
