"""Stage 12, ``multiuser``: legacy ISA devices, hard-coded physical addresses.

"I had to have isa fail to attach ... The ISA leaf drivers assume the device
is present and bad things happen.  There were a couple places in the kernel
where they have hard coded physical address which it tries to map in (e.g.
psm_map_phys_new; the lower 1M of memory, used for BIOS tables, etc.; and
xsvc used by Xorg/Xsun)."

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


__all__ = ["psm_map_phys_pfn", "psm_map_phys_pfn_fixed", "PFN_IS_FOREIGN_MFN"]
