"""The ISA nexus and its legacy leaf drivers.

Which legacy devices exist?  On i86pc the isa nexus asks the firmware: the
BIOS data area lists the COM and LPT ports and has the floppy bit of the
equipment word; the FADT's IAPC_BOOT_ARCH says whether there is an 8042 --
read through ``psm_map_phys_new``.  The i86xen port of the nexus has no BIOS
to ask and creates nodes for the standard PC set; each leaf driver must find
out for itself whether its device is there (the ``isa_probe`` hook, stage
``multiuser``).  A leaf driver that assumes its device: an absent 8042 reads
0xFF for ever and ``kb8042`` waits for a keyboard acknowledge that never
comes; ``asy``, ``fdc`` and ``ecpp`` attach to nothing -- or to a port Xen
keeps (the UART at 0x3F8 is Xen's console; dom0 reads 0xFF there).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from ..kcpu import KernelHang

BDA = 0x400
KB_RETRIES = 400


@dataclass
class IsaDevice:
    """An ISA device node: what the nexus believes and how to look at it."""

    name: str            # node name: i8042, asy, ecpp, fdc
    driver: str          # kb8042, asy, ecpp, fdc
    port: int            # base I/O port
    nports: int
    irq: int
    status_port: int     # a register that reads 0xFF when nobody decodes the port

    @property
    def unit(self) -> str:
        return f"1,{self.port:x}"


STANDARD = (
    IsaDevice("i8042", "kb8042", 0x60, 5, 1, 0x64),
    IsaDevice("asy", "asy", 0x3F8, 8, 4, 0x3FD),
    IsaDevice("asy", "asy", 0x2F8, 8, 3, 0x2FD),
    IsaDevice("ecpp", "ecpp", 0x378, 3, 7, 0x379),
    IsaDevice("fdc", "fdc", 0x3F0, 8, 6, 0x3F4),
)


def i86pc_enumerate(k) -> list[IsaDevice]:
    """The devices the BIOS data area and the FADT report (i86pc)."""
    raw = k.phys_read(BDA, 0x12)
    com = struct.unpack_from("<4H", raw, 0)
    lpt = struct.unpack_from("<3H", raw, 8)
    equip = struct.unpack_from("<H", raw, 0x10)[0]
    out = []
    acpi = k.psm.i86pc_acpi() if hasattr(k, "psm") else None
    if acpi is not None and acpi.boot_arch & 0x2:
        out.append(STANDARD[0])
    for p in com:
        if p:
            irq = 4 if p in (0x3F8, 0x3E8) else 3
            out.append(IsaDevice("asy", "asy", p, 8, irq, p + 5))
    for p in lpt:
        if p:
            out.append(IsaDevice("ecpp", "ecpp", p, 3, 7, p + 1))
    if equip & 1:
        out.append(STANDARD[4])
    return out


class Io:
    """Port I/O for a probe (the kernel's IN/OUT, through the vCPU)."""

    def __init__(self, k):
        self.k = k

    def inb(self, port: int) -> int:
        return self.k.inb(port)

    def outb(self, port: int, value: int):
        self.k.outb(port, value)


def attach_isa(k, dev: IsaDevice) -> str:
    """The leaf driver's attach, as 2007's drivers did it: a line for the
    console, or raise (a hang is a KernelHang)."""
    if dev.driver == "kb8042":
        k.outb(0x60, 0xFF)                          # keyboard reset
        for _ in range(KB_RETRIES):
            if k.inb(0x64) & 0x01:                  # output buffer full
                b = k.inb(0x60)
                if b == 0xFA:                       # ACK
                    return "kb8042 at i8042: keyboard"
        raise KernelHang("no progress: kb8042: the keyboard never acknowledged its reset "
                         "(the 8042 status register reads 0xff: no controller answers)")
    if dev.driver == "asy":
        k.outb(dev.port + 3, 0x03)
        k.outb(dev.port + 2, 0x07)
        k.outb(dev.port + 1, 0x01)
        return f"asy at isa: port {dev.port:#x} irq {dev.irq}"
    if dev.driver == "fdc":
        k.outb(dev.port + 2, 0x08)
        k.outb(dev.port + 2, 0x0C)                  # out of reset
        k.outb(dev.port + 5, 0x10)                  # VERSION
        v = k.inb(dev.port + 5)
        return f"fdc at isa: port {dev.port:#x} irq {dev.irq}, controller version {v:#x}"
    if dev.driver == "ecpp":
        k.outb(dev.port, 0x55)
        return f"ecpp at isa: port {dev.port:#x} irq {dev.irq}"
    return f"{dev.driver} at isa: port {dev.port:#x}"


def responds(k, dev: IsaDevice) -> bool:
    """devfsadm's sanity look at an attached device: its status register is
    not the all-ones of an undecoded port."""
    return k.inb(dev.status_port) != 0xFF
