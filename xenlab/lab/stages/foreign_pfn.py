"""Stage 6, ``foreign_pfn``: drivers map their device registers.

A driver calls ``ddi_regs_map_setup`` on a register set: a physical address
range read from its PCI BAR.  The root nexus turns the address into a page
frame number and asks the HAT to map it (``hat_devload``).  On i86pc a
physical page *is* the frame.  Under Xen the PTE holds a machine frame, and
the HAT translates every PFN through ``mfn_list`` -- dom0's pseudo-physical
to machine table.  A BAR's address is a machine address that is no page of
dom0: the 2007 code treated it as a PFN, so the HAT mapped whatever RAM page
of dom0 had that number (or, on a machine smaller than the BAR address, read
past the end of ``mfn_list``), and the driver read RAM instead of registers.

The fix (Joe's infrastructure, used by rootnex): hand the HAT a *foreign
PFN* -- the MFN tagged with ``PFN_IS_FOREIGN_MFN`` (bit 51, illumos
hat_pte.h) -- which ``pfn_to_mfn`` never looks up; the HAT maps the raw MFN,
marks the PTE foreign in its software bits, and asks Xen to validate the
entry with ``DOMID_IO`` as the foreign domain.  This stage runs on a release
build of Xen (the story: "I commented out that feature and rebuilt Xen").
"""

from __future__ import annotations

from ...kernel.intel.hat import PFN_IS_FOREIGN_MFN
from ..hooks import hook


def _valid(pfn):
    if not isinstance(pfn, int) or isinstance(pfn, bool) or pfn < 0 or pfn >= 1 << 52:
        return "expected a page frame number (an int, optionally with PFN_IS_FOREIGN_MFN)"
    return None


def rootnex_reg_pfn_fixed(platform, paddr):
    if platform == "i86xen":
        return (paddr >> 12) | PFN_IS_FOREIGN_MFN
    return paddr >> 12


@hook("rootnex_reg_pfn", stage="foreign_pfn", reference=rootnex_reg_pfn_fixed, validate=_valid)
def rootnex_reg_pfn(platform, paddr):
    """The page frame number rootnex gives ``hat_devload`` for device
    registers at physical address ``paddr`` (page aligned, read from a BAR).

    ``platform`` is ``"i86pc"`` or ``"i86xen"``.  Return an int: a PFN the HAT
    translates with ``pfn_to_mfn`` (under Xen: ``mfn_list[pfn]``), or a
    *foreign* PFN ``mfn | PFN_IS_FOREIGN_MFN`` that carries the machine frame
    itself.  2007 default: ``paddr >> 12`` (mmu_btop), as on i86pc.
    """
    return paddr >> 12


__all__ = ["rootnex_reg_pfn", "rootnex_reg_pfn_fixed", "PFN_IS_FOREIGN_MFN"]
