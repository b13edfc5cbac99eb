"""Console devices the early kernel and kmdb write to and read from.

* ``text`` -- the PC screen: VGA text memory at physical 0xB8000 (80x25
  cells of character + attribute), keyboard input from the BIOS data area's
  keyboard ring (head at 0x41A, tail at 0x41C, buffer 0x41E-0x43D, IBM PC BIOS).
  Both are *physical* addresses the i86pc code maps with ``map_phys``.
* ``ttya`` / ``ttyb`` -- a 16550 UART at 0x3F8 / 0x2F8, polled with IN/OUT
  (locore's ``uart_puts``/``uart_getc``).
* ``hypervisor`` -- Xen's console, ``HYPERVISOR_console_io`` (i86xen/console.py).

The scratch area for strings is the upper half of ``hcall_args``.
"""

from __future__ import annotations

ROWS, COLS = 25, 80
VGA_TEXT = 0xB8000
BDA_KBD_HEAD, BDA_KBD_TAIL = 0x41A, 0x41C
KBD_BUF_FIRST, KBD_BUF_END = 0x1E, 0x3E        # offsets from 0x400
SERIAL_PORTS = {"ttya": 0x3F8, "ttyb": 0x2F8}
STRBUF_OFFSET = 2048                             # in hcall_args
STRBUF_SIZE = 2048


class Console:
    """A character device: ``puts`` text, ``getc`` a character or None."""

    name = ""

    def puts(self, text: str):
        raise NotImplementedError

    def getc(self) -> int | None:
        raise NotImplementedError

    def __repr__(self):
        return f"<{type(self).__name__} {self.name}>"


class TextConsole(Console):
    """VGA text mode and the BIOS keyboard buffer (what i86pc's early code uses)."""

    name = "text"

    def __init__(self, kernel):
        self.k = kernel
        self.screen_va = kernel.plat.map_phys(VGA_TEXT, 1)
        self.bda_va = kernel.plat.map_phys(0, 1)
        self.cells = bytearray(b" \x07" * (ROWS * COLS))
        self.row = self.col = 0
        self.k.kcpu.write(self.screen_va, bytes(self.cells))       # clear the screen

    def puts(self, text: str):
        for ch in text.encode("latin-1", "replace"):
            if ch == 0x0A:
                self.row, self.col = self.row + 1, 0
            elif ch == 0x0D:
                self.col = 0
            else:
                at = 2 * (self.row * COLS + self.col)
                self.cells[at:at + 2] = bytes([ch, 0x07])
                self.col += 1
                if self.col == COLS:
                    self.row, self.col = self.row + 1, 0
            if self.row == ROWS:
                self.cells[:] = self.cells[2 * COLS:] + b" \x07" * COLS
                self.row = ROWS - 1
        self.k.kcpu.write(self.screen_va, bytes(self.cells))

    def getc(self) -> int | None:
        k = self.k.kcpu
        head = k.read16(self.bda_va + BDA_KBD_HEAD)
        tail = k.read16(self.bda_va + BDA_KBD_TAIL)
        if head == tail or not (KBD_BUF_FIRST <= head < KBD_BUF_END) or head & 1:
            return None
        ch = k.read8(self.bda_va + 0x400 + head)
        head += 2
        if head >= KBD_BUF_END:
            head = KBD_BUF_FIRST
        k.write16(self.bda_va + BDA_KBD_HEAD, head)
        return ch


class SerialConsole(Console):
    """A polled 16550 (the asy hardware) programmed for 9600 8N1."""

    def __init__(self, kernel, name: str):
        self.k = kernel
        self.name = name
        self.port = SERIAL_PORTS[name]
        out = self.k.outb
        p = self.port
        out(p + 1, 0x00)          # IER: no interrupts
        out(p + 3, 0x80)          # LCR: DLAB
        out(p + 0, 12)            # divisor 12: 9600 baud from 1.8432 MHz
        out(p + 1, 0)
        out(p + 3, 0x03)          # 8 data bits, no parity, 1 stop bit
        out(p + 2, 0x07)          # FIFO on, cleared
        out(p + 4, 0x0B)          # DTR, RTS, OUT2

    def puts(self, text: str):
        raw = text.replace("\n", "\r\n").encode("latin-1", "replace")
        buf = self.k.sym("hcall_args") + STRBUF_OFFSET
        for i in range(0, len(raw), STRBUF_SIZE):
            chunk = raw[i:i + STRBUF_SIZE]
            self.k.kcpu.write(buf, chunk)
            self.k.kcpu.call("uart_puts", self.port, buf, len(chunk),
                             budget=200 * len(chunk) + 1000)

    def getc(self) -> int | None:
        v = self.k.kcpu.call("uart_getc", self.port)
        return None if v & (1 << 63) else v & 0xFF


class Tee(Console):
    """Text to several consoles (and the message buffer), input from the first."""

    def __init__(self, *consoles):
        self.consoles = consoles
        self.name = consoles[0].name

    def puts(self, text: str):
        for c in self.consoles:
            c.puts(text)

    def getc(self):
        return self.consoles[0].getc()
