"""The 8259A programmable interrupt controller pair (master at 0x20, slave at 0xA0).

Register behaviour follows the Intel 8259A datasheet (order no. 231468):
ICW1-ICW4 initialisation ("Initialization Command Words"), OCW1 (mask), OCW2
(EOI and rotation), OCW3 (read IRR/ISR, poll, special mask), fully nested
priority, edge and level triggered inputs.  The edge/level control registers at
0x4D0/0x4D1 are the PIIX/ICH ELCR (Intel 82371AB PIIX4 datasheet §4.1.12,
ICH9 datasheet §13.4.5).
"""

from __future__ import annotations


class Pic8259:
    """One 8259A: eight inputs, IRR/ISR/IMR, and its priority logic."""

    def __init__(self, name, is_master):
        self.name, self.is_master = name, is_master
        self.reset()
        self.elcr = 0            # bit n: input n is level triggered (ELCR)
        self.lines = 0           # current input levels

    def reset(self):
        self.irr = self.isr = self.imr = 0
        self.base = 0
        self.icw3 = 0
        self.icw4 = 0
        self.init_step = 0       # 0: operational, 2/3/4: expecting that ICW
        self.needs_icw4 = False
        self.single = False
        self.ltim = False
        self.read_isr = False
        self.poll = False
        self.special_mask = False
        self.auto_eoi = False
        self.rotate_aeoi = False
        self.lowest = 7          # lowest-priority input (IR7 after ICW1)

    # -- priority ---------------------------------------------------------------
    def _order(self):
        """Inputs from highest to lowest priority."""
        return [(self.lowest + 1 + i) & 7 for i in range(8)]

    def _level(self, n) -> bool:
        cascade = self.is_master and n == 2 and not self.single   # the slave's INT output
        return bool(self.ltim or (self.elcr >> n) & 1 or cascade)

    def highest_request(self):
        """The input that would be serviced now, honouring ISR nesting, or None."""
        pending = self.irr & ~self.imr
        for n in self._order():
            if self.isr >> n & 1 and not (self.special_mask and self.imr >> n & 1):
                if not self.special_mask:
                    return None
                continue
            if pending >> n & 1:
                return n
        return None

    def set_line(self, n, level):
        bit = 1 << n
        old = self.lines & bit
        self.lines = (self.lines | bit) if level else (self.lines & ~bit)
        if self._level(n):
            self.irr = (self.irr | bit) if level else (self.irr & ~bit)
        elif level and not old:
            self.irr |= bit                         # rising edge latches

    def ack(self):
        """INTA: returns the input serviced (7 for a spurious request)."""
        n = self.highest_request()
        if n is None:
            return None
        if not self.auto_eoi:
            self.isr |= 1 << n
        elif self.rotate_aeoi:
            self.lowest = n
        if not self._level(n):
            self.irr &= ~(1 << n)
        return n

    def _eoi(self, n=None):
        if n is None:
            for k in self._order():
                if self.isr >> k & 1:
                    n = k
                    break
            else:
                return None
        self.isr &= ~(1 << n)
        if self._level(n) and self.lines >> n & 1:
            self.irr |= 1 << n
        return n

    # -- ports ------------------------------------------------------------------
    def write(self, a0, value):
        if a0 == 0 and value & 0x10:                  # ICW1
            self.reset()
            self.needs_icw4 = bool(value & 0x01)
            self.single = bool(value & 0x02)
            self.ltim = bool(value & 0x08)
            self.irr = self.lines if self.ltim else 0   # edge sense reset
            self.init_step = 2
        elif a0 == 1 and self.init_step == 2:         # ICW2: vector base T7-T3
            self.base = value & 0xF8
            self.init_step = 3 if not self.single else (4 if self.needs_icw4 else 0)
        elif a0 == 1 and self.init_step == 3:         # ICW3: cascade wiring
            self.icw3 = value
            self.init_step = 4 if self.needs_icw4 else 0
        elif a0 == 1 and self.init_step == 4:         # ICW4
            self.icw4 = value
            self.auto_eoi = bool(value & 0x02)
            self.init_step = 0
        elif a0 == 1:                                 # OCW1: interrupt mask
            self.imr = value & 0xFF
        elif value & 0x08:                            # OCW3
            if value & 0x02:
                self.read_isr = bool(value & 0x01)
            self.poll = bool(value & 0x04)
            if value & 0x40:
                self.special_mask = bool(value & 0x20)
        else:                                         # OCW2
            op = value >> 5
            level = value & 7
            if op == 0b001:                           # non-specific EOI
                self._eoi()
            elif op == 0b011:                         # specific EOI
                self._eoi(level)
            elif op == 0b101:                         # rotate on non-specific EOI
                n = self._eoi()
                if n is not None:
                    self.lowest = n
            elif op == 0b111:                         # rotate on specific EOI
                self._eoi(level)
                self.lowest = level
            elif op == 0b110:                         # set priority
                self.lowest = level
            elif op == 0b100:
                self.rotate_aeoi = True
            elif op == 0b000:
                self.rotate_aeoi = False

    def read(self, a0):
        if self.poll:
            self.poll = False
            n = self.ack()
            return 0 if n is None else 0x80 | n
        if a0 == 1:
            return self.imr
        return self.isr if self.read_isr else self.irr

    def state(self):
        return bytes([self.irr, self.isr, self.imr, self.base, self.icw3, self.icw4,
                      self.init_step, self.lowest, self.elcr, self.lines,
                      self.needs_icw4 | self.single << 1 | self.ltim << 2 | self.read_isr << 3
                      | self.poll << 4 | self.special_mask << 5 | self.auto_eoi << 6
                      | self.rotate_aeoi << 7])


class PicPair:
    """Master and slave 8259A cascaded on IR2, with the ELCR, as on every PC.

    ``on_intr(level)`` is called when the master's INT output changes; the
    interrupt router hands it to the boot CPU's LAPIC (LINT0) or straight to the CPU.
    """

    PORTS = ((0x20, 2), (0xA0, 2), (0x4D0, 2))

    def __init__(self, elcr=0):
        self.master = Pic8259("master", True)
        self.slave = Pic8259("slave", False)
        self.master.elcr, self.slave.elcr = elcr & 0xF8, (elcr >> 8) & 0xDE
        self.on_intr = None
        self.intr = False

    def attach(self, ports):
        ports.claim(0x20, 2, self, "pic-master")
        ports.claim(0xA0, 2, self, "pic-slave")
        ports.claim(0x4D0, 2, self, "elcr")

    def set_irq(self, irq, level):
        """Drive ISA IRQ input ``irq`` (0-15)."""
        if irq >= 8:
            self.slave.set_line(irq - 8, level)
        elif irq != 2:
            self.master.set_line(irq, level)
        self._update()

    def _update(self):
        self.master.set_line(2, self.slave.highest_request() is not None)
        intr = self.master.highest_request() is not None
        if intr != self.intr:
            self.intr = intr
            if self.on_intr is not None:
                self.on_intr(intr)

    def acknowledge(self):
        """The INTA cycle: the vector the PIC puts on the bus (spurious: base+7)."""
        n = self.master.ack()
        if n is None:
            v = self.master.base | 7
        elif n == 2 and not self.master.single:
            m = self.slave.ack()
            v = (self.slave.base | 7) if m is None else self.slave.base + m
        else:
            v = self.master.base + n
        self._update()
        return v

    def io_read(self, port, size):
        if port in (0x4D0, 0x4D1):
            v = self.master.elcr if port == 0x4D0 else self.slave.elcr
            if size == 2:
                v = self.master.elcr | self.slave.elcr << 8
            return v
        chip = self.master if port < 0xA0 else self.slave
        v = chip.read(port & 1)
        self._update()
        return v

    def io_write(self, port, size, value):
        if port in (0x4D0, 0x4D1):
            if size == 2:
                self.master.elcr, self.slave.elcr = value & 0xF8, (value >> 8) & 0xDE
            elif port == 0x4D0:
                self.master.elcr = value & 0xF8     # IRQ0-2 are always edge
            else:
                self.slave.elcr = value & 0xDE      # IRQ8 and IRQ13 are always edge
            return
        chip = self.master if port < 0xA0 else self.slave
        chip.write(port & 1, value & 0xFF)
        self._update()

    def state(self):
        return self.master.state() + self.slave.state() + bytes([self.intr])
