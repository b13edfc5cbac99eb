"""The local APIC (xAPIC mode) of one CPU, at 0xFEE00000.

Register offsets are Intel SDM Vol. 3A Table 11-1 ("Local APIC Register Address
Map"); IRR/ISR/TMR handling and the processor priority follow §11.8.3-11.8.5;
the LVT layout is §11.5.1 (Figure 11-8); the timer is §11.5.4 (divide
configuration Figure 11-10); the ICR is §11.6.1 (Figure 11-12); the spurious
vector register is §11.9 (Figure 11-23).
"""

from __future__ import annotations

ID, VERSION, TPR, APR, PPR, EOI = 0x20, 0x30, 0x80, 0x90, 0xA0, 0xB0
RRD, LDR, DFR, SVR = 0xC0, 0xD0, 0xE0, 0xF0
ISR0, TMR0, IRR0, ESR = 0x100, 0x180, 0x200, 0x280
LVT_CMCI, ICR_LO, ICR_HI = 0x2F0, 0x300, 0x310
LVT_TIMER, LVT_THERMAL, LVT_PERF, LVT_LINT0, LVT_LINT1, LVT_ERROR = (
    0x320, 0x330, 0x340, 0x350, 0x360, 0x370)
TIMER_INITIAL, TIMER_CURRENT, TIMER_DIVIDE = 0x380, 0x390, 0x3E0

LVT_MASKED = 1 << 16
LVT_LEVEL = 1 << 15
TIMER_PERIODIC = 1 << 17
SVR_ENABLE = 1 << 8
SVR_SUPPRESS_EOI_BROADCAST = 1 << 12
DM_FIXED, DM_LOWEST, DM_SMI, DM_NMI, DM_INIT, DM_SIPI, DM_EXTINT = 0, 1, 2, 4, 5, 6, 7
LVTS = (LVT_CMCI, LVT_TIMER, LVT_THERMAL, LVT_PERF, LVT_LINT0, LVT_LINT1, LVT_ERROR)

BUS_HZ = 100_000_000      # the APIC timer's input clock in this model
VECTOR_NMI = 2


def divide_value(dcr: int) -> int:
    """Divide configuration register -> divisor (SDM Figure 11-10)."""
    code = (dcr & 3) | ((dcr >> 1) & 4)
    return 1 if code == 7 else 2 << code


class Lapic:
    """One CPU's local APIC.  ``bus`` is the APIC bus (the router) it sends IPIs on."""

    def __init__(self, cpu_index, apic_id, *, version=0x00050014, clock=None):
        self.cpu, self.version, self.clock = cpu_index, version, clock
        self.bus = None
        self.on_pending = None           # called when an interrupt becomes deliverable
        self.extint = None               # callable: is the PIC's INTR up?
        self.reset(apic_id)

    def reset(self, apic_id):
        self.apic_id = apic_id
        self.irr = self.isr = self.tmr = 0          # 256-bit vectors as Python ints
        self.tpr = 0
        self.ldr = 0
        self.dfr = 0xFFFFFFFF
        self.svr = 0xFF                             # software disabled after reset
        self.esr = 0
        self.icr = 0
        self.lvt = {r: LVT_MASKED for r in LVTS}
        self.timer_initial = 0
        self.timer_divide = 0
        self.timer_start = 0                        # ns when the count was loaded
        self.nmi_pending = False
        self.lint = [False, False]
        self.init_received = 0
        self.sipi_vector = None

    @property
    def enabled(self) -> bool:
        return bool(self.svr & SVR_ENABLE)

    # -- priorities ----------------------------------------------------------------
    @staticmethod
    def _highest(bits: int) -> int:
        return bits.bit_length() - 1          # -1 if none

    def ppr(self) -> int:
        isrv = max(self._highest(self.isr), 0)
        if (self.tpr >> 4) >= (isrv >> 4):
            return self.tpr & 0xFF
        return isrv & 0xF0

    def pending_vector(self):
        """The fixed interrupt the CPU would take now, or None (SDM §11.8.3.1)."""
        v = self._highest(self.irr)
        if v < 0 or (v >> 4) <= (self.ppr() >> 4):
            return None
        return v

    def interrupt_pending(self) -> bool:
        if self.nmi_pending:
            return True
        if self._extint_pending():
            return True
        return self.pending_vector() is not None

    def _extint_pending(self):
        lint0 = self.lvt[LVT_LINT0]
        return (self.extint is not None and self.enabled and not lint0 & LVT_MASKED
                and (lint0 >> 8) & 7 == DM_EXTINT and self.extint())

    def acknowledge(self, pic=None):
        """The CPU takes an interrupt: NMI first, then ExtINT (PIC), then IRR -> ISR."""
        if self.nmi_pending:
            self.nmi_pending = False
            return VECTOR_NMI
        if self._extint_pending() and pic is not None:
            return pic.acknowledge()
        v = self.pending_vector()
        if v is None:
            return None
        self.irr &= ~(1 << v)
        self.isr |= 1 << v
        return v

    # -- accepting interrupts --------------------------------------------------------
    def accept(self, vector, mode=DM_FIXED, level=False):
        """An interrupt message arrives (from an IOAPIC, an IPI, MSI or an LVT)."""
        if mode == DM_NMI:
            self.nmi_pending = True
        elif mode == DM_INIT:
            self.init_received += 1
        elif mode == DM_SIPI:
            self.sipi_vector = vector & 0xFF
        elif mode in (DM_FIXED, DM_LOWEST):
            if not self.enabled:
                return                          # a software-disabled APIC takes none
            if vector < 16:
                self.esr |= 0x40                # received illegal vector
                return
            self.irr |= 1 << vector
            self.tmr = (self.tmr | 1 << vector) if level else (self.tmr & ~(1 << vector))
        self._notify()

    def _notify(self):
        if self.on_pending is not None and self.interrupt_pending():
            self.on_pending(self.cpu)

    def set_lint(self, n, level):
        """LINT0/LINT1 input (the PIC's INTR, the NMI line)."""
        rising = level and not self.lint[n]
        self.lint[n] = level
        e = self.lvt[LVT_LINT0 if n == 0 else LVT_LINT1]
        if not self.enabled or e & LVT_MASKED:
            return
        mode = (e >> 8) & 7
        if mode == DM_EXTINT:
            self._notify()
        elif rising or (e & LVT_LEVEL and level):
            self.accept(e & 0xFF, mode, bool(e & LVT_LEVEL))

    def eoi(self):
        v = self._highest(self.isr)
        if v < 0:
            return
        self.isr &= ~(1 << v)
        if self.tmr >> v & 1 and not self.svr & SVR_SUPPRESS_EOI_BROADCAST and self.bus:
            self.bus.broadcast_eoi(v)
        self._notify()

    # -- timer -----------------------------------------------------------------------
    def _now(self):
        return self.clock.now if self.clock is not None else 0

    def _tick_ns(self):
        return 1e9 * divide_value(self.timer_divide) / BUS_HZ

    def timer_current(self):
        if not self.timer_initial:
            return 0
        ticks = int((self._now() - self.timer_start) / self._tick_ns())
        if self.lvt[LVT_TIMER] & TIMER_PERIODIC:
            return self.timer_initial - ticks % self.timer_initial
        return max(self.timer_initial - ticks, 0)

    def next_deadline(self):
        """Machine time (ns) of the next timer expiry, or None."""
        if not self.timer_initial:
            return None
        period = self.timer_initial * self._tick_ns()
        elapsed = self._now() - self.timer_start
        n = int(elapsed // period) + 1
        if not self.lvt[LVT_TIMER] & TIMER_PERIODIC and n > 1:
            return None
        return self.timer_start + n * period

    def expire(self, now):
        """Called by the clock at a deadline."""
        e = self.lvt[LVT_TIMER]
        if not e & LVT_MASKED and self.enabled:
            self.accept(e & 0xFF, DM_FIXED, False)

    # -- MMIO ------------------------------------------------------------------------
    def read_register(self, off):
        if off == ID:
            return self.apic_id << 24
        if off == VERSION:
            return self.version
        if off == TPR:
            return self.tpr
        if off == APR:
            return 0
        if off == PPR:
            return self.ppr()
        if off == LDR:
            return self.ldr
        if off == DFR:
            return self.dfr
        if off == SVR:
            return self.svr
        if ISR0 <= off < ISR0 + 0x80:
            return (self.isr >> (32 * ((off - ISR0) >> 4))) & 0xFFFFFFFF
        if TMR0 <= off < TMR0 + 0x80:
            return (self.tmr >> (32 * ((off - TMR0) >> 4))) & 0xFFFFFFFF
        if IRR0 <= off < IRR0 + 0x80:
            return (self.irr >> (32 * ((off - IRR0) >> 4))) & 0xFFFFFFFF
        if off == ESR:
            return self.esr
        if off == ICR_LO:
            return self.icr & 0xFFFFFFFF & ~(1 << 12)     # delivery status: idle
        if off == ICR_HI:
            return self.icr >> 32
        if off in self.lvt:
            return self.lvt[off]
        if off == TIMER_INITIAL:
            return self.timer_initial
        if off == TIMER_CURRENT:
            return self.timer_current()
        if off == TIMER_DIVIDE:
            return self.timer_divide
        return 0

    def write_register(self, off, value):
        if off == ID:
            self.apic_id = value >> 24
        elif off == TPR:
            self.tpr = value & 0xFF
            self._notify()
        elif off == EOI:
            self.eoi()
        elif off == LDR:
            self.ldr = value & 0xFF000000
        elif off == DFR:
            self.dfr = value | 0x0FFFFFFF
        elif off == SVR:
            self.svr = value & 0x13FF
            if not self.enabled:                     # disabling masks every LVT
                for r in self.lvt:
                    self.lvt[r] |= LVT_MASKED
            self._notify()
        elif off == ESR:
            self.esr = 0
        elif off == ICR_HI:
            self.icr = (self.icr & 0xFFFFFFFF) | (value & 0xFF000000) << 32
        elif off == ICR_LO:
            self.icr = (self.icr & ~0xFFFFFFFF) | (value & 0xFFFFFFFF)
            if self.bus is not None:
                self.bus.send_ipi(self, self.icr)
        elif off in self.lvt:
            if not self.enabled:
                value |= LVT_MASKED
            self.lvt[off] = value & 0x000717FF | (value & TIMER_PERIODIC if off == LVT_TIMER else 0)
            if off == LVT_LINT0:
                self._notify()
        elif off == TIMER_INITIAL:
            self.timer_initial = value & 0xFFFFFFFF
            self.timer_start = self._now()
        elif off == TIMER_DIVIDE:
            self.timer_divide = value & 0xB

    def state(self):
        parts = [self.apic_id, self.irr, self.isr, self.tmr, self.tpr, self.ldr, self.dfr,
                 self.svr, self.esr, self.icr, self.timer_initial, self.timer_divide,
                 self.timer_start, int(self.nmi_pending)] + [self.lvt[r] for r in LVTS]
        return b"".join(int(p).to_bytes(33, "little") for p in parts)


class LapicWindow:
    """The 4 KiB at the LAPIC address: each CPU sees its own LAPIC there."""

    def __init__(self, lapics, current_cpu):
        self.lapics, self.current_cpu = lapics, current_cpu

    def _mine(self):
        return self.lapics[self.current_cpu()]

    def mmio_read(self, offset, size):
        v = self._mine().read_register(offset & 0xFF0)
        return (v >> (8 * (offset & 3))) & ((1 << (8 * size)) - 1)

    def mmio_write(self, offset, size, value):
        if offset & 0xF:
            return                          # registers are 32 bits at 16-byte boundaries
        self._mine().write_register(offset & 0xFF0, value & 0xFFFFFFFF)
