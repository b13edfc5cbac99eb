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


def _register_ipython_magics(ip=None):
    """Inside IPython, ``%kmdb`` / ``%%kmdb`` exist as soon as xenlab is imported
    (so whenever a Stage is in the namespace); the debugger loads on first use."""
    import sys
    if ip is None:
        ipy = sys.modules.get("IPython")
        try:
            ip = ipy.get_ipython() if ipy is not None else None
        except Exception:                       # noqa: BLE001 - never break an import
            ip = None
    if ip is None:
        return

    def kmdb(line, cell=None):
        from .kmdb.magic import run_magic
        return run_magic(ip, line, cell)
    kmdb.__doc__ = "mdb-style debugger over the live model: see xenlab.kmdb.magic"
    try:
        if "kmdb" not in ip.magics_manager.magics.get("line", {}):
            ip.register_magic_function(kmdb, "line_cell", "kmdb")
    except Exception:                           # noqa: BLE001 - never break an import
        pass


_register_ipython_magics()
