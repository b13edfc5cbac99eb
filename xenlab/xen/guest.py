"""Xen's access to guest virtual memory: copy_from_guest / copy_to_guest.

Xen reads a hypercall's argument blocks at the guest's virtual addresses,
through the page tables the vCPU has loaded, as a ring-0 access with CR0.WP
set: a read-only guest page cannot be written, a missing page faults, and an
address in Xen's own hole (HYPERVISOR_VIRT_START .. HYPERVISOR_VIRT_END) is
refused before any walk (x86_64 ``__addr_ok``).  A fault is reported as
``None``/``False`` and the hypercall returns -EFAULT.
"""

from __future__ import annotations

import numpy as np

from ..machine import mmu as _mmu
from . import abi

_MASK64 = (1 << 64) - 1


def addr_ok(va: int) -> bool:
    """x86_64 __addr_ok: below 2**48 (the lower half) or above Xen's hole."""
    va &= _MASK64
    return va < (1 << 48) or va >= abi.HYPERVISOR_VIRT_END


def range_ok(va: int, n: int) -> bool:
    """Both ends of [va, va+n) pass :func:`addr_ok` and the range does not wrap."""
    va &= _MASK64
    if n <= 0:
        return addr_ok(va)
    end = va + n - 1
    if end > _MASK64:
        return False
    # the hole sits between the two halves; a range that starts below it and
    # ends above it crosses it
    if va < abi.HYPERVISOR_VIRT_START <= end:
        return False
    return addr_ok(va) and addr_ok(end)


_TRACE = np.zeros((_mmu.WALK_TRACE_ROWS, 2), dtype=np.int64)   # walks here do not trace


class GuestMemory:
    """Guest-virtual access for one vCPU (Xen's uaccess on that vCPU's CR3)."""

    def __init__(self, xen, vcpu):
        self.xen = xen
        self.vcpu = vcpu
        self._trace = _TRACE

    def translate(self, va: int, write: bool) -> int | None:
        """Machine address of ``va`` for a ring-0 access, or None on a fault."""
        from ..machine.pte import s64
        if not addr_ok(va):
            return None
        access = _mmu.ACC_WRITE if write else _mmu.ACC_READ
        mem = self.xen.memory
        mem.reserve(8)
        r = int(_mmu.walk_kernel(mem.arrays, self.vcpu.hw.state, s64(va), access,
                                 _mmu.WALK_CHECK | _mmu.WALK_SET_AD, self._trace))
        return None if r < 0 else r

    def read(self, va: int, n: int) -> bytes | None:
        """copy_from_guest: ``n`` bytes at ``va`` or None (-EFAULT)."""
        if n < 0 or not range_ok(va, n):
            return None
        out = bytearray()
        va &= _MASK64
        while n > 0:
            chunk = min(n, 4096 - (va & 0xFFF))
            ma = self.translate(va, False)
            if ma is None:
                return None
            out += self.xen.read_machine(ma, chunk)
            va += chunk
            n -= chunk
        return bytes(out)

    def write(self, va: int, data: bytes) -> bool:
        """copy_to_guest: False (-EFAULT) if any byte could not be written.

        Like Xen, bytes before the faulting page have already been written.
        """
        if not range_ok(va, len(data)):
            return False
        va &= _MASK64
        done = 0
        while done < len(data):
            chunk = min(len(data) - done, 4096 - (va & 0xFFF))
            ma = self.translate(va, True)
            if ma is None:
                return False
            self.xen.write_machine(ma, data[done:done + chunk])
            va += chunk
            done += chunk
        return True

    # -- typed helpers -------------------------------------------------------------
    def read_struct(self, va: int, dtype, count: int = 1):
        """``count`` records of a structured dtype, or None on a fault."""
        raw = self.read(va, dtype.itemsize * count)
        if raw is None:
            return None
        arr = np.frombuffer(raw, dtype=dtype).copy()
        return arr[0] if count == 1 else arr

    def write_struct(self, va: int, rec) -> bool:
        return self.write(va, np.asarray(rec).tobytes())

    def read_u64(self, va: int) -> int | None:
        raw = self.read(va, 8)
        return None if raw is None else int.from_bytes(raw, "little")

    def write_u64(self, va: int, value: int) -> bool:
        return self.write(va, (value & _MASK64).to_bytes(8, "little"))

    def write_u32(self, va: int, value: int) -> bool:
        return self.write(va, (value & 0xFFFFFFFF).to_bytes(4, "little"))
