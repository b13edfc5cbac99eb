"""Building the kernel for a platform: which drivers go where, and the link step.

Before Xen, Solaris on x86 had one platform, ``i86pc``.  The paravirtualised
kernel is a second platform, ``i86xen``; code shared by both lives in the
common ``intel`` part.  A driver built only under ``i86pc`` is simply absent
from an ``i86xen`` kernel.  Sorting them is the ``platforms`` stage:

* a driver that uses only DDI/DKI interfaces can move to ``intel`` and serve
  both platforms;
* a driver that calls platform interfaces (``psm_map_phys_new``, BIOS calls,
  ``hat_getpfnum`` ...) must be built per platform (``i86pc`` and ``i86xen``),
  its ``i86xen`` build ported to the hypervisor's interfaces.

The link step checks each module's references against what its platform's
``unix`` exports, and fails as ``ld`` did, naming the undefined symbol and the
module that referenced it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from ..datasets import dataset_path

PLATFORMS = ("i86pc", "i86xen")
PLACES = ("intel", "i86pc", "i86xen", "both")   # "both": one build under each platform


@dataclass(frozen=True)
class Driver:
    name: str
    description: str
    platform_symbols: tuple[str, ...]     # platform interfaces it calls, beyond the DDI
    essential: bool                       # the boot cannot go on without it

    @property
    def platform_specific(self) -> bool:
        return bool(self.platform_symbols)


@dataclass
class Catalog:
    drivers: dict[str, Driver]
    ddi: frozenset[str]
    exports: dict[str, frozenset[str]]    # platform -> symbols its unix exports

    def common_exports(self) -> frozenset[str]:
        return self.exports["i86pc"] & self.exports["i86xen"]


def load_catalog() -> Catalog:
    raw = json.loads(Path(dataset_path("reference", "drivers.json")).read_text())
    ddi = frozenset(raw["symbols"]["ddi"])
    exports = {p: ddi | frozenset(raw["symbols"][p]) for p in PLATFORMS}
    drivers = {d["name"]: Driver(d["name"], d["description"], tuple(d["platform_symbols"]),
                                 d["essential"]) for d in raw["drivers"]}
    return Catalog(drivers, ddi, exports)


class LinkError(Exception):
    """``ld`` refused a module: undefined symbols."""


@dataclass
class Module:
    name: str
    place: str           # intel, i86pc or i86xen: where this build of it lives
    references: tuple[str, ...]


@dataclass
class KernelBuild:
    """The modules each platform's kernel carries after a build."""

    placement: dict[str, str]
    modules: dict[str, list[Module]] = field(default_factory=dict)   # platform -> modules
    errors: list[str] = field(default_factory=list)

    def has(self, platform: str, driver: str) -> bool:
        return any(m.name == driver for m in self.modules.get(platform, []))

    def missing(self, platform: str, catalog: Catalog, essential_only=False) -> list[str]:
        return sorted(n for n, d in catalog.drivers.items()
                      if not self.has(platform, n) and (d.essential or not essential_only))


def port_references(driver: Driver, platform: str) -> tuple[str, ...]:
    """What a per-platform build references: the i86xen port replaces each
    i86pc interface with its hypervisor counterpart (the porting work)."""
    if platform == "i86pc":
        return driver.platform_symbols
    ported = {"psm_map_phys_new": "xen_map_ioapic", "psm_unmap_phys": "xen_map_ioapic",
              "hat_getpfnum": "pfn_to_mfn", "contig_alloc": "balloon_replace_pages",
              "rootnex_dma_allochdl": "xen_alloc_pages", "bop_doint": "HYPERVISOR_physdev_op",
              "i86_bios_call": "HYPERVISOR_physdev_op", "impl_bus_add_probe": "xen_info",
              "pci_bios_cfg_type": "xen_info", "apic_intr_ops": "xpv_psm_ops",
              "pcplusmp_psm_ops": "xpv_psm_ops", "psm_map_new": "xen_make_foreign",
              "kbm_map": "xen_make_foreign", "page_numtopp_nolock": "mfn_to_pfn",
              "mmu_ptob": "pfn_to_mfn"}
    return tuple(dict.fromkeys(ported.get(s, s) for s in driver.platform_symbols))


def build(placement: dict[str, str], catalog: Catalog | None = None) -> KernelBuild:
    """Compile and link every driver where ``placement`` puts it.

    A module that references a symbol its platform(s) do not export is not
    linked (as ``ld: fatal: symbol referencing errors`` left no output).
    """
    cat = catalog or load_catalog()
    kb = KernelBuild(dict(placement), {p: [] for p in PLATFORMS})
    for name, drv in cat.drivers.items():
        place = placement.get(name, "i86pc")
        if place not in PLACES:
            raise ValueError(f"driver {name}: place {place!r} is not one of {', '.join(PLACES)}")
        builds = {"intel": [("intel", PLATFORMS)], "i86pc": [("i86pc", ("i86pc",))],
                  "i86xen": [("i86xen", ("i86xen",))],
                  "both": [("i86pc", ("i86pc",)), ("i86xen", ("i86xen",))]}[place]
        for where, platforms in builds:
            refs = drv.platform_symbols if where == "intel" else port_references(drv, where)
            exported = cat.common_exports() if where == "intel" else cat.exports[where]
            undefined = [s for s in refs if s not in exported]
            if undefined:
                kb.errors.append(
                    f"ld: fatal: symbol referencing errors. No output written to {where}/{name}\n"
                    + "\n".join(f"  {s:<24} first referenced in {where}/{name}/{name}.o"
                                for s in undefined))
                continue
            for p in platforms:
                kb.modules[p].append(Module(name, where, tuple(refs)))
    return kb
