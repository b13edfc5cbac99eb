"""A 16550A UART: the serial port the console goes to.

Registers and bits are the National Semiconductor / TI PC16550D datasheet
(SLLS057), Table 2 ("Summary of Accessible Registers"): RBR/THR/DLL at +0,
IER/DLM at +1, IIR/FCR at +2, LCR +3, MCR +4, LSR +5, MSR +6, SCR +7; the
interrupt priorities and reset conditions are its Table 4; loopback is the
MCR bit 4 description.  On a PC, MCR OUT2 gates the IRQ line.

Transmission is instantaneous: a byte written to THR goes to ``output`` (the
console buffer) at once and the transmitter is empty again.  ``feed(bytes)``
puts received characters in the receive FIFO as if they arrived in one burst
followed by an idle line, so a character-timeout indication is raised when
fewer than the trigger level are waiting.
"""

from __future__ import annotations

from collections import deque

IER_RDA, IER_THRE, IER_RLS, IER_MS = 0x01, 0x02, 0x04, 0x08
IIR_NONE, IIR_MS, IIR_THRE, IIR_RDA, IIR_RLS, IIR_CTI = 0x01, 0x00, 0x02, 0x04, 0x06, 0x0C
IIR_FIFO = 0xC0
FCR_ENABLE, FCR_CLEAR_RX, FCR_CLEAR_TX, FCR_DMA = 0x01, 0x02, 0x04, 0x08
LCR_DLAB = 0x80
MCR_DTR, MCR_RTS, MCR_OUT1, MCR_OUT2, MCR_LOOP = 0x01, 0x02, 0x04, 0x08, 0x10
LSR_DR, LSR_OE, LSR_PE, LSR_FE, LSR_BI, LSR_THRE, LSR_TEMT, LSR_FIFOERR = (
    0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80)
MSR_DCTS, MSR_DDSR, MSR_TERI, MSR_DDCD, MSR_CTS, MSR_DSR, MSR_RI, MSR_DCD = (
    0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80)
FIFO_DEPTH = 16
TRIGGER_LEVELS = (1, 4, 8, 14)
CLOCK_HZ = 1_843_200          # the PC's 1.8432 MHz crystal: divisor 1 = 115200 baud


class Uart16550:
    """One 16550A at ``base`` (8 ports).  ``irq`` is an ``IrqLine`` (or None)."""

    def __init__(self, base=0x3F8, irq=None, name="ttya"):
        self.base, self.irq, self.name = base, irq, name
        self.output = bytearray()
        self.rx: deque[int] = deque()
        self.reset()

    def reset(self):
        self.ier = 0
        self.lcr = 0
        self.mcr = 0
        self.lsr = LSR_THRE | LSR_TEMT
        self.msr = 0
        self.scr = 0
        self.dll, self.dlm = 0x0C, 0x00     # 9600 baud until software says otherwise
        self.fcr = 0
        self.thre_pending = False
        self.timeout = False
        self.rx.clear()
        self._update()

    def attach(self, ports):
        ports.claim(self.base, 8, self, f"uart {self.name}")

    # -- facts ----------------------------------------------------------------------
    @property
    def fifo_enabled(self):
        return bool(self.fcr & FCR_ENABLE)

    @property
    def divisor(self):
        return self.dll | self.dlm << 8

    @property
    def baud(self):
        return CLOCK_HZ // (16 * self.divisor) if self.divisor else 0

    @property
    def trigger(self):
        return TRIGGER_LEVELS[self.fcr >> 6] if self.fifo_enabled else 1

    def console_text(self) -> str:
        return self.output.decode("latin-1")

    # -- the line side --------------------------------------------------------------
    def feed(self, data: bytes):
        """Characters arrive on the receive line."""
        for b in bytes(data):
            self._receive(b)
        self.timeout = bool(self.rx) and self.fifo_enabled and len(self.rx) < self.trigger
        self._update()

    def _receive(self, b):
        depth = FIFO_DEPTH if self.fifo_enabled else 1
        if len(self.rx) >= depth:
            self.lsr |= LSR_OE            # overrun: the character is lost
            if not self.fifo_enabled:
                self.rx.clear()
                self.rx.append(b)
            return
        self.rx.append(b)
        self.lsr |= LSR_DR

    def _transmit(self, b):
        if self.mcr & MCR_LOOP:
            self._receive(b)
            self.timeout = self.fifo_enabled and len(self.rx) < self.trigger
        else:
            self.output.append(b)
        self.lsr |= LSR_THRE | LSR_TEMT
        self.thre_pending = True

    # -- interrupt logic (datasheet Table 4) --------------------------------------------
    def interrupt_id(self):
        if self.ier & IER_RLS and self.lsr & (LSR_OE | LSR_PE | LSR_FE | LSR_BI):
            return IIR_RLS
        if self.ier & IER_RDA and self.rx and len(self.rx) >= self.trigger:
            return IIR_RDA
        if self.ier & IER_RDA and self.timeout and self.rx:
            return IIR_CTI
        if self.ier & IER_THRE and self.thre_pending:
            return IIR_THRE
        if self.ier & IER_MS and self.msr & 0x0F:
            return IIR_MS
        return IIR_NONE

    def _update(self):
        if self.irq is not None:
            self.irq.set(self.interrupt_id() != IIR_NONE and bool(self._out2()))

    def _out2(self):
        return self.mcr & MCR_OUT2 and not self.mcr & MCR_LOOP

    def _loop_msr(self):
        m = self.mcr
        new = ((MSR_CTS if m & MCR_RTS else 0) | (MSR_DSR if m & MCR_DTR else 0)
               | (MSR_RI if m & MCR_OUT1 else 0) | (MSR_DCD if m & MCR_OUT2 else 0))
        old = self.msr
        delta = ((MSR_DCTS if (old ^ new) & MSR_CTS else 0) | (MSR_DDSR if (old ^ new) & MSR_DSR else 0)
                 | (MSR_TERI if old & MSR_RI and not new & MSR_RI else 0)
                 | (MSR_DDCD if (old ^ new) & MSR_DCD else 0))
        self.msr = new | (old & 0x0F) | delta

    # -- ports ------------------------------------------------------------------------
    def io_read(self, port, size):
        reg = (port - self.base) & 7
        v = self._read(reg)
        self._update()
        return v

    def _read(self, reg):
        if reg == 0:
            if self.lcr & LCR_DLAB:
                return self.dll
            if not self.rx:
                return 0
            b = self.rx.popleft()
            if not self.rx:
                self.lsr &= ~LSR_DR
                self.timeout = False
            return b
        if reg == 1:
            return self.dlm if self.lcr & LCR_DLAB else self.ier
        if reg == 2:
            iid = self.interrupt_id()
            if iid == IIR_THRE:
                self.thre_pending = False        # reading IIR clears a THRE indication
            return iid | (IIR_FIFO if self.fifo_enabled else 0)
        if reg == 3:
            return self.lcr
        if reg == 4:
            return self.mcr
        if reg == 5:
            v = self.lsr
            self.lsr &= ~(LSR_OE | LSR_PE | LSR_FE | LSR_BI)
            return v
        if reg == 6:
            v = self.msr
            self.msr &= 0xF0
            return v
        return self.scr

    def io_write(self, port, size, value):
        reg = (port - self.base) & 7
        value &= 0xFF
        if reg == 0:
            if self.lcr & LCR_DLAB:
                self.dll = value
            else:
                self.thre_pending = False
                self._transmit(value)
        elif reg == 1:
            if self.lcr & LCR_DLAB:
                self.dlm = value
            else:
                was = self.ier
                self.ier = value & 0x0F
                if value & IER_THRE and not was & IER_THRE and self.lsr & LSR_THRE:
                    self.thre_pending = True     # enabling THRE with an empty holding register
        elif reg == 2:
            if (value ^ self.fcr) & FCR_ENABLE:
                self.rx.clear()
                self.lsr &= ~LSR_DR
            if value & FCR_CLEAR_RX:
                self.rx.clear()
                self.lsr &= ~LSR_DR
                self.timeout = False
            self.fcr = value & (FCR_ENABLE | FCR_DMA | 0xC0) if value & FCR_ENABLE else 0
        elif reg == 3:
            self.lcr = value
        elif reg == 4:
            self.mcr = value & 0x1F
            if self.mcr & MCR_LOOP:
                self._loop_msr()
        elif reg == 7:
            self.scr = value
        self._update()

    def state(self):
        return bytes([self.ier, self.lcr, self.mcr, self.lsr, self.msr, self.scr, self.dll,
                      self.dlm, self.fcr, self.thre_pending, self.timeout]) + bytes(self.rx) \
            + b"|" + bytes(self.output)


class PciUart:
    """A 16550-compatible PCI function (class 0x0700xx): the UART behind BAR 0,
    its interrupt on the function's INTx#."""

    class _IntxLine:
        def __init__(self, fn):
            self.fn = fn

        def set(self, level):
            if bool(level) != self.fn.intx_asserted:
                self.fn.set_intx(level)

    def __init__(self, fn, name):
        self.fn = fn
        self.uart = Uart16550(base=0, irq=self._IntxLine(fn), name=name)
        fn.model = self

    def bar_read(self, index, offset, size):
        return self.uart.io_read(offset, size) if index == 0 and offset < 8 else 0xFF

    def bar_write(self, index, offset, size, value):
        if index == 0 and offset < 8:
            self.uart.io_write(offset, size, value)

    def state(self):
        return self.uart.state()
