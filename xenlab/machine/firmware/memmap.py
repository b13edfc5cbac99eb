"""The firmware memory map of a profile, resized for a different amount of DRAM.

A real BIOS builds its E820 map from the DRAM it finds: RAM below the PCI hole
up to the top of low DRAM, its ACPI tables and NVS stacked just under that
top, fixed-address regions (MMCONFIG, APICs, flash, graphics stolen memory)
where the chipset puts them, and the rest of the DRAM remapped above 4 GiB.
``resize`` does the same to a profile's map:

- growing: the low map stays as it is; RAM above 4 GiB becomes
  ``memory - top_of_low_dram``, placed from 4 GiB up and skipping any reserved
  region or device window there;
- shrinking below the top of low DRAM: RAM is cut at ``memory``; the firmware
  regions that sat between the cut and the top of low DRAM (ACPI data, NVS,
  reserved) move down together to start at the cut, keeping their layout; there
  is no RAM above 4 GiB.  Regions at or above the top of low DRAM stay put.

``memory`` means installed DRAM: the top of low DRAM plus RAM above 4 GiB.
"""

from __future__ import annotations

from ..e820 import E820_ACPI, E820_NVS, E820_RAM, E820Entry

MIB = 1 << 20
GIB4 = 1 << 32
MIN_MEMORY = 32 * MIB


def top_of_low_dram(entries) -> int:
    """End of the highest RAM/ACPI/NVS entry below 4 GiB, rounded up to 1 MiB."""
    top = max((e.end for e in entries if e.base < GIB4 and e.type in (E820_RAM, E820_ACPI, E820_NVS)),
              default=MIB)
    return min((top + MIB - 1) & ~(MIB - 1), GIB4)


def dram_bytes(entries) -> int:
    return top_of_low_dram(entries) + sum(e.length for e in entries
                                          if e.type == E820_RAM and e.base >= GIB4)


def resize(entries: list[E820Entry], memory: int, *, avoid=(), limit: int = 1 << 40):
    """The map ``entries`` rewritten for ``memory`` bytes of DRAM.

    ``avoid`` lists (base, end) device windows that RAM above 4 GiB must not cover.
    """
    if memory < MIN_MEMORY:
        raise ValueError(f"memory={memory:#x}: a machine needs at least "
                         f"{MIN_MEMORY >> 20} MiB")
    entries = sorted(entries)
    low_top = top_of_low_dram(entries)
    if memory >= low_top:
        out = [e for e in entries if not (e.type == E820_RAM and e.base >= GIB4)]
        high = (memory - low_top) & ~(MIB - 1)
        blocked = sorted([(e.base, e.end) for e in out if e.end > GIB4] + list(avoid))
        addr = GIB4
        while high > 0:
            for b, en in blocked:
                if b <= addr < en:
                    addr = (en + MIB - 1) & ~(MIB - 1)
            nxt = min((b for b, _ in blocked if b > addr), default=None)
            run = high if nxt is None else min(high, nxt - addr)
            if addr + run > limit:
                raise ValueError(f"memory={memory >> 30} GiB does not fit below the "
                                 f"{limit.bit_length() - 1}-bit machine address limit")
            if run > 0:
                out.append(E820Entry(addr, run, E820_RAM))
                high -= run
                addr += run
        return sorted(out)
    cut = memory & ~(MIB - 1)
    out, block = [], []
    for e in entries:
        if e.base >= low_top or e.end <= cut:
            out.append(e)
        elif e.type == E820_RAM:
            if e.base < cut:
                out.append(E820Entry(e.base, cut - e.base, E820_RAM))
        elif e.base < cut:                                # firmware region straddling the cut
            out.append(e)
            cut = (e.end + MIB - 1) & ~(MIB - 1)
        else:
            block.append(e)
    if block:
        delta = (block[0].base & ~(MIB - 1)) - cut
        out += [E820Entry(e.base - delta, e.length, e.type) for e in block]
    return sorted(out)
