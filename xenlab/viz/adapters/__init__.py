"""Sources for the views, one module per layer they read.

``machine``: the bare PC (page tables in machine memory, an Mmu's TLB, the
E820 map, MMIO regions, BIOS areas).  Adapters for the hypervisor and the
platform join here as those layers land; each is a few lines over the
protocols in docs/viz.md.
"""

from .frames import FrameRegions, FrameRoutes, ArrayP2M
from .machine import MachinePageTables, MachineRegions, PageTableP2M, bios_areas
from .platform import MachineRoutes, firmware_regions, join_routes, machine_routes

__all__ = ["MachinePageTables", "MachineRegions", "PageTableP2M", "bios_areas",
           "FrameRegions", "FrameRoutes", "ArrayP2M", "MachineRoutes", "firmware_regions",
           "join_routes", "machine_routes"]
