"""A PCI function's configuration space: the header, BARs, bridges, capabilities.

Layouts are the PCI Local Bus Specification 3.0, §6.1 (type 0 header, Figure
6-1), §6.2.5 (base address registers and how software sizes them), the
PCI-to-PCI Bridge Architecture Specification 1.2, §3.2 (type 1 header), and
§6.7 / §6.8 (capability lists, MSI).  Every byte has a write mask, so a write
of all ones to a BAR reads back the size mask exactly as hardware does, and
read-only fields stay read-only.
"""

from __future__ import annotations

import numpy as np

# -- type 0/1 common header offsets (PCI 3.0 §6.1) ------------------------------
VENDOR_ID, DEVICE_ID, COMMAND, STATUS = 0x00, 0x02, 0x04, 0x06
REVISION_ID, CLASS_PROG, CLASS_SUB, CLASS_BASE = 0x08, 0x09, 0x0A, 0x0B
CACHE_LINE, LATENCY, HEADER_TYPE, BIST = 0x0C, 0x0D, 0x0E, 0x0F
BAR0 = 0x10
SUBSYS_VENDOR, SUBSYS_ID = 0x2C, 0x2E
ROM_TYPE0 = 0x30
CAP_PTR = 0x34
INTERRUPT_LINE, INTERRUPT_PIN = 0x3C, 0x3D
# -- type 1 (bridge) header (PCI-to-PCI Bridge spec 1.2 §3.2) -----------------
PRIMARY_BUS, SECONDARY_BUS, SUBORDINATE_BUS, SEC_LATENCY = 0x18, 0x19, 0x1A, 0x1B
IO_BASE, IO_LIMIT, SEC_STATUS = 0x1C, 0x1D, 0x1E
MEM_BASE, MEM_LIMIT, PREF_BASE, PREF_LIMIT = 0x20, 0x22, 0x24, 0x26
PREF_BASE_UPPER, PREF_LIMIT_UPPER, IO_BASE_UPPER, IO_LIMIT_UPPER = 0x28, 0x2C, 0x30, 0x32
ROM_TYPE1 = 0x38
BRIDGE_CONTROL = 0x3E

# COMMAND bits (PCI 3.0 §6.2.2)
CMD_IO, CMD_MEMORY, CMD_MASTER = 0x001, 0x002, 0x004
CMD_PARITY, CMD_SERR, CMD_INTX_DISABLE = 0x040, 0x100, 0x400
# STATUS bits (PCI 3.0 §6.2.3)
STS_INTERRUPT, STS_CAP_LIST = 0x0008, 0x0010
STS_W1C = 0xF900          # parity/abort/SERR bits are write-one-to-clear
# BAR low bits (PCI 3.0 §6.2.5.1)
BAR_IO, BAR_MEM_64, BAR_PREFETCH = 0x1, 0x4, 0x8
ROM_ENABLE = 0x1
# Capability IDs (PCI 3.0 Appendix H)
CAP_PM, CAP_MSI, CAP_PCIE, CAP_MSIX = 0x01, 0x05, 0x10, 0x11

HEADER_MULTIFUNCTION = 0x80
PINS = "-ABCD"

BAR_KINDS = ("io", "mem32", "mem64")


class Bar:
    """One base address register: its kind, size, and where it currently decodes."""

    __slots__ = ("index", "kind", "size", "prefetch", "decoded", "window", "note", "access")

    def __init__(self, index, kind, size, prefetch=False):
        self.index, self.kind, self.size, self.prefetch = index, kind, size, prefetch
        self.decoded: int | None = None       # base address while decoding, else None
        self.window = None                    # bus object while decoding
        self.note = ""                        # why it is not decoding, if it should
        self.access = None                    # the object the buses call (kept for reuse)

    @property
    def offset(self) -> int:
        return BAR0 + 4 * self.index

    @property
    def is_io(self) -> bool:
        return self.kind == "io"


class PciFunction:
    """Configuration space of one function, with real write masks.

    ``model`` (optional) answers accesses to the BARs: ``bar_read(index, offset, size)``
    and ``bar_write(index, offset, size, value)``.  Without a model a BAR is a plain
    register file whose first dword holds the device/vendor ID, so a driver that maps
    the right machine address can tell.
    """

    def __init__(self, vendor, device, class_code, *, revision=0, header=0,
                 subsystem=(0, 0), name=""):
        self.cfg = np.zeros(256, np.uint8)
        self.wmask = np.zeros(256, np.uint8)
        self.w1c = np.zeros(256, np.uint8)
        self.name = name
        self.bars: list[Bar | None] = [None] * (6 if header == 0 else 2)
        self.rom_size = 0
        self.caps: dict[int, int] = {}            # cap id -> offset
        self._cap_len: dict[int, int] = {}         # offset -> length
        self.bus = None                            # the PciBus it sits on
        self.slot = (0, 0)                         # (device, function)
        self.host = None
        self.model = None
        self.child = None                          # secondary PciBus, for bridges
        self.subtractive = False
        self.intx_asserted = False
        self._regs: dict[tuple[int, int], int] = {}
        self._put(VENDOR_ID, 2, vendor)
        self._put(DEVICE_ID, 2, device)
        self._put(REVISION_ID, 1, revision)
        self._put(CLASS_PROG, 3, class_code)
        self._put(HEADER_TYPE, 1, header)
        self._mask(COMMAND, 2, CMD_IO | CMD_MEMORY | CMD_MASTER | CMD_PARITY | CMD_SERR
                   | CMD_INTX_DISABLE)
        self.w1c[STATUS:STATUS + 2] = [STS_W1C & 0xFF, STS_W1C >> 8]
        self._mask(CACHE_LINE, 1, 0xFF)
        self._mask(LATENCY, 1, 0xFF)
        self._mask(INTERRUPT_LINE, 1, 0xFF)
        if header == 0:
            self._put(SUBSYS_VENDOR, 2, subsystem[0])
            self._put(SUBSYS_ID, 2, subsystem[1])
        else:
            for off in (PRIMARY_BUS, SECONDARY_BUS, SUBORDINATE_BUS, SEC_LATENCY):
                self._mask(off, 1, 0xFF)
            self._mask(IO_BASE, 1, 0xF0)
            self._mask(IO_LIMIT, 1, 0xF0)
            self._put(IO_BASE, 1, 0x01)                # 32-bit I/O addressing capable
            self._put(IO_LIMIT, 1, 0x01)
            self._mask(MEM_BASE, 2, 0xFFF0)
            self._mask(MEM_LIMIT, 2, 0xFFF0)
            self._mask(PREF_BASE, 2, 0xFFF0)
            self._mask(PREF_LIMIT, 2, 0xFFF0)
            self._put(PREF_BASE, 2, 0x1)               # 64-bit prefetchable capable
            self._put(PREF_LIMIT, 2, 0x1)
            self._mask(PREF_BASE_UPPER, 4, 0xFFFFFFFF)
            self._mask(PREF_LIMIT_UPPER, 4, 0xFFFFFFFF)
            self._mask(IO_BASE_UPPER, 2, 0xFFFF)
            self._mask(IO_LIMIT_UPPER, 2, 0xFFFF)
            self._mask(BRIDGE_CONTROL, 2, 0x0FFF)
            self.w1c[SEC_STATUS:SEC_STATUS + 2] = [STS_W1C & 0xFF, STS_W1C >> 8]

    # -- raw helpers ------------------------------------------------------------
    def _put(self, off, n, value):
        self.cfg[off:off + n] = np.frombuffer(int(value).to_bytes(n, "little"), np.uint8)

    def _mask(self, off, n, value):
        self.wmask[off:off + n] = np.frombuffer(int(value).to_bytes(n, "little"), np.uint8)

    def get(self, off, n) -> int:
        return int.from_bytes(self.cfg[off:off + n].tobytes(), "little")

    # -- identity -----------------------------------------------------------------
    @property
    def vendor(self): return self.get(VENDOR_ID, 2)
    @property
    def device(self): return self.get(DEVICE_ID, 2)
    @property
    def class_code(self): return self.get(CLASS_PROG, 3)
    @property
    def header(self): return self.cfg[HEADER_TYPE] & 0x7F
    @property
    def is_bridge(self): return self.header == 1
    @property
    def command(self): return self.get(COMMAND, 2)
    @property
    def pin(self): return int(self.cfg[INTERRUPT_PIN])

    @property
    def bdf(self) -> str:
        b = self.bus.number if self.bus is not None else 0
        return f"{b:02x}:{self.slot[0]:02x}.{self.slot[1]}"

    @property
    def secondary(self): return int(self.cfg[SECONDARY_BUS])
    @property
    def subordinate(self): return int(self.cfg[SUBORDINATE_BUS])

    # -- building ------------------------------------------------------------------
    def set_bar(self, index, kind, size, base=0, prefetch=False):
        """Declare BAR ``index`` (``io``, ``mem32`` or ``mem64``) of ``size`` bytes."""
        if kind not in BAR_KINDS:
            raise ValueError(f"BAR {index}: kind {kind!r} is not one of {BAR_KINDS}")
        if size < (4 if kind == "io" else 16) or size & (size - 1):
            raise ValueError(f"BAR {index}: size {size} is not a power of two >= "
                             f"{4 if kind == 'io' else 16}")
        if kind == "mem64" and index + 1 >= len(self.bars):
            raise ValueError(f"BAR {index}: a 64-bit BAR needs the next register too")
        bar = Bar(index, kind, size, prefetch)
        self.bars[index] = bar
        off = bar.offset
        if kind == "io":
            self._put(off, 4, (base & 0xFFFC) | BAR_IO)
            self._mask(off, 4, ~(size - 1) & 0xFFFC)
        else:
            low = (BAR_MEM_64 if kind == "mem64" else 0) | (BAR_PREFETCH if prefetch else 0)
            self._put(off, 4, (base & 0xFFFFFFF0) | low)
            self._mask(off, 4, ~(size - 1) & 0xFFFFFFF0)
            if kind == "mem64":
                self._put(off + 4, 4, base >> 32)
                self._mask(off + 4, 4, ~((size - 1) >> 32) & 0xFFFFFFFF)
        return bar

    def set_rom(self, size, base=0):
        """An expansion ROM BAR (not enabled: firmware leaves bit 0 clear)."""
        off = ROM_TYPE0 if self.header == 0 else ROM_TYPE1
        self.rom_size = size
        self._put(off, 4, base & 0xFFFFF800)
        self._mask(off, 4, (~(size - 1) & 0xFFFFF800) | ROM_ENABLE)

    def set_interrupt(self, pin: int, line: int = 0xFF):
        self._put(INTERRUPT_PIN, 1, pin)
        self._put(INTERRUPT_LINE, 1, line)

    def set_bridge(self, primary, secondary, subordinate, *, io=None, mem=None, pref=None,
                   subtractive=False):
        """Program a bridge's bus numbers and windows as firmware left them."""
        self._put(PRIMARY_BUS, 1, primary)
        self._put(SECONDARY_BUS, 1, secondary)
        self._put(SUBORDINATE_BUS, 1, subordinate)
        self.subtractive = subtractive
        if io:
            self._put(IO_BASE, 1, ((io[0] >> 8) & 0xF0) | 1)
            self._put(IO_LIMIT, 1, ((io[1] >> 8) & 0xF0) | 1)
            self._put(IO_BASE_UPPER, 2, io[0] >> 16)
            self._put(IO_LIMIT_UPPER, 2, io[1] >> 16)
        else:                                   # closed window: base > limit
            self._put(IO_BASE, 1, 0xF1)
            self._put(IO_LIMIT, 1, 0x01)
        if mem:
            self._put(MEM_BASE, 2, (mem[0] >> 16) & 0xFFF0)
            self._put(MEM_LIMIT, 2, (mem[1] >> 16) & 0xFFF0)
        else:
            self._put(MEM_BASE, 2, 0xFFF0)
            self._put(MEM_LIMIT, 2, 0x0000)
        if pref:
            self._put(PREF_BASE, 2, ((pref[0] >> 16) & 0xFFF0) | 1)
            self._put(PREF_LIMIT, 2, ((pref[1] >> 16) & 0xFFF0) | 1)
            self._put(PREF_BASE_UPPER, 4, pref[0] >> 32)
            self._put(PREF_LIMIT_UPPER, 4, pref[1] >> 32)
        else:
            self._put(PREF_BASE, 2, 0xFFF1)
            self._put(PREF_LIMIT, 2, 0x0001)

    def bridge_windows(self) -> dict:
        """The bridge's forwarding windows as (base, limit) or None when closed."""
        io_b = ((self.get(IO_BASE, 1) & 0xF0) << 8) | (self.get(IO_BASE_UPPER, 2) << 16)
        io_l = ((self.get(IO_LIMIT, 1) & 0xF0) << 8) | 0xFFF | (self.get(IO_LIMIT_UPPER, 2) << 16)
        m_b = (self.get(MEM_BASE, 2) & 0xFFF0) << 16
        m_l = ((self.get(MEM_LIMIT, 2) & 0xFFF0) << 16) | 0xFFFFF
        p_b = ((self.get(PREF_BASE, 2) & 0xFFF0) << 16) | (self.get(PREF_BASE_UPPER, 4) << 32)
        p_l = (((self.get(PREF_LIMIT, 2) & 0xFFF0) << 16) | 0xFFFFF
               | (self.get(PREF_LIMIT_UPPER, 4) << 32))
        w = lambda b, l: (b, l) if b <= l else None
        return {"io": w(io_b, io_l), "mem": w(m_b, m_l), "pref": w(p_b, p_l)}

    def add_capability(self, cap_id: int, length: int, body: bytes = b"",
                       wmask: bytes = b"") -> int:
        """Append a capability to the list (PCI 3.0 §6.7); returns its offset."""
        off = 0x40
        for o in self.caps.values():
            off = max(off, o + self._cap_len[o])
        off = (off + 3) & ~3
        if off + length > 256:
            raise ValueError(f"capability {cap_id:#x} does not fit in config space")
        self._cap_len[off] = length
        self._put(off, 1, cap_id)
        self.cfg[off + 2:off + 2 + len(body)] = np.frombuffer(body, np.uint8)
        self.wmask[off + 2:off + 2 + len(wmask)] = np.frombuffer(wmask, np.uint8)
        if not self.caps:
            self._put(CAP_PTR, 1, off)
        else:
            last = max(self.caps.values())
            self._put(last + 1, 1, off)
        self.caps[cap_id] = off
        self._put(STATUS, 2, self.get(STATUS, 2) | STS_CAP_LIST)
        return off

    # -- configuration accesses ----------------------------------------------------------
    def config_read(self, off: int, size: int) -> int:
        """Read 1, 2 or 4 bytes at ``off`` (wrapping accesses past 255 read as ones)."""
        if off >= 256:
            return 0                     # extended space (PCIe, via ECAM): no capabilities
        return int.from_bytes(self.cfg[off:off + size].tobytes(), "little")

    def config_write(self, off: int, size: int, value: int):
        """Write through the masks, then re-decode BARs if the write touched them."""
        if off >= 256:
            return
        data = np.frombuffer(int(value).to_bytes(size, "little"), np.uint8)
        sl = slice(off, off + size)
        wm, w1c, old = self.wmask[sl], self.w1c[sl], self.cfg[sl]
        new = (old & ~wm) | (data & wm)
        new &= ~(data & w1c)
        self.cfg[sl] = new
        if self.host is not None and (off < 0x40 and off + size > COMMAND):
            self.host.redecode(self)

    # -- BAR values -------------------------------------------------------------------
    def bar_value(self, bar: Bar) -> int:
        off = bar.offset
        if bar.is_io:
            return self.get(off, 4) & 0xFFFFFFFC
        v = self.get(off, 4) & 0xFFFFFFF0
        if bar.kind == "mem64":
            v |= self.get(off + 4, 4) << 32
        return v

    def bar_sizing(self, bar: Bar) -> bool:
        """True while software has written all ones (the BAR holds its size mask)."""
        off = bar.offset
        n = 8 if bar.kind == "mem64" else 4
        mask = int.from_bytes(self.wmask[off:off + n].tobytes(), "little")
        return (self.get(off, n) & mask) == mask

    # -- device side ----------------------------------------------------------------
    def bar_read(self, index, offset, size):
        if self.model is not None:
            return self.model.bar_read(index, offset, size)
        v = 0
        for i in range(size):
            b = self._regs.get((index, offset + i))
            if b is None:
                b = ((self.vendor | self.device << 16) >> (8 * (offset + i))) & 0xFF \
                    if offset + i < 4 else 0
            v |= b << (8 * i)
        return v

    def bar_write(self, index, offset, size, value):
        if self.model is not None:
            self.model.bar_write(index, offset, size, value)
            return
        if offset < 4:
            return                                   # the ID register is read-only
        for i in range(size):
            self._regs[(index, offset + i)] = (value >> (8 * i)) & 0xFF

    def set_intx(self, level: bool):
        """Drive INTx# (the pin in the header); delivery is the host's business."""
        level = bool(level)
        sts = self.get(STATUS, 2)
        self._put(STATUS, 2, (sts | STS_INTERRUPT) if level else (sts & ~STS_INTERRUPT))
        self.intx_asserted = level
        if self.host is not None:
            self.host.intx_changed(self)

    def state(self) -> bytes:
        regs = b"".join(k[0].to_bytes(1, "little") + k[1].to_bytes(4, "little") + bytes([v])
                        for k, v in sorted(self._regs.items()))
        return self.cfg.tobytes() + regs

    def __repr__(self):
        return (f"<PciFunction {self.bdf} [{self.vendor:04x}:{self.device:04x}] "
                f"class {self.class_code:06x} {self.name}>")
