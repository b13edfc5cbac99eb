"""Stage 9, ``lowmem``: memory below a device's address limit.

Devices that can only address 32 bits (USB host controllers, IDE bus
masters) need DMA memory below 4 GiB; ISA DMA, below 16 MiB.  The first pass
of memory-constrained allocation asked Xen (``XENMEM_exchange`` with
``address_bits``).  "Xen's low mem alloc implementation is linux specific.
Only allocates memory < 4G && > 2G": Xen 3.1 of the story serves such a
request from the 2-4 GiB zone only -- and on a machine with more than 4 GiB,
dom0 already owns all of it (Xen gave dom0 its memory top-down), so the
request fails and the 32-bit device cannot attach.  (On a machine of 4 GiB or
less Xen ignores a 32-bit limit: the first pass works there.)

The fix ("redo our first pass at implementing memory constrained allocs"):
dom0 owns plenty of machine frames below 4 GiB -- set some aside at startup
in I/O pools (illumos ``io_pool_4g``, ``io_pool_16m``) and serve constrained
allocations from them, finding machine-contiguous runs in MFN order; never
ask Xen for memory below 2 GiB it cannot give.
"""

from __future__ import annotations

from ..hooks import hook, valid_pfn_list

PFN_4G = 1 << 20            # frames below 4 GiB
PFN_16M = 1 << 12           # frames below 16 MiB
POOL_PAGES = 1024           # io_pool_4g: 4 MiB


def _valid_pools(p):
    if p is None:
        return None
    if not isinstance(p, dict) or not set(p) <= {"io_pool_16m", "io_pool_4g"}:
        return "expected a dict {'io_pool_16m': [pfn, ...], 'io_pool_4g': [pfn, ...]}"
    for k, v in p.items():
        if not isinstance(v, (list, tuple)) or not all(isinstance(x, int) for x in v):
            return f"{k}: expected a list of PFNs (ints)"
    return None


def populate_io_pool_fixed(free):
    return {"io_pool_16m": [pfn for mfn, pfn in free if mfn < PFN_16M],
            "io_pool_4g": [pfn for mfn, pfn in free if PFN_16M <= mfn < PFN_4G][:POOL_PAGES]}


def io_pool_alloc_fixed(pool, npages, attr):
    lo, hi = attr.addr_lo >> 12, attr.addr_hi >> 12
    run = []
    for mfn, pfn in sorted(pool):
        if not lo <= mfn <= hi:
            continue
        if run and mfn != run[-1][0] + 1:
            run = []
        if not run and attr.seg < (1 << 64) - 1:
            last = ((mfn + npages) << 12) - 1
            if (mfn << 12) & ~attr.seg != last & ~attr.seg:
                continue
        run.append((mfn, pfn))
        if len(run) == npages:
            return [p for _, p in run]
    return None


@hook("populate_io_pool", stage="lowmem", reference=populate_io_pool_fixed,
      validate=_valid_pools)
def populate_io_pool(free):
    """Startup (dom0): which free pages to set aside for devices with address limits.

    ``free``: ``[(mfn, pfn), ...]`` -- free pages, lowest machine frame first.
    Return ``{"io_pool_16m": [pfn, ...], "io_pool_4g": [pfn, ...]}`` (pages
    below 16 MiB and below 4 GiB); they leave the free list.  2007 default:
    no pools (None).
    """
    return None


@hook("io_pool_alloc", stage="lowmem", reference=io_pool_alloc_fixed, validate=valid_pfn_list)
def io_pool_alloc(pool, npages, attr):
    """``npages`` pages from an I/O pool whose machine frames are consecutive,
    within ``attr.addr_lo``..``attr.addr_hi`` and not crossing a
    ``attr.seg + 1`` boundary; or None.

    ``pool``: ``[(mfn, pfn), ...]`` of the pool.  Return the PFNs in machine
    order.  2007 default: None (there were no pools; the kernel asks Xen).
    """
    return None


__all__ = ["populate_io_pool", "populate_io_pool_fixed", "io_pool_alloc",
           "io_pool_alloc_fixed"]
