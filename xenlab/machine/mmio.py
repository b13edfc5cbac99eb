"""Memory-mapped I/O: device registers at machine addresses.

A device claims a range of machine frames; the frames are marked in
``Memory.slot_of`` with the region's number, so the MMU and CPU see at once
that an access is not RAM and hand it here (the CPU as an ``mmio`` exit).
Reads of a claimed frame outside any register the device decodes are the
device's business; frames no one claims are RAM (or nothing, above RAM).
"""

from __future__ import annotations

from typing import Protocol

from .memory import PAGE_SHIFT, PAGE_SIZE, Memory


class MmioDevice(Protocol):
    """What a device with registers in machine memory implements.

    ``offset`` is from the start of the device's range; ``size`` is 1, 2, 4 or 8.
    """

    def mmio_read(self, offset: int, size: int) -> int: ...
    def mmio_write(self, offset: int, size: int, value: int) -> None: ...


class MmioConflict(ValueError):
    """Two devices, or a device and RAM data, asked for the same frames."""


class MmioBus:
    """The machine's MMIO regions, keyed by the region number stored in memory."""

    def __init__(self, memory: Memory):
        self.memory = memory
        self.regions: dict[int, tuple[int, int, MmioDevice, str]] = {}  # no -> (base, size, dev, name)
        self._next = 0
        self.trace: list[tuple[str, int, int, int]] | None = None

    def map(self, base: int, size: int, device: MmioDevice, name: str | None = None) -> int:
        """Put ``device`` at machine addresses ``[base, base+size)`` (whole frames)."""
        if base % PAGE_SIZE or size <= 0:
            raise ValueError(f"MMIO range {base:#x}+{size:#x}: must start on a 4 KiB boundary")
        first, count = base >> PAGE_SHIFT, (size + PAGE_SIZE - 1) >> PAGE_SHIFT
        for no, (b, s, _, n) in self.regions.items():
            if base < b + s and b < base + size:
                raise MmioConflict(f"{name or device!r} at {base:#x}+{size:#x} overlaps {n} "
                                   f"at {b:#x}+{s:#x}")
        no = self._next
        self._next += 1
        try:
            self.memory.map_mmio(first, count, no)
        except Exception as e:
            raise MmioConflict(str(e)) from None
        self.regions[no] = (base, size, device, name or type(device).__name__)
        return no

    def unmap(self, device: MmioDevice):
        """Take ``device`` off the bus (e.g. before its BAR moves)."""
        for no, (_, _, dev, _) in list(self.regions.items()):
            if dev is device:
                self.memory.unmap_mmio(no)
                del self.regions[no]

    def region_at(self, maddr: int):
        """(base, size, device, name) of the region holding ``maddr``, or None."""
        no = self.memory.mmio_region(maddr >> PAGE_SHIFT)
        return None if no is None else self.regions.get(no)

    def read(self, maddr: int, size: int) -> int:
        r = self.region_at(maddr)
        if r is None:
            v = (1 << (8 * size)) - 1
        else:
            base, rsize, dev, _ = r
            v = int(dev.mmio_read(maddr - base, size)) & ((1 << (8 * size)) - 1) \
                if maddr - base < rsize else (1 << (8 * size)) - 1
        if self.trace is not None:
            self.trace.append(("read", maddr, size, v))
        return v

    def write(self, maddr: int, size: int, value: int):
        value &= (1 << (8 * size)) - 1
        if self.trace is not None:
            self.trace.append(("write", maddr, size, value))
        r = self.region_at(maddr)
        if r is not None and maddr - r[0] < r[1]:
            r[2].mmio_write(maddr - r[0], size, value)

    def frame(self):
        import pandas as pd
        rows = [{"base": b, "end": b + s, "size": s, "device": n}
                for b, s, _, n in sorted(self.regions.values(), key=lambda r: r[0])]
        return pd.DataFrame(rows, columns=["base", "end", "size", "device"])
