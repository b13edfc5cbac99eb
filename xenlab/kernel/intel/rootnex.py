"""The root nexus: register mappings and DMA bindings for every driver.

* ``map_regspec`` (``ddi_regs_map_setup``): a register set is a physical
  address range read from PCI configuration space.  rootnex turns the address
  into a page frame number for ``hat_devload`` -- the ``rootnex_reg_pfn`` hook
  (stage ``foreign_pfn``): on i86pc the frame *is* the physical page; under Xen
  a device register lives at a machine address that is no page of dom0's, and
  the kernel must hand the HAT a *foreign* PFN (``mfn | PFN_IS_FOREIGN_MFN``)
  that ``pfn_to_mfn`` never looks up in ``mfn_list``.
* ``dma_bindhdl`` (``ddi_dma_addr_bind_handle``): the cookies a device is
  given for a buffer, built from each page's PFN (``hat_getpfnum``) by the
  ``dma_cookies`` hook (stage ``dma``): a device sees machine addresses.
  The result is checked against the device's DMA attributes.  A page whose
  machine frame the device cannot address (beyond ``addr_hi``: a 32-bit IDE
  bus master and a buffer above 4 GiB) is bound through a *copy buffer*:
  bounce pages allocated within the limits (``page_create_io``: the I/O
  pools, then the hypervisor), which ``dma_sync`` keeps in step with the
  buffer; ``dma_unbindhdl`` gives them back.
"""

from __future__ import annotations

from .ddi import (DDI_DMA_READ, DDI_DMA_SYNC_FORCPU, DDI_DMA_SYNC_FORDEV, DDI_DMA_WRITE,
                  Cookie, CopyBuf, DdiFailure, DmaHandle)
from .hat import MFN_INVALID, HatError
from .vm import PAGESHIFT, PAGESIZE


def map_regspec(k, dip, reg, offset: int, length: int) -> int:
    """Map ``length`` bytes of register set ``reg`` from ``offset``; the kernel VA."""
    paddr = reg.base + offset
    if offset + length > reg.size:
        length = max(reg.size - offset, 1)
    first = paddr & ~(PAGESIZE - 1)
    npages = ((paddr + length - first) + PAGESIZE - 1) // PAGESIZE
    pfn = k.hooks.call("rootnex_reg_pfn", k.plat.name, first)
    va = k.devarena.alloc(npages)
    try:
        k.hat.devload(va, pfn, npages)
    except HatError as e:
        raise DdiFailure(f"ddi_regs_map_setup: {dip.instname} reg {reg.index} at "
                         f"{paddr:#x}: hat_devload(pfn {pfn:#x}): {e}") from None
    return va + (paddr - first)


def dma_bindhdl(k, dip, attr, va: int, length: int, flags: int = DDI_DMA_READ | DDI_DMA_WRITE
                ) -> DmaHandle:
    """Bind a kernel buffer: the cookies from the PFN each page's PTE names,
    with a copy buffer for the pages the device cannot reach."""
    first = va & ~(PAGESIZE - 1)
    npages = ((va + length - first) + PAGESIZE - 1) // PAGESIZE
    pfns = []
    for i in range(npages):
        pfn = k.hat.getpfnum(first + i * PAGESIZE)
        if pfn == MFN_INVALID:
            raise DdiFailure(f"{dip.instname}: DMA bind of {va:#x}: page "
                             f"{first + i * PAGESIZE:#x} is not mapped")
        pfns.append(pfn)
    far = pages_beyond_reach(k, pfns, attr)
    copybuf = copybuf_alloc(k, dip, attr, far) if far else None
    dev_pfns = list(pfns)
    if copybuf is not None:
        for i, page in enumerate(copybuf.pages):
            dev_pfns[page] = copybuf.pfns[i]
    try:
        raw = k.hooks.call("dma_cookies", list(dev_pfns), va - first, length, k.plat.pfn_to_mfn)
        cookies = split_cookies([Cookie(int(a), int(n)) for a, n in raw], attr)
        check_cookies(dip, attr, cookies, length)
    except DdiFailure:
        if copybuf is not None:
            copybuf_free(k, copybuf)
        raise
    h = DmaHandle(dip, attr, va, length, flags, pfns, dev_pfns, cookies, copybuf)
    k.dma_bindings.append((dip.instname, va, length, pfns, cookies))
    if copybuf is not None:
        k.copybuf_log.append((dip.instname, va, length, list(zip(copybuf.pages, copybuf.pfns,
                                                                 copybuf.frames))))
        if flags & DDI_DMA_WRITE:
            dma_sync(k, h, DDI_DMA_SYNC_FORDEV)
    return h


def pages_beyond_reach(k, pfns, attr) -> list:
    """The indices of the pages whose machine frame is outside the device's
    [addr_lo, addr_hi] (a frame the kernel cannot name is left alone)."""
    if attr.addr_lo == 0 and attr.addr_hi >= (1 << 64) - 1:
        return []
    lo, hi = attr.addr_lo >> PAGESHIFT, attr.addr_hi >> PAGESHIFT
    out = []
    for i, pfn in enumerate(pfns):
        mfn = k.plat.pfn_to_mfn(pfn)
        if mfn >= 0 and not lo <= mfn <= hi:
            out.append(i)
    return out


def copybuf_alloc(k, dip, attr, pages) -> CopyBuf:
    """Bounce pages within the device's limits, one per page out of reach,
    from the same allocator as DMA memory (I/O pools, then XENMEM_exchange
    with the device's address_bits), mapped for the kernel's copies."""
    from .contig import page_create_io
    owner = f"{dip.instname} copy buffer"
    n = len(pages)
    contig = attr.sgllen < n or (attr.seg + 1) < n * PAGESIZE      # as dma_mem_alloc
    pfns = page_create_io(k, n, attr, contig, owner=owner)
    va = k.kmem.map_pages(pfns, nosync=True)
    return CopyBuf(va, list(pfns), list(pages), [k.plat.pfn_to_frame(p) for p in pfns])


def copybuf_free(k, cb: CopyBuf):
    """Unmap the bounce pages and give them back where they came from."""
    from .contig import page_destroy_io
    k.kmem.unmap_pages(cb.va)
    page_destroy_io(k, cb.pfns)


def dma_sync(k, h: DmaHandle, how: int):
    """Copy between the buffer and its copy buffer: into the bounce pages
    for the device (FORDEV), back into the buffer for the CPU (FORCPU,
    FORKERNEL).  Without a copy buffer the device and the CPU already see
    the same memory."""
    cb = h.copybuf
    if cb is None or not h.bound:
        return
    first = h.va & ~(PAGESIZE - 1)
    end = h.va + h.length
    for i, page in enumerate(cb.pages):
        lo = max(h.va, first + page * PAGESIZE)
        hi = min(end, first + (page + 1) * PAGESIZE)
        if hi <= lo:
            continue
        bounce = cb.va + i * PAGESIZE + (lo & (PAGESIZE - 1))
        if how == DDI_DMA_SYNC_FORDEV:
            k.kcpu.write(bounce, k.kcpu.read(lo, hi - lo))
        else:
            k.kcpu.write(lo, k.kcpu.read(bounce, hi - lo))


def dma_unbindhdl(k, h: DmaHandle):
    """Unbind: what the device wrote reaches the buffer (a read binding with a
    copy buffer), then the copy buffer is freed."""
    if not h.bound:
        raise DdiFailure(f"{h.dip.instname}: DMA unbind of {h.va:#x}: not bound")
    if h.copybuf is not None:
        if h.flags & DDI_DMA_READ:
            dma_sync(k, h, DDI_DMA_SYNC_FORCPU)
        copybuf_free(k, h.copybuf)
    h.bound = False


def split_cookies(cookies, attr) -> list:
    """Cut contiguous runs where the device needs it: at every ``seg + 1``
    boundary and into pieces of at most ``count_max + 1`` bytes."""
    out = []
    for c in cookies:
        a, n = c.address, c.size
        while n > 0:
            take = min(n, attr.count_max + 1)
            if attr.seg < (1 << 64) - 1:
                take = min(take, ((a | attr.seg) + 1) - a)
            out.append(Cookie(a, take))
            a += take
            n -= take
    return out


def check_cookies(dip, attr, cookies, length: int):
    """What a bind refuses (DDI_DMA_TOOBIG / DDI_DMA_NOMAPPING)."""
    if sum(c.size for c in cookies) != length:
        raise DdiFailure(f"{dip.instname}: DMA bind: the cookies cover "
                         f"{sum(c.size for c in cookies)} bytes, the buffer {length}")
    if len(cookies) > attr.sgllen:
        raise DdiFailure(f"{dip.instname}: DMA bind: {len(cookies)} cookies, the device "
                         f"takes {attr.sgllen} (DDI_DMA_TOOBIG)")
    for c in cookies:
        if c.size > attr.count_max + 1:
            raise DdiFailure(f"{dip.instname}: DMA bind: cookie of {c.size} bytes "
                             f"(count_max {attr.count_max:#x})")
        if attr.seg < (1 << 64) - 1 and (c.address & ~attr.seg) != \
                ((c.address + c.size - 1) & ~attr.seg):
            raise DdiFailure(f"{dip.instname}: DMA bind: cookie {c.address:#x}+{c.size:#x} "
                             f"crosses a {attr.seg + 1:#x} boundary")


def cookies_by_frame(pfns, offset: int, length: int, frame_of) -> list:
    """Cookies for a buffer over pages ``pfns`` (from byte ``offset`` of the
    first): one per run of pages whose ``frame_of(pfn)`` are consecutive."""
    out = []
    left = length
    pos = offset
    for pfn in pfns:
        if left <= 0:
            break
        frame = frame_of(pfn)
        take = min(PAGESIZE - pos, left)
        addr = (frame << PAGESHIFT) + pos
        if out and out[-1][0] + out[-1][1] == addr:
            out[-1][1] += take
        else:
            out.append([addr, take])
        left -= take
        pos = 0
    return [tuple(c) for c in out]
