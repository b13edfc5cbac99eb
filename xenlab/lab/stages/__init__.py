"""The bring-up as an ordered list of stages, and their hooks.

Each implemented stage has a module here declaring its hooks (the 2007
default, the reference fix, a validator, the contract in the docstring).
Importing this package registers them in :data:`xenlab.lab.hooks.SPECS`.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import (boot_kmdb, console, dma, dom0_64, foreign_pfn, interrupts, iopl, lowmem,  # noqa: F401
               multiuser, pci_config, platforms, pte_swbits, toolchain)  # (registers hooks)


@dataclass(frozen=True)
class StageInfo:
    name: str
    title: str                  # one line: what the stage is about
    story: str                  # the story's words
    implemented: bool = True
    xen_debug: bool = True      # the Xen build the developer ran while on this stage


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
    StageInfo("iopl", "the first IN/OUT in dom0 traps: a PV kernel above IOPL 0 and Xen's virtual IOPL",
              "ins/outs weren't working.. That was fixed with a HYPERVISOR_physdev_op "
              "(PHYSDEVOP_SET_IOPL), which ended up being slightly wrong"),
    StageInfo("foreign_pfn", "device registers: foreign PFNs in ddi_regs_map_setup",
              "foreign PFNs, which are basically PFN's which are tagged to mark then as "
              "containing the real MFN, instead of being present in the mfn_list",
              xen_debug=False),
    StageInfo("pte_swbits", "the debug Xen claims a PTE software bit",
              "Xen was using one of the software PTE bits in a debug version of Xen which "
              "conflicted with the bit we we're using to mark the page as a foreign"),
    StageInfo("dma", "DMA cookies hold MFNs; contiguous allocations",
              "When we're building dma cookies, we need to put MFNs in the cookies instead "
              "of PFNs."),
    StageInfo("lowmem", "Xen's low-memory allocator only hands out 2-4 GiB",
              "Xen's low mem alloc implementation is linux specific. Only allocates memory "
              "< 4G && > 2G."),
    StageInfo("interrupts", "event channels, pcplusmp, ACPI and APICs",
              "This is also where we first start noticing problems if interrupts don't "
              "work. ... A mix of event channels, pcplusmp, ACPI, and APICs."),
    StageInfo("console", "the console handover to the Xen console",
              "I moved the platform specific code to i86pc and i86xen then have a different "
              "implementation in i86xen which basically always sends the Solaris console to "
              "the Xen console."),
    StageInfo("multiuser", "ISA drivers, hard-coded physical addresses, multi-user",
              "I had to have isa fail to attach ... The ISA leaf drivers assume the device is "
              "present and bad things happen. There were a couple places in the kernel where "
              "they have hard coded physical address which it tries to map in"),
    StageInfo("dom0_64", "64-bit dom0 in ring 3",
              "As far as booting 64-bit Solaris dom0, it booted up the first time."),
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
