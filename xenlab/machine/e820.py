"""The BIOS E820 memory map: what the firmware tells the OS about RAM.

Types are the ACPI address-range types (ACPI 6.x §15, "System Address Map
Interfaces", Table 15.1): 1 usable RAM, 2 reserved, 3 ACPI reclaimable,
4 ACPI NVS, 5 unusable.
"""

from __future__ import annotations

from dataclasses import dataclass

E820_RAM = 1
E820_RESERVED = 2
E820_ACPI = 3
E820_NVS = 4
E820_UNUSABLE = 5
TYPE_NAMES = {E820_RAM: "usable", E820_RESERVED: "reserved", E820_ACPI: "ACPI data",
              E820_NVS: "ACPI NVS", E820_UNUSABLE: "unusable"}


@dataclass(frozen=True, order=True)
class E820Entry:
    base: int
    length: int
    type: int

    @property
    def end(self) -> int:
        return self.base + self.length

    def __str__(self):
        return (f"[mem {self.base:#018x}-{self.end - 1:#018x}] "
                f"{TYPE_NAMES.get(self.type, f'type {self.type}')}")


def ram_frames(e820: list[E820Entry]) -> list[tuple[int, int]]:
    """Usable RAM as (first mfn, frame count) runs, whole frames only."""
    runs = []
    for e in sorted(e820):
        if e.type != E820_RAM:
            continue
        first = (e.base + 0xFFF) >> 12
        last = e.end >> 12
        if last > first:
            runs.append((first, last - first))
    return runs


def pc_layout(memory_bytes: int) -> list[E820Entry]:
    """A plain PC's map for ``memory_bytes`` of RAM: 640 KiB low memory, the
    BIOS hole to 1 MiB, RAM to a 3 GiB PCI hole, the rest above 4 GiB."""
    mib = 1 << 20
    entries = [E820Entry(0, 0x9FC00, E820_RAM),
               E820Entry(0x9FC00, 0x400, E820_RESERVED),        # EBDA
               E820Entry(0xE0000, 0x20000, E820_RESERVED)]      # BIOS ROM
    hole = 3 << 30
    below = min(memory_bytes, hole) - mib
    entries.append(E820Entry(mib, below, E820_RAM))
    if memory_bytes > hole:
        entries.append(E820Entry(1 << 32, memory_bytes - hole, E820_RAM))
    entries.append(E820Entry(0xFEC00000, 0x1000, E820_RESERVED))   # IOAPIC
    entries.append(E820Entry(0xFEE00000, 0x1000, E820_RESERVED))   # LAPIC
    entries.append(E820Entry(0xFFFC0000, 0x40000, E820_RESERVED))  # flash
    return sorted(entries)
