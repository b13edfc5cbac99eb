"""Test helpers: a dom0 built on a small machine, and a guest-side view that
places argument blocks in dom0's own memory and makes hypercalls."""

from __future__ import annotations

import numpy as np

from xenlab.machine import Machine
from xenlab.machine import regs as R
from xenlab.xen import KernelImage, Segment, Xen, abi, check_invariants

KBASE = 0xFFFFFFFF80000000



class Port80:
    """A POST-code port: reads 0x5A; ``writes`` keeps the values written and
    ``accesses`` every (port, size, value)."""

    def __init__(self):
        self.writes = []
        self.accesses = []

    def io_read(self, port, size):
        return 0x5A

    def io_write(self, port, size, value):
        self.writes.append(value)
        self.accesses.append((port, size, value))


def make_image(code: bytes = b"\x90" * 16, extra: int = 0x4000) -> KernelImage:
    data = bytearray(extra)
    data[:len(code)] = code
    return KernelImage([Segment(KBASE, bytes(data))], entry=KBASE, virt_base=KBASE,
                       hypercall_page=KBASE + 0x1000)


class Guest:
    """dom0's side of the ABI for tests: scratch memory and hypercalls."""

    def __init__(self, xen, domain, vcpu=0):
        self.xen = xen
        self.d = domain
        self.v = domain.vcpus[vcpu]
        lay = domain.layout
        self.scratch = (lay.vstack_end + 0xFFF) & ~0xFFF
        self.scratch_end = lay.v_end
        self._next = self.scratch

    def alloc(self, n: int, align: int = 16) -> int:
        a = (self._next + align - 1) & ~(align - 1)
        self._next = a + n
        assert self._next <= self.scratch_end, "test scratch exhausted"
        return a

    def reset(self):
        self._next = self.scratch

    def put(self, data) -> int:
        raw = data.tobytes() if hasattr(data, "tobytes") else bytes(data)
        va = self.alloc(max(len(raw), 8))
        from xenlab.xen.guest import GuestMemory
        assert GuestMemory(self.xen, self.v).write(va, raw)
        return va

    def get(self, va: int, n: int) -> bytes:
        from xenlab.xen.guest import GuestMemory
        return GuestMemory(self.xen, self.v).read(va, n)

    def rec(self, dtype, **fields):
        r = np.zeros((), dtype=dtype)
        for k, val in fields.items():
            r[k] = val
        return r

    def call(self, nr: int, *args) -> int:
        return self.xen.hypercall(self.v, nr, *args)

    # -- convenience -------------------------------------------------------------
    def mmu_update(self, reqs, fdom=abi.DOMID_SELF):
        arr = np.zeros(len(reqs), dtype=abi.mmu_update)
        for i, (p, val) in enumerate(reqs):
            arr[i]["ptr"] = p & ((1 << 64) - 1)
            arr[i]["val"] = val & ((1 << 64) - 1)
        pdone = self.put(np.zeros(1, dtype=np.uint32))
        rc = self.call(abi.HYPERVISOR_mmu_update, self.put(arr), len(reqs), pdone, fdom)
        return rc, int.from_bytes(self.get(pdone, 4), "little")

    def mmuext(self, cmd, arg1=0, arg2=0, fdom=abi.DOMID_SELF):
        op = self.rec(abi.mmuext_op, cmd=cmd, arg1=arg1 & ((1 << 64) - 1), arg2=arg2)
        return self.call(abi.HYPERVISOR_mmuext_op, self.put(op), 1, 0, fdom)

    def free_frame(self):
        """A dom0 frame not mapped anywhere (beyond the boot region)."""
        lay = self.d.layout
        pfn = ((lay.v_end - lay.v_start) >> 12) + 10 + getattr(self, "_taken", 0)
        self._taken = getattr(self, "_taken", 0) + 1
        return int(self.d.p2m[pfn])

    def l1_entry_maddr(self, va):
        """Machine address of the L1 entry for ``va`` in the current tables."""
        from xenlab.xen.mmuops import guest_l1e_maddr
        return guest_l1e_maddr(self.xen, self.v, va)


def boot(memory="512M", *, debug=False, lowmem_2g_4g=False, check=True, **kw):
    m = Machine(memory)
    xen = Xen(m, debug=debug, lowmem_2g_4g=lowmem_2g_4g)
    d = xen.build_dom0(make_image(), cmdline="test", **kw)
    if check:
        check_invariants(xen)
        xen.check_hook = check_invariants
    return xen, Guest(xen, d)
