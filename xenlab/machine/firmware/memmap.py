"""The firmware memory map of a profile, resized for a different amount of DRAM.

A real BIOS builds its E820 map from the DRAM it finds: RAM below the PCI hole
up to the top of low DRAM, its ACPI tables and NVS stacked just under that
top, fixed-address regions (MMCONFIG, APICs, flash, graphics stolen memory)
where the chipset puts them, and the rest of the DRAM remapped above 4 GiB.
``resize`` does the same to a profile's map:

- growing: the low map stays as it is; RAM above 4 GiB becomes
  ``memory - top_of_low_dram``, placed from 4 GiB up and skipping any reserved
  region or device window there;
- shrinking below the top of low DRAM: the firmware regions that sat between
  the new top and the old one (ACPI data, NVS, reserved) move down, packed in
  their order right above the last RAM, and RAM ends where they begin, so RAM
  plus those regions is ``memory``; there is no RAM above 4 GiB.  Regions at or
  above the old top of low DRAM (MMCONFIG, APICs, flash) stay put.

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
    # the firmware regions between the cut and the top of low DRAM move down with it,
    # and they take DRAM too: cut low enough that RAM + regions = memory
    cut = memory & ~(MIB - 1)
    for _ in range(8):
        block = [e for e in entries if e.type != E820_RAM and MIB <= e.base < low_top and e.end > cut]
        need = sum(e.length + 0xFFF for e in block)
        new_cut = max((memory - need) & ~(MIB - 1), MIB)
        if new_cut == cut:
            break
        cut = new_cut
    out = []
    for e in entries:
        if e in block or (e.type == E820_RAM and e.base >= GIB4):
            continue
        if e.type == E820_RAM and e.base < low_top:
            if e.base < cut:
                out.append(E820Entry(e.base, min(e.end, cut) - e.base, E820_RAM))
        else:
            out.append(e)
    cursor, prev_end = cut, None
    for e in block:                      # packed in order; adjacent regions stay adjacent
        if prev_end != e.base:
            cursor = ((cursor + 0xFFF) & ~0xFFF) + (e.base & 0xFFF)
        out.append(E820Entry(cursor, e.length, e.type))
        cursor += e.length
        prev_end = e.end
    return sorted(out)
