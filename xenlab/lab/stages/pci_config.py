"""Stage 4, ``pci_config``: mlsetup -> pci_cfgspace_init -> the PCI BIOS.

On i86pc the kernel asks the PCI BIOS (function B101h, PCI_BIOS_PRESENT,
through the BIOS32 entry point the boot code found) which configuration
mechanism the chipset supports.  A PV domain has no BIOS: Xen offers no BIOS
calls, the i86xen boot code finds no entry point, and the call goes through a
NULL pointer.  The story's fix: default to PCI_MECHANISM_1 on i86xen dom0
(illumos ``pci_check`` under ``__xpv``).
"""

from __future__ import annotations

from ...kernel.intel.startup import PCI_MECHANISM_1, PCI_MECHANISM_2, PCI_MECHANISM_NONE
from ..hooks import hook


def _valid(mech):
    if not isinstance(mech, int) or mech not in (PCI_MECHANISM_NONE, PCI_MECHANISM_1,
                                                 PCI_MECHANISM_2):
        return "expected PCI_MECHANISM_1 (1), PCI_MECHANISM_2 (2) or PCI_MECHANISM_NONE (0)"
    return None


def pci_config_mechanism_fixed(platform, pci_bios_probe):
    if platform == "i86xen":
        return PCI_MECHANISM_1
    return pci_bios_probe()


@hook("pci_config_mechanism", stage="pci_config", reference=pci_config_mechanism_fixed,
      validate=_valid)
def pci_config_mechanism(platform, pci_bios_probe):
    """How pci_cfgspace_init reaches PCI configuration space.

    ``platform`` is ``"i86pc"`` or ``"i86xen"``; ``pci_bios_probe()`` asks the
    PCI BIOS (a BIOS call) and returns the mechanism it reports.  Return
    PCI_MECHANISM_1 (ports 0xCF8/0xCFC), PCI_MECHANISM_2 or PCI_MECHANISM_NONE.
    2007 default: ask the BIOS, as i86pc does.
    """
    return pci_bios_probe()


__all__ = ["pci_config_mechanism", "pci_config_mechanism_fixed", "PCI_MECHANISM_1",
           "PCI_MECHANISM_2", "PCI_MECHANISM_NONE"]
