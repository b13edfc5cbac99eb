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
  The result is checked against the device's DMA attributes.
"""

from __future__ import annotations

from .ddi import Cookie, DdiFailure
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


def dma_bindhdl(k, dip, attr, va: int, length: int) -> list:
    """The cookies for a kernel buffer, from the PFN each page's PTE names."""
    first = va & ~(PAGESIZE - 1)
    npages = ((va + length - first) + PAGESIZE - 1) // PAGESIZE
    pfns = []
    for i in range(npages):
        pfn = k.hat.getpfnum(first + i * PAGESIZE)
        if pfn == MFN_INVALID:
            raise DdiFailure(f"{dip.instname}: DMA bind of {va:#x}: page "
                             f"{first + i * PAGESIZE:#x} is not mapped")
        pfns.append(pfn)
    raw = k.hooks.call("dma_cookies", pfns, va - first, length, k.plat.pfn_to_mfn)
    cookies = split_cookies([Cookie(int(a), int(n)) for a, n in raw], attr)
    check_cookies(dip, attr, cookies, length)
    k.dma_bindings.append((dip.instname, va, length, pfns, cookies))
    return cookies


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
