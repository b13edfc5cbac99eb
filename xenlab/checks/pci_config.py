"""Checks for the ``pci_config`` stage: the mechanism the kernel chose, read
from the kernel's memory through its page tables."""

from __future__ import annotations

from ..machine.pte import PF_ID
from . import Finding, check, question
from ._model import boot_of, guest_u64, how_far, native_variant, reached, shipped_boot

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


PCI_BIOS_PRESENT = 0xB101            # PCI BIOS Specification 2.1: AH=B1h, AL=01h


@check(points=1, title="the i86pc kernel still asks its PCI BIOS", lab=LAB,
       parent="pci_config_reached")
def pci_config_native_bios(stage):
    n = native_variant(stage)
    m = boot_of(n).machine
    from ..machine.firmware.bios32 import PCI_ENTRY
    asked = [e for e in m.firmware_log if e[1] == PCI_ENTRY and e[2] & 0xFFFF == PCI_BIOS_PRESENT]
    ok = reached(n, "pci_config") and bool(asked)
    found = (how_far(n) if not reached(n, "pci_config") else
             "PCI_BIOS_PRESENT was called" if asked else "the firmware saw no PCI BIOS call")
    return Finding(ok, "the same machine booted natively (i86pc) with your hook: the firmware's "
                       "call log", "a PCI_BIOS_PRESENT call (B101h) at the $PCI entry point",
                   found, hint="The fix is for i86xen dom0; a PC with a BIOS should still be "
                               "asked which mechanism its chipset has.")


# ---------------------------------------------------------------------------
# the lab's questions (labs/04_pci_config.ipynb)
# ---------------------------------------------------------------------------

QLAB = "04_pci_config"


def _trap(stage):
    k = boot_of(shipped_boot(stage)).kernel
    p = k.panicked
    if p is None or p.trap is None:
        raise RuntimeError("the 2007 boot of this variant did not stop on a trap")
    return p.trap


@question("pci_fault_pc", lab=QLAB, points=1, answer="ANSWER_FAULT_PC",
          title="where the CPU tried to execute",
          asks="the instruction address (%rip) of the faulting fetch",
          looked_at="the trap frame of the 2007 boot's BAD TRAP",
          hint="$r (or ::panicinfo) shows %rip at the trap.")
def q_pci_fault_pc(stage):
    return int(_trap(stage).rip)


@question("pci_fetch_bit", lab=QLAB, points=1, answer="ANSWER_FETCH_BIT",
          title="the error-code bit of an instruction fetch",
          asks="the bit number, in the #PF error code, that marks an instruction fetch",
          looked_at="the #PF error code of the 2007 boot (Intel SDM Vol. 3A, 4.7)",
          hint="The panic prints '#pf error code 14<fetch,user>': 0x14 in binary.")
def q_pci_fetch_bit(stage):
    err = _trap(stage).err or 0
    if not err & PF_ID:
        raise RuntimeError(f"the #PF error code {err:#x} does not mark a fetch")
    return PF_ID.bit_length() - 1


@question("pci_native_entry", lab=QLAB, points=1, answer="ANSWER_NATIVE_ENTRY",
          title="what bios_pci_entry holds on the bare PC",
          asks="the value of bios_pci_entry after the i86pc kernel found the $PCI service",
          looked_at="bios_pci_entry in the memory of the same machine booted natively",
          hint="%kmdb -t native bios_pci_entry/K")
def q_pci_native_entry(stage):
    n = shipped_boot(stage, native=True)
    return guest_u64(n, boot_of(n).kernel.sym("bios_pci_entry"))
