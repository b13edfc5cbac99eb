"""Stage 10, ``interrupts``: vfs_mountroot needs the disk's interrupt.

Up to ``vfs_mountroot`` the boot read the disk by polling; from there the
Solaris drivers take it over and wait for interrupts.  The i86pc PSM
(pcplusmp) routes a device interrupt itself: it finds the I/O APIC in the
ACPI MADT, writes a redirection entry with a vector of its own and waits for
that vector through the IDT; the clock is the local APIC timer.  Under Xen
none of that is dom0's: Xen owns the IDT, the I/O APICs and the local APICs
(their pages are denied to dom0), and the i86pc way of mapping the ACPI
tables finds dom0's own RAM.  pcplusmp falls back to the 8259s (whose ports
Xen keeps too) and the disk's first interrupt-driven read times out: "ata0:
timeout: abort request" ... "cannot mount root path".

Stu's fix, an xpv PSM: read the MADT (through foreign PFNs), get a vector
for the GSI from Xen (``PHYSDEVOP_alloc_irq_vector``), write the I/O APIC
entry through Xen (``PHYSDEVOP_apic_write``, with the polarity and trigger
ACPI gives: interrupt source overrides for ISA IRQs, level/active-low for PCI
INTx), bind the physical IRQ to an event channel (``EVTCHNOP_bind_pirq``):
the interrupt arrives as an event upcall and is acknowledged with
``PHYSDEVOP_eoi``.  The clock is Xen's: ``VIRQ_TIMER`` bound to a port and a
periodic timer (``VCPUOP_set_periodic_timer``).
"""

from __future__ import annotations

from ...kernel.intel.psm import pcplusmp_clkinit, pcplusmp_route_intr, rte_low
from ...xen.abi import VIRQ_TIMER
from ..hooks import hook


def _valid_arrival(a):
    if not (isinstance(a, (tuple, list)) and len(a) == 2 and a[0] in ("vector", "evtchn")
            and isinstance(a[1], int)):
        return "expected ('vector', idt_vector) or ('evtchn', port)"
    return None


def psm_route_intr_fixed(intr, psm):
    if psm.platform != "i86xen":
        return pcplusmp_route_intr(intr, psm)
    gsi, polarity, trigger = intr.resolve(psm.acpi)
    ioapic, pin = psm.ioapic_for(gsi)
    vector = psm.alloc_irq_vector(gsi)
    psm.apic_write(ioapic.address, 0x10 + 2 * pin, rte_low(vector, polarity, trigger))
    return ("evtchn", psm.bind_pirq(gsi))


def psm_clkinit_fixed(hz, psm):
    if psm.platform != "i86xen":
        return pcplusmp_clkinit(hz, psm)
    port = psm.bind_virq(VIRQ_TIMER)
    psm.set_periodic_timer(1_000_000_000 // hz)
    return ("evtchn", port)


@hook("psm_route_intr", stage="interrupts", reference=psm_route_intr_fixed,
      validate=_valid_arrival)
def psm_route_intr(intr, psm):
    """Route one device interrupt; say where it will arrive.

    ``intr``: ``.name``, ``.isa_irq`` (ISA / compatibility IRQ) or PCI
    ``.bus .dev .pin .bridges``, and ``.resolve(acpi)`` -> (GSI, polarity,
    trigger).  ``psm``: ``.platform``, ``.acpi`` (MADT: ``.ioapics``,
    ``.overrides``), ``.ioapic_for(gsi)`` -> (ioapic, pin); i86pc primitives
    ``.alloc_vector()``, ``.ioapic_write(base, reg, value)``, ``.lapic_read``;
    Xen primitives ``.alloc_irq_vector(irq)`` (PHYSDEVOP_alloc_irq_vector),
    ``.apic_write(base, reg, value)`` (PHYSDEVOP_apic_write),
    ``.bind_pirq(pirq)`` (EVTCHNOP_bind_pirq -> port).  ``rte_low(vector,
    polarity, trigger)`` builds a redirection entry's low dword.  Return
    ``("vector", v)`` (IDT) or ``("evtchn", port)``.  2007 default: pcplusmp.
    """
    return pcplusmp_route_intr(intr, psm)


@hook("psm_clkinit", stage="interrupts", reference=psm_clkinit_fixed,
      validate=_valid_arrival)
def psm_clkinit(hz, psm):
    """Start the clock at ``hz`` ticks a second; say where its interrupt arrives.

    i86pc: the local APIC timer (``pcplusmp_clkinit``).  Xen: ``psm.bind_virq(
    VIRQ_TIMER)`` and ``psm.set_periodic_timer(period_ns)``.  Return
    ``("vector", v)`` or ``("evtchn", port)``.  2007 default: pcplusmp.
    """
    return pcplusmp_clkinit(hz, psm)


__all__ = ["psm_route_intr", "psm_route_intr_fixed", "psm_clkinit", "psm_clkinit_fixed",
           "rte_low", "VIRQ_TIMER"]
