"""ACPI fixed hardware: PM1a event and control blocks and the PM timer.

ACPI 6.5 §4.8.3: PM1_STS (write one to clear) and PM1_EN at PM1a_EVT_BLK,
PM1_CNT (SCI_EN bit 0, SLP_TYP bits 12:10, SLP_EN bit 13) at PM1a_CNT_BLK, and
the 24-bit PM timer counting at 3.579545 MHz at PM_TMR_BLK (§4.8.3.3).  The
FADT puts them at ``base``, ``base+4`` and ``base+8``.  SCI_EN is set: the
machine is in ACPI mode from power on (the FADT's SMI_CMD is 0).
"""

from __future__ import annotations

PM_TIMER_HZ = 3_579_545


class AcpiPm:
    def __init__(self, base, clock):
        self.base, self.clock = base, clock
        self.sts = 0
        self.en = 0
        self.cnt = 0x0001
        self.sleep_requests: list[int] = []

    def attach(self, ports):
        ports.claim(self.base, 12, self, "acpi-pm")

    def timer(self) -> int:
        return int(self.clock.now * PM_TIMER_HZ // 1_000_000_000) & 0xFFFFFF

    def io_read(self, port, size):
        off = port - self.base
        regs = (self.sts | self.en << 16).to_bytes(4, "little") + self.cnt.to_bytes(
            4, "little") + self.timer().to_bytes(4, "little")
        return int.from_bytes(regs[off:off + size], "little")

    def io_write(self, port, size, value):
        off = port - self.base
        for i in range(size):
            r, b = off + i, (value >> (8 * i)) & 0xFF
            if r < 2:
                self.sts &= ~(b << (8 * r))
            elif r < 4:
                sh = 8 * (r - 2)
                self.en = (self.en & ~(0xFF << sh)) | b << sh
            elif r < 6:
                sh = 8 * (r - 4)
                self.cnt = (self.cnt & ~(0xFF << sh)) | b << sh
                if self.cnt & 0x2000:
                    self.sleep_requests.append((self.cnt >> 10) & 7)
                    self.cnt &= ~0x2000

    def state(self):
        return bytes([self.sts & 0xFF, self.sts >> 8, self.en & 0xFF, self.en >> 8,
                      self.cnt & 0xFF, self.cnt >> 8])
