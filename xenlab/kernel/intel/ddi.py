"""The DDI: the device tree, drivers' register access and DMA (illumos sunddi).

A driver sees its device through a :class:`DevInfo` node and these calls:

* ``regs_map_setup(dip, rnumber, offset, length)`` -> an access handle: the
  root nexus maps the register set (``rootnex.map_regspec``: a PFN for
  ``hat_devload``), and ``get8/16/32`` / ``put8/16/32`` are real loads and
  stores on the vCPU (locore's ``mmio_*`` stubs), so a device frame makes the
  CPU exit to the device model and a RAM frame is just RAM;
* ``dma_mem_alloc(dip, attr, length)`` -> DMA-able memory meeting the DMA
  attributes (``page_create_io``: ``xenlab.kernel.intel.contig``);
* ``dma_bind(dip, attr, va, length)`` -> the cookies the device is given (the
  root nexus builds them: ``rootnex.dma_bindhdl``) -- bus addresses a device
  uses, checked against the attributes (``sgllen``, ``seg``, ``count_max``);
  ``dma_bind_handle`` -> the whole binding (:class:`DmaHandle`), which a driver
  gives back with ``dma_unbind`` when the transfer is over.  A page the device
  cannot reach (its machine frame outside ``addr_lo``..``addr_hi``) is bound
  through a *copy buffer* (bounce pages within the limits): ``dma_sync``
  copies the data across -- FORDEV before the device reads memory, FORCPU /
  FORKERNEL after it wrote -- and bind / unbind do so for the direction given.

Failures raise :class:`DdiFailure` with a message a driver prints.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .vm import PAGESIZE


class DdiFailure(Exception):
    """DDI_FAILURE, with the reason."""


@dataclass
class DmaAttr:
    """ddi_dma_attr_t: what a device can address."""

    addr_lo: int = 0
    addr_hi: int = (1 << 64) - 1
    count_max: int = (1 << 32) - 1       # largest cookie
    align: int = 1
    seg: int = (1 << 64) - 1             # a cookie may not cross a (seg + 1) boundary
    sgllen: int = 1 << 16                # most cookies per binding
    minxfer: int = 1

    @property
    def address_bits(self) -> int:
        """highbit(addr_hi): the XENMEM address_bits of a request for this device."""
        return self.addr_hi.bit_length()

    def describe(self) -> str:
        return (f"addr <= {self.addr_hi:#x}, sgllen {self.sgllen}, "
                f"seg {self.seg:#x}, align {self.align:#x}")


@dataclass
class Cookie:
    """ddi_dma_cookie_t: one bus address range of a binding."""

    address: int
    size: int

    def __iter__(self):
        return iter((self.address, self.size))


# ddi_dma_addr_bind_handle flags: the direction of the transfers
DDI_DMA_WRITE = 0x1          # memory -> device
DDI_DMA_READ = 0x2           # device -> memory
DDI_DMA_RDWR = DDI_DMA_READ | DDI_DMA_WRITE

# ddi_dma_sync directions
DDI_DMA_SYNC_FORDEV = 0x0
DDI_DMA_SYNC_FORCPU = 0x1
DDI_DMA_SYNC_FORKERNEL = 0x2


@dataclass
class CopyBuf:
    """The bounce pages of a binding: ``pfns[i]`` (mapped at ``va + i * PAGESIZE``,
    machine frame ``frames[i]`` while bound) stands in for page ``pages[i]`` of
    the bound buffer, at the same offset."""

    va: int
    pfns: list
    pages: list
    frames: list


@dataclass
class DmaHandle:
    """ddi_dma_handle_t once bound: the buffer, the pages the device really
    reaches, its cookies and, if some pages were out of the device's reach,
    the copy buffer standing in for them."""

    dip: "DevInfo"
    attr: DmaAttr
    va: int
    length: int
    flags: int
    pfns: list                           # the buffer's pages
    dev_pfns: list                       # the pages the device is given (copy pages swapped in)
    cookies: list
    copybuf: CopyBuf | None = None
    bound: bool = True


@dataclass
class DmaMem:
    """Memory from dma_mem_alloc: its kernel address, pages, and the request."""

    va: int
    pfns: list
    length: int
    attr: DmaAttr
    contig: bool
    owner: str = ""


@dataclass
class AccHandle:
    """ddi_acc_handle_t: a mapped register set."""

    dip: "DevInfo"
    rnumber: int
    va: int
    length: int
    paddr: int


@dataclass
class DevInfo:
    """A device tree node (dev_info_t)."""

    name: str                            # node name (pci8086,100e; ide; asy)
    parent: "DevInfo | None" = None
    unit: str = ""                       # unit address (3,0 for dev 3 fn 0)
    pci: object = None                   # xenlab.kernel.intel.pci.PciFunc
    isa: dict | None = None              # ISA device facts (ports, irq)
    driver: str | None = None            # bound driver
    instance: int = -1
    state: str = "bound"                 # bound, attached, failed, deferred, absent
    why: str = ""
    children: list = field(default_factory=list)
    props: dict = field(default_factory=dict)
    maps: list = field(default_factory=list)       # AccHandles
    dma: list = field(default_factory=list)        # DmaMem
    intr: object = None                  # the interrupt spec (psm)
    soft: object = None                  # the driver's soft state

    @property
    def path(self) -> str:
        if self.parent is None:
            return ""
        return f"{self.parent.path}/{self.name}@{self.unit}" if self.unit else \
            f"{self.parent.path}/{self.name}"

    @property
    def instname(self) -> str:
        return f"{self.driver}{self.instance}" if self.driver else self.name

    def walk(self):
        yield self
        for c in self.children:
            yield from c.walk()

    def __repr__(self):
        return f"<DevInfo {self.path or '/'} {self.instname} {self.state}>"


class Ddi:
    """The DDI calls, on behalf of one kernel."""

    def __init__(self, kernel):
        self.k = kernel

    # -- registers -------------------------------------------------------------------
    def regs_map_setup(self, dip: DevInfo, rnumber: int, offset: int = 0,
                       length: int = PAGESIZE) -> AccHandle:
        from . import rootnex
        regs = dip.pci.regs if dip.pci is not None else dip.props.get("reg", [])
        reg = next((r for r in regs if r.index == rnumber), None)
        if reg is None:
            raise DdiFailure(f"{dip.instname}: no register set {rnumber}")
        va = rootnex.map_regspec(self.k, dip, reg, offset, length)
        h = AccHandle(dip, rnumber, va, length, reg.base + offset)
        dip.maps.append(h)
        return h

    def _stub(self, name: str, *args) -> int:
        return self.k.kcpu.call(name, *args)

    def get8(self, h: AccHandle, off: int) -> int:
        return self._stub("mmio_get8", h.va + off) & 0xFF

    def get16(self, h: AccHandle, off: int) -> int:
        return self._stub("mmio_get16", h.va + off) & 0xFFFF

    def get32(self, h: AccHandle, off: int) -> int:
        return self._stub("mmio_get32", h.va + off) & 0xFFFFFFFF

    def put8(self, h: AccHandle, off: int, v: int):
        self._stub("mmio_put8", h.va + off, v)

    def put16(self, h: AccHandle, off: int, v: int):
        self._stub("mmio_put16", h.va + off, v)

    def put32(self, h: AccHandle, off: int, v: int):
        self._stub("mmio_put32", h.va + off, v)

    # -- DMA -------------------------------------------------------------------------------
    def dma_mem_alloc(self, dip: DevInfo, attr: DmaAttr, length: int, *,
                      what: str = "DMA memory") -> DmaMem:
        """ddi_dma_mem_alloc: pages meeting ``attr``, machine-contiguous when the
        device takes fewer cookies than the pages (``sgllen``)."""
        from .contig import page_create_io
        npages = (length + PAGESIZE - 1) // PAGESIZE
        contig = attr.sgllen < npages or (attr.seg + 1) < npages * PAGESIZE
        pfns = page_create_io(self.k, npages, attr, contig, owner=f"{dip.instname} {what}")
        va = self.k.kmem.map_pages(pfns, nosync=True)
        self.k.kcpu.write(va, bytes(npages * PAGESIZE))
        mem = DmaMem(va, pfns, length, attr, contig, f"{dip.instname} {what}")
        dip.dma.append(mem)
        self.k.dma_allocations.append(mem)
        return mem

    def dma_bind(self, dip: DevInfo, attr: DmaAttr, va: int, length: int) -> list:
        """ddi_dma_addr_bind_handle for a binding kept as long as the driver
        lives (rings, tables in dma_mem_alloc memory): its cookies."""
        return self.dma_bind_handle(dip, attr, va, length).cookies

    def dma_bind_handle(self, dip: DevInfo, attr: DmaAttr, va: int, length: int,
                        flags: int = DDI_DMA_RDWR) -> DmaHandle:
        """ddi_dma_addr_bind_handle: the binding of [va, va+length) for
        transfers in direction ``flags``; ``.cookies`` are for the device."""
        from . import rootnex
        return rootnex.dma_bindhdl(self.k, dip, attr, va, length, flags)

    def dma_sync(self, h: DmaHandle, how: int):
        """ddi_dma_sync: make the device's and the CPU's view of the buffer agree."""
        from . import rootnex
        rootnex.dma_sync(self.k, h, how)

    def dma_unbind(self, h: DmaHandle):
        """ddi_dma_unbind_handle: the transfer is over."""
        from . import rootnex
        rootnex.dma_unbindhdl(self.k, h)
