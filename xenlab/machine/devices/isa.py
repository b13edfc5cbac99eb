"""Legacy ISA devices that drivers probe by assuming they are there.

A profile lists which exist; an absent one has no claim on the port bus, so
its registers read 0xFF, which is how an ISA probe (and the story's ISA leaf
drivers) find out, or fail to.

- ``I8042``: the keyboard controller, data 0x60, status/command 0x64 (IBM PC/AT
  Technical Reference, "Keyboard Controller"; commands 0x20/0x60 command byte,
  0xAA self test -> 0x55, 0xAB interface test -> 0x00, 0xAD/0xAE).
- ``Floppy82077``: the Intel 82077AA floppy controller at 0x3F0-0x3F5, 0x3F7
  (datasheet 290166: DOR 0x3F2, MSR 0x3F4, data FIFO 0x3F5; VERSION command
  0x10 -> 0x90; SENSE INTERRUPT STATUS 0x08 after a reset).
- ``ParallelPort``: an SPP port at 0x378-0x37A (IEEE 1284: data, status, control).
"""

from __future__ import annotations

from collections import deque


class I8042:
    ST_OBF, ST_IBF, ST_SYS, ST_CMD = 0x01, 0x02, 0x04, 0x08

    def __init__(self, irq1=None, irq12=None):
        self.irq1, self.irq12 = irq1, irq12
        self.out: deque[int] = deque()
        self.command_byte = 0x45            # IRQ1 enabled, system flag, translation
        self.pending = None                 # command waiting for a data byte
        self.status = self.ST_SYS

    def attach(self, ports):
        ports.claim(0x60, 1, self, "i8042-data")
        ports.claim(0x64, 1, self, "i8042-status")

    def _put(self, b):
        self.out.append(b & 0xFF)
        self._irq()

    def _irq(self):
        if self.irq1 is not None:
            self.irq1.set(bool(self.out) and bool(self.command_byte & 0x01))

    def key(self, scancodes: bytes):
        for b in scancodes:
            self._put(b)

    def io_read(self, port, size):
        if port == 0x64:
            return self.status | (self.ST_OBF if self.out else 0)
        v = self.out.popleft() if self.out else 0
        self._irq()
        return v

    def io_write(self, port, size, value):
        value &= 0xFF
        if port == 0x64:
            self.pending = None
            if value == 0x20:
                self._put(self.command_byte)
            elif value in (0x60, 0xD1, 0xD2, 0xD3, 0xD4):
                self.pending = value
            elif value == 0xAA:
                self._put(0x55)
            elif value in (0xAB, 0xA9):
                self._put(0x00)
            elif value == 0xAD:
                self.command_byte |= 0x10
            elif value == 0xAE:
                self.command_byte &= ~0x10
            elif value == 0xA7:
                self.command_byte |= 0x20
            elif value == 0xA8:
                self.command_byte &= ~0x20
            return
        if self.pending == 0x60:
            self.command_byte = value
            self._irq()
        elif self.pending == 0xD2:
            self._put(value)
        elif self.pending in (0xD1, 0xD3, 0xD4):
            pass
        elif value == 0xFF:                      # keyboard reset: ACK, BAT passed
            self._put(0xFA)
            self._put(0xAA)
        elif value == 0xF2:                      # identify: MF2 keyboard
            for b in (0xFA, 0xAB, 0x83):
                self._put(b)
        else:
            self._put(0xFA)
        self.pending = None

    def state(self):
        return bytes([self.command_byte, self.status, self.pending or 0]) + bytes(self.out)


class Floppy82077:
    MSR_RQM, MSR_DIO, MSR_BUSY = 0x80, 0x40, 0x10

    def __init__(self, irq6=None):
        self.irq6 = irq6
        self.dor = 0x0C
        self.result: deque[int] = deque()
        self.cmd: list[int] = []
        self.reset_pending = False

    def attach(self, ports):
        ports.claim(0x3F0, 6, self, "fdc")
        ports.claim(0x3F7, 1, self, "fdc-dir")

    def io_read(self, port, size):
        if port == 0x3F2:
            return self.dor
        if port == 0x3F4:
            return self.MSR_RQM | ((self.MSR_DIO | self.MSR_BUSY) if self.result else 0)
        if port == 0x3F5:
            v = self.result.popleft() if self.result else 0
            if self.irq6 is not None and not self.result:
                self.irq6.set(False)
            return v
        if port == 0x3F7:
            return 0x00                           # disk change line inactive
        return 0x00 if port in (0x3F0, 0x3F1) else 0xFF

    def io_write(self, port, size, value):
        value &= 0xFF
        if port == 0x3F2:
            if not value & 0x04 and self.dor & 0x04:
                self.reset_pending = True         # entering reset
            elif value & 0x04 and not self.dor & 0x04:
                self.reset_pending = True         # leaving reset: interrupt follows
                if self.irq6 is not None and value & 0x08:
                    self.irq6.set(True)
            self.dor = value
        elif port == 0x3F5:
            self.cmd.append(value)
            self._run()

    def _run(self):
        op = self.cmd[0] & 0x1F
        if op == 0x10:                            # VERSION
            self.result.extend([0x90])
        elif op == 0x08:                          # SENSE INTERRUPT STATUS
            if self.reset_pending:
                self.result.extend([0xC0, 0x00])
                self.reset_pending = False
            else:
                self.result.extend([0x80])        # invalid command: no interrupt pending
            if self.irq6 is not None:
                self.irq6.set(False)
        elif op == 0x03:                          # SPECIFY: two parameter bytes
            if len(self.cmd) < 3:
                return
        else:
            self.result.extend([0x80])            # invalid
        self.cmd = []

    def state(self):
        return bytes([self.dor, self.reset_pending]) + bytes(self.result) + bytes(self.cmd)


class ParallelPort:
    def __init__(self, base=0x378, irq=None):
        self.base, self.irq = base, irq
        self.data = 0
        self.control = 0x0C
        self.printed = bytearray()

    def attach(self, ports):
        ports.claim(self.base, 3, self, "lpt")

    def io_read(self, port, size):
        r = port - self.base
        if r == 0:
            return self.data
        if r == 1:
            return 0xDF                            # not busy, ack high, selected, no error
        return self.control | 0xE0

    def io_write(self, port, size, value):
        r = port - self.base
        if r == 0:
            self.data = value & 0xFF
        elif r == 2:
            if value & 0x01 and not self.control & 0x01:
                self.printed.append(self.data)     # strobe
            self.control = value & 0x3F

    def state(self):
        return bytes([self.data, self.control]) + bytes(self.printed)
