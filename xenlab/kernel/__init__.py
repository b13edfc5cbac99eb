"""The Solaris-like guest kernel.

``xenlab.kernel`` is organised as the story's code was: ``intel/`` (common to
both x86 platforms: startup, krtld, kmdb's boot stop, PCI configuration access,
consoles, cmn_err, trap printing), ``i86pc/`` (the bare PC: dboot, BIOS calls,
direct page-table writes, a real IDT) and ``i86xen/`` (a 64-bit PV domain 0:
start_info, mfn_list, hypercalls, the Xen console).  Its machine code is
``src/locore.s`` (assembled with xenlab.asm into :func:`build_unix`); its logic
is Python that touches the machine only through :class:`KCpu` (the vCPU's MMU
and stubs run on the vCPU).  ``build.py`` is the platform split of the drivers.
See docs/kernel.md.
"""

from .image import KERNELBASE, Unix, build_unix
from .intel.startup import CpuInfo, Kernel
from .kcpu import (KCpu, KernelFault, KernelHang, KernelPanic, KernelStop, MachineStopped,
                   TrapFrame)

__all__ = ["Kernel", "KCpu", "CpuInfo", "Unix", "build_unix", "KERNELBASE", "KernelStop",
           "KernelPanic", "KernelHang", "MachineStopped", "KernelFault", "TrapFrame"]
