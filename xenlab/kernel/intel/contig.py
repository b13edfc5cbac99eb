"""DMA memory: ``page_create_io`` and its helpers (illumos vm_machdep.c).

A device addresses *machine* memory.  Natively a physical page is a machine
page, and the allocator simply finds pages below the device's limit
(contiguous when the device needs one cookie).  Under Xen, dom0's pages are
pseudo-physical: their machine frames are wherever Xen put them (on a big
machine mostly above 4 GiB), and two consecutive PFNs are machine-contiguous
only inside one of Xen's 2 MiB chunks.  So, under Xen (``__xpv``):

* a page that needs no contiguity is taken from the free list if its MFN
  fits the device's range; otherwise it must come from elsewhere;
* *elsewhere* is, in order: the kernel's **I/O pools** (``io_pool_16m``,
  ``io_pool_4g``: pages set aside at startup because their MFNs are low --
  stage ``lowmem``, hooks ``populate_io_pool`` and ``io_pool_alloc``), then
  **the hypervisor** (``contig_alloc`` hook, stage ``dma``: trade pages for a
  machine-contiguous extent with ``XENMEM_exchange`` and ``address_bits``,
  then give the PFNs their new frames with ``reassign_pfn``).

Xen 3.1 of the story serves a request limited to 32 address bits or fewer
only from 2-4 GiB (``lowmem_2g_4g``): on a machine with more than 4 GiB, dom0
already owns all of that zone, so the hypervisor path fails there.
"""

from __future__ import annotations

from .ddi import DdiFailure
from .vm import OutOfMemory, PAGESIZE


class XenMem:
    """What the ``contig_alloc`` hook may do with the hypervisor (i86xen)."""

    def __init__(self, kernel):
        self.k = kernel
        self.requests: list[dict] = []          # every exchange asked for, and its result

    @property
    def max_mfn(self) -> int:
        return self.k.plat.max_ram_page()

    def exchange(self, npages: int, address_bits: int = 0) -> list | None:
        """``XENMEM_exchange``: give Xen ``2**order >= npages`` of our free
        pages, get back one machine-contiguous extent (below ``2**address_bits``
        if non-zero) for the same PFNs; returns the ``npages`` PFNs or None."""
        return self.k.plat.exchange_contig(npages, address_bits, self.requests)


def _mfn_ok(mfn: int, attr) -> bool:
    return (attr.addr_lo >> 12) <= mfn <= (attr.addr_hi >> 12)


def contiguous_ok(k, pfns, attr) -> bool:
    """Are the pages' frames in range, consecutive, and inside one segment?"""
    frames = [k.plat.pfn_to_frame(p) for p in pfns]
    if any(not _mfn_ok(f, attr) for f in frames):
        return False
    if any(b != a + 1 for a, b in zip(frames, frames[1:])):
        return False
    first, last = frames[0] << 12, (frames[-1] << 12) + PAGESIZE - 1
    return attr.seg >= (1 << 64) - 1 or (first & ~attr.seg) == (last & ~attr.seg)


def page_create_io(k, npages: int, attr, contig: bool, *, owner: str = "") -> list:
    """``npages`` pages a device with attributes ``attr`` can reach (machine-
    contiguous if ``contig``); raises DdiFailure when there are none."""
    if not k.plat.pv:
        return _native(k, npages, attr, contig, owner)
    max_mfn = k.plat.max_ram_page()
    anyaddr = attr.addr_lo == 0 and (attr.addr_hi >> 12) >= max_mfn
    if not contig:
        out = []
        for _ in range(npages):
            pfn = k.pages.page_create(1)[0]
            if anyaddr or _mfn_ok(k.plat.pfn_to_mfn(pfn), attr):
                out.append(pfn)
                continue
            k.pages.page_free([pfn])
            got = _special(k, 1, attr, owner)
            if got is None:
                k.pages.page_free(out)
                raise DdiFailure(_why(k, 1, attr, owner))
            out += got
        return out
    if anyaddr and npages == 1:
        return k.pages.page_create(1)
    got = _special(k, npages, attr, owner)
    if got is None:
        raise DdiFailure(_why(k, npages, attr, owner))
    return got


def _special(k, npages: int, attr, owner: str) -> list | None:
    """The I/O pools, then the hypervisor."""
    got = io_pool_take(k, npages, attr)
    if got is not None:
        k.contig_log.append((owner, "io pool", npages, got))
        return got
    got = k.hooks.call("contig_alloc", npages, attr, k.xenmem)
    if got is not None:
        got = [int(p) for p in got]
        if len(got) != npages or not contiguous_ok(k, got, attr):
            k.panic(f"contig_alloc: returned {len(got)} pages that are not {npages} "
                    f"machine-contiguous pages within {attr.describe()}")
        k.contig_log.append((owner, "hypervisor", npages, got))
    return got


def _why(k, npages, attr, owner) -> str:
    last = k.xenmem.requests[-1] if k.xenmem.requests else None
    tail = (f"; XENMEM_exchange(address_bits={last['address_bits']}) gave "
            f"{last['done']} of 1 extents" if last else "")
    return (f"{owner}: cannot allocate {npages} page{'s' if npages != 1 else ''} of DMA "
            f"memory ({attr.describe()}){tail}")


def io_pool_take(k, npages: int, attr) -> list | None:
    """page_io_pool_alloc: the ``io_pool_alloc`` hook over the pool that fits
    the device (io_pool_16m for ISA-limited devices, else io_pool_4g, then
    io_pool_16m); the pages it picks leave the pool."""
    pools = k.io_pools
    if not pools:
        return None
    order = ["io_pool_16m"] if (attr.addr_hi >> 12) < (16 << 20 >> 12) else \
        ["io_pool_4g", "io_pool_16m"]
    for name in order:
        pool = pools.get(name, [])
        if not pool:
            continue
        got = k.hooks.call("io_pool_alloc", list(pool), npages, attr)
        if got is None:
            continue
        got = [int(p) for p in got]
        members = {pfn for _, pfn in pool}
        if len(got) != npages or not set(got) <= members or not contiguous_ok(k, got, attr):
            k.panic(f"io_pool_alloc: returned pages {[hex(p) for p in got]} that are not "
                    f"{npages} machine-contiguous pages of {name} within {attr.describe()}")
        pools[name] = [(m, p) for m, p in pool if p not in set(got)]
        for p in got:
            k.io_pool_lent[p] = name
        return got
    return None


def page_destroy_io(k, pfns):
    """Give back pages that ``page_create_io`` handed out for a while (a copy
    buffer): a page lent by an I/O pool returns to that pool, any other page
    to the free list."""
    back = []
    for pfn in pfns:
        name = k.io_pool_lent.pop(pfn, None)
        if name is None:
            back.append(pfn)
            continue
        pool = k.io_pools.setdefault(name, [])
        pool.append((k.plat.pfn_to_mfn(pfn), pfn))
        pool.sort()
    if back:
        k.page_free(back)


def populate_io_pool(k, candidates: int = 65536):
    """Startup (dom0 only): the ``populate_io_pool`` hook is shown the free
    pages with the lowest machine frames ((mfn, pfn), lowest first) and picks
    the ones to set aside per pool; those leave the free list."""
    import numpy as np
    pages = k.pages
    part, lo = k.plat.mfn_list_array()
    pfns = np.flatnonzero(pages.free[lo:lo + len(part)])     # indices into part
    if len(pfns):
        order = np.argsort(part[pfns], kind="stable")[:candidates]
        cand = [(int(part[i]), int(i) + lo) for i in pfns[order]]
    else:
        cand = []
    chosen = k.hooks.call("populate_io_pool", cand) or {}
    pools = {}
    for name, members in chosen.items():
        keep = []
        for pfn in members:
            pfn = int(pfn)
            if lo <= pfn < lo + len(part) and pages.take(pfn):
                keep.append((int(part[pfn - lo]), pfn))
        pools[name] = sorted(keep)
    k.io_pools = pools
    return pools


def _native(k, npages, attr, contig, owner) -> list:
    """i86pc: physical pages below the limit, contiguous and aligned so that
    they never cross the device's segment boundary."""
    limit = min((attr.addr_hi >> 12) + 1, k.pages.npages)
    align = 1
    while align < npages:
        align <<= 1
    try:
        if contig or attr.addr_hi < ((k.pages.npages << 12) - 1):
            first = k.pages.page_create_run(npages, limit=limit, align=align)
            return list(range(first, first + npages))
        return k.pages.page_create(npages)
    except OutOfMemory as e:
        raise DdiFailure(f"{owner}: cannot allocate DMA memory ({attr.describe()}): {e}") from None
