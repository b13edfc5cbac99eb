"""Sources for the views, one module per layer they read.

``machine``: the bare PC (page tables in machine memory, an Mmu's TLB, the
E820 map, MMIO regions, BIOS areas); ``platform``: a machine built from a
profile (interrupt routes, firmware tables); ``xen``: the hypervisor (a PV
domain's page tables with mmu_update writes, its P2M, the heap, PIRQ
bindings).  Each is a few lines over the protocols in docs/viz.md.
"""

from .frames import FrameRegions, FrameRoutes, ArrayP2M
from .machine import MachinePageTables, MachineRegions, PageTableP2M, bios_areas
from .platform import MachineRoutes, firmware_regions, join_routes, machine_routes
from .xen import XenP2M, XenPageTables, XenRegions, xen_route_layer

__all__ = ["MachinePageTables", "MachineRegions", "PageTableP2M", "bios_areas",
           "FrameRegions", "FrameRoutes", "ArrayP2M", "MachineRoutes", "firmware_regions",
           "join_routes", "machine_routes", "XenPageTables", "XenP2M", "XenRegions",
           "xen_route_layer"]
