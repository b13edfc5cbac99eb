"""The bring-up as an ordered list of stages, and their hooks.

Each implemented stage has a module here declaring its hooks (the 2007
default, the reference fix, a validator, the contract in the docstring).
Importing this package registers them in :data:`xenlab.lab.hooks.SPECS`.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import boot_kmdb, iopl, pci_config, platforms, toolchain  # noqa: F401  (registers hooks)


@dataclass(frozen=True)
class StageInfo:
    name: str
    title: str                  # one line: what the stage is about
    story: str                  # the story's words
    implemented: bool = True


STAGES: tuple[StageInfo, ...] = (
    StageInfo("toolchain", "build Xen on Solaris: gas treats '/' as a comment without --divide",
              "The second fix was to add a -divide to the binutils gas to not treat / as a comment."),
    StageInfo("platforms", "build i86xen: sort the drivers into intel, i86pc, i86xen or both",
              "So I had to try to move each driver over to intel and see if it had platform "
              "specific code or not."),
    StageInfo("boot_kmdb", "Xen loads dom0 and kmdb: read start_info, use Xen's console",
              "tried to boot a i86xen (vs i86pc) version of the kernel debugger (kmdb)"),
    StageInfo("pci_config", "mlsetup's PCI config access: no BIOS calls in a PV domain",
              "this requires a call to the BIOS, which xen doesn't allow. So I changed the code "
              "to default to PCI_MECHANISM_1 for i86xen dom0."),
    StageInfo("iopl", "the first IN/OUT in dom0 traps: a ring-3 kernel and Xen's virtual IOPL",
              "ins/outs weren't working.. That was fixed with a HYPERVISOR_physdev_op "
              "(PHYSDEVOP_SET_IOPL), which ended up being slightly wrong"),
    StageInfo("foreign_pfn", "device registers: foreign PFNs in ddi_regs_map_setup",
              "foreign PFNs, which are basically PFN's which are tagged", False),
    StageInfo("pte_swbits", "the debug Xen claims a PTE software bit",
              "Xen was using one of the software PTE bits in a debug version", False),
    StageInfo("dma", "DMA cookies hold MFNs; contiguous allocations",
              "we need to put MFNs in the cookies instead of PFNs", False),
    StageInfo("lowmem", "Xen's low-memory allocator only hands out 2-4 GiB",
              "Only allocates memory < 4G && > 2G", False),
    StageInfo("interrupts", "event channels, pcplusmp, ACPI and APICs",
              "A mix of event channels, pcplusmp, ACPI, and APICs.", False),
    StageInfo("console", "the console handover to the Xen console",
              "always sends the Solaris console to the Xen console", False),
    StageInfo("multiuser", "ISA drivers, hard-coded physical addresses, multi-user",
              "And from there, I was at the multi-user prompt..", False),
    StageInfo("dom0_64", "64-bit dom0 in ring 3",
              "As far as booting 64-bit Solaris dom0, it booted up the first time.", False),
)

ALL_STAGE_NAMES = tuple(s.name for s in STAGES)
STAGE_NAMES = tuple(s.name for s in STAGES if s.implemented)


def stage_info(name: str) -> StageInfo:
    for s in STAGES:
        if s.name == name:
            return s
    raise ValueError(f"no stage {name!r}; the stages are: {', '.join(ALL_STAGE_NAMES)}")


def stage_index(name: str) -> int:
    """Position of an implemented stage; a clear error for anything else."""
    info = stage_info(name)
    if not info.implemented:
        raise ValueError(f"stage {name!r} is not implemented yet; the stages that boot are: "
                         f"{', '.join(STAGE_NAMES)}")
    return STAGE_NAMES.index(name)
