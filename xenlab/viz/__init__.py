"""Views of the live model: ipywidgets + matplotlib, a DataFrame behind each.

Every view reads the model through a small *source* protocol (docs/viz.md),
has ``.frame`` (a pandas DataFrame for explorers), a refresh button and
``refresh()`` (a lab Stage calls it, or :func:`refresh_all`, after a boot),
and aggregates so that a 64 GiB machine stays quick to draw.

>>> from xenlab.viz import PageTableExplorer, MachinePageTables
>>> ex = PageTableExplorer(MachinePageTables(memory, cr3))   # doctest: +SKIP
>>> ex.show(0xffff800000001000); ex.frame                     # doctest: +SKIP

Views: :class:`PageTableExplorer`, :class:`PteDecoder`, :class:`MemoryMapView`,
:class:`P2MView`, :class:`RoutingView`.  The viz layer reads the model and
edits only what a user asks it to (a PTE through its source); it never
changes the model's rules.
"""

from .adapters import (ArrayP2M, FrameRegions, FrameRoutes, MachinePageTables,
                       MachineRegions, MachineRoutes, PageTableP2M, bios_areas,
                       XenP2M, XenPageTables, XenRegions, firmware_regions, join_routes,
                       xen_route_layer)
from .base import View, refresh_all
from .irq import ROUTE_COLUMNS, RoutingView
from .memmap import MemoryMapView
from .p2m import P2MView
from .pagetable import PageTableExplorer, mapped_ranges, table_entries
from .ptebits import PteDecoder, Verdict, probe_translation
from .runs import coalesce, frame_regions, p2m_runs, runs

__all__ = [
    "View", "refresh_all",
    "PageTableExplorer", "PteDecoder", "MemoryMapView", "P2MView", "RoutingView",
    "MachinePageTables", "MachineRegions", "PageTableP2M", "ArrayP2M", "FrameRegions",
    "FrameRoutes", "MachineRoutes", "bios_areas", "firmware_regions", "join_routes",
    "XenPageTables", "XenP2M", "XenRegions", "xen_route_layer",
    "Verdict", "probe_translation", "mapped_ranges", "table_entries", "ROUTE_COLUMNS",
    "runs", "frame_regions", "p2m_runs", "coalesce",
]
