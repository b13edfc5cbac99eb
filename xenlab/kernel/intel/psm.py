"""The PSM (platform support module): interrupts and the clock.

``ddi_add_intr`` asks the PSM to route a device's interrupt -- the
``psm_route_intr`` hook -- and the PSM answers where it will arrive: an IDT
vector (``("vector", v)``: the i86pc way, pcplusmp programming the I/O APIC
and the local APIC itself) or an event channel (``("evtchn", port)``: under
Xen, which owns the APICs and the IDT).  ``psm_clkinit`` starts the clock the
same way.  :class:`Psm` holds the primitives either way needs; the kernel
keeps the handler tables and dispatches what arrives (``native_intr`` from
the IDT entry, ``xen_intr`` from the event upcall).

The 2007 default, :func:`pcplusmp_route_intr` / :func:`pcplusmp_clkinit`, is
what i86pc does: read the MADT (through ``psm_map_phys_new``), write I/O
APIC redirection entries and the local APIC timer through memory-mapped
registers, wait for IDT vectors; with no ACPI tables it falls back to uppc
(the 8259 PICs by port I/O).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .acpi import AcpiError, read_tables

IOREGSEL, IOWIN = 0x00, 0x10          # 82093AA I/O APIC: index and data windows
RTE_MASKED, RTE_LEVEL, RTE_LOW = 1 << 16, 1 << 15, 1 << 13
LAPIC_EOI, LAPIC_ISR, LAPIC_TIMER, LAPIC_TICR, LAPIC_TDCR = 0xB0, 0x100, 0x320, 0x380, 0x3E0
LAPIC_ID = 0x20
TIMER_PERIODIC = 1 << 17
APIC_BUS_HZ = 100_000_000             # the model's local APIC timer input clock
FIRST_VECTOR = 0x40                   # pcplusmp hands out vectors from here
PIC_VECTOR_BASE = 0x20                # uppc: ICW2 of the master PIC


@dataclass
class IntrSpec:
    """A device interrupt as the driver and the bus nexus describe it."""

    name: str                         # the driver instance (ata0, ahci0 ...)
    isa_irq: int | None = None        # an ISA (or compatibility-mode) IRQ
    bus: int | None = None            # or PCI INTx: bus, device, pin (1 = INTA#)
    dev: int | None = None
    pin: int = 0
    bridges: tuple = ()               # _ADR of each PCI-to-PCI bridge above the device
    line: int = 0xFF                  # the interrupt line register (PIC IRQ)

    def resolve(self, acpi) -> tuple[int, str, str]:
        """(GSI, polarity, trigger) from the ACPI tables: MADT overrides for an
        ISA IRQ; the _PRT (with the bridge swizzle) for PCI INTx, which is
        level and active low unless an override for that GSI says otherwise."""
        if self.isa_irq is not None:
            return acpi.isa_gsi(self.isa_irq)
        gsi = acpi.pci_gsi(self.bridges, self.dev, self.pin)
        if gsi is None:
            raise AcpiError(f"{self.name}: no _PRT entry for device {self.dev} "
                            f"INT{'?ABCD'[self.pin]}#")
        for o in acpi.overrides:
            if o.gsi == gsi and o.polarity != "conform":
                return gsi, o.polarity, ("level" if o.trigger == "conform" else o.trigger)
        return gsi, "low", "level"


@dataclass
class IntrRecord:
    """A routed interrupt: where it arrives and who handles it."""

    spec: IntrSpec
    arrival: tuple
    handlers: list = field(default_factory=list)
    count: int = 0
    spurious: int = 0
    gsi: int | None = None
    disabled: bool = False


class Psm:
    """The primitives a PSM uses, on this kernel's platform."""

    def __init__(self, kernel):
        self.k = kernel
        self.platform = kernel.plat.name
        self._acpi = None
        self._i86pc_acpi = False
        self.next_vector = FIRST_VECTOR
        self.mapped: dict[int, int] = {}            # physical page -> kernel VA
        self.log: list[str] = []

    # -- ACPI ---------------------------------------------------------------------------
    @property
    def acpi(self):
        """The ACPI tables read through machine-address mappings (natively the
        identity; under Xen foreign PFNs -- the xpv PSM's way)."""
        if self._acpi is None:
            self._acpi = read_tables(self.k.machine_read, self.k.ebda())
        return self._acpi

    def i86pc_acpi(self):
        """The tables as i86pc code finds them: through ``psm_map_phys_new``
        (None if they are not there)."""
        if self._i86pc_acpi is False:
            try:
                self._i86pc_acpi = read_tables(self.k.phys_read, None)
            except AcpiError as e:
                self.log.append(str(e))
                self._i86pc_acpi = None
        return self._i86pc_acpi

    # -- i86pc: memory-mapped APICs ---------------------------------------------------------
    def _map(self, paddr: int) -> int:
        page = paddr & ~0xFFF
        va = self.mapped.get(page)
        if va is None:
            va = self.mapped[page] = self.k.psm_map_phys(page, 1)
        return va + (paddr & 0xFFF)

    def ioapic_write(self, base: int, reg: int, value: int):
        va = self._map(base)
        self.k.kcpu.call("mmio_put32", va + IOREGSEL, reg)
        self.k.kcpu.call("mmio_put32", va + IOWIN, value)

    def ioapic_read(self, base: int, reg: int) -> int:
        va = self._map(base)
        self.k.kcpu.call("mmio_put32", va + IOREGSEL, reg)
        return self.k.kcpu.call("mmio_get32", va + IOWIN) & 0xFFFFFFFF

    def lapic_base(self) -> int:
        acpi = self.i86pc_acpi()
        return acpi.lapic_address if acpi is not None else 0xFEE00000

    def lapic_write(self, off: int, value: int):
        self.k.kcpu.call("mmio_put32", self._map(self.lapic_base()) + off, value)

    def lapic_read(self, off: int) -> int:
        return self.k.kcpu.call("mmio_get32", self._map(self.lapic_base()) + off) & 0xFFFFFFFF

    def alloc_vector(self) -> int:
        """An IDT vector of this kernel's own (i86pc)."""
        v = self.next_vector
        self.next_vector += 1
        return v

    def pic_unmask(self, irq: int) -> int:
        """uppc: unmask ``irq`` at the 8259 pair; its IDT vector."""
        port = 0x21 if irq < 8 else 0xA1
        mask = self.k.inb(port)
        self.k.outb(port, mask & ~(1 << (irq & 7)))
        if irq >= 8:
            self.k.outb(0x21, self.k.inb(0x21) & ~(1 << 2))
        return PIC_VECTOR_BASE + irq

    # -- i86xen: Xen owns the APICs ----------------------------------------------------------
    def alloc_irq_vector(self, irq: int) -> int:
        """PHYSDEVOP_alloc_irq_vector: the vector Xen will use for ``irq``."""
        return self.k.plat.alloc_irq_vector(irq)

    def apic_write(self, base: int, reg: int, value: int) -> int:
        """PHYSDEVOP_apic_write: a register of the I/O APIC at ``base``."""
        return self.k.plat.apic_op(True, base, reg, value)

    def apic_read(self, base: int, reg: int) -> int:
        return self.k.plat.apic_op(False, base, reg, 0)

    def bind_pirq(self, pirq: int) -> int:
        """EVTCHNOP_bind_pirq: the event channel port the interrupt will arrive on."""
        return self.k.plat.bind_pirq(pirq)

    def bind_virq(self, virq: int) -> int:
        return self.k.plat.bind_virq(virq)

    def set_periodic_timer(self, period_ns: int) -> int:
        return self.k.plat.set_periodic_timer(period_ns)

    def ioapic_for(self, gsi: int, acpi=None):
        """(IoApic, pin) serving ``gsi``."""
        got = (acpi or self.acpi).ioapic_for(gsi)
        if got is None:
            raise AcpiError(f"no I/O APIC serves GSI {gsi}")
        return got


def rte_low(vector: int, polarity: str, trigger: str) -> int:
    """The low dword of an I/O APIC redirection entry (82093AA §3.2.4):
    fixed delivery, physical destination, unmasked."""
    return vector | (RTE_LEVEL if trigger == "level" else 0) | (RTE_LOW if polarity == "low"
                                                                  else 0)


def pcplusmp_route_intr(intr: IntrSpec, psm: Psm):
    """i86pc: program the I/O APIC entry for the device's GSI with a vector
    of ours (destination: the boot CPU), or uppc's PIC when there is no MADT."""
    acpi = psm.i86pc_acpi()
    if acpi is None or not acpi.ioapics:
        if not getattr(psm, "_said_uppc", False):
            psm.k.printf(f"pcplusmp: no ACPI MADT ({psm.log[-1] if psm.log else 'no I/O APIC'})"
                         f"; using uppc (8259 PIC)\n")
            psm._said_uppc = True
        irq = intr.isa_irq if intr.isa_irq is not None else intr.line
        return ("vector", psm.pic_unmask(irq))
    gsi, pol, trig = intr.resolve(acpi)
    io, pin = psm.ioapic_for(gsi, acpi)
    vector = psm.alloc_vector()
    psm.ioapic_write(io.address, 0x10 + 2 * pin + 1, psm.lapic_read(LAPIC_ID) & 0xFF000000)
    psm.ioapic_write(io.address, 0x10 + 2 * pin, rte_low(vector, pol, trig))
    return ("vector", vector)


def pcplusmp_clkinit(hz: int, psm: Psm):
    """i86pc: the local APIC timer, periodic at ``hz``, on a vector of ours."""
    vector = psm.alloc_vector()
    psm.lapic_write(LAPIC_TDCR, 0xB)                  # divide by 1
    psm.lapic_write(LAPIC_TIMER, vector | TIMER_PERIODIC)
    psm.lapic_write(LAPIC_TICR, APIC_BUS_HZ // hz)
    return ("vector", vector)
