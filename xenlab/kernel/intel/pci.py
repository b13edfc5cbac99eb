"""PCI enumeration (illumos ``pci_setup_tree``/``pci_autoconfig`` in spirit).

``pci_check`` (startup, stage ``iopl``) made the first configuration cycles on
the root bus and the buses behind bridges.  The device tree needs the full
picture: every bus number 0..``PCI_MAX_NBUS`` (other root buses exist: the
R630 has buses 7f, 80 and ff), every function of multi-function devices, the
header, class, interrupt pin and line, and each BAR's base and size (sized the
standard way: write all ones, read the mask back, restore).  Every access is a
configuration cycle through the mechanism ``pci_cfgspace_init`` chose (port
I/O: under Xen each IN/OUT is a trap into the hypervisor).
"""

from __future__ import annotations

from dataclasses import dataclass, field

PCI_MAX_NBUS = 256                 # illumos pci_max_nbus: 0xFE buses, scanned 0..0xFF
VENDOR_NONE = (0xFFFFFFFF, 0x00000000, 0xFFFF0000, 0x0000FFFF)
PCI_CONF_COMM, PCI_CONF_HEADER, PCI_CONF_BASE0 = 0x04, 0x0E, 0x10
PCI_CONF_ILINE, PCI_CONF_IPIN = 0x3C, 0x3D
PCI_BCNF_SECBUS = 0x19


@dataclass
class Reg:
    """One BAR as the enumeration found it (a "reg" property entry)."""

    index: int
    kind: str          # "io", "mem32", "mem64"
    base: int
    size: int
    prefetch: bool = False

    @property
    def is_mem(self) -> bool:
        return self.kind != "io"


@dataclass
class PciFunc:
    bus: int
    dev: int
    func: int
    vendor: int
    device: int
    class_code: int    # 24 bits: base class, subclass, programming interface
    header: int
    pin: int = 0       # 1 = INTA# ... 4 = INTD#, 0 = none
    line: int = 0xFF   # interrupt line register (the PIC IRQ firmware assigned)
    secondary: int | None = None
    regs: list = field(default_factory=list)

    @property
    def bdf(self) -> str:
        return f"{self.bus:02x}:{self.dev:02x}.{self.func}"

    @property
    def base_class(self) -> int:
        return self.class_code >> 16

    @property
    def subclass(self) -> int:
        return (self.class_code >> 8) & 0xFF

    @property
    def progif(self) -> int:
        return self.class_code & 0xFF

    def mem_regs(self) -> list:
        return [r for r in self.regs if r.is_mem]

    def io_regs(self) -> list:
        return [r for r in self.regs if not r.is_mem]


def size_bars(k, bus: int, dev: int, func: int, nbars: int) -> list:
    """Read and size the BARs of one function (PCI Local Bus 3.0 §6.2.5.1)."""
    out = []
    i = 0
    while i < nbars:
        off = PCI_CONF_BASE0 + 4 * i
        orig = k.pci_getl(bus, dev, func, off)
        k.pci_putl(bus, dev, func, off, 0xFFFFFFFF)
        mask = k.pci_getl(bus, dev, func, off)
        k.pci_putl(bus, dev, func, off, orig)
        if mask in (0, 0xFFFFFFFF) and orig == 0:
            i += 1
            continue
        if orig & 1:                                    # I/O space
            m = mask & 0xFFFFFFFC & 0xFFFF
            size = (~m & 0xFFFF) + 1 if m else 0
            if size:
                out.append(Reg(i, "io", orig & 0xFFFC, size))
            i += 1
            continue
        kind = "mem64" if (orig >> 1) & 3 == 2 else "mem32"
        base, m = orig & 0xFFFFFFF0, mask & 0xFFFFFFF0
        if kind == "mem64" and i + 1 < nbars:
            hi = k.pci_getl(bus, dev, func, off + 4)
            k.pci_putl(bus, dev, func, off + 4, 0xFFFFFFFF)
            mhi = k.pci_getl(bus, dev, func, off + 4)
            k.pci_putl(bus, dev, func, off + 4, hi)
            base |= hi << 32
            full = (mhi << 32) | m
            size = ((~full) & ((1 << 64) - 1)) + 1 if full else 0
            i += 2
        else:
            size = ((~m) & 0xFFFFFFFF) + 1 if m else 0
            i += 1
        if size and base:
            out.append(Reg(i - (2 if kind == "mem64" else 1), kind, base, size,
                           bool(orig & 8)))
    return out


def pci_setup_tree(k) -> list[PciFunc]:
    """Every function on every bus, in bus/device/function order."""
    kc = k.kcpu
    out_va = k.sym("hcall_args")
    found = []
    for bus in range(PCI_MAX_NBUS):
        kc.call("pci_probe_bus", bus, out_va, budget=20_000)
        ids = kc.read(out_va, 128)
        for dev in range(32):
            vd0 = int.from_bytes(ids[4 * dev:4 * dev + 4], "little")
            if vd0 in VENDOR_NONE:
                continue
            hdr = k.pci_getb(bus, dev, 0, PCI_CONF_HEADER)
            nfunc = 8 if hdr & 0x80 else 1
            for fn in range(nfunc):
                vd = vd0 if fn == 0 else k.pci_getl(bus, dev, fn, 0)
                if vd in VENDOR_NONE:
                    continue
                cls = k.pci_getl(bus, dev, fn, 8) >> 8
                htype = (hdr if fn == 0 else k.pci_getb(bus, dev, fn, PCI_CONF_HEADER)) & 0x7F
                irq = k.pci_getl(bus, dev, fn, PCI_CONF_ILINE)
                f = PciFunc(bus, dev, fn, vd & 0xFFFF, vd >> 16, cls, htype,
                            pin=(irq >> 8) & 0xFF, line=irq & 0xFF)
                f.regs = size_bars(k, bus, dev, fn, 6 if htype == 0 else 2)
                if htype == 1:
                    f.secondary = k.pci_getb(bus, dev, fn, PCI_BCNF_SECBUS)
                found.append(f)
    return found
