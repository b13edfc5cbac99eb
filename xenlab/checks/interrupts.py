"""Checks for the ``interrupts`` stage: the boot disk's interrupt reaches its
driver (under Xen: I/O APIC entry with Xen's vector, PIRQ bound to an event
channel whose handler is the disk driver's ISR), the root is mounted, the
clock ticks."""

from __future__ import annotations

from . import Finding, check, question
from ._model import boot_of, how_far, native_reached, reached, shipped_boot

LAB = "interrupts"


def _disk_intr(stage):
    """(kernel, disk dip, arrival, IntrRecord) of the boot disk's interrupt, or
    a failing Finding saying why there is none."""
    k = boot_of(stage).kernel
    root = getattr(k, "rootdisk", None)
    if root is None:
        raise RuntimeError("this machine has no disk: its root is the boot archive")
    dip = root[0]
    for arrival, rec in getattr(k, "intrs", {}).items():
        if any(d is dip for d, _ in rec.handlers):
            return k, dip, arrival, rec
    return Finding(False, f"the kernel's interrupt table for {dip.instname}",
                   "the disk's interrupt routed and its ISR installed",
                   "vfs_mountroot never routed it (the boot stopped earlier)")


@check(points=1, title="the root file system is mounted and the clock ticks", lab=LAB)
def interrupts_reached(stage):
    ok = reached(stage, "interrupts")
    return Finding(ok, "how far the boot went",
                   "vfs_mountroot read the superblock by an interrupt-driven read; the first "
                   "clock tick arrived", how_far(stage),
                   hint="Under Xen, who owns the I/O APIC, the local APIC and the IDT?")


@check(points=2, title="the disk's I/O APIC entry holds Xen's vector for its IRQ", lab=LAB)
def interrupts_rte(stage):
    b = boot_of(stage)
    got = _disk_intr(stage)
    if isinstance(got, Finding):
        return got
    k, dip, arrival, rec = got
    acpi = k.psm.acpi
    gsi, pol, trig = rec.spec.resolve(acpi)
    io, pin = acpi.ioapic_for(gsi)
    dev = next(x for x in b.machine.ioapics if x.address == io.address)
    e = dev.rte[pin]
    vec = e & 0xFF
    want_vec = next((v for v, irq in b.xen.irq_vector.items() if irq == gsi), None) \
        if b.xen is not None else None
    if b.xen is None:
        want_vec = arrival[1]
    ok = (vec == want_vec and bool(e >> 15 & 1) == (trig == "level")
          and bool(e >> 13 & 1) == (pol == "low"))
    return Finding(ok, f"I/O APIC {io.id} pin {pin} (GSI {gsi}) in the machine",
                   f"vector {want_vec}, {trig}-triggered, active {pol}",
                   f"vector {vec}, {'level' if e >> 15 & 1 else 'edge'}-triggered, active "
                   f"{'low' if e >> 13 & 1 else 'high'}, {'masked' if e >> 16 & 1 else 'unmasked'}",
                   hint="PHYSDEVOP_alloc_irq_vector gives the vector; PHYSDEVOP_apic_write "
                        "writes the entry; ACPI says polarity and trigger.")


@check(points=2, title="the disk's interrupt arrives on an event channel with its driver's ISR",
       lab=LAB)
def interrupts_evtchn(stage):
    b = boot_of(stage)
    got = _disk_intr(stage)
    if isinstance(got, Finding):
        return got
    k, dip, arrival, rec = got
    if b.xen is None:
        ok = arrival[0] == "vector" and rec.count > 0
        return Finding(ok, "the native IDT route", "a vector of the kernel's, interrupts counted",
                       f"{arrival[0]} {arrival[1]:#x}, {rec.count} interrupts")
    d = b.dom0
    gsi = rec.spec.resolve(k.psm.acpi)[0]
    port = d.pirq_to_evtchn.get(gsi)
    ok = arrival == ("evtchn", port) and rec.count > 0
    return Finding(ok, "Xen's PIRQ binding of dom0 and the kernel's handler table",
                   f"PIRQ {gsi} bound to the port the disk driver's ISR is on, interrupts counted",
                   f"PIRQ {gsi} -> port {port}; {dip.instname}'s ISR on {arrival[0]} "
                   f"{arrival[1]}; {rec.count} interrupts",
                   hint="EVTCHNOP_bind_pirq gives the port; the upcall runs its handlers.")


@check(points=1, title="the clock ticks", lab=LAB)
def interrupts_clock(stage):
    k = boot_of(stage).kernel
    clock = getattr(k, "clock", None)
    ok = clock is not None and getattr(k, "lbolt", 0) > 0
    where = f"{clock.arrival[0]} {clock.arrival[1]}" if clock is not None else "none"
    return Finding(ok, "lbolt and where the clock interrupt arrives",
                   "ticks counted (under Xen: VIRQ_TIMER on an event channel)",
                   f"lbolt {getattr(k, 'lbolt', 0)}, clock on {where}",
                   hint="Xen's clock is VIRQ_TIMER with a periodic timer.")


@check(points=1, title="the i86pc kernel still boots with your hooks", lab=LAB,
       parent="interrupts_reached")
def interrupts_native(stage):
    return native_reached(stage, "interrupts",
                          "the native boot mounts its root by interrupt and its clock ticks",
                          hint="On i86pc there is no Xen: pcplusmp owns the I/O APIC and the IDT "
                               "there. Look at psm.platform.")


# ---------------------------------------------------------------------------
# the lab's questions (labs/10_interrupts.ipynb)
# ---------------------------------------------------------------------------

QLAB = "10_interrupts"


def _truth_intr(stage, fixed: bool):
    got = _disk_intr(shipped_boot(stage, fixed=fixed))
    if isinstance(got, Finding):
        raise RuntimeError("the boot of this variant routed no interrupt for its disk")
    return got


@question("interrupts_vector", lab=QLAB, points=1, answer="ANSWER_VECTOR",
          title="the IDT vector the 2007 PSM gave the disk",
          asks="the IDT vector the 2007 kernel installed the disk driver's ISR on",
          looked_at="the kernel's interrupt table in the 2007 boot of your variant",
          hint="The console says 'interrupt ... -> vector'; kernel.intr_frame() too.")
def q_interrupts_vector(stage):
    k, dip, arrival, rec = _truth_intr(stage, fixed=False)
    if arrival[0] != "vector":
        raise RuntimeError("the 2007 boot routed the disk to an event channel")
    return int(arrival[1])


@question("interrupts_gsi", lab=QLAB, points=1, answer="ANSWER_GSI",
          title="the disk's global system interrupt",
          asks="the GSI (I/O APIC input, numbered across all I/O APICs) the disk's "
               "interrupt line reaches",
          looked_at="ACPI's answer for the disk's interrupt (MADT overrides, PCI routing) "
                    "on your machine",
          hint="The routing view: the disk's row, column gsi.")
def q_interrupts_gsi(stage):
    k, dip, arrival, rec = _truth_intr(stage, fixed=True)
    return int(rec.spec.resolve(k.psm.acpi)[0])


@question("interrupts_ioapic", lab=QLAB, points=1, answer="ANSWER_IOAPIC",
          title="the I/O APIC the disk's interrupt enters",
          asks="the ID of the I/O APIC whose pin the disk's interrupt line is wired to",
          looked_at="the MADT's I/O APIC entries and the disk's GSI on your machine",
          hint="The routing view: the disk's row, column ioapic.")
def q_interrupts_ioapic(stage):
    k, dip, arrival, rec = _truth_intr(stage, fixed=True)
    gsi = rec.spec.resolve(k.psm.acpi)[0]
    return int(k.psm.acpi.ioapic_for(gsi)[0].id)
