"""Interrupt wiring: device lines -> 8259A PIC and IOAPIC pins -> local APICs -> CPUs.

ISA IRQ n drives PIC input n and, in APIC mode, the GSI that the ACPI MADT's
interrupt source overrides say (ACPI 6.5 §5.2.12.5; without an override ISA
IRQ n is GSI n, active high, edge triggered).  A PCI function's INTx# pin is an
active-low, level-triggered, shareable wire (PCI 3.0 §2.2.6) that reaches one
IOAPIC GSI and, through the chipset's PIRQ router, one PIC IRQ; the profile says
which.  A function with MSI enabled writes its message instead (PCI 3.0 §6.8).

``InterruptRouter`` is also the APIC bus: it delivers IOAPIC messages and IPIs
to local APICs by destination (Intel SDM Vol. 3A §11.6.2) and broadcasts EOIs
for level-triggered vectors back to the IOAPICs.
"""

from __future__ import annotations

from dataclasses import dataclass

from .devices.lapic import DM_EXTINT, DM_FIXED, DM_LOWEST, DM_NMI


@dataclass(frozen=True)
class Override:
    """An ACPI interrupt source override: ISA ``bus_irq`` arrives at ``gsi``."""
    bus_irq: int
    gsi: int
    polarity: str = "conform"     # conform | high | low
    trigger: str = "conform"      # conform | edge | level


class IrqLine:
    """One ISA interrupt request line a device drives (``set(level)``, ``pulse()``)."""

    def __init__(self, router, irq):
        self.router, self.irq, self.level = router, irq, False

    def set(self, level: bool):
        level = bool(level)
        if level != self.level:
            self.level = level
            self.router._isa_changed(self.irq)

    def pulse(self):
        self.set(False)
        self.set(True)
        self.set(False)


class GsiLine:
    """A line wired straight to an IOAPIC input (an HPET timer route): active high."""

    def __init__(self, router, gsi):
        self.router, self.gsi, self.level = router, gsi, False

    def set(self, level: bool):
        self.level = bool(level)
        io, pin = self.router.ioapic_for(self.gsi)
        if io is not None:
            io.set_pin(pin, self.level)

    def pulse(self):
        self.set(False)
        self.set(True)
        self.set(False)


class InterruptRouter:
    def __init__(self, pic, ioapics, lapics, overrides=(), *, bsp=0):
        self.pic, self.ioapics, self.lapics = pic, list(ioapics), list(lapics)
        self.overrides = {o.bus_irq: o for o in overrides}
        self.bsp = bsp
        self.isa_lines: dict[int, list[IrqLine]] = {}
        self.pci_routes: dict[int, tuple] = {}       # id(fn) -> (fn, gsi, pic_irq)
        self.gsi_sources: dict[int, set] = {}        # gsi -> asserted PCI sources
        self.pic_pci_sources: dict[int, set] = {}
        self.on_pending = None                        # callable(cpu index)
        self.log: list[tuple] = []                    # (source, vector, cpu) deliveries
        for io in self.ioapics:
            io.deliver = self.deliver
        for lapic in self.lapics:
            lapic.bus = self
            lapic.on_pending = self._pending
        if pic is not None:
            pic.on_intr = self._pic_intr
            if self.lapics:
                self.lapics[bsp].extint = lambda: self.pic.intr
        # idle PCI wires are high (active low), idle ISA wires low
        for io in self.ioapics:
            for pin in range(io.pins):
                io.electrical[pin] = False
        for irq in range(16):
            gsi, pol, _ = self.isa_gsi(irq)
            io, pin = self.ioapic_for(gsi)
            if io is not None and pol == "low":
                io.electrical[pin] = True

    # -- topology ---------------------------------------------------------------------
    def ioapic_for(self, gsi):
        for io in self.ioapics:
            if io.gsi_base <= gsi < io.gsi_base + io.pins:
                return io, gsi - io.gsi_base
        return None, None

    def isa_gsi(self, irq) -> tuple[int, str, str]:
        """(GSI, polarity, trigger) of ISA IRQ ``irq`` after the overrides."""
        o = self.overrides.get(irq)
        if o is None:
            return irq, "high", "edge"
        pol = "high" if o.polarity == "conform" else o.polarity
        trig = "edge" if o.trigger == "conform" else o.trigger
        return o.gsi, pol, trig

    def isa_line(self, irq: int) -> IrqLine:
        if not 0 <= irq < 16:
            raise ValueError(f"ISA IRQ {irq}: ISA IRQs are 0-15")
        line = IrqLine(self, irq)
        self.isa_lines.setdefault(irq, []).append(line)
        return line

    def pci_polarity(self, gsi) -> str:
        """How a PCI interrupt arrives at IOAPIC input ``gsi``: active low on the
        PCI-only inputs (16 and up); on an ISA input (a chipset like PIIX that
        steers PIRQs to ISA IRQs) as the MADT override for that IRQ says."""
        if gsi is not None and gsi < 16:
            for irq, o in self.overrides.items():
                if o.gsi == gsi and o.polarity in ("high", "low"):
                    return o.polarity
            return "high"
        return "low"

    def gsi_line(self, gsi: int) -> GsiLine:
        return GsiLine(self, gsi)

    def route_pci(self, fn, gsi, pic_irq):
        self.pci_routes[id(fn)] = (fn, gsi, pic_irq)
        if gsi is not None:
            io, pin = self.ioapic_for(gsi)
            if io is not None and self.pci_polarity(gsi) == "low":
                io.electrical[pin] = True           # an idle active-low wire is high

    # -- sources ------------------------------------------------------------------------
    def _isa_changed(self, irq):
        level = any(line.level for line in self.isa_lines.get(irq, ()))
        if self.pic is not None:
            self.pic.set_irq(irq, level or bool(self.pic_pci_sources.get(irq)))
        gsi, pol, _ = self.isa_gsi(irq)
        io, pin = self.ioapic_for(gsi)
        if io is not None:
            io.set_pin(pin, level if pol == "high" else not level)

    def pci_intx(self, fn, asserted: bool):
        """A function's INTx# changed (host callback); MSI takes over when enabled."""
        from .pci import config as C
        msi = fn.caps.get(C.CAP_MSI)
        if msi is not None and fn.cfg[msi + 2] & 1:
            if asserted:
                self.msi(fn, msi)
            return
        route = self.pci_routes.get(id(fn))
        if route is None:
            return
        _, gsi, pic_irq = route
        key = id(fn)
        if gsi is not None:
            s = self.gsi_sources.setdefault(gsi, set())
            s.add(key) if asserted else s.discard(key)
            io, pin = self.ioapic_for(gsi)
            if io is not None:
                low = self.pci_polarity(gsi) == "low"
                io.set_pin(pin, (not s) if low else bool(s))   # wired-OR
        if pic_irq is not None and self.pic is not None:
            s = self.pic_pci_sources.setdefault(pic_irq, set())
            s.add(key) if asserted else s.discard(key)
            isa = any(line.level for line in self.isa_lines.get(pic_irq, ()))
            self.pic.set_irq(pic_irq, bool(s) or isa)

    def msi(self, fn, cap):
        """Deliver ``fn``'s MSI message (address bits 19:12 = destination APIC id)."""
        addr = fn.get(cap + 4, 4)
        is64 = fn.get(cap + 2, 2) & 0x80
        data = fn.get(cap + (12 if is64 else 8), 2)
        self.deliver({"vector": data & 0xFF, "mode": (data >> 8) & 7,
                      "logical": bool(addr & 0x4), "dest": (addr >> 12) & 0xFF,
                      "level": bool(data & 0x8000), "source": ("msi", fn.bdf)})

    # -- the APIC bus -------------------------------------------------------------------
    def targets(self, dest, logical):
        if not logical:
            return [l for l in self.lapics if dest == 0xFF or l.apic_id == dest]
        out = []
        for l in self.lapics:
            ldr = l.ldr >> 24
            if (l.dfr >> 28) == 0xF:                       # flat model
                if ldr & dest:
                    out.append(l)
            elif (ldr >> 4) == (dest >> 4) and ldr & dest & 0xF:   # cluster model
                out.append(l)
        return out

    def deliver(self, msg):
        targets = self.targets(msg["dest"], msg["logical"])
        if msg["mode"] == DM_LOWEST and targets:
            targets = [min(targets, key=lambda l: (l.tpr, l.cpu))]
        if msg["mode"] == DM_EXTINT:
            # an IOAPIC pin in ExtINT mode: the CPU asks the PIC for the vector
            for l in targets:
                self._pending(l.cpu)
            return
        for l in targets:
            l.accept(msg["vector"], msg["mode"], msg["level"])
            self.log.append((msg.get("source"), msg["vector"], l.cpu))

    def send_ipi(self, src, icr):
        vector, mode = icr & 0xFF, (icr >> 8) & 7
        shorthand = (icr >> 18) & 3
        if shorthand == 1:
            targets = [src]
        elif shorthand == 2:
            targets = list(self.lapics)
        elif shorthand == 3:
            targets = [l for l in self.lapics if l is not src]
        else:
            targets = self.targets(icr >> 56, bool(icr & (1 << 11)))
        for l in targets:
            l.accept(vector, mode, bool(icr & (1 << 15)) and mode == DM_FIXED)
            self.log.append((("ipi", src.cpu), vector, l.cpu))

    def broadcast_eoi(self, vector):
        for io in self.ioapics:
            io.eoi(vector)

    def _pic_intr(self, level):
        if self.lapics:
            self.lapics[self.bsp].set_lint(0, level)
        elif level:
            self._pending(self.bsp)

    def _pending(self, cpu):
        if self.on_pending is not None:
            self.on_pending(cpu)

    # -- the CPU side ---------------------------------------------------------------------
    def pending(self, cpu: int) -> bool:
        """Would CPU ``cpu`` take an interrupt now (if its IF allowed)?"""
        if not self.lapics:
            return bool(self.pic and self.pic.intr)
        return self.lapics[cpu].interrupt_pending()

    def acknowledge(self, cpu: int):
        """The CPU's interrupt-acknowledge: the vector to deliver, or None."""
        if not self.lapics:
            return self.pic.acknowledge() if self.pic and self.pic.intr else None
        v = self.lapics[cpu].acknowledge(self.pic)
        if v is not None:
            self.log.append((("ack",), v, cpu))
        return v

    def nmi(self, cpu):
        self.lapics[cpu].accept(2, DM_NMI)

    def state(self):
        return repr((sorted((g, len(s)) for g, s in self.gsi_sources.items()),
                     sorted((g, len(s)) for g, s in self.pic_pci_sources.items()),
                     sorted((i, [l.level for l in ls]) for i, ls in self.isa_lines.items()))
                    ).encode()


__all__ = ["InterruptRouter", "IrqLine", "Override", "DM_FIXED", "DM_NMI"]
