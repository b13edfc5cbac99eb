"""The I/O APIC: IOREGSEL/IOWIN, ID, version, arbitration, redirection table.

Register map and redirection-entry bits are the Intel 82093AA I/O APIC
datasheet (order no. 290566) §3.2 (IOREGSEL at +0x00, IOWIN at +0x10;
IOAPICID 0x00, IOAPICVER 0x01, IOAPICARB 0x02, IOREDTBL 0x10-0x3F) and §3.2.4
(the 64-bit redirection entry).  Version 0x20 and later parts add a directed
EOI register at +0x40 (ICH9 datasheet §13.5.5).
"""

from __future__ import annotations

IOREGSEL, IOWIN, IOEOI = 0x00, 0x10, 0x40
REG_ID, REG_VER, REG_ARB, REG_REDTBL = 0x00, 0x01, 0x02, 0x10

RTE_VECTOR = 0xFF
RTE_DELMODE_SHIFT = 8
RTE_DESTMODE_LOGICAL = 1 << 11
RTE_DELIVS = 1 << 12
RTE_POLARITY_LOW = 1 << 13
RTE_REMOTE_IRR = 1 << 14
RTE_LEVEL = 1 << 15
RTE_MASKED = 1 << 16
RTE_DEST_SHIFT = 56
RTE_RO = RTE_DELIVS | RTE_REMOTE_IRR
DELIVERY_MODES = {0: "fixed", 1: "lowest", 2: "SMI", 4: "NMI", 5: "INIT", 7: "ExtINT"}


class IoApic:
    """One I/O APIC with ``pins`` inputs starting at global system interrupt ``gsi_base``.

    ``deliver(message)`` (set by the router) sends an interrupt message dict with
    ``vector``, ``mode``, ``logical``, ``dest``, ``level`` to the local APICs.
    """

    def __init__(self, apic_id, address, gsi_base=0, pins=24, version=0x20):
        self.apic_id, self.address, self.gsi_base = apic_id, address, gsi_base
        self.pins, self.version = pins, version
        self.regsel = 0
        self.rte = [RTE_MASKED] * pins            # reset: every entry masked
        self.electrical = [False] * pins          # the wire level (True = high)
        self.deliver = None
        self.delivered = 0

    # -- MMIO --------------------------------------------------------------------
    def mmio_read(self, offset, size):
        if offset == IOREGSEL:
            return self.regsel
        if offset == IOWIN:
            return self.read_register(self.regsel)
        return 0

    def mmio_write(self, offset, size, value):
        if offset == IOREGSEL:
            self.regsel = value & 0xFF
        elif offset == IOWIN:
            self.write_register(self.regsel, value & 0xFFFFFFFF)
        elif offset == IOEOI and self.version >= 0x20:
            self.eoi(value & 0xFF)

    def read_register(self, reg):
        if reg == REG_ID:
            return (self.apic_id & 0xF) << 24 if self.version < 0x20 else (self.apic_id & 0xFF) << 24
        if reg == REG_VER:
            return ((self.pins - 1) << 16) | self.version
        if reg == REG_ARB:
            return (self.apic_id & 0xF) << 24
        if REG_REDTBL <= reg < REG_REDTBL + 2 * self.pins:
            e = self.rte[(reg - REG_REDTBL) >> 1]
            return (e >> 32) & 0xFFFFFFFF if reg & 1 else e & 0xFFFFFFFF
        return 0

    def write_register(self, reg, value):
        if reg == REG_ID:
            self.apic_id = (value >> 24) & (0xFF if self.version >= 0x20 else 0xF)
        elif REG_REDTBL <= reg < REG_REDTBL + 2 * self.pins:
            pin = (reg - REG_REDTBL) >> 1
            e = self.rte[pin]
            if reg & 1:
                e = (e & 0xFFFFFFFF) | (value & 0xFF000000) << 32
            else:
                e = (e & ~0xFFFFFFFF) | (value & ~RTE_RO & 0xFFFFFFFF) | (e & RTE_RO)
            self.rte[pin] = e
            self._service(pin)

    # -- pins ----------------------------------------------------------------------
    def active(self, pin) -> bool:
        """Is the input asserted as this entry's polarity reads the wire?"""
        return self.electrical[pin] != bool(self.rte[pin] & RTE_POLARITY_LOW)

    def set_pin(self, pin, electrical_high: bool):
        was = self.active(pin)
        self.electrical[pin] = bool(electrical_high)
        now = self.active(pin)
        e = self.rte[pin]
        if e & RTE_LEVEL:
            self._service(pin)
        elif now and not was and not e & RTE_MASKED:
            self._send(pin)                        # edge: a masked edge is lost

    def _service(self, pin):
        e = self.rte[pin]
        if e & RTE_LEVEL and self.active(pin) and not e & RTE_MASKED and not e & RTE_REMOTE_IRR:
            self.rte[pin] = e | RTE_REMOTE_IRR
            self._send(pin)

    def _send(self, pin):
        e = self.rte[pin]
        self.delivered += 1
        if self.deliver is not None:
            self.deliver({"vector": e & RTE_VECTOR, "mode": (e >> RTE_DELMODE_SHIFT) & 7,
                          "logical": bool(e & RTE_DESTMODE_LOGICAL), "dest": e >> RTE_DEST_SHIFT,
                          "level": bool(e & RTE_LEVEL), "source": ("ioapic", self.apic_id, pin)})

    def eoi(self, vector):
        """A local APIC's EOI for a level-triggered ``vector`` (or the EOI register)."""
        for pin, e in enumerate(self.rte):
            if e & RTE_REMOTE_IRR and (e & RTE_VECTOR) == vector:
                self.rte[pin] = e & ~RTE_REMOTE_IRR
                self._service(pin)

    def state(self):
        return (bytes([self.regsel, self.apic_id, self.version])
                + b"".join(e.to_bytes(8, "little") for e in self.rte)
                + bytes(int(x) for x in self.electrical))
