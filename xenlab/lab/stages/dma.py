"""Stage 8, ``dma``: DMA cookies carry machine addresses; contiguous memory.

A device reaches memory at the addresses in its DMA cookies -- and a device
knows nothing of dom0's pseudo-physical numbering: it needs *machine*
addresses.  The root nexus builds the cookies of a buffer from the PFN of
each page (``hat_getpfnum``).  The 2007 bind routine put ``pfn << 12`` in the
cookies, and merged pages whose PFNs were consecutive: the IDE controller's
PRD entries sent the disk's label to some other machine frame and the buffer
kept what it had (cmlb: "corrupt label - wrong magic number").  Fix (step 1,
hook ``dma_cookies``): ``pfn_to_mfn(pfn) << 12``, and a new cookie wherever
the *machine* frames are not consecutive (dom0's memory comes in 2 MiB
machine chunks).

Step 2 (hook ``contig_alloc``): a device that takes one address for a
multi-page buffer (a NIC's descriptor ring) needs machine-contiguous memory.
"I hadn't coded up the contig alloc code path changes yet": the 2007 i86xen
code had none, so the NIC drivers could not allocate their rings.  Fix: ask
Xen for a machine-contiguous extent with ``XENMEM_exchange`` (giving back as
many pages; ``address_bits`` when the device has an address limit) and give
the PFNs their new machine frames (``reassign_pfn``).
"""

from __future__ import annotations

from ...kernel.intel.rootnex import cookies_by_frame
from ..hooks import hook, valid_pfn_list


def _valid_cookies(cookies):
    if not isinstance(cookies, (list, tuple)) or not all(
            isinstance(c, (list, tuple)) and len(c) == 2 and all(isinstance(x, int) for x in c)
            for c in cookies):
        return "expected a list of (address, size) pairs of ints"
    if any(n <= 0 or a < 0 for a, n in cookies):
        return "every cookie needs a non-negative address and a positive size"
    return None


def dma_cookies_fixed(pfns, offset, length, pfn_to_mfn):
    return cookies_by_frame(pfns, offset, length, pfn_to_mfn)


def contig_alloc_fixed(npages, attr, xen):
    if xen is None:
        return None
    bits = attr.address_bits if (attr.addr_hi >> 12) < xen.max_mfn else 0
    return xen.exchange(npages, bits)


@hook("dma_cookies", stage="dma", reference=dma_cookies_fixed, validate=_valid_cookies)
def dma_cookies(pfns, offset, length, pfn_to_mfn):
    """The DMA cookies (bus address, size) of a buffer.

    ``pfns``: the PFN of each page of the buffer, in order; ``offset``: where
    the buffer starts in the first page; ``length``: its size in bytes;
    ``pfn_to_mfn(pfn)``: the kernel's translation (``mfn_list``; identity on
    i86pc).  Return a list of ``(address, size)``, one per physically
    contiguous run.  2007 default: ``pfn << 12``, runs of consecutive PFNs.
    """
    return cookies_by_frame(pfns, offset, length, lambda pfn: pfn)


@hook("contig_alloc", stage="dma", reference=contig_alloc_fixed, validate=valid_pfn_list)
def contig_alloc(npages, attr, xen):
    """``npages`` pages whose *machine* frames are consecutive and within the
    device's DMA attributes ``attr`` (``.addr_lo``, ``.addr_hi``,
    ``.address_bits``, ``.seg``), or None.

    ``xen`` (i86xen; None natively, where this is not called) offers
    ``xen.exchange(npages, address_bits)`` -- XENMEM_exchange of free pages
    for one machine-contiguous extent below ``2**address_bits`` (0: anywhere),
    the PFNs reassigned -- and ``xen.max_mfn``.  Return the PFNs.  2007
    default: None (the contig alloc path was not coded yet on i86xen).
    """
    return None


__all__ = ["dma_cookies", "dma_cookies_fixed", "contig_alloc", "contig_alloc_fixed"]
