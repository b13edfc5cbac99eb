"""Stage 12, ``multiuser``: legacy ISA devices, hard-coded physical addresses.

"I had to have isa fail to attach ... The ISA leaf drivers assume the device
is present and bad things happen.  There were a couple places in the kernel
where they have hard coded physical address which it tries to map in (e.g.
psm_map_phys_new; the lower 1M of memory, used for BIOS tables, etc.; and
xsvc used by Xorg/Xsun)."

* ``isa_probe``: each ISA leaf driver decides whether its device is there.
  2007: it is assumed.  On i86pc the isa nexus only creates nodes the BIOS
  reported, so that worked; the i86xen nexus has no BIOS to ask and offers the
  standard PC set: an absent 8042 hangs kb8042 (no keyboard acknowledge ever
  comes), and asy/fdc/ecpp attach to ports nobody decodes -- or that Xen keeps
  (0x3F8, Xen's console UART: dom0 reads 0xFF there).  devfsadm then finds
  devices that do not respond.  Fix: probe, and fail to attach on 0xFF.
* ``psm_map_phys_pfn``: ``psm_map_phys_new`` maps a hard-coded physical
  address (the BIOS data area, the BIOS ROM and its tables in the first MiB,
  the ACPI tables, the APICs).  2007: the address as a PFN of ours -- under
  Xen a page of dom0's RAM, so the tables are garbage.  Fix: the machine
  address, as a foreign PFN (DOMID_IO owns the first MiB and every non-RAM
  frame; dom0 may map them).
"""

from __future__ import annotations

from ...kernel.intel.hat import PFN_IS_FOREIGN_MFN
from ..hooks import hook


def _valid_pfn(pfn):
    if not isinstance(pfn, int) or isinstance(pfn, bool) or pfn < 0 or pfn >= 1 << 52:
        return "expected a page frame number (an int, optionally with PFN_IS_FOREIGN_MFN)"
    return None


def _valid_bool(x):
    if not isinstance(x, (bool, int)):
        return "expected True (the device is there) or False"
    return None


def isa_probe_fixed(dev, io):
    return io.inb(dev.status_port) != 0xFF


@hook("isa_probe", stage="multiuser", reference=isa_probe_fixed, validate=_valid_bool)
def isa_probe(dev, io):
    """Is the ISA device ``dev`` there?  ``dev``: ``.name``, ``.driver``,
    ``.port`` (base), ``.nports``, ``.irq``, ``.status_port`` (a register that
    reads 0xFF when no device decodes the address).  ``io.inb(port)``,
    ``io.outb(port, value)``: port I/O.  Return True to attach the driver.
    2007 default: True (the leaf drivers assume their device)."""
    return True


def psm_map_phys_pfn_fixed(platform, paddr):
    if platform == "i86xen":
        return (paddr >> 12) | PFN_IS_FOREIGN_MFN
    return paddr >> 12


@hook("psm_map_phys_pfn", stage="multiuser", reference=psm_map_phys_pfn_fixed,
      validate=_valid_pfn)
def psm_map_phys_pfn(platform, paddr):
    """The PFN ``psm_map_phys_new`` maps for the hard-coded physical address
    ``paddr`` (page aligned: BIOS data, ROM tables, ACPI tables, APICs).
    2007 default: ``paddr >> 12``, as on i86pc."""
    return paddr >> 12


__all__ = ["psm_map_phys_pfn", "psm_map_phys_pfn_fixed", "isa_probe", "isa_probe_fixed",
           "PFN_IS_FOREIGN_MFN"]
