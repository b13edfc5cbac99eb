"""Stage 2, ``platforms``: building the i86xen kernel.

Before Xen there was one x86 platform, ``i86pc``, and every driver was built
under it.  The paravirtualised kernel is a second platform, ``i86xen``, which
simply lacks everything built only under i86pc.  Drivers that use nothing but
the DDI move to the common ``intel`` part (the story moved about 40 in src/uts
and 15 in closed/uts); drivers that call platform interfaces get a build for
each platform ("both"), the i86xen one ported to the hypervisor.  A driver with
platform code moved to ``intel`` fails to link (``ld: fatal: symbol referencing
errors``); a driver left out of i86xen is missing at boot ("krtld: failed to
load drv/rootnex").
"""

from __future__ import annotations

from ..hooks import hook

PLACES = ("intel", "i86pc", "i86xen", "both")


def _valid(place):
    if place not in PLACES:
        return f"expected one of {', '.join(repr(p) for p in PLACES)}"
    return None


def driver_platform_fixed(driver):
    return "both" if driver.platform_symbols else "intel"


@hook("driver_platform", stage="platforms", reference=driver_platform_fixed, validate=_valid)
def driver_platform(driver):
    """Where the build puts one driver.

    ``driver`` has ``.name``, ``.description`` and ``.platform_symbols`` (the
    platform interfaces it calls besides the DDI; empty for a driver that uses
    only the DDI).  Return ``"intel"`` (one build, common to both platforms),
    ``"i86pc"``, ``"i86xen"`` or ``"both"`` (a build under each platform).
    2007 default: everything stays in i86pc.
    """
    return "i86pc"
