"""Stage 5, ``iopl``: the first IN/OUT in dom0.

A 64-bit PV kernel runs in ring 3 with the hardware IOPL at 0, so every
IN/OUT/INS/OUTS traps into Xen, which emulates it only if the vCPU's *virtual*
IOPL allows (Xen 3.1 ``guest_io_okay``: at least 1 in guest kernel mode, 3 in
guest user mode).  Otherwise Xen bounces the #GP to the guest: BAD TRAP at the
``outl`` to 0xCF8.  The fix is ``HYPERVISOR_physdev_op(PHYSDEVOP_set_iopl,
{iopl: 1})`` -- illumos dboot asks for 1.  The story's first fix was "slightly
wrong": Xen keeps the IOPL per vCPU, so asking only on the boot CPU faults when
another CPU does port I/O; and iopl 3 would let dom0's *user* processes do
port I/O too.
"""

from __future__ import annotations

from ...xen.abi import PHYSDEVOP_set_iopl
from ..hooks import hook


def _valid(rc):
    if rc is not None and not isinstance(rc, int):
        return "expected None or the hypercall's result (an int)"
    if isinstance(rc, int) and rc < 0:
        return f"PHYSDEVOP_set_iopl failed with {rc} (a negative Xen errno)"
    return None


def set_io_privilege_fixed(cpu):
    if cpu.platform == "i86xen":
        return cpu.physdev_op(PHYSDEVOP_set_iopl, iopl=1)
    return None


def set_io_privilege_boot_cpu_only(cpu):
    """A first try that Xen's per-vCPU rule punishes: only the boot CPU asks."""
    if cpu.platform == "i86xen" and cpu.id == 0:
        return cpu.physdev_op(PHYSDEVOP_set_iopl, iopl=1)
    return None


def set_io_privilege_iopl3(cpu):
    """A first try that works for the kernel but opens port I/O to user processes."""
    if cpu.platform == "i86xen":
        return cpu.physdev_op(PHYSDEVOP_set_iopl, iopl=3)
    return None


@hook("set_io_privilege", stage="iopl", reference=set_io_privilege_fixed, validate=_valid)
def set_io_privilege(cpu):
    """Called on every CPU as it starts, on that CPU, before it does port I/O.

    ``cpu`` has ``.id``, ``.platform`` (``"i86pc"`` or ``"i86xen"``) and
    ``.physdev_op(cmd, **fields)`` (HYPERVISOR_physdev_op on this CPU, e.g.
    ``cpu.physdev_op(PHYSDEVOP_set_iopl, iopl=1)``; returns Xen's result).
    Return None or that result.  2007 default: nothing (i86pc runs in ring 0).
    """
    return None


__all__ = ["set_io_privilege", "set_io_privilege_fixed", "set_io_privilege_boot_cpu_only",
           "set_io_privilege_iopl3", "PHYSDEVOP_set_iopl"]
