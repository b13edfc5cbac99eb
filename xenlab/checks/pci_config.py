"""Checks for the ``pci_config`` stage: the mechanism the kernel chose, read
from the kernel's memory through its page tables."""

from __future__ import annotations

from . import Finding, check
from ._model import boot_of, guest_u64, how_far, reached

LAB = "pci_config"


@check(points=1, title="the boot gets through pci_cfgspace_init", lab=LAB)
def pci_config_reached(stage):
    ok = reached(stage, "pci_config")
    return Finding(ok, "how far the boot went", "past mlsetup's pci_cfgspace_init",
                   how_far(stage),
                   hint="A PV domain has no BIOS: what does the PCI BIOS call jump to?")


@check(points=2, title="pci_bios_cfg_type is PCI_MECHANISM_1", lab=LAB,
       parent="pci_config_reached")
def pci_config_mechanism(stage):
    k = boot_of(stage).kernel
    mech = guest_u64(stage, k.sym("pci_bios_cfg_type"))
    return Finding(mech == 1, "the kernel variable pci_bios_cfg_type (guest memory)",
                   "1 (PCI_MECHANISM_1)", str(mech))


@check(points=1, title="the configuration accessors are mechanism #1's", lab=LAB,
       parent="pci_config_reached")
def pci_config_accessors(stage):
    k = boot_of(stage).kernel
    bad = []
    for op in ("getb", "getw", "getl", "putb", "putw", "putl"):
        ptr = guest_u64(stage, k.sym(f"pci_{op}_func"))
        if ptr != k.sym(f"pci_mech1_{op}"):
            bad.append(f"pci_{op}_func -> {k.unix.name(ptr)}")
    return Finding(not bad, "the function pointers pci_get*_func / pci_put*_func",
                   "pci_mech1_* routines", "all mechanism #1" if not bad else ", ".join(bad))
