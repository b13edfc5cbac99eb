"""Windows of any size and alignment on the machine's buses.

PCI BARs can be smaller than a page (a 16-byte register block) and several of
them, from different functions, may share one 4 KiB frame (the Sun X2200 M2's
NICs do).  ``MmioBus`` maps whole frames, so this module puts page-aligned
windows on it directly and routes shared or sub-page frames through a small
per-frame router.  ``IoWindow`` does the same job for port ranges.
"""

from __future__ import annotations

from ..memory import PAGE_SHIFT, PAGE_SIZE
from ..mmio import MmioConflict


class Window:
    """``size`` bytes at machine address ``base`` answered by ``target``.

    ``target`` implements ``mmio_read(offset, size)`` / ``mmio_write(offset, size, value)``
    with offsets from ``base``.
    """

    __slots__ = ("base", "size", "target", "name", "router_frames")

    def __init__(self, base, size, target, name):
        self.base, self.size, self.target, self.name = base, size, target, name
        self.router_frames: list[int] = []

    def mmio_read(self, offset, size):           # direct mapping: offsets already ours
        return self.target.mmio_read(offset, size)

    def mmio_write(self, offset, size, value):
        self.target.mmio_write(offset, size, value)


class _FrameRouter:
    """One shared frame: dispatches each access to the window that decodes it."""

    def __init__(self, mfn):
        self.base = mfn << PAGE_SHIFT
        self.windows: list[Window] = []

    def _find(self, offset):
        a = self.base + offset
        for w in self.windows:
            if w.base <= a < w.base + w.size:
                return w
        return None

    def mmio_read(self, offset, size):
        w = self._find(offset)
        if w is None:
            return (1 << (8 * size)) - 1          # nobody decodes: master abort, all ones
        return w.target.mmio_read(self.base + offset - w.base, size)

    def mmio_write(self, offset, size, value):
        w = self._find(offset)
        if w is not None:
            w.target.mmio_write(self.base + offset - w.base, size, value)


class MmioDecoder:
    """Adds and removes MMIO windows of any alignment on an ``MmioBus``."""

    def __init__(self, mmio):
        self.mmio = mmio
        self.routers: dict[int, _FrameRouter] = {}
        self.windows: list[Window] = []

    def add(self, base: int, size: int, target, name: str) -> Window:
        """Decode ``[base, base+size)`` to ``target``; raises ``MmioConflict`` on overlap."""
        for w in self.windows:
            if base < w.base + w.size and w.base < base + size:
                raise MmioConflict(f"{name} at {base:#x}+{size:#x} overlaps {w.name} "
                                   f"at {w.base:#x}+{w.size:#x}")
        w = Window(base, size, target, name)
        if base % PAGE_SIZE == 0 and size % PAGE_SIZE == 0:
            self.mmio.map(base, size, w, name)
        else:
            first, last = base >> PAGE_SHIFT, (base + size - 1) >> PAGE_SHIFT
            for mfn in range(first, last + 1):
                r = self.routers.get(mfn)
                if r is None:
                    r = _FrameRouter(mfn)
                    self.mmio.map(mfn << PAGE_SHIFT, PAGE_SIZE, r, f"shared frame {mfn:#x}")
                    self.routers[mfn] = r
                r.windows.append(w)
                w.router_frames.append(mfn)
        self.windows.append(w)
        return w

    def remove(self, w: Window):
        if w not in self.windows:
            return
        self.windows.remove(w)
        if not w.router_frames:
            self.mmio.unmap(w)
            return
        for mfn in w.router_frames:
            r = self.routers[mfn]
            r.windows.remove(w)
            if not r.windows:
                self.mmio.unmap(r)
                del self.routers[mfn]
        w.router_frames = []
