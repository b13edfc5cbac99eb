"""Device drivers: small, but doing what their real counterparts do first.

* nexus drivers (``rootnex``, ``pci``/``npe``, ``pci_pci``/``pcieb``, ``isa``,
  ``pci-ide``): nothing to map;
* PCI leaf drivers without a device model behind them (NICs, USB host
  controllers, display, SCSI/RAID HBAs, audio): ``attach`` maps the first
  register set and checks that it is the device (its first register holds the
  vendor/device ID in this machine model); ``dma_setup`` allocates what the
  real driver allocates at attach: descriptor rings (NICs: machine-contiguous,
  64-bit), transfer-descriptor pools (USB host controllers: machine-contiguous
  and below 4 GiB);
* ``ata`` (on a PCI IDE controller): the task file by port I/O, IDENTIFY by
  PIO at attach, reads by bus-master DMA (a PRD table of machine addresses);
* ``ahci``: the HBA by memory-mapped registers, a reset at attach, commands
  through a command list, received-FIS area and command tables in DMA memory.

Disk reads are polled until the kernel has interrupts (stage ``interrupts``),
then each waits for the controller's interrupt.
"""

from __future__ import annotations

import struct

from .ddi import DDI_DMA_READ, DdiFailure, DmaAttr
from .vm import PAGESIZE

SECTOR = 512


class DriverFailure(Exception):
    """attach (or a later setup step) failed; the message is what the driver printed."""


# ---------------------------------------------------------------------------
# binding: which driver a PCI function gets (illumos driver_aliases, by class)
# ---------------------------------------------------------------------------

NIC_BY_VENDOR = {0x8086: "e1000g", 0x14E4: "bge", 0x10DE: "nge", 0x10EC: "rge", 0x1022: "pcn"}


def pci_driver_for(f, pcie: bool) -> str | None:
    bc, sc, pi = f.base_class, f.subclass, f.progif
    if (bc, sc) == (0x06, 0x04):
        return "pcieb" if pcie else "pci_pci"
    if (bc, sc) == (0x01, 0x01):
        return "pci-ide"
    if (bc, sc) == (0x01, 0x06):
        return "ahci" if pi == 0x01 else ("nv_sata" if f.vendor == 0x10DE else None)
    if (bc, sc) in ((0x01, 0x00), (0x01, 0x07)):
        return "mpt" if f.vendor == 0x1000 else "glm"
    if (bc, sc) == (0x01, 0x04):
        return "mega_sas" if f.vendor == 0x1000 else ("arcmsr" if f.vendor == 0x17D3 else None)
    if (bc, sc) == (0x02, 0x00):
        return NIC_BY_VENDOR.get(f.vendor)
    if (bc, sc) == (0x03, 0x00):
        return "vgatext"
    if (bc, sc) == (0x0C, 0x03):
        return {0x00: "uhci", 0x10: "ohci", 0x20: "ehci"}.get(pi)
    if (bc, sc) == (0x04, 0x01):
        return "audio810"
    return None


# ---------------------------------------------------------------------------
# drivers
# ---------------------------------------------------------------------------

class Driver:
    name = ""
    dma_phase = None            # "dma" or "lowmem": when dma_setup runs

    def attach(self, k, dip):
        pass

    def dma_setup(self, k, dip):
        pass

    def intr(self, k, dip) -> bool:
        """The interrupt service routine: True if the device was interrupting."""
        return False


class Nexus(Driver):
    pass


class RegCheck(Driver):
    """Map register set 0 (the first BAR) and check the device answers there."""

    def attach(self, k, dip):
        f = dip.pci
        want = f.vendor | f.device << 16
        mem = f.mem_regs()
        if mem:
            reg = mem[0]
            try:
                h = k.ddi.regs_map_setup(dip, reg.index, 0, min(reg.size, PAGESIZE))
            except DdiFailure as e:
                raise DriverFailure(str(e)) from None
            got = k.ddi.get32(h, 0)
            where = f"BAR{reg.index} at {reg.base:#x}"
        elif f.io_regs():
            reg = f.io_regs()[0]
            got = k.inl(reg.base)
            where = f"BAR{reg.index} at port {reg.base:#x}"
        else:
            return
        if got != want:
            raise DriverFailure(f"{dip.instname}: {where} reads {got:#010x}, expected the "
                                f"device's ID {want:#010x}: these are not its registers")
        dip.soft = {"id": got}


class Nic(RegCheck):
    """A NIC: receive and transmit descriptor rings, one cookie each (the
    device takes one base address per ring), 64-bit DMA."""

    dma_phase = "dma"
    RING_BYTES = 16 * PAGESIZE
    ATTR = DmaAttr(addr_hi=(1 << 64) - 1, sgllen=1, align=PAGESIZE)

    def dma_setup(self, k, dip):
        for ring in ("rx", "tx"):
            try:
                mem = k.ddi.dma_mem_alloc(dip, self.ATTR, self.RING_BYTES,
                                          what=f"{ring} descriptor ring")
                cookies = k.ddi.dma_bind(dip, self.ATTR, mem.va, self.RING_BYTES)
            except DdiFailure as e:
                raise DriverFailure(f"{dip.instname}: could not allocate {ring} descriptor "
                                    f"ring: {e}") from None
            dip.props[f"{ring}_ring"] = cookies[0].address


class UsbHcd(RegCheck):
    """A USB host controller: a pool of transfer descriptors the controller
    walks by physical address: machine-contiguous and below 4 GiB (32-bit DMA)."""

    dma_phase = "lowmem"
    POOL_BYTES = 16 * PAGESIZE
    ATTR = DmaAttr(addr_hi=0xFFFFFFFF, sgllen=1, align=PAGESIZE)

    def dma_setup(self, k, dip):
        try:
            mem = k.ddi.dma_mem_alloc(dip, self.ATTR, self.POOL_BYTES,
                                      what="transfer descriptor pool")
            cookies = k.ddi.dma_bind(dip, self.ATTR, mem.va, self.POOL_BYTES)
        except DdiFailure as e:
            raise DriverFailure(f"{dip.instname}: failed to allocate the TD pool: {e}") from None
        dip.props["td_pool"] = cookies[0].address


# ---------------------------------------------------------------------------
# disks
# ---------------------------------------------------------------------------

class DiskDriver(Driver):
    """What vfs_mountroot and the label code need from a disk driver."""

    dma_phase = "dma"

    def disks(self, dip) -> list:
        return (dip.soft or {}).get("disks", [])

    def read(self, k, dip, disk, lba: int, nsectors: int, va: int, *, interrupt: bool):
        raise NotImplementedError


# ATA task file (ATA/ATAPI-6 §7) and SFF-8038i bus master registers
ATA_DATA, ATA_ERROR, ATA_COUNT, ATA_LBA0, ATA_LBA1, ATA_LBA2, ATA_DRIVE, ATA_CMD = range(8)
ATA_STATUS = ATA_CMD
ST_ERR, ST_DRQ, ST_DRDY, ST_BSY = 0x01, 0x08, 0x40, 0x80
CMD_IDENTIFY, CMD_READ_DMA = 0xEC, 0xC8
BM_CMD, BM_STATUS, BM_PRDT = 0, 2, 4
BM_START, BM_READ = 0x01, 0x08
BMS_ACTIVE, BMS_ERROR, BMS_IRQ = 0x01, 0x02, 0x04
COMPAT = ((0x1F0, 0x3F6, 14), (0x170, 0x376, 15))
POLL_LIMIT = 20_000          # status reads before a polled command gives up
INTR_WAIT = 4_000_000        # instructions a command waits for its interrupt


class Ata(DiskDriver):
    """``ata`` under ``pci-ide``: both channels, the master drive of each."""

    PRD_ATTR = DmaAttr(addr_hi=0xFFFFFFFF, sgllen=1, seg=0xFFFF, align=PAGESIZE)
    IO_ATTR = DmaAttr(addr_hi=0xFFFFFFFF, sgllen=256, seg=0xFFFF, count_max=0xFFFF)

    def attach(self, k, dip):
        f = dip.pci
        bars = {r.index: r for r in f.regs}
        bm = bars.get(4)
        chans = []
        for ch in (0, 1):
            native = bool(f.progif & (1 << (2 * ch)))
            if native:
                if 2 * ch not in bars or 2 * ch + 1 not in bars:
                    continue
                cmd, ctl = bars[2 * ch].base, bars[2 * ch + 1].base + 2
                irq = None                             # PCI INTx
            else:
                cmd, ctl, irq = COMPAT[ch]
            chans.append({"channel": ch, "cmd": cmd, "ctl": ctl, "isa_irq": irq,
                          "native": native, "bm": bm.base + 8 * ch if bm else None})
        disks = []
        for c in chans:
            k.outb(c["cmd"] + ATA_DRIVE, 0xA0)
            st = k.inb(c["cmd"] + ATA_STATUS)
            if st in (0xFF, 0x00):
                continue                               # nobody on the cable
            k.outb(c["cmd"] + ATA_CMD, CMD_IDENTIFY)
            st = self._poll(k, c["cmd"], ST_DRQ)
            if st is None or st & ST_ERR:
                continue
            buf = k.sym("hcall_args") + 2048
            k.kcpu.call("repinsw", c["cmd"] + ATA_DATA, buf, 256, budget=50_000)
            ident = k.kcpu.read(buf, 512)
            model = bytes(b for i in range(54, 94, 2) for b in (ident[i + 1], ident[i])) \
                .decode("ascii", "replace").strip()
            lba48 = struct.unpack_from("<Q", ident, 200)[0]
            lba28 = struct.unpack_from("<I", ident, 120)[0]
            disks.append({"channel": c, "drive": 0, "model": model,
                          "sectors": lba48 or lba28, "name": f"cmdk{len(disks)}"})
            k.printf(f"ata{dip.instance}: {'native' if c['native'] else 'compatible'} "
                     f"channel {c['channel']}: disk {model}, {(lba48 or lba28) >> 11} MB\n")
        dip.soft = {"channels": chans, "disks": disks}

    def _poll(self, k, cmd_port, want):
        for _ in range(POLL_LIMIT // 100):
            st = k.inb(cmd_port + ATA_STATUS)
            if not st & ST_BSY and (st & want or st & ST_ERR):
                return st
        return None

    def dma_setup(self, k, dip):
        """The PRD table: one page, below 4 GiB, not crossing 64 KiB."""
        if not self.disks(dip):
            return
        try:
            mem = k.ddi.dma_mem_alloc(dip, self.PRD_ATTR, PAGESIZE, what="PRD table")
            cookies = k.ddi.dma_bind(dip, self.PRD_ATTR, mem.va, PAGESIZE)
        except DdiFailure as e:
            raise DriverFailure(f"{dip.instname}: cannot allocate the PRD table: {e}") from None
        dip.soft["prd"] = (mem.va, cookies[0].address)

    def read(self, k, dip, disk, lba, nsectors, va, *, interrupt):
        c = disk["channel"]
        if dip.soft.get("prd") is None:
            raise DriverFailure(f"{dip.instname}: no PRD table")
        nbytes = nsectors * SECTOR
        try:
            h = k.ddi.dma_bind_handle(dip, self.IO_ATTR, va, nbytes, DDI_DMA_READ)
        except DdiFailure as e:
            raise DriverFailure(str(e)) from None
        dip.soft["dma"] = h
        try:
            self._read_dma(k, dip, c, lba, nsectors, h.cookies, interrupt=interrupt)
        except DriverFailure:
            k.ddi.dma_unbind(h)
            raise
        k.ddi.dma_unbind(h)              # a copy buffer's data reaches the buffer here
        return h.cookies

    def _read_dma(self, k, dip, c, lba, nsectors, cookies, *, interrupt):
        """READ DMA into the memory the cookies name (the PRD table)."""
        prd_va, prd_pa = dip.soft["prd"]
        table = b""
        for i, (addr, size) in enumerate(cookies):
            last = 0x80000000 if i == len(cookies) - 1 else 0
            table += struct.pack("<II", addr & 0xFFFFFFFF, (size & 0xFFFF) | last)
        k.kcpu.write(prd_va, table)
        bm = c["bm"]
        k.outb(bm + BM_CMD, 0)
        k.outb(bm + BM_STATUS, BMS_ERROR | BMS_IRQ)       # write one to clear
        k.outl(bm + BM_PRDT, prd_pa)
        cmd = c["cmd"]
        k.outb(c["ctl"], 0 if interrupt else 0x02)        # nIEN: interrupts on or off
        k.outb(cmd + ATA_DRIVE, 0xE0 | ((lba >> 24) & 0xF))
        k.outb(cmd + ATA_COUNT, nsectors & 0xFF)
        k.outb(cmd + ATA_LBA0, lba & 0xFF)
        k.outb(cmd + ATA_LBA1, (lba >> 8) & 0xFF)
        k.outb(cmd + ATA_LBA2, (lba >> 16) & 0xFF)
        dip.soft["busy"] = True
        dip.soft["done"] = False
        k.outb(cmd + ATA_CMD, CMD_READ_DMA)
        k.outb(bm + BM_CMD, BM_START | BM_READ)
        if interrupt:
            ok = k.wait_for(lambda: dip.soft["done"], INTR_WAIT,
                            f"{dip.instname}: READ DMA lba {lba}")
            if not ok:
                k.cmn_err(2, f"ata{dip.instance}: timeout: abort request, target=0 lun=0")
                k.outb(bm + BM_CMD, 0)
                dip.soft["busy"] = False
                raise DriverFailure(f"{dip.instname}: timeout waiting for the interrupt of "
                                    f"READ DMA (lba {lba}, {nsectors} sectors)")
        else:
            for _ in range(POLL_LIMIT // 100):
                if k.inb(bm + BM_STATUS) & (BMS_IRQ | BMS_ERROR):
                    break
            self._complete(k, dip, c)
        k.outb(bm + BM_CMD, 0)
        bst, st = dip.soft.pop("last_status", (0, 0))
        if bst & BMS_ERROR or st & ST_ERR:
            raise DriverFailure(f"{dip.instname}: READ DMA lba {lba}: error "
                                f"(bus master status {bst:#x}, status {st:#x})")

    def _complete(self, k, dip, c):
        bst = k.inb(c["bm"] + BM_STATUS)
        st = k.inb(c["cmd"] + ATA_STATUS)          # reading Status clears INTRQ
        k.outb(c["bm"] + BM_STATUS, bst & (BMS_ERROR | BMS_IRQ))
        dip.soft["last_status"] = (bst, st)
        dip.soft["busy"] = False
        dip.soft["done"] = True

    def intr(self, k, dip) -> bool:
        for c in dip.soft.get("channels", []):
            if c["bm"] is None:
                continue
            if k.inb(c["bm"] + BM_STATUS) & BMS_IRQ and dip.soft.get("busy"):
                self._complete(k, dip, c)
                return True
        return False


# AHCI 1.3.1 registers (§3)
CAP, GHC, IS, PI, VS = 0x00, 0x04, 0x08, 0x0C, 0x10
GHC_HR, GHC_IE, GHC_AE = 1 << 0, 1 << 1, 1 << 31
PX, PXSZ = 0x100, 0x80
PxCLB, PxCLBU, PxFB, PxFBU, PxIS, PxIE, PxCMD = 0x00, 0x04, 0x08, 0x0C, 0x10, 0x14, 0x18
PxTFD, PxSIG, PxSSTS, PxCI = 0x20, 0x24, 0x28, 0x38
PxCMD_ST, PxCMD_FRE = 1 << 0, 1 << 4


class Ahci(DiskDriver):
    """``ahci``: the disks on implemented ports with a device present."""

    def attach(self, k, dip):
        f = dip.pci
        abar = next((r for r in f.regs if r.index == 5), None)
        if abar is None:
            raise DriverFailure(f"{dip.instname}: no ABAR (BAR 5)")
        try:
            h = k.ddi.regs_map_setup(dip, 5, 0, min(abar.size, 0x1100))
        except DdiFailure as e:
            raise DriverFailure(str(e)) from None
        vs = k.ddi.get32(h, VS)
        if vs >> 16 != 1:
            raise DriverFailure(f"{dip.instname}: AHCI version register reads {vs:#010x}: "
                                f"not an AHCI 1.x HBA at {abar.base:#x}")
        k.ddi.put32(h, GHC, GHC_HR)                         # HBA reset (§10.4.3)
        for _ in range(200):
            if not k.ddi.get32(h, GHC) & GHC_HR:
                break
        else:
            from ..kcpu import KernelHang
            raise KernelHang(f"no progress: {dip.instname}: HBA reset (GHC.HR) never "
                             f"completes at {abar.base:#x}")
        k.ddi.put32(h, GHC, GHC_AE)
        cap, pi = k.ddi.get32(h, CAP), k.ddi.get32(h, PI)
        disks = []
        for p in range(32):
            if not pi >> p & 1:
                continue
            if k.ddi.get32(h, PX + PXSZ * p + PxSSTS) & 0xF != 3:
                continue                                    # no device / no phy
            disks.append({"port": p, "name": f"sd{len(disks)}", "model": "", "sectors": 0})
        dip.soft = {"h": h, "cap": cap, "disks": disks}

    ATTR = DmaAttr(addr_hi=(1 << 64) - 1, sgllen=1, align=1024)
    IO_ATTR = DmaAttr(addr_hi=(1 << 64) - 1, sgllen=64, count_max=0x3FFFFF)

    def dma_setup(self, k, dip):
        """Per port: command list (1 KiB) + received FIS (256 bytes) + one command
        table with its PRDT, all in one page; then IDENTIFY by DMA."""
        soft = dip.soft
        h = soft["h"]
        if not soft["cap"] >> 31 & 1:
            self.ATTR = DmaAttr(addr_hi=0xFFFFFFFF, sgllen=1, align=1024)
        for d in soft["disks"]:
            try:
                mem = k.ddi.dma_mem_alloc(dip, self.ATTR, PAGESIZE,
                                          what=f"port {d['port']} command list")
                pa = k.ddi.dma_bind(dip, self.ATTR, mem.va, PAGESIZE)[0].address
            except DdiFailure as e:
                raise DriverFailure(f"{dip.instname}: port {d['port']}: {e}") from None
            d["cl"] = (mem.va, pa)
            base = PX + PXSZ * d["port"]
            k.ddi.put32(h, base + PxCMD, 0)
            k.ddi.put32(h, base + PxCLB, pa & 0xFFFFFFFF)
            k.ddi.put32(h, base + PxCLBU, pa >> 32)
            k.ddi.put32(h, base + PxFB, (pa + 0x400) & 0xFFFFFFFF)
            k.ddi.put32(h, base + PxFBU, (pa + 0x400) >> 32)
            k.ddi.put32(h, base + PxCMD, PxCMD_FRE | PxCMD_ST)
            ident_va = k.kmem.alloc(PAGESIZE)
            self._command(k, dip, d, 0xEC, 0, 1, ident_va, interrupt=False)
            ident = k.kcpu.read(ident_va, 512)
            d["model"] = bytes(b for i in range(54, 94, 2) for b in (ident[i + 1], ident[i])) \
                .decode("ascii", "replace").strip()
            d["sectors"] = struct.unpack_from("<Q", ident, 200)[0]
            k.printf(f"{dip.instname}: port {d['port']}: {d['model']}, "
                     f"{d['sectors'] >> 11} MB\n")

    def _command(self, k, dip, d, command, lba, nsectors, va, *, interrupt):
        nbytes = nsectors * SECTOR
        try:
            hd = k.ddi.dma_bind_handle(dip, self.IO_ATTR, va, nbytes, DDI_DMA_READ)
        except DdiFailure as e:
            raise DriverFailure(str(e)) from None
        dip.soft["dma"] = hd
        try:
            self._issue(k, dip, d, command, lba, nsectors, hd.cookies, interrupt=interrupt)
        except DriverFailure:
            k.ddi.dma_unbind(hd)
            raise
        k.ddi.dma_unbind(hd)             # a copy buffer's data reaches the buffer here
        return hd.cookies

    def _issue(self, k, dip, d, command, lba, nsectors, cookies, *, interrupt):
        """One command through slot 0, its PRDT from the cookies."""
        h = dip.soft["h"]
        cl_va, cl_pa = d["cl"]
        ct_va, ct_pa = cl_va + 0x800, cl_pa + 0x800        # command table at +2 KiB
        fis = bytearray(64)
        fis[0], fis[1], fis[2] = 0x27, 0x80, command       # H2D register FIS, C bit
        fis[4:7] = lba.to_bytes(6, "little")[:3]
        fis[7] = 0x40
        fis[8:11] = lba.to_bytes(6, "little")[3:6]
        fis[12:14] = nsectors.to_bytes(2, "little")
        prdt = b"".join(struct.pack("<IIII", a & 0xFFFFFFFF, a >> 32, 0, (n - 1))
                        for a, n in cookies)
        k.kcpu.write(ct_va, bytes(fis) + bytes(0x80 - 64) + prdt)
        hdr = struct.pack("<IIII", 5 | (len(cookies) << 16), 0, ct_pa & 0xFFFFFFFF,
                          ct_pa >> 32) + bytes(16)
        k.kcpu.write(cl_va, hdr)
        base = PX + PXSZ * d["port"]
        k.ddi.put32(h, base + PxIS, 0xFFFFFFFF)
        k.ddi.put32(h, base + PxIE, 1 if interrupt else 0)
        k.ddi.put32(h, GHC, GHC_AE | (GHC_IE if interrupt else 0))
        dip.soft["busy"], dip.soft["done"] = d, False
        k.ddi.put32(h, base + PxCI, 1)
        if interrupt:
            if not k.wait_for(lambda: dip.soft["done"], INTR_WAIT,
                              f"{dip.instname}: command {command:#x}"):
                k.cmn_err(2, f"{dip.instname}: port {d['port']}: command timeout")
                dip.soft["busy"] = None
                raise DriverFailure(f"{dip.instname}: timeout waiting for the interrupt of "
                                    f"command {command:#x} (lba {lba})")
        else:
            self._complete(k, dip, d)
        tfd = dip.soft.pop("last_tfd", 0)
        if tfd & ST_ERR:
            raise DriverFailure(f"{dip.instname}: command {command:#x} failed (TFD {tfd:#x})")

    def _complete(self, k, dip, d):
        h = dip.soft["h"]
        base = PX + PXSZ * d["port"]
        dip.soft["last_tfd"] = k.ddi.get32(h, base + PxTFD)
        k.ddi.put32(h, base + PxIS, 0xFFFFFFFF)
        k.ddi.put32(h, IS, 1 << d["port"])
        dip.soft["busy"] = None
        dip.soft["done"] = True

    def read(self, k, dip, disk, lba, nsectors, va, *, interrupt):
        return self._command(k, dip, disk, 0xC8, lba, nsectors, va, interrupt=interrupt)

    def intr(self, k, dip) -> bool:
        h = dip.soft.get("h") if dip.soft else None
        if h is None or not k.ddi.get32(h, IS):
            return False
        d = dip.soft.get("busy")
        if d is not None:
            self._complete(k, dip, d)
        else:
            k.ddi.put32(h, IS, 0xFFFFFFFF)
        return True


DRIVERS = {
    "rootnex": Nexus, "pci": Nexus, "npe": Nexus, "pci_pci": Nexus, "pcieb": Nexus,
    "isa": Nexus, "pci-ide": Ata, "ahci": Ahci,
    "e1000g": Nic, "bge": Nic, "nge": Nic, "rge": Nic, "pcn": Nic,
    "ohci": UsbHcd, "ehci": UsbHcd, "uhci": UsbHcd,
    "vgatext": RegCheck, "mpt": RegCheck, "glm": RegCheck, "mega_sas": RegCheck,
    "arcmsr": RegCheck, "audio810": RegCheck, "nv_sata": RegCheck,
}
