"""Boot phases after ``mp_startup``: the VM, the device tree, drivers, DMA.

Mixed into :class:`xenlab.kernel.Kernel`.  Each phase records a milestone; a
driver that fails is recorded in ``attach_failures`` (the lab layer decides
what a failure means for its stage):

==================  ==========================================================
``startup_vm``      the page allocator, the HAT, kmem, the device arena, the
                    I/O pools (``populate_io_pool`` hook), the buffer cache
``configure``       full PCI enumeration, the device tree, driver binding and
                    attach: each driver maps its registers (``rootnex_reg_pfn``)
``configure_deferred``  attach again what Xen's page-table checks refused the
                    first time; ``release_bootstrap`` frees boot-time memory
``dma_setup``       the boot disk reads its label by DMA (``dma_cookies``);
                    NICs allocate their rings (``contig_alloc``)
``lowmem_setup``    32-bit devices allocate their contiguous DMA memory
==================  ==========================================================
"""

from __future__ import annotations

import struct

from .ddi import Ddi, DdiFailure, DevInfo
from .drivers import DRIVERS, DiskDriver, DriverFailure, pci_driver_for
from .hat import Hat, HatError, PFN_IS_FOREIGN_MFN
from .phase import phase
from .vm import DEVICE_BASE, DEVICE_SIZE, PAGESIZE, Arena, Kmem

BUFCACHE_PAGES = 32
BOOT_SCRATCH_PAGES = 4
LABEL_SECTORS = 64                  # the first 32 KiB of the disk: MBR, VTOC, superblock
SOLARIS_PART = 0xBF                 # fdisk type of a Solaris2 partition
VTOC_SANE = 0x600DDEEE              # illumos sys/vtoc.h
FS_MAGIC = 0x011954                 # illumos sys/fs/ufs_fs.h
SB_MAGIC_OFFSET = 1372              # fs_magic in struct fs


class Autoconf:
    """The phases; ``self`` is the Kernel."""

    # -------------------------------------------------------------- startup_vm
    @phase
    def startup_vm(self):
        """startup_vm: memory management the rest of the boot relies on."""
        from .contig import XenMem, populate_io_pool
        self.pages = self.plat.init_pages()
        self.hat = Hat(self)
        self.kmem = Kmem(self)
        self.devarena = Arena("device", DEVICE_BASE, DEVICE_SIZE)
        self.ddi = Ddi(self)
        self.xenmem = XenMem(self)
        self.dma_allocations = []
        self.dma_bindings = []
        self.contig_log = []
        self.copybuf_log = []               # bindings that needed bounce pages
        self.io_pools = {}
        self.io_pool_lent = {}              # pfn -> the I/O pool it came from
        if self.plat.pv:
            populate_io_pool(self)
        self.bufcache = self.alloc_bufcache()
        self.boot_scratch = self.kmem.alloc(BOOT_SCRATCH_PAGES * PAGESIZE)
        pools = ", ".join(f"{n} {len(p)} pages" for n, p in self.io_pools.items()) or "none"
        self.printf(f"mem = {self.pages.total * 4}K ({self.pages.total} pages free), "
                    f"io pools: {pools}\n")
        self.milestone("startup_vm")

    def alloc_bufcache(self) -> int:
        """The buffer cache: PFN-contiguous pages for block I/O.  Its place in
        dom0's pseudo-physical space comes from the ``bio_skew`` tunable
        (etc/system, set per variant): under Xen the first block read then
        straddles one of Xen's 2 MiB machine chunks."""
        skew = int(self.tunables.get("bio_skew", 0)) % 512
        pages = self.pages
        pfns = None
        if self.plat.pv and skew:
            boundary = (pages.npages // 512) * 512
            while boundary - skew > 0:
                first = boundary - skew
                if pages.free[first:first + BUFCACHE_PAGES].all():
                    pfns = list(range(first, first + BUFCACHE_PAGES))
                    for p in pfns:
                        pages.take(p)
                    break
                boundary -= 512
        if pfns is None:                    # natively: where 32-bit DMA reaches it
            first = pages.page_create_run(BUFCACHE_PAGES,
                                          limit=None if self.plat.pv else 1 << 20)
            pfns = list(range(first, first + BUFCACHE_PAGES))
        return self.kmem.map_pages(pfns)

    def page_free(self, pfns):
        """Give pages back to the allocator; a PFN that is not one of ours (a
        foreign PFN, or out of range) is a fatal inconsistency."""
        for p in pfns:
            if p < 0 or p & PFN_IS_FOREIGN_MFN or p >= self.pages.npages:
                self.panic(f"page_free: pfn {p & ((1 << 64) - 1):#x} is not a page of this "
                           f"system (hat_getpfnum gave a foreign or bogus PFN)")
        self.pages.page_free(pfns)

    # -------------------------------------------------------------- configure
    @phase
    def configure(self):
        """The device tree: enumerate PCI, bind and attach drivers."""
        from .pci import pci_setup_tree
        self.pci_tree = pci_setup_tree(self)
        self.devinfo = self.build_tree(self.pci_tree)
        self.attach_failures = []
        n = sum(1 for _ in self.devinfo.walk())
        self.printf(f"pci: {len(self.pci_tree)} functions on "
                    f"{len({f.bus for f in self.pci_tree})} buses; {n} device nodes\n")
        for dip in self.devinfo.walk():
            if dip.state == "bound":
                self.attach(dip)
        self.milestone("configure")

    def build_tree(self, funcs) -> DevInfo:
        root = DevInfo("", driver="rootnex", instance=0, state="attached")
        pcie = bool(getattr(self, "acpi_has_mcfg", False)) or "npe" in self.modules
        nexus = {}
        by_bus = {}
        for f in funcs:
            by_bus.setdefault(f.bus, []).append(f)
        bridges = {f.secondary: f for f in funcs if f.secondary is not None}
        counters: dict[str, int] = {}

        def node_for_bus(bus: int) -> DevInfo:
            if bus in nexus:
                return nexus[bus]
            if bus in bridges:
                parent = node_of[bridges[bus].bdf]
            else:                                   # a root bus: a pci nexus node
                drv = "npe" if pcie else "pci"
                parent = DevInfo("pci", root, f"{bus:x},0", driver=drv,
                                 instance=counters.setdefault(drv, 0))
                counters[drv] += 1
                root.children.append(parent)
            nexus[bus] = parent
            return parent

        node_of = {}
        for f in sorted(funcs, key=lambda f: (f.bus, f.dev, f.func)):
            parent = node_for_bus(f.bus)
            unit = f"{f.dev:x}" + (f",{f.func:x}" if f.func else "")
            name = f"pci{f.vendor:x},{f.device:x}"
            drv = pci_driver_for(f, pcie)
            dip = DevInfo(name, parent, unit, pci=f, driver=drv,
                          state="bound" if drv else "no driver")
            if drv:
                dip.instance = counters.setdefault(drv, 0)
                counters[drv] += 1
            parent.children.append(dip)
            node_of[f.bdf] = dip
        return root

    def modload(self, name: str) -> bool:
        """Is the driver in this platform's build (the boot archive)?"""
        if name in self.modules:
            return True
        files = getattr(self, "_archive_files", None)
        if files is None:
            files = self._archive_files = self.boot_archive_files()
        for d in (f"platform/{self.plat.name}/kernel", "kernel"):
            if f"{d}/drv/amd64/{name}" in files:
                self.modules.append(name)
                return True
        return False

    def attach(self, dip: DevInfo):
        """Load the driver and call its attach; a failure leaves the node
        ``failed`` (or ``deferred`` when Xen refused a mapping)."""
        if not self.modload(dip.driver):
            dip.state, dip.why = "failed", f"{dip.driver}: module not found"
            self.attach_failures.append((dip, dip.why))
            return
        drv = DRIVERS.get(dip.driver)
        refused = len(self.hat.refused)
        try:
            if drv is not None:
                drv().attach(self, dip)
        except (DriverFailure, DdiFailure) as e:
            dip.why = str(e)
            dip.state = "deferred" if len(self.hat.refused) > refused else "failed"
            self.cmn_err(2, str(e))
            self.attach_failures.append((dip, dip.why))
            return
        dip.state = "attached"
        if dip.pci is not None:
            self.printf(f"{dip.instname} is {dip.path}\n")

    @phase
    def configure_deferred(self):
        """Attach again every driver whose register mapping Xen refused, then
        release the boot-time scratch memory."""
        again = [d for d in self.devinfo.walk() if d.state == "deferred"]
        self.attach_failures = []
        for dip in again:
            dip.state = "bound"
            self.attach(dip)
        self.release_bootstrap()
        self.milestone("configure_deferred")

    def release_bootstrap(self):
        """release_bootstrap: boot-time kernel memory goes back to the free list
        (kmem_free finds each page's PFN through its PTE)."""
        if self.boot_scratch:
            self.kmem.free(self.boot_scratch)
            self.boot_scratch = 0

    # -------------------------------------------------------------- DMA
    def drivers_of(self, phase: str):
        for dip in self.devinfo.walk():
            drv = DRIVERS.get(dip.driver) if dip.state == "attached" else None
            if drv is not None and drv.dma_phase == phase:
                yield dip, drv()

    @phase
    def dma_setup(self):
        """The boot disk reads its label by DMA (polled); then the other
        drivers of this phase set up their DMA memory."""
        self.attach_failures = []
        disks = [(dip, drv) for dip, drv in self.drivers_of("dma")
                 if isinstance(drv, DiskDriver)]
        for dip, drv in disks:
            try:
                drv.dma_setup(self, dip)
            except (DriverFailure, DdiFailure) as e:
                self._setup_failed(dip, e)
        self.rootdisk = self.find_rootdisk()
        if self.rootdisk is not None:
            self.read_label(self.rootdisk)
        for dip, drv in self.drivers_of("dma"):
            if isinstance(drv, DiskDriver):
                continue
            try:
                drv.dma_setup(self, dip)
            except (DriverFailure, DdiFailure) as e:
                self._setup_failed(dip, e)
        self.milestone("dma_setup")

    @phase
    def lowmem_setup(self):
        self.attach_failures = []
        for dip, drv in self.drivers_of("lowmem"):
            try:
                drv.dma_setup(self, dip)
            except (DriverFailure, DdiFailure) as e:
                self._setup_failed(dip, e)
        self.milestone("lowmem_setup")

    def _setup_failed(self, dip, e):
        dip.state, dip.why = "failed", str(e)
        self.cmn_err(2, str(e))
        self.attach_failures.append((dip, dip.why))

    def find_rootdisk(self):
        """The first disk of the first attached disk driver (the boot disk)."""
        for dip in self.devinfo.walk():
            drv = DRIVERS.get(dip.driver)
            if dip.state == "attached" and drv is not None and issubclass(drv, DiskDriver):
                d = drv().disks(dip)
                if d:
                    return (dip, drv(), d[0])
        return None

    def disk_path(self, root) -> str:
        dip, drv, disk = root
        if "channel" in disk:
            return f"{dip.path}/ide@{disk['channel']['channel']}/cmdk@0,0"
        return f"{dip.path}/disk@{disk['port']:x},0"

    def read_label(self, root):
        """cmlb: the MBR's Solaris partition, its VTOC and the UFS superblock,
        one DMA read of the first 32 KiB."""
        dip, drv, disk = root
        va = self.bufcache
        self.label_read = None
        try:
            cookies = drv.read(self, dip, disk, 0, LABEL_SECTORS, va, interrupt=False)
        except (DriverFailure, DdiFailure) as e:
            self._setup_failed(dip, e)
            return
        data = self.kcpu.read(va, LABEL_SECTORS * 512)
        h = (dip.soft or {}).get("dma")
        cb = h.copybuf if h is not None else None
        # copybuf: (page of the buffer, the bounce page the disk was given instead:
        # its PFN and, at the time, its machine frame)
        bounced = list(zip(cb.pages, cb.pfns, cb.frames)) if cb is not None else []
        self.label_read = {"va": va, "lba": 0, "sectors": LABEL_SECTORS, "cookies": cookies,
                           "copybuf": bounced}
        label = parse_label(data)
        path = self.disk_path(root)
        if label is None:
            why = f"{path} (Disk0): corrupt label - wrong magic number"
            self.cmn_err(2, why)
            self.attach_failures.append((dip, why))
            return
        self.label = label
        self.printf(f"cmlb: {path}: Solaris partition at {label['start']}, "
                    f"volume '{label['volume']}', ufs root\n")


def parse_label(data: bytes) -> dict | None:
    """The MBR's first Solaris2 partition, its VTOC (sector 1 of the
    partition) and the UFS superblock (8 KiB into it); None if any magic is
    wrong."""
    if len(data) < LABEL_SECTORS * 512 or data[510:512] != b"\x55\xaa":
        return None
    start = None
    for i in range(4):
        e = data[446 + 16 * i:462 + 16 * i]
        if e[4] == SOLARIS_PART:
            start = struct.unpack_from("<I", e, 8)[0]
            break
    if start is None or (start + 32) * 512 > len(data):
        return None
    vtoc = data[(start + 1) * 512:(start + 2) * 512]
    sane, = struct.unpack_from("<I", vtoc, 12)
    if sane != VTOC_SANE:
        return None
    sb = data[(start + 16) * 512:]
    magic, = struct.unpack_from("<I", sb, SB_MAGIC_OFFSET)
    if magic != FS_MAGIC:
        return None
    return {"start": start, "volume": vtoc[16:24].split(b"\0")[0].decode("latin-1"),
            "svc_lba": start + 32}


def make_label(volume: str = "xenlab", start: int = 16) -> bytes:
    """The first 32 KiB an installer writes (the inverse of :func:`parse_label`)."""
    data = bytearray(LABEL_SECTORS * 512)
    e = bytearray(16)
    e[0], e[4] = 0x80, SOLARIS_PART
    struct.pack_into("<II", e, 8, start, 1 << 24)
    data[446:462] = e
    data[510:512] = b"\x55\xaa"
    v = (start + 1) * 512
    struct.pack_into("<I", data, v + 12, VTOC_SANE)
    data[v + 16:v + 16 + len(volume)] = volume.encode()
    struct.pack_into("<I", data, (start + 16) * 512 + SB_MAGIC_OFFSET, FS_MAGIC)
    from .svc import services_text
    svc = services_text()
    data[(start + 32) * 512:(start + 32) * 512 + len(svc)] = svc
    return bytes(data)


__all__ = ["Autoconf", "parse_label", "make_label", "HatError"]
