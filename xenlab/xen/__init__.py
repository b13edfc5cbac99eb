"""The hypervisor: Xen's 64-bit PV ABI over the emulated PC.

``Xen(machine, debug=False, lowmem_2g_4g=False)`` boots it; ``build_dom0``
creates domain 0 from a :class:`KernelImage`; hypercalls run through
``xen.hypercall(vcpu, nr, *args)`` or, with a CPU attached, through the
guest's SYSCALL into ``traps.handle_syscall``.  See docs/xen.md.
"""

from . import abi
from .build import KernelImage, Segment, hypercall_page_bytes
from .hypervisor import Xen
from .invariants import InvariantError, check_invariants

__all__ = ["Xen", "KernelImage", "Segment", "abi", "check_invariants", "InvariantError",
           "hypercall_page_bytes"]
