"""Sources over the bare machine (``xenlab.machine``): no Xen, no guest.

:class:`MachinePageTables` is both a page-table source (for the explorer) and
a PTE source (for the bit decoder): writes go straight to machine memory, as
a kernel's store would, and nothing tells the TLB.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ...machine import memory as _mem
from ...machine import regs as R
from ...machine.e820 import TYPE_NAMES
from ...machine.mmu import paging_mode, walk, walk_many
from ...machine.pte import s64, u64
from ..ptebits import Verdict, probe_translation
from ..runs import frame_regions

ADDR_52 = ((1 << 52) - 1) & ~0xFFF


class MachinePageTables:
    """Page tables in machine memory, from a CR3 or from a vCPU's Mmu.

    ``MachinePageTables(memory, cr3)`` walks 4-level tables (``mode=3``: PAE)
    with default control registers; ``MachinePageTables(mmu=mmu)`` walks as
    that vCPU does (its CR0/CR4/EFER/PDPTEs) and shows its TLB.
    ``mfn_to_pfn``/``pfn_to_mfn`` (callables) label frames for a PV guest.
    """

    def __init__(self, memory=None, cr3: int | None = None, *, mmu=None, mode: int = 4,
                 name: str | None = None, maxphyaddr: int = 40, mfn_to_pfn=None,
                 pfn_to_mfn=None):
        if mmu is None and (memory is None or cr3 is None):
            raise ValueError("MachinePageTables needs (memory, cr3) or mmu=")
        self.mmu = mmu
        self.memory = mmu.memory if mmu is not None else memory
        self._cr3 = cr3
        self._mode = mode
        self.maxphyaddr = int(mmu.state[R.MAXPHYADDR]) if mmu is not None else maxphyaddr
        self.name = name or ("vCPU page tables" if mmu is not None else "page tables")
        self.mfn_to_pfn = mfn_to_pfn
        self.pfn_to_mfn = pfn_to_mfn
        self.invlpg = self._invlpg if mmu is not None else None

    # -- PageTableSource ----------------------------------------------------------
    @property
    def cr3(self) -> int:
        return int(self.mmu.state[R.CR3]) if self.mmu is not None else int(self._cr3)

    @property
    def mode(self) -> int:
        if self.mmu is not None:
            m = int(paging_mode(self.mmu.state))
            if m not in (3, 4):
                raise ValueError(f"the vCPU's paging mode is {m} (CR0.PG off?): "
                                 "nothing to walk")
            return m
        return self._mode

    @property
    def root(self) -> int:
        if self.mode == 3:
            return self.cr3 & 0xFFFFFFE0
        return self.cr3 & ADDR_52 & ((1 << self.maxphyaddr) - 1)

    def walk(self, va: int):
        if self.mmu is not None:
            return self.mmu.walk(va)
        return walk(self.memory, self.cr3, va, mode=self._mode, maxphyaddr=self.maxphyaddr)

    def read_tables(self, maddrs) -> np.ndarray:
        """Raw entries of whole tables (int64[n, 512]); untouched frames read 0."""
        a = self.memory.arrays
        mfns = np.asarray(maddrs, dtype=np.int64) >> 12
        if mfns.size and (mfns.min() < 0 or mfns.max() >= a[_mem.M_META][_mem.META_NMFN]):
            bad = mfns[(mfns < 0) | (mfns >= a[_mem.M_META][_mem.META_NMFN])][0]
            raise ValueError(f"table at {int(bad) << 12:#x} is outside machine memory")
        slots = a[_mem.M_SLOT_OF][mfns].astype(np.int64)
        slots[slots < 0] = 0          # an MMIO frame holds no table: read it as empty
        return a[_mem.M_WORDS].reshape(-1, 512)[slots]

    # -- PteSource -----------------------------------------------------------------
    def read(self, entry_maddr: int) -> int:
        return self.memory.read64(entry_maddr)

    def write(self, entry_maddr: int, value: int) -> Verdict:
        if entry_maddr & 7:
            return Verdict(-22, f"{entry_maddr:#x} is not 8-byte aligned: not an entry")
        self.memory.write64(entry_maddr, u64(value))
        note = ("the TLB is not told: a cached translation stays until INVLPG or MOV CR3"
                if self.mmu is not None else "no vCPU, so no TLB")
        return Verdict(0, f"stored in machine memory ({note})")

    def probe(self, va: int) -> pd.DataFrame:
        if self.mmu is not None:
            return probe_translation(self.memory, va, state=self.mmu.state, tlb=self.mmu.tlb)
        return probe_translation(self.memory, va, cr3=self.cr3, mode=self._mode)

    def _invlpg(self, va: int):
        self.mmu.invlpg(va)


# --------------------------------------------------------------------------
# memory map
# --------------------------------------------------------------------------

E820_KINDS = {1: "ram", 2: "reserved", 3: "acpi", 4: "nvs", 5: "unusable"}


def bios_areas(memory=None) -> pd.DataFrame:
    """The first MiB of a PC as regions rows (start, end, kind "bios", label).

    The fixed areas are those of the IBM PC/AT memory map; the EBDA's segment
    is the BIOS data area word at 0x40E (its location is the firmware's
    choice, ACPI 6.x §5.2.5.1 searches its first KiB for the RSDP), read from
    ``memory`` when given and set.
    """
    ebda = 0
    if memory is not None:
        ebda = memory.read16(0x40E) << 4
    rows = [(0x0, 0x400, "IVT (real-mode interrupt vectors)"),
            (0x400, 0x500, "BDA (BIOS data area)")]
    if 0x500 < ebda < 0xA0000:
        rows.append((ebda, 0xA0000, "EBDA (extended BIOS data area)"))
    rows += [(0xA0000, 0xC0000, "VGA frame buffer"),
             (0xC0000, 0xC8000, "video BIOS ROM"),
             (0xC8000, 0xE0000, "option ROMs"),
             (0xE0000, 0x100000, "system BIOS (RSDP search area)")]
    return pd.DataFrame([{"start": s, "end": e, "kind": "bios", "label": l}
                         for s, e, l in rows])


class MachineRegions:
    """The bare machine's memory map: E820, MMIO regions, BIOS areas, firmware
    tables (machines built from a profile), touched frames.

    ``extra``: more region sources (objects with ``regions()``) or frames
    to add, e.g. the hypervisor's heap zones once it exists.
    """

    def __init__(self, machine, *extra, touched: bool = True, name: str | None = None):
        self.machine = machine
        self.extra = extra
        self.touched = touched
        self.name = name or getattr(machine, "name", "machine")

    def regions(self) -> pd.DataFrame:
        m = self.machine
        parts = [pd.DataFrame([{"start": e.base, "end": e.end,
                                "kind": E820_KINDS.get(e.type, f"e820 type {e.type}"),
                                "label": f"E820 {TYPE_NAMES.get(e.type, e.type)}"}
                               for e in m.e820])]
        mmio = m.mmio.frame()
        if len(mmio):
            parts.append(pd.DataFrame({"start": mmio["base"], "end": mmio["end"],
                                       "kind": "mmio", "label": mmio["device"]}))
        parts.append(bios_areas(m.memory))
        if getattr(m, "firmware", None) is not None:
            from .platform import firmware_regions
            parts.append(firmware_regions(m))
        if self.touched:
            mfns = m.memory.frame()["mfn"].to_numpy()
            parts.append(frame_regions(mfns, "touched", "frames holding data"))
        for x in self.extra:
            parts.append(x.regions() if hasattr(x, "regions") else pd.DataFrame(x))
        return pd.concat([p for p in parts if len(p)], ignore_index=True)


# --------------------------------------------------------------------------
# P2M from page tables
# --------------------------------------------------------------------------

class PageTableP2M:
    """A guest's pseudo-physical map as its page tables show it: PFN ``i`` is
    the page at ``va_base + i * 4096`` (a kernel's linear map of its memory),
    and its MFN is whatever the walk finds (-1 where nothing is mapped).
    """

    def __init__(self, memory, cr3: int, va_base: int, npages: int, *, mode: int = 4,
                 name: str | None = None):
        self.memory, self.cr3, self.mode = memory, cr3, mode
        self.va_base, self.npages = s64(va_base), int(npages)
        self.name = name or f"linear map at {u64(va_base):#x}"

    def p2m(self) -> np.ndarray:
        vas = self.va_base + (np.arange(self.npages, dtype=np.int64) << 12)
        out = walk_many(self.memory, self.cr3, vas, mode=self.mode)
        return np.where(out >= 0, out >> 12, -1)
