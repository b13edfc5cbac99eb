"""Checks for the ``platforms`` stage: the build links, i86xen has every
module this machine force-loads, drivers sorted by what they reference."""

from __future__ import annotations

from . import Finding, check
from ._model import boot_of

LAB = "platforms"


@check(points=1, title="both platforms' kernels link, each with every driver", lab=LAB)
def platforms_links(stage):
    b = boot_of(stage)
    kb, cat = b.kbuild, b.catalog
    errs = kb.errors
    short = {p: kb.missing(p, cat) for p in ("i86pc", "i86xen")}
    ok = not errs and not short["i86pc"] and not short["i86xen"]
    n = len(cat.drivers)
    found = (errs[0].splitlines()[0] if errs else
             "; ".join(f"{p} has {n - len(m)} of {n} drivers" for p, m in short.items()))
    return Finding(ok, "the kernel build: ld's messages and each platform's module list",
                   f"no ld errors; i86pc and i86xen each have all {n} drivers", found,
                   hint="A driver that calls platform interfaces cannot live in intel; one "
                        "built only under i86pc is not in i86xen.")


@check(points=2, title="the i86xen kernel loads every primary module of this machine", lab=LAB,
       parent="platforms_links")
def platforms_primaries(stage):
    b = boot_of(stage)
    wanted = b.variant.forceload
    missing = [m for m in wanted if not b.kbuild.has("i86xen", m)]
    loaded = b.kernel.modules if b.kernel is not None else []
    not_loaded = [m for m in wanted if m not in loaded]
    ok = not missing and not not_loaded
    found = ("all built and loaded" if ok else
             f"missing from the i86xen build: {', '.join(missing)}" if missing else
             f"not loaded by krtld: {', '.join(not_loaded)}")
    return Finding(ok, "etc/system's forceload list against the i86xen build and krtld",
                   ", ".join(wanted), found,
                   hint="Which drivers did the 2007 build put under i86xen?")


@check(points=2, title="drivers are sorted by what they reference", lab=LAB,
       parent="platforms_links")
def platforms_sorted(stage):
    b = boot_of(stage)
    kb, cat = b.kbuild, b.catalog
    wrong = []
    for name, drv in cat.drivers.items():
        place = kb.placement.get(name, "i86pc")
        want = "both" if drv.platform_specific else "intel"
        if place != want:
            wrong.append(f"{name}: {place} (expected {want})")
    neutral = sum(not d.platform_specific for d in cat.drivers.values())
    return Finding(not wrong, "where each of the catalog's drivers was built",
                   f"the {neutral} DDI-only drivers in intel, the others in both platforms",
                   "all sorted" if not wrong else f"{len(wrong)} misplaced, e.g. {wrong[0]}",
                   hint="A driver with no platform_symbols has no platform code.")
