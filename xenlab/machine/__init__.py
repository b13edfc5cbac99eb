"""The PC: sparse memory, MMU, ports, MMIO, firmware map (and, as they land,
the CPU, PCI, devices, interrupt controllers and ACPI)."""

from .machine import Machine, parse_size
from .memory import Memory

__all__ = ["Machine", "Memory", "parse_size"]


def __getattr__(name):
    # The CPU loads numba kernels: import it only when asked for.
    if name == "run_snippet":
        from .snippet import run_snippet
        return run_snippet
    if name == "Vcpu":
        from .cpu import Vcpu
        return Vcpu
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
