"""The PC: sparse memory, MMU, ports, MMIO, firmware map (and, as they land,
the CPU, PCI, devices, interrupt controllers and ACPI)."""

from .machine import Machine, parse_size
from .memory import Memory

__all__ = ["Machine", "Memory", "parse_size"]
