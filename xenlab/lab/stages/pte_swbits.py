"""Stage 7, ``pte_swbits``: the PTE software bits against a debug Xen.

The HAT marks how it made each mapping in the PTE's three software (AVL)
bits, 9-11.  The 2007 code used one bit per mark: ``PT_NOSYNC`` 0x200,
``PT_NOCONSIST`` 0x400, ``PT_FOREIGN`` 0x800.  Xen's *debug* build claims
bit 11 itself (``_PAGE_GNTTAB``, to catch grant mappings being unmapped
implicitly) and refuses any guest L1 entry with it set: every foreign
(device) mapping fails with -EINVAL ("mm.c: Bad L1 flags 800") and the
drivers cannot attach.

Joe's fix (illumos ``mach_mmu.h``): the software bits hold a *value*, not
flags -- ``PT_NOSYNC`` 0x200, ``PT_NOCONSIST`` 0x400 and ``PT_FOREIGN``
0x600 -- so bit 11 is never set by the kernel alone; a foreign entry is one
whose field is at least ``PT_FOREIGN`` (``(pte & PT_SOFTWARE) >= PT_FOREIGN``,
which also accepts 0x800, the bit Xen sets on grant mappings).  Testing the
field with ``&`` after the change would take every ``PT_NOCONSIST`` kernel
mapping for a foreign one, and the kernel would free pages it does not own.
"""

from __future__ import annotations

from ...kernel.intel.hat import PT_SOFTWARE
from ..hooks import hook

PT_FOREIGN_2007 = 0x800


def _valid_bits(sw):
    if not isinstance(sw, dict) or set(sw) != {"nosync", "noconsist", "foreign"}:
        return "expected a dict with keys 'nosync', 'noconsist', 'foreign'"
    for k, v in sw.items():
        if not isinstance(v, int) or v <= 0 or v & ~PT_SOFTWARE:
            return f"{k}={v!r}: each value must be non-zero and within PT_SOFTWARE (0xe00)"
    if len(set(sw.values())) != 3:
        return "the three marks must have different values"
    return None


def _valid_bool(x):
    if not isinstance(x, (bool, int)):
        return "expected True or False"
    return None


def pte_software_bits_fixed():
    return {"nosync": 0x200, "noconsist": 0x400, "foreign": 0x600}


def pte_is_foreign_fixed(pte):
    return (pte & PT_SOFTWARE) >= 0x600


@hook("pte_software_bits", stage="pte_swbits", reference=pte_software_bits_fixed,
      validate=_valid_bits)
def pte_software_bits():
    """How the HAT encodes its marks in PTE bits 9-11 (``PT_SOFTWARE``, 0xe00).

    Return ``{"nosync": ..., "noconsist": ..., "foreign": ...}``.  A mapping
    carries one of them: ``foreign`` on device (foreign) mappings,
    ``noconsist`` on kernel memory, ``nosync`` on DMA memory.  2007 default:
    one bit each, 0x200, 0x400, 0x800.
    """
    return {"nosync": 0x200, "noconsist": 0x400, "foreign": PT_FOREIGN_2007}


@hook("pte_is_foreign", stage="pte_swbits", reference=pte_is_foreign_fixed,
      validate=_valid_bool)
def pte_is_foreign(pte):
    """Does the PTE ``pte`` (as read back from the page table) map a foreign
    frame?  (``pte2pfn`` then gives ``mfn | PFN_IS_FOREIGN_MFN`` instead of
    looking the MFN up in the M2P table.)  2007 default: ``pte & 0x800``.
    """
    return bool(pte & PT_FOREIGN_2007)


__all__ = ["pte_software_bits", "pte_software_bits_fixed", "pte_is_foreign",
           "pte_is_foreign_fixed", "PT_SOFTWARE"]
