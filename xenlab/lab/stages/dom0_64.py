"""Stage 13, ``dom0_64``: the 64-bit dom0.

The bring-up started "with 32-bit dom0": a 32-bit PV kernel runs in ring 1,
Xen in ring 0, user processes in ring 3.  Such a kernel is a supervisor to the
MMU -- one page table serves kernel and user, with U/S keeping them apart --
it enters Xen with ``int $0x82`` (arguments in EBX, ECX, EDX, ESI, EDI) and
returns from traps with IRET like any ring-1 code.  (This model's CPU runs
64-bit code only, so the 32-bit dom0 is the same machine code run with the
32-bit PV privilege model: the ring, the selectors, the hypercall entry and
the page-table rules are 32-bit PV's, the instruction set is not.)

"As far as booting 64-bit Solaris dom0, it booted up the first time."  A
64-bit PV kernel runs in ring 3, like its user processes: Xen gives it two
page-table roots (kernel and user, ``MMUEXT_NEW_USER_BASEPTR``), sets
``_PAGE_USER`` on every mapping (and marks kernel ones ``_PAGE_GUEST_KERNEL``,
PTE bit 52), takes hypercalls through ``syscall`` in the hypercall page
(arguments in RDI, RSI, RDX, R10, R8) and returns to the guest with
``HYPERVISOR_iret``.  Every fix of the earlier stages lived in common code,
so the same kernel boots through all of them.

Hook ``dom0_kernel``: which kernel the boot loader gives Xen as dom0.
"""

from __future__ import annotations

from ..hooks import hook

KERNELS = {"/platform/i86xen/kernel/unix": 32, "/platform/i86xen/kernel/amd64/unix": 64}


def _valid(path):
    if path not in KERNELS:
        return f"expected one of {', '.join(repr(k) for k in KERNELS)}"
    return None


def dom0_kernel_fixed():
    return "/platform/i86xen/kernel/amd64/unix"


@hook("dom0_kernel", stage="dom0_64", reference=dom0_kernel_fixed, validate=_valid)
def dom0_kernel():
    """The dom0 kernel the boot loader's menu names (the module line after
    xen.gz).  ``"/platform/i86xen/kernel/unix"``: the 32-bit PV kernel (ring
    1); ``"/platform/i86xen/kernel/amd64/unix"``: the 64-bit one (ring 3).
    2007 default: the 32-bit kernel ("starting with 32-bit dom0")."""
    return "/platform/i86xen/kernel/unix"


__all__ = ["dom0_kernel", "dom0_kernel_fixed", "KERNELS"]
