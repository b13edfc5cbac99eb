"""xenlab: bring up a Solaris-like dom0 on a Xen-like hypervisor on an emulated PC.

The layers, bottom up (see docs/architecture.md): ``xenlab.asm`` and
``xenlab.machine`` (the PC), ``xenlab.xen`` (the hypervisor), ``xenlab.kernel``
(the guest), ``xenlab.lab`` (stages and hooks), and the presentation layers
``xenlab.kmdb``, ``xenlab.checks``, ``xenlab.viz``, ``xenlab.grading``.
"""

from ._version import __version__

__all__ = ["__version__", "Machine"]


def __getattr__(name):
    # xenlab.Machine loads numba kernels: import it only when asked for, so that
    # `xenlab --help` stays fast.
    if name == "Machine":
        from .machine import Machine
        return Machine
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
