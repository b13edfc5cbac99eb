"""physdev_op: I/O privilege, IRQ status and EOI, IOAPIC access, IRQ vectors;
and the path of a real interrupt to a guest's PIRQ.

After ``xen/arch/x86/physdev.c`` and ``io_apic.c`` of Xen 3.1.  dom0 may not
map the IOAPIC itself (Xen denies it that frame); it programs redirection
entries through PHYSDEVOP_apic_write, with vectors that Xen hands out through
PHYSDEVOP_alloc_irq_vector.  A level-triggered interrupt bound to a guest
stays masked at the IOAPIC from its arrival until every guest that received
it has sent PHYSDEVOP_eoi.
"""

from __future__ import annotations

import numpy as np

from . import abi
from .hypercall import guest, register

FIRST_DYNAMIC_VECTOR = 0x20     # asm-x86/mach-default/irq_vectors.h
LAST_DYNAMIC_VECTOR = 0xDF
HYPERCALL_VECTOR = 0x82         # x86_64: never handed out
IOAPIC_REGSEL = 0x00
IOAPIC_WINDOW = 0x10


@register(abi.HYPERVISOR_physdev_op, 2)
def do_physdev_op(xen, v, cmd, arg):
    g = guest(xen, v)
    d = v.domain
    cmd &= 0xFFFFFFFF
    if cmd == abi.PHYSDEVOP_set_iopl:
        r = g.read_struct(arg, abi.physdev_set_iopl)
        if r is None:
            return -abi.EFAULT
        if int(r["iopl"]) > 3:
            return -abi.EINVAL
        v.iopl = int(r["iopl"])           # per vCPU: only the caller's vCPU changes
        return 0
    if cmd == abi.PHYSDEVOP_set_iobitmap:
        r = g.read_struct(arg, abi.physdev_set_iobitmap)
        if r is None:
            return -abi.EFAULT
        if int(r["nr_ports"]) > 65536:
            return -abi.EINVAL
        v.iobmp = int(r["bitmap"])
        v.iobmp_limit = int(r["nr_ports"])
        return 0
    if cmd == abi.PHYSDEVOP_irq_status_query:
        r = g.read_struct(arg, abi.physdev_irq_status_query)
        if r is None:
            return -abi.EFAULT
        irq = int(r["irq"])
        if irq >= NR_IRQS:
            return -abi.EINVAL
        flags = 0
        if xen.irq_level.get(irq, False):
            flags |= abi.XENIRQSTAT_needs_eoi
        if len(xen.irq_bound.get(irq, [])) > 1:
            flags |= abi.XENIRQSTAT_shared
        r["flags"] = flags
        return 0 if g.write_struct(arg, r) else -abi.EFAULT
    if cmd in (abi.PHYSDEVOP_eoi, abi.PHYSDEVOP_IRQ_UNMASK_NOTIFY):
        if cmd == abi.PHYSDEVOP_eoi:
            r = g.read_struct(arg, abi.physdev_eoi)
            if r is None:
                return -abi.EFAULT
            irqs = [int(r["irq"])]
        else:
            irqs = list(d.pirq_mask)          # the old form: every masked PIRQ
        for irq in irqs:
            if irq >= NR_IRQS:
                return -abi.EINVAL
            pirq_guest_eoi(xen, d, irq)
        return 0
    if cmd in (abi.PHYSDEVOP_apic_read, abi.PHYSDEVOP_apic_write):
        r = g.read_struct(arg, abi.physdev_apic)
        if r is None:
            return -abi.EFAULT
        if not d.privileged:
            return -abi.EPERM
        base, reg = int(r["apic_physbase"]), int(r["reg"])
        if cmd == abi.PHYSDEVOP_apic_read:
            rc, val = ioapic_guest_read(xen, base, reg)
            r["value"] = val
            if not g.write_struct(arg, r):
                return -abi.EFAULT
            return rc
        return ioapic_guest_write(xen, base, reg, int(r["value"]))
    if cmd in (abi.PHYSDEVOP_alloc_irq_vector, abi.PHYSDEVOP_free_irq_vector):
        r = g.read_struct(arg, abi.physdev_irq)
        if r is None:
            return -abi.EFAULT
        if not d.privileged:
            return -abi.EPERM
        irq = int(r["irq"])
        if irq >= NR_IRQS:
            return -abi.EINVAL
        if cmd == abi.PHYSDEVOP_free_irq_vector:
            for vec, i in list(xen.irq_vector.items()):
                if i == irq:
                    del xen.irq_vector[vec]
            return 0
        r["vector"] = assign_irq_vector(xen, irq)
        return 0 if g.write_struct(arg, r) else -abi.EFAULT
    return -abi.ENOSYS


@register(abi.HYPERVISOR_physdev_op_compat, 1)
def do_physdev_op_compat(xen, v, uop):
    """The pre-0x00030202 form: struct physdev_op {cmd; union u at offset 8}."""
    raw = guest(xen, v).read(uop, 4)
    if raw is None:
        return -abi.EFAULT
    return do_physdev_op(xen, v, int.from_bytes(raw, "little"), uop + 8)


NR_IRQS = 256


def assign_irq_vector(xen, irq: int) -> int:
    """The vector for ``irq`` (one per IRQ, handed out 8 apart as Linux-derived
    io_apic.c does, skipping the hypercall vector)."""
    for vec, i in xen.irq_vector.items():
        if i == irq:
            return vec
    vec = xen._next_vector
    while True:
        vec += 8
        if vec > LAST_DYNAMIC_VECTOR:
            vec = FIRST_DYNAMIC_VECTOR + (vec - LAST_DYNAMIC_VECTOR) % 8 + 1
        if vec != HYPERCALL_VECTOR and vec not in xen.irq_vector:
            break
    xen._next_vector = vec
    xen.irq_vector[vec] = irq
    return vec


# -- the IOAPIC, accessed through the machine's MMIO bus --------------------------------

def _ioapic_present(xen, base: int) -> bool:
    """ioapic_physbase_to_id: is ``base`` the address of one of the IOAPICs?"""
    ioapics = getattr(xen.machine, "ioapics", None)
    if ioapics:
        return any(int(getattr(io, "address", -1)) == base for io in ioapics)
    mem = xen.memory
    if not 0 <= base < (mem.nmfn << 12):
        return False
    return mem.mmio_region(base >> 12) is not None


def ioapic_guest_read(xen, base: int, reg: int):
    if not _ioapic_present(xen, base):
        return -abi.EINVAL, 0
    mmio = xen.machine.mmio
    mmio.write(base + IOAPIC_REGSEL, 4, reg & 0xFF)
    return 0, int(mmio.read(base + IOAPIC_WINDOW, 4)) & 0xFFFFFFFF


def ioapic_guest_write(xen, base: int, reg: int, val: int) -> int:
    """Only the low half of a redirection entry is the guest's; Xen sets the
    destination, and masks level-triggered pins until a guest binds them."""
    if not _ioapic_present(xen, base):
        return -abi.EINVAL
    if reg < 0x10 or reg & 1:
        return 0
    pin = (reg - 0x10) >> 1
    vector = val & 0xFF
    delivery = (val >> 8) & 7
    level = bool(val >> 15 & 1)
    if delivery > 1:                          # > lowest priority: SMI/NMI/INIT/ExtINT
        xen.printk(f"ERROR: Attempt to write weird IOAPIC destination mode! "
                   f"APIC={base:#x}/{pin}, lo-reg={val:x}")
        return -abi.EINVAL
    if vector >= FIRST_DYNAMIC_VECTOR:
        irq = xen.irq_vector.get(vector)
        if irq is None:
            return 0                          # no IRQ behind this vector: ignored
        xen.irq_level[irq] = level
        xen.irq_pin[irq] = (base, pin)
        if level:
            val |= 1 << 16                    # mask iff level-triggered
    elif not val >> 16 & 1:
        xen.printk("ERROR: Attempt to unmask IOAPIC pin with no vector")
        return -abi.EINVAL
    mmio = xen.machine.mmio
    lapics = getattr(xen.machine, "lapics", None)
    dest = (lapics[0].apic_id & 0xFF) << 24 if lapics else 0
    mmio.write(base + IOAPIC_REGSEL, 4, reg + 1)
    mmio.write(base + IOAPIC_WINDOW, 4, dest)  # physical destination: the boot CPU
    mmio.write(base + IOAPIC_REGSEL, 4, reg)
    mmio.write(base + IOAPIC_WINDOW, 4, val & 0xFFFFFFFF)
    return 0


def _ioapic_mask(xen, irq: int, masked: bool):
    where = xen.irq_pin.get(irq)
    if where is None:
        return
    base, pin = where
    mmio = xen.machine.mmio
    mmio.write(base + IOAPIC_REGSEL, 4, 0x10 + 2 * pin)
    lo = int(mmio.read(base + IOAPIC_WINDOW, 4))
    lo = (lo | (1 << 16)) if masked else (lo & ~(1 << 16))
    mmio.write(base + IOAPIC_REGSEL, 4, 0x10 + 2 * pin)
    mmio.write(base + IOAPIC_WINDOW, 4, lo & 0xFFFFFFFF)


def pirq_guest_bind(xen, irq: int):
    """A guest bound the IRQ: start it (unmask at the IOAPIC)."""
    _ioapic_mask(xen, irq, False)


def pirq_guest_eoi(xen, d, irq: int):
    """The guest is done with ``irq``; unmask it when no guest still holds it."""
    if irq not in d.pirq_mask:
        return
    d.pirq_mask.discard(irq)
    flight = xen.irq_in_flight.get(irq, set())
    flight.discard(d.domid)
    if not flight and xen.irq_level.get(irq, False):
        _ioapic_mask(xen, irq, False)


def do_irq(xen, vector: int) -> bool:
    """A hardware interrupt arrived at Xen with ``vector`` (from the LAPIC).

    For an IRQ bound to guests (``__do_IRQ_guest``): mask a level-triggered
    line, mark it in flight for each guest, and raise each guest's PIRQ event.
    Returns False if nothing claimed the vector (a spurious interrupt).
    """
    irq = xen.irq_vector.get(vector)
    if irq is None:
        return False
    bound = xen.irq_bound.get(irq, [])
    if not bound:
        return False
    from .evtchn import send_guest_pirq
    level = xen.irq_level.get(irq, False)
    if level:
        _ioapic_mask(xen, irq, True)
    for d in list(bound):
        if level and irq not in d.pirq_mask:
            d.pirq_mask.add(irq)
            xen.irq_in_flight.setdefault(irq, set()).add(d.domid)
        send_guest_pirq(xen, d, irq)
    return True
