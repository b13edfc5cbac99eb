"""The port-I/O bus: devices claim port ranges; IN/OUT land on the claimant.

An x86 PC has a separate 64 KiB I/O address space reached by IN/OUT/INS/OUTS
(Intel SDM Vol. 1 §18.2).  ISA-era drivers probe for hardware by reading a
port and checking for 0xFF: nobody drives the bus for an absent device, and
the pulled-up data lines read all ones.  This bus answers unclaimed reads the
same way and drops unclaimed writes.

``owner`` is a plain int16 array (0 = unclaimed, else device number + 1) so
jitted code can tell, without leaving the CPU loop, whether a port has a
device behind it.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

NPORTS = 1 << 16


class PortDevice(Protocol):
    """What a device on the port bus implements.  ``size`` is 1, 2 or 4 bytes."""

    def io_read(self, port: int, size: int) -> int: ...
    def io_write(self, port: int, size: int, value: int) -> None: ...


class PortConflict(ValueError):
    """Two devices asked for the same port."""


class PortBus:
    """The machine's I/O port space.

    >>> class Scratch:
    ...     v = 0
    ...     def io_read(self, port, size): return self.v
    ...     def io_write(self, port, size, value): self.v = value
    >>> bus = PortBus(); bus.claim(0x80, 1, Scratch(), "post")
    >>> bus.write(0x80, 1, 0x42); hex(bus.read(0x80, 1)), hex(bus.read(0x3F0, 1))
    ('0x42', '0xff')
    """

    def __init__(self):
        self.owner = np.zeros(NPORTS, dtype=np.int16)
        self.devices: list[PortDevice | None] = []
        self.names: list[str] = []
        self.ranges: list[tuple[int, int, int]] = []   # (first, count, device no.)
        self.trace: list[tuple[str, int, int, int]] | None = None
        # (port | size << 16) -> the device that owns every byte of the access,
        # or None; rebuilt as accesses come after any change of owners
        self._route: dict[int, PortDevice | None] = {}

    def _owners_changed(self):
        self._route.clear()

    def _resolve(self, port: int, size: int) -> PortDevice | None:
        o = int(self.owner[port])
        whole = o and all(int(self.owner[(port + i) & 0xFFFF]) == o for i in range(size))
        dev = self.devices[o - 1] if whole else None
        self._route[port | size << 16] = dev
        return dev

    def claim(self, first: int, count: int, device: PortDevice, name: str | None = None) -> int:
        """Give ports ``first .. first+count-1`` to ``device``; returns its number."""
        if not (0 <= first and count > 0 and first + count <= NPORTS):
            raise ValueError(f"ports {first:#x}+{count}: outside the 64 KiB I/O space")
        taken = self.owner[first:first + count]
        if taken.any():
            p = first + int(np.argmax(taken != 0))
            other = self.names[int(self.owner[p]) - 1]
            raise PortConflict(f"port {p:#x} wanted by {name or device!r} "
                               f"is already claimed by {other}")
        try:
            no = self.devices.index(device)
        except ValueError:
            no = len(self.devices)
            self.devices.append(device)
            self.names.append(name or type(device).__name__)
        if no >= np.iinfo(np.int16).max - 1:
            raise ValueError("too many port devices")
        taken[:] = no + 1
        self._owners_changed()
        self.ranges.append((first, count, no))
        return no

    def release(self, device: PortDevice):
        """Take every range of ``device`` off the bus (e.g. a BAR being moved)."""
        no = self.devices.index(device)
        self.owner[self.owner == no + 1] = 0
        self._owners_changed()
        self.ranges = [r for r in self.ranges if r[2] != no]

    def overlay(self, first: int, count: int, device: PortDevice, name: str | None = None):
        """Put ``device`` in front of ports ``first..first+count-1`` whoever owns them
        (a window a chipset opens and closes, like PCI mechanism #2's 0xC000-0xCFFF);
        returns what ``remove_overlay`` needs to put the owners back."""
        try:
            no = self.devices.index(device)
        except ValueError:
            no = len(self.devices)
            self.devices.append(device)
            self.names.append(name or type(device).__name__)
        saved = self.owner[first:first + count].copy()
        self.owner[first:first + count] = no + 1
        self._owners_changed()
        return saved

    def remove_overlay(self, first: int, saved) -> None:
        self.owner[first:first + len(saved)] = saved
        self._owners_changed()

    def device_at(self, port: int) -> PortDevice | None:
        o = int(self.owner[port & 0xFFFF])
        return self.devices[o - 1] if o else None

    # -- accesses ---------------------------------------------------------------
    def read(self, port: int, size: int) -> int:
        """IN: a claimed access goes to its device, unclaimed bytes read 0xFF."""
        port &= 0xFFFF
        try:
            dev = self._route[port | size << 16]
        except KeyError:
            dev = self._resolve(port, size)
        if dev is not None:
            v = int(dev.io_read(port, size)) & ((1 << (8 * size)) - 1)
        elif size == 1:
            v = 0xFF
        else:   # split across devices (or partly unclaimed) byte by byte
            v = 0
            for i in range(size):
                v |= self.read((port + i) & 0xFFFF, 1) << (8 * i)
        if self.trace is not None:
            self.trace.append(("in", port, size, v))
        return v

    def write(self, port: int, size: int, value: int):
        """OUT: a claimed access goes to its device, unclaimed writes vanish."""
        port &= 0xFFFF
        value &= (1 << (8 * size)) - 1
        if self.trace is not None:
            self.trace.append(("out", port, size, value))
        try:
            dev = self._route[port | size << 16]
        except KeyError:
            dev = self._resolve(port, size)
        if dev is not None:
            dev.io_write(port, size, value)
        elif size > 1:
            for i in range(size):
                self.write((port + i) & 0xFFFF, 1, (value >> (8 * i)) & 0xFF)

    def frame(self):
        """Claimed ranges as a DataFrame: first, last, count, device."""
        import pandas as pd
        rows = [{"first": f, "last": f + c - 1, "count": c, "device": self.names[no]}
                for f, c, no in sorted(self.ranges)]
        return pd.DataFrame(rows, columns=["first", "last", "count", "device"])
