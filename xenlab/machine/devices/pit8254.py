"""The 8254 programmable interval timer at 0x40-0x43 and system control port B (0x61).

Control word, counter latch and read-back commands, the six modes and the
LSB/MSB access sequences follow the Intel 82C54 datasheet (order no. 231244),
"Control Word Format" and "Read-Back Command".  The input clock is 1.193182 MHz.
Counter 0 drives ISA IRQ 0; counter 2 is gated by port 0x61 bit 0 and its output
reads back as port 0x61 bit 5 (how kernels calibrate the TSC).
"""

from __future__ import annotations

PIT_HZ = 1_193_182
NS_PER_TICK = 1e9 / PIT_HZ


class _Counter:
    def __init__(self, pit, index):
        self.pit, self.index = pit, index
        self.mode = 0
        self.rw = 3                 # 1 LSB, 2 MSB, 3 LSB then MSB
        self.bcd = False
        self.reload = 0x10000
        self.loaded_at = None       # ns at which counting started (None: not counting)
        self.write_lsb_next = True
        self.read_lsb_next = True
        self.pending_lsb = 0
        self.latched = None         # latched count (tuple of bytes to read)
        self.status_latched = None
        self.gate = index != 2
        self.null_count = True

    def ticks(self):
        if self.loaded_at is None:
            return 0
        return int((self.pit.clock.now - self.loaded_at) / NS_PER_TICK)

    def count(self):
        if self.loaded_at is None:
            return self.reload & 0xFFFF
        t = self.ticks()
        if self.mode in (2, 3):
            step = 2 if self.mode == 3 else 1
            return (self.reload - (t * step) % self.reload) % 0x10000 or self.reload & 0xFFFF
        return (self.reload - t) & 0xFFFF

    def output(self):
        t = self.ticks()
        if self.loaded_at is None:
            return self.mode != 0
        if self.mode == 0:
            return t >= self.reload
        if self.mode == 3:
            return (t % self.reload) < self.reload / 2
        return True

    def write_count(self, b):
        if self.rw == 1:
            self._load(b)
        elif self.rw == 2:
            self._load(b << 8)
        elif self.write_lsb_next:
            self.pending_lsb = b
            self.write_lsb_next = False
        else:
            self.write_lsb_next = True
            self._load(self.pending_lsb | b << 8)

    def _load(self, value):
        self.reload = value or 0x10000
        self.loaded_at = self.pit.clock.now if self.gate else None
        self.null_count = False

    def read(self):
        if self.status_latched is not None:
            v, self.status_latched = self.status_latched, None
            return v
        value = self.latched if self.latched is not None else self.count()
        if self.rw == 1:
            b = value & 0xFF
            self.latched = None
        elif self.rw == 2:
            b = value >> 8 & 0xFF
            self.latched = None
        elif self.read_lsb_next:
            b = value & 0xFF
            self.read_lsb_next = False
            if self.latched is None:
                self.latched = value          # keep MSB consistent with the LSB just read
        else:
            b = value >> 8 & 0xFF
            self.read_lsb_next = True
            self.latched = None
        return b

    def status(self):
        return (self.output() << 7 | self.null_count << 6 | self.rw << 4 | self.mode << 1
                | int(self.bcd))


class Pit8254:
    def __init__(self, clock, irq0=None):
        self.clock, self.irq0 = clock, irq0
        self.counters = [_Counter(self, i) for i in range(3)]
        self.port61 = 0
        self._next_irq_tick = None

    def attach(self, ports):
        ports.claim(0x40, 4, self, "pit")
        ports.claim(0x61, 1, self, "port61")

    def io_read(self, port, size):
        if port == 0x61:
            out2 = self.counters[2].output() if self.counters[2].gate else False
            return (self.port61 & 0x0F) | (0x20 if out2 else 0)
        if port == 0x43:
            return 0xFF                         # the control word register is write only
        return self.counters[port - 0x40].read()

    def io_write(self, port, size, value):
        value &= 0xFF
        if port == 0x61:
            c2 = self.counters[2]
            gate = bool(value & 1)
            if gate and not c2.gate:
                c2.gate = True
                c2.loaded_at = self.clock.now   # a rising gate restarts the count
            elif not gate:
                c2.gate = False
            self.port61 = value & 0x0F
            return
        if port < 0x43:
            self.counters[port - 0x40].write_count(value)
            return
        sc = value >> 6
        if sc == 3:                             # read-back
            for i in range(3):
                if value & (2 << i):
                    c = self.counters[i]
                    if not value & 0x20:
                        c.latched = c.count()
                    if not value & 0x10:
                        c.status_latched = c.status()
            return
        c = self.counters[sc]
        rw = (value >> 4) & 3
        if rw == 0:                             # counter latch command
            if c.latched is None:
                c.latched = c.count()
            return
        c.rw, c.mode, c.bcd = rw, (value >> 1) & 7, bool(value & 1)
        if c.mode > 5:
            c.mode -= 4                         # 6 and 7 alias modes 2 and 3
        c.write_lsb_next = c.read_lsb_next = True
        c.loaded_at, c.latched, c.null_count = None, None, True

    # -- IRQ 0 as a timer the clock drives ---------------------------------------------
    def next_deadline(self):
        c = self.counters[0]
        if c.loaded_at is None or self.irq0 is None:
            return None
        t = c.ticks()
        if c.mode in (2, 3):
            n = t // c.reload + 1
        elif c.mode == 0:
            if t >= c.reload:
                return None
            n = 1
        else:
            return None
        return c.loaded_at + n * c.reload * NS_PER_TICK + 1

    def expire(self, now):
        self.irq0.pulse()

    def state(self):
        return repr([(c.mode, c.rw, c.bcd, c.reload, c.loaded_at, c.write_lsb_next,
                      c.read_lsb_next, c.pending_lsb, c.latched, c.status_latched, c.gate)
                     for c in self.counters] + [self.port61]).encode()
