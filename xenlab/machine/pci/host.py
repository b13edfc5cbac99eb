"""The PCI host bridge: buses, configuration mechanisms #1 and #2, ECAM, decoding.

Configuration mechanism #1 (PCI 3.0 §3.2.2.3.2): a dword write to CONFIG_ADDRESS
at 0xCF8 (bit 31 enable, bus 23:16, device 15:11, function 10:8, register 7:2)
selects a dword; CONFIG_DATA at 0xCFC-0xCFF reads or writes any byte, word or
dword inside it.  Only dword accesses to 0xCF8 reach CONFIG_ADDRESS.

Configuration mechanism #2 (PCI 2.0 §3.6.4.1.2, dropped from PCI 2.2): the byte
Configuration Space Enable register at 0xCF8 (key bits 7:4, function bits 3:1,
special-cycle bit 0) and the Forward register at 0xCFA (bus number).  While the
key is non-zero, port 0xCdrr reaches register ``rr`` of device ``d`` (0-15) on
the forwarded bus; while it is zero, 0xC000-0xCFFF are ordinary I/O ports.

A bus number reaches a function the way type 1 cycles do: from the root bus,
through the bridge whose secondary..subordinate range holds it, so a bridge
whose bus numbers software reprograms moves its devices with it (PCI-to-PCI
Bridge Architecture Specification 1.2 §3.2.5.3-5).
"""

from __future__ import annotations

from ..mmio import MmioConflict
from ..ports import PortConflict
from . import config as C
from .decode import MmioDecoder

CONFIG_ADDRESS, CONFIG_DATA = 0xCF8, 0xCFC
CSE_REGISTER, FORWARD_REGISTER = 0xCF8, 0xCFA
MECH2_WINDOW = 0xC000


class PciBus:
    """One bus segment: a root bus (fixed number) or the secondary side of a bridge."""

    def __init__(self, number=0, bridge=None):
        self._number = number
        self.bridge = bridge               # PciFunction or None for a root bus
        self.slots: dict[tuple[int, int], C.PciFunction] = {}

    @property
    def number(self) -> int:
        return self.bridge.secondary if self.bridge is not None else self._number

    def functions(self):
        return [self.slots[k] for k in sorted(self.slots)]


class _BarAccess:
    """What the port and MMIO buses see of one decoding BAR."""

    def __init__(self, fn, bar):
        self.fn, self.bar = fn, bar

    def io_read(self, port, size):
        return self.fn.bar_read(self.bar.index, port - self.bar.decoded, size)

    def io_write(self, port, size, value):
        self.fn.bar_write(self.bar.index, port - self.bar.decoded, size, value)

    def mmio_read(self, offset, size):
        return self.fn.bar_read(self.bar.index, offset, size)

    def mmio_write(self, offset, size, value):
        self.fn.bar_write(self.bar.index, offset, size, value)


class _Mech2Window:
    """Ports 0xC000-0xCFFF while mechanism #2 is enabled."""

    def __init__(self, host):
        self.host = host

    def io_read(self, port, size):
        return self.host.mech2_read(port, size)

    def io_write(self, port, size, value):
        self.host.mech2_write(port, size, value)


class Ecam:
    """PCI Express enhanced configuration access (PCIe 3.0 §7.2.2) at the MCFG base."""

    def __init__(self, host, base, start_bus, end_bus):
        self.host, self.base, self.start_bus, self.end_bus = host, base, start_bus, end_bus

    @property
    def size(self):
        return (self.end_bus - self.start_bus + 1) << 20

    def _locate(self, offset):
        bus = self.start_bus + (offset >> 20)
        return self.host.find(bus, (offset >> 15) & 31, (offset >> 12) & 7), offset & 0xFFF

    def mmio_read(self, offset, size):
        fn, reg = self._locate(offset)
        return (1 << (8 * size)) - 1 if fn is None else fn.config_read(reg, size)

    def mmio_write(self, offset, size, value):
        fn, reg = self._locate(offset)
        if fn is not None:
            fn.config_write(reg, size, value)


class PciHost:
    """The host bridge: owns the buses, the config ports and BAR decoding.

    ``mechanisms`` lists the configuration mechanisms the chipset implements (the
    PCI BIOS reports them in AL).  ``on_intx(function, level)`` is called when a
    function drives its INTx# pin; the interrupt router sets it.
    """

    def __init__(self, ports, mmio, *, mechanisms=(1,), addr_bits=40):
        self.ports, self.mmio = ports, mmio
        self.mechanisms = tuple(sorted(set(mechanisms)))
        self.addr_bits = addr_bits
        self.roots: list[tuple[int, int, PciBus]] = []      # (first bus, last bus, bus)
        self.decoder = MmioDecoder(mmio)
        self.config_address = 0
        self.cse = 0
        self.forward = 0
        self.mech_control = 0
        self._mech2_saved = None
        self._mech2_window = _Mech2Window(self)
        self.ecam: Ecam | None = None
        self.on_intx = None
        if 1 in self.mechanisms or 2 in self.mechanisms:
            ports.claim(CONFIG_ADDRESS, 8, self, "pci-config")

    # -- topology -------------------------------------------------------------------
    def add_root_bus(self, first: int, last: int = None) -> PciBus:
        bus = PciBus(first)
        self.roots.append((first, first if last is None else last, bus))
        self.roots.sort(key=lambda r: r[0])
        return bus

    def attach(self, bus: PciBus, dev: int, fn: int, function: C.PciFunction):
        if not (0 <= dev < 32 and 0 <= fn < 8):
            raise ValueError(f"device {dev} function {fn}: devices are 0-31, functions 0-7")
        if (dev, fn) in bus.slots:
            raise ValueError(f"bus {bus.number:02x}: slot {dev:02x}.{fn} is already taken")
        bus.slots[(dev, fn)] = function
        function.bus, function.slot, function.host = bus, (dev, fn), self
        if function.is_bridge:
            function.child = PciBus(bridge=function)
        # fn 0's header type says whether the device has more functions
        zero = bus.slots.get((dev, 0))
        if zero is not None and any(f > 0 for d, f in bus.slots if d == dev):
            zero.cfg[C.HEADER_TYPE] |= C.HEADER_MULTIFUNCTION
        return function

    def find(self, bus: int, dev: int, fn: int) -> C.PciFunction | None:
        """The function a type 0/1 configuration cycle to bus/dev/fn reaches, or None."""
        for first, last, root in self.roots:
            if first <= bus <= last:
                break
        else:
            return None
        cur = root
        for _ in range(256):
            if cur.number == bus:
                return cur.slots.get((dev, fn))
            for f in cur.functions():
                if f.is_bridge and f.secondary <= bus <= f.subordinate and f.secondary > cur.number:
                    cur = f.child
                    break
            else:
                return None
        return None

    def walk(self):
        """Every reachable function, depth first in bus order (what a scan finds)."""
        out = []

        def visit(bus, seen):
            for f in bus.functions():
                out.append(f)
                if f.is_bridge and f.child is not None and f.secondary not in seen \
                        and f.secondary > bus.number:
                    seen.add(f.secondary)
                    visit(f.child, seen)
        for _, _, root in self.roots:
            visit(root, {root.number})
        return out

    def last_bus(self) -> int:
        n = 0
        for f in self.walk():
            n = max(n, f.bus.number, f.subordinate if f.is_bridge else 0)
        return n

    # -- mechanism #1 and #2 ports ----------------------------------------------------
    def io_read(self, port, size):
        if port == CONFIG_ADDRESS and size == 4 and 1 in self.mechanisms:
            return self.config_address
        if port >= CONFIG_DATA and 1 in self.mechanisms:
            if not self.config_address & 0x80000000:
                return (1 << (8 * size)) - 1
            return self._mech1(port, size, None)
        if 2 in self.mechanisms and size == 1:
            if port == CSE_REGISTER:
                return self.cse
            if port == FORWARD_REGISTER:
                return self.forward
        if port == 0xCFB and size == 1:
            return self.mech_control
        return (1 << (8 * size)) - 1

    def io_write(self, port, size, value):
        if port == CONFIG_ADDRESS and size == 4 and 1 in self.mechanisms:
            self.config_address = value & 0x80FFFFFC
            return
        if port >= CONFIG_DATA and 1 in self.mechanisms:
            if self.config_address & 0x80000000:
                self._mech1(port, size, value)
            return
        if 2 in self.mechanisms and size == 1:
            if port == CSE_REGISTER:
                self._set_cse(value)
                return
            if port == FORWARD_REGISTER:
                self.forward = value & 0xFF
                return
        if port == 0xCFB and size == 1:
            self.mech_control = value & 0x01        # PIIX-style mechanism control (latched only)

    def _mech1(self, port, size, value):
        a = self.config_address
        bus, dev, fn = (a >> 16) & 0xFF, (a >> 11) & 0x1F, (a >> 8) & 7
        reg = (a & 0xFC) + (port - CONFIG_DATA)
        f = self.find(bus, dev, fn)
        if value is None:
            return (1 << (8 * size)) - 1 if f is None else f.config_read(reg, size)
        if f is not None:
            f.config_write(reg, size, value)

    def _set_cse(self, value):
        was_on = self.cse & 0xF0
        self.cse = value & 0xFF
        on = self.cse & 0xF0
        if on and not was_on:
            self._mech2_saved = self.ports.overlay(MECH2_WINDOW, 0x1000, self._mech2_window,
                                                   "pci-config-mech2")
        elif was_on and not on and self._mech2_saved is not None:
            self.ports.remove_overlay(MECH2_WINDOW, self._mech2_saved)
            self._mech2_saved = None

    def _mech2_target(self, port):
        dev, reg = (port >> 8) & 0xF, port & 0xFF
        fn = (self.cse >> 1) & 7
        return self.find(self.forward, dev, fn), reg

    def mech2_read(self, port, size):
        f, reg = self._mech2_target(port)
        return (1 << (8 * size)) - 1 if f is None else f.config_read(reg, size)

    def mech2_write(self, port, size, value):
        f, reg = self._mech2_target(port)
        if f is not None:
            f.config_write(reg, size, value)

    # -- ECAM ---------------------------------------------------------------------------
    def enable_ecam(self, base, start_bus=0, end_bus=255):
        self.ecam = Ecam(self, base, start_bus, end_bus)
        self.mmio.map(base, self.ecam.size, self.ecam, "pci-ecam")

    # -- decoding -----------------------------------------------------------------------
    def redecode(self, fn: C.PciFunction):
        """Bring the buses in line with ``fn``'s command register and BARs."""
        cmd = fn.command
        for bar in fn.bars:
            if bar is None:
                continue
            want = None
            enabled = cmd & (C.CMD_IO if bar.is_io else C.CMD_MEMORY)
            if enabled and not fn.bar_sizing(bar):
                base = fn.bar_value(bar)
                limit = 1 << 16 if bar.is_io else 1 << self.addr_bits
                if base != 0 and base + bar.size <= limit:
                    want = base
            if want == bar.decoded:
                continue
            self._undecode(bar)
            if want is not None:
                self._decode(fn, bar, want)

    def _undecode(self, bar):
        if bar.window is None:
            return
        if bar.is_io:
            self.ports.release(bar.window)
        else:
            self.decoder.remove(bar.window)
        bar.window, bar.decoded = None, None

    def _decode(self, fn, bar, base):
        name = f"{fn.bdf} BAR{bar.index}"
        acc = bar.access = bar.access or _BarAccess(fn, bar)
        try:
            if bar.is_io:
                bar.decoded = base
                self.ports.claim(base, bar.size, acc, name)
                bar.window = acc
            else:
                bar.window = self.decoder.add(base, bar.size, acc, name)
                bar.decoded = base
            bar.note = ""
        except (PortConflict, MmioConflict, ValueError) as e:
            bar.window, bar.decoded = None, None
            bar.note = f"not decoding: {e}"

    # -- interrupts ---------------------------------------------------------------------
    def intx_changed(self, fn):
        if self.on_intx is not None:
            self.on_intx(fn, fn.intx_asserted and not fn.command & C.CMD_INTX_DISABLE)

    def state(self) -> bytes:
        head = bytes([self.cse, self.forward, self.mech_control]) + \
            self.config_address.to_bytes(4, "little")
        return head + b"".join(f.state() for f in self.walk())
