"""The MC146818 real-time clock and CMOS RAM at 0x70/0x71.

Registers 0x00-0x09 (time and date, BCD unless register B's DM bit is set),
A (0x0A: UIP bit 7), B (0x0B: SET, PIE, AIE, UIE, DM, 24/12), C (0x0C: flags,
cleared by reading), D (0x0D: VRT, valid RAM and time) follow the Motorola
MC146818A datasheet; bit 7 of the index port masks NMI on PCs.  The PC's CMOS
layout (0x10 floppy types, 0x15-0x18 base/extended memory in KiB, 0x30-0x31,
0x34-0x35 memory above 16 MiB in 64 KiB units) is the IBM AT BIOS convention.
"""

from __future__ import annotations

import datetime as dt

REG_A, REG_B, REG_C, REG_D = 0x0A, 0x0B, 0x0C, 0x0D
B_DM, B_24H, B_UIE, B_AIE, B_PIE, B_SET = 0x04, 0x02, 0x10, 0x20, 0x40, 0x80


def _bcd(v):
    return (v // 10) << 4 | v % 10


class Rtc:
    def __init__(self, clock, start: dt.datetime, irq8=None):
        self.clock, self.start, self.irq8 = clock, start, irq8
        self.index = 0
        self.nmi_masked = False
        self.cmos = bytearray(128)
        self.cmos[REG_A] = 0x26                 # 32.768 kHz base, 1024 Hz rate
        self.cmos[REG_B] = B_24H
        self.cmos[REG_D] = 0x80                 # valid RAM and time

    def attach(self, ports):
        ports.claim(0x70, 2, self, "rtc")

    def set_memory(self, base_kib, ext_kib, above16m_64k):
        """The BIOS's memory-size bytes."""
        self.cmos[0x15:0x17] = min(base_kib, 640).to_bytes(2, "little")
        e = min(ext_kib, 0xFFFF).to_bytes(2, "little")
        self.cmos[0x17:0x19] = e
        self.cmos[0x30:0x32] = e
        self.cmos[0x34:0x36] = min(above16m_64k, 0xFFFF).to_bytes(2, "little")

    def now(self) -> dt.datetime:
        return self.start + dt.timedelta(microseconds=self.clock.now // 1000)

    def _time_reg(self, r):
        t = self.now()
        v = {0: t.second, 2: t.minute, 4: t.hour, 6: t.isoweekday() % 7 + 1, 7: t.day,
             8: t.month, 9: t.year % 100, 0x32: t.year // 100}.get(r)
        if v is None:
            return self.cmos[r]
        if r == 4 and not self.cmos[REG_B] & B_24H:
            v = (v % 12 or 12) | (0x80 if t.hour >= 12 else 0) if self.cmos[REG_B] & B_DM \
                else _bcd(v % 12 or 12) | (0x80 if t.hour >= 12 else 0)
            return v
        return v if self.cmos[REG_B] & B_DM else _bcd(v)

    def io_read(self, port, size):
        if port == 0x70:
            return 0xFF                          # the index register is write only
        r = self.index
        if r in (0, 2, 4, 6, 7, 8, 9, 0x32):
            return self._time_reg(r)
        if r == REG_A:
            return self.cmos[REG_A] & 0x7F       # UIP clear: reads never race an update
        if r == REG_C:
            v = self.cmos[REG_C]
            self.cmos[REG_C] = 0
            return v
        return self.cmos[r]

    def io_write(self, port, size, value):
        value &= 0xFF
        if port == 0x70:
            self.index = value & 0x7F
            self.nmi_masked = bool(value & 0x80)
            return
        r = self.index
        if r in (REG_C, REG_D):
            return                               # read only
        self.cmos[r] = value

    def state(self):
        return bytes([self.index, self.nmi_masked]) + bytes(self.cmos) + self.start.isoformat().encode()
