"""The High Precision Event Timer, as ACPI's HPET table describes it.

Registers are the IA-PC HPET Specification 1.0a §2.3: General Capabilities and
ID at 0x000 (revision, number of timers - 1 in bits 12:8, 64-bit counter bit 13,
legacy replacement capable bit 15, vendor in 31:16, the counter period in
femtoseconds in 63:32), General Configuration at 0x010 (ENABLE_CNF bit 0,
LEG_RT_CNF bit 1), General Interrupt Status at 0x020 (write one to clear), the
main counter at 0x0F0, and per timer N at 0x100 + 0x20*N its configuration and
capabilities (level bit 1, interrupt enable bit 2, periodic bit 3, route bits
13:9, routing capability in 63:32), comparator (+0x08) and FSB route (+0x10).

The counter runs from the machine clock while enabled.  A timer whose
comparator the counter reaches raises its interrupt: through the legacy
replacement route (timer 0 -> ISA IRQ 0, timer 1 -> IRQ 8) when LEG_RT_CNF is
set, else on the IOAPIC input its route selects.
"""

from __future__ import annotations

GCAP_ID, GEN_CONF, GINTR_STA, MAIN_COUNTER = 0x000, 0x010, 0x020, 0x0F0
TIMER0, TIMER_STRIDE = 0x100, 0x20
CONF_ENABLE, CONF_LEGACY = 1 << 0, 1 << 1
TN_LEVEL, TN_ENABLE, TN_PERIODIC, TN_PER_CAP, TN_SIZE_CAP, TN_VAL_SET = 2, 4, 8, 16, 32, 64
TN_ROUTE_SHIFT = 9


class Hpet:
    def __init__(self, clock, capabilities_id=0x8086A201, period_fs=69841279, *, router=None):
        self.clock, self.router = clock, router
        self.cap = (capabilities_id & 0xFFFFFFFF) | period_fs << 32
        self.ntimers = ((capabilities_id >> 8) & 0x1F) + 1
        self.period_fs = period_fs
        self.conf = 0
        self.status = 0
        self.counter_base = 0            # counter value when last enabled / written
        self.enabled_at = None           # machine ns when enabled
        self.tconf = [(TN_PER_CAP | TN_SIZE_CAP if i == 0 else TN_SIZE_CAP)
                      | (0x00F00000 << 32) for i in range(self.ntimers)]    # GSIs 20-23
        self.comparator = [0xFFFFFFFFFFFFFFFF] * self.ntimers
        self.period = [0] * self.ntimers
        self.lines = {}

    def counter(self) -> int:
        if self.enabled_at is None:
            return self.counter_base
        ticks = int((self.clock.now - self.enabled_at) * 1_000_000 // self.period_fs)
        return (self.counter_base + ticks) & 0xFFFFFFFFFFFFFFFF

    def _ns_at(self, value):
        return self.enabled_at + (value - self.counter_base) * self.period_fs / 1_000_000

    # -- timers as a clock device ------------------------------------------------
    def next_deadline(self):
        if self.enabled_at is None:
            return None
        now = self.counter()
        best = None
        for i in range(self.ntimers):
            if self.tconf[i] & TN_ENABLE and self.comparator[i] > now:
                t = self._ns_at(self.comparator[i])
                best = t if best is None or t < best else best
        return None if best is None else best + 1

    def expire(self, now):
        c = self.counter()
        for i in range(self.ntimers):
            if self.tconf[i] & TN_ENABLE and self.comparator[i] <= c:
                self._fire(i)
                if self.tconf[i] & TN_PERIODIC and self.period[i]:
                    while self.comparator[i] <= c:
                        self.comparator[i] += self.period[i]
                else:
                    self.comparator[i] += 1 << 64      # one shot: matches again only after a wrap

    def _line(self, irq=None, gsi=None):
        key = ("isa", irq) if irq is not None else ("gsi", gsi)
        if key not in self.lines and self.router is not None:
            self.lines[key] = self.router.isa_line(irq) if irq is not None else self.router.gsi_line(gsi)
        return self.lines.get(key)

    def _fire(self, i):
        if self.conf & CONF_LEGACY and i < 2:
            line = self._line(irq=0 if i == 0 else 8)
        else:
            line = self._line(gsi=(self.tconf[i] >> TN_ROUTE_SHIFT) & 0x1F)
        if self.tconf[i] & TN_LEVEL:
            self.status |= 1 << i
            if line is not None:
                line.set(True)
        elif line is not None:
            line.pulse()

    # -- registers -------------------------------------------------------------------
    def read64(self, off):
        if off == GCAP_ID:
            return self.cap
        if off == GEN_CONF:
            return self.conf
        if off == GINTR_STA:
            return self.status
        if off == MAIN_COUNTER:
            return self.counter()
        if off >= TIMER0:
            n, r = divmod(off - TIMER0, TIMER_STRIDE)
            if n < self.ntimers:
                if r == 0:
                    return self.tconf[n]
                if r == 8:
                    return self.comparator[n] & 0xFFFFFFFFFFFFFFFF
        return 0

    def write64(self, off, value, mask=0xFFFFFFFFFFFFFFFF):
        old = self.read64(off)
        value = (old & ~mask) | (value & mask)
        if off == GEN_CONF:
            was = self.conf & CONF_ENABLE
            self.conf = value & (CONF_ENABLE | CONF_LEGACY)
            if self.conf & CONF_ENABLE and not was:
                self.enabled_at = self.clock.now
            elif was and not self.conf & CONF_ENABLE:
                self.counter_base, self.enabled_at = self.counter(), None
        elif off == GINTR_STA:
            cleared = self.status & value & mask
            self.status &= ~cleared
            for i in range(self.ntimers):
                if cleared >> i & 1:
                    line = (self._line(irq=0 if i == 0 else 8)
                            if self.conf & CONF_LEGACY and i < 2 else
                            self._line(gsi=(self.tconf[i] >> TN_ROUTE_SHIFT) & 0x1F))
                    if line is not None:
                        line.set(False)
        elif off == MAIN_COUNTER:
            self.counter_base = value
            if self.enabled_at is not None:
                self.enabled_at = self.clock.now
        elif off >= TIMER0:
            n, r = divmod(off - TIMER0, TIMER_STRIDE)
            if n >= self.ntimers:
                return
            if r == 0:
                rw = TN_LEVEL | TN_ENABLE | TN_VAL_SET | (0x1F << TN_ROUTE_SHIFT) | (
                    TN_PERIODIC if self.tconf[n] & TN_PER_CAP else 0)
                self.tconf[n] = (self.tconf[n] & ~rw) | (value & rw)
            elif r == 8:
                value &= 0xFFFFFFFFFFFFFFFF
                if not self.tconf[n] & TN_PERIODIC:
                    self.comparator[n] = value
                elif self.tconf[n] & TN_VAL_SET:          # periodic: VAL_SET writes the comparator
                    self.comparator[n] = value
                    self.tconf[n] &= ~TN_VAL_SET
                else:                                      # ... otherwise the period
                    self.period[n] = value
                    if self.comparator[n] >= 1 << 64 or self.comparator[n] == 0xFFFFFFFFFFFFFFFF:
                        self.comparator[n] = self.counter() + value

    def mmio_read(self, offset, size):
        v = self.read64(offset & ~7)
        return (v >> (8 * (offset & 7))) & ((1 << (8 * size)) - 1)

    def mmio_write(self, offset, size, value):
        shift = 8 * (offset & 7)
        mask = ((1 << (8 * size)) - 1) << shift
        self.write64(offset & ~7, value << shift, mask)

    def state(self):
        return repr((self.conf, self.status, self.counter_base, self.enabled_at, self.tconf,
                     self.comparator, self.period)).encode()
