"""xenlab: bring up a Solaris-like dom0 on a Xen-like hypervisor on an emulated PC.

The layers, bottom up (see docs/architecture.md): ``xenlab.asm`` and
``xenlab.machine`` (the PC), ``xenlab.xen`` (the hypervisor), ``xenlab.kernel``
(the guest), ``xenlab.lab`` (stages and hooks), and the presentation layers
``xenlab.kmdb``, ``xenlab.checks``, ``xenlab.viz``, ``xenlab.grading``.
"""

from ._version import __version__

__all__ = ["__version__", "Xen", "Machine", "Stage"]

_SUBPACKAGES = ("asm", "machine", "xen", "kernel", "lab", "kmdb", "checks", "viz", "grading")


def __getattr__(name):
    # Lazy, so ``import xenlab`` (and ``xenlab --help``) stays light.
    if name in _SUBPACKAGES:
        import importlib
        if name == "lab":
            from . import checks  # noqa: F401  (so lab.check() finds the check cards)
        return importlib.import_module(f"{__name__}.{name}")
    if name == "Stage":
        from . import checks  # noqa: F401
        from .lab import Stage
        return Stage
    if name == "Xen":
        from .xen import Xen
        return Xen
    if name == "Machine":
        from .machine import Machine
        return Machine
    raise AttributeError(f"module 'xenlab' has no attribute {name!r}")
