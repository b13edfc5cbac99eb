"""An AHCI SATA controller (a subset): the HBA registers, ports, command lists.

Register layout and structures are the Serial ATA AHCI 1.3.1 specification:
§3.1 generic host control (CAP, GHC, IS, PI, VS at ABAR+0x00..0x10), §3.3 port
registers (PxCLB, PxFB, PxIS, PxIE, PxCMD, PxTFD, PxSIG, PxSSTS, PxSERR, PxCI at
ABAR+0x100+0x80*port), §4.2.2 the command list (32-byte headers: CFL, W, PRDTL,
PRDBC, CTBA), §4.2.3 the command table (command FIS at +0x00, PRDT at +0x80 with
16-byte entries: DBA, DBAU, DBC with bit 31 "interrupt on completion"), §4.2.1 the
received-FIS area (D2H register FIS at +0x40).  The command FIS is a SATA Register
Host-to-Device FIS (type 0x27, SATA 3.x §10.5.5).

Like the IDE bus master, the HBA reads command lists and PRDTs and moves data at
the **machine** addresses written there.  Commands run to completion when PxCI is
written (no queueing, no NCQ); IDENTIFY, READ/WRITE DMA (EXT), FLUSH and SET
FEATURES are understood, anything else ends with ABRT.
"""

from __future__ import annotations

from .disk import SECTOR
from .ide import (CMD_FLUSH, CMD_FLUSH_EXT, CMD_IDENTIFY, CMD_READ_DMA, CMD_READ_DMA_EXT,
                  CMD_SET_FEATURES, CMD_WRITE_DMA, CMD_WRITE_DMA_EXT, ERR_ABRT, ST_DRDY, ST_DSC,
                  ST_ERR, AtaDisk)

CAP, GHC, IS, PI, VS = 0x00, 0x04, 0x08, 0x0C, 0x10
GHC_HR, GHC_IE, GHC_AE = 1 << 0, 1 << 1, 1 << 31
PORT0, PORT_SIZE = 0x100, 0x80
PxCLB, PxCLBU, PxFB, PxFBU, PxIS, PxIE, PxCMD = 0x00, 0x04, 0x08, 0x0C, 0x10, 0x14, 0x18
PxTFD, PxSIG, PxSSTS, PxSCTL, PxSERR, PxSACT, PxCI = 0x20, 0x24, 0x28, 0x2C, 0x30, 0x34, 0x38
CMD_ST, CMD_FRE, CMD_FR, CMD_CR = 1 << 0, 1 << 4, 1 << 14, 1 << 15
IS_DHRS, IS_DPS, IS_TFES = 1 << 0, 1 << 5, 1 << 30
FIS_H2D, FIS_D2H = 0x27, 0x34
SIG_ATA = 0x00000101


class AhciPort:
    def __init__(self, hba, index):
        self.hba, self.index = hba, index
        self.disk: AtaDisk | None = None
        self.r = dict.fromkeys((PxCLB, PxCLBU, PxFB, PxFBU, PxIS, PxIE, PxCMD, PxSCTL,
                                PxSERR, PxSACT, PxCI), 0)
        self.tfd = 0x7F

    def attach(self, disk):
        self.disk = disk
        self.tfd = ST_DRDY | ST_DSC

    def read(self, reg):
        if reg == PxTFD:
            return self.tfd
        if reg == PxSIG:
            return SIG_ATA if self.disk else 0xFFFFFFFF
        if reg == PxSSTS:
            return 0x133 if self.disk else 0            # device present, Gen3, active
        if reg == PxCMD:
            v = self.r[PxCMD]
            return v | (CMD_CR if v & CMD_ST else 0) | (CMD_FR if v & CMD_FRE else 0)
        return self.r.get(reg, 0)

    def write(self, reg, value):
        if reg in (PxIS, PxSERR):
            self.r[reg] &= ~value
            self.hba.update_irq()
        elif reg == PxCI:
            if self.r[PxCMD] & CMD_ST:
                self.r[PxCI] |= value
                self.run()
        elif reg == PxCMD:
            self.r[PxCMD] = value & ~(CMD_CR | CMD_FR)
            if value & CMD_ST:
                self.run()
        elif reg in self.r:
            mask = {PxCLB: 0xFFFFFC00, PxFB: 0xFFFFFF00}.get(reg, 0xFFFFFFFF)
            self.r[reg] = value & mask
        self.hba.update_irq()

    # -- command processing -------------------------------------------------------
    def _addr(self, lo, hi):
        return self.r[lo] | self.r[hi] << 32

    def run(self):
        mem = self.hba.memory
        while self.r[PxCI] and self.r[PxCMD] & CMD_ST:
            slot = (self.r[PxCI] & -self.r[PxCI]).bit_length() - 1
            hdr = self._addr(PxCLB, PxCLBU) + 32 * slot
            dw0 = mem.read32(hdr)
            ctba = mem.read32(hdr + 8) | mem.read32(hdr + 12) << 32
            prdtl = dw0 >> 16
            fis = mem.read_bytes(ctba, 20)
            prds = []
            for i in range(prdtl):
                e = ctba + 0x80 + 16 * i
                dba = (mem.read32(e) & ~1) | mem.read32(e + 4) << 32
                dbc = mem.read32(e + 12)
                prds.append((dba, (dbc & 0x3FFFFF) + 1, bool(dbc >> 31)))
            status, error, done = self.execute(fis, prds)
            mem.write32(hdr + 4, done)                               # PRDBC
            self.r[PxCI] &= ~(1 << slot)
            self.tfd = error << 8 | status
            if self.r[PxCMD] & CMD_FRE:
                d2h = bytes([FIS_D2H, 0x40, status, error]) + bytes(16)
                mem.write_bytes(self._addr(PxFB, PxFBU) + 0x40, d2h)
            self.r[PxIS] |= IS_DHRS | (IS_TFES if status & ST_ERR else 0) | (
                IS_DPS if any(i for _, _, i in prds) else 0)
            self.hba.update_irq()

    def execute(self, fis, prds):
        """Run one command FIS against the disk; (status, error, bytes moved)."""
        if fis[0] != FIS_H2D or not fis[1] & 0x80 or self.disk is None:
            return ST_DRDY | ST_ERR, ERR_ABRT, 0
        cmd = fis[2]
        lba = int.from_bytes(fis[4:7] + fis[8:11], "little")
        count = int.from_bytes(fis[12:14], "little")
        img = self.disk.image
        if cmd == CMD_IDENTIFY:
            return ST_DRDY | ST_DSC, 0, self._scatter(self.disk.identify(), prds)
        if cmd in (CMD_READ_DMA, CMD_READ_DMA_EXT, CMD_WRITE_DMA, CMD_WRITE_DMA_EXT):
            if cmd in (CMD_READ_DMA, CMD_WRITE_DMA):
                lba = int.from_bytes(fis[4:7], "little") | (fis[7] & 0xF) << 24
                count = (count & 0xFF) or 256
            else:
                count = count or 65536
            if lba + count > img.sectors:
                return ST_DRDY | ST_ERR, ERR_ABRT | 0x10, 0
            if cmd in (CMD_READ_DMA, CMD_READ_DMA_EXT):
                return ST_DRDY | ST_DSC, 0, self._scatter(img.read(lba, count), prds)
            data = self._gather(count * SECTOR, prds)
            if len(data) < count * SECTOR:
                return ST_DRDY | ST_ERR, ERR_ABRT, len(data)
            img.write(lba, data)
            return ST_DRDY | ST_DSC, 0, len(data)
        if cmd in (CMD_FLUSH, CMD_FLUSH_EXT, CMD_SET_FEATURES):
            return ST_DRDY | ST_DSC, 0, 0
        return ST_DRDY | ST_ERR, ERR_ABRT, 0

    def _scatter(self, data, prds):
        done = 0
        for base, n, _ in prds:
            take = min(n, len(data) - done)
            if take <= 0:
                break
            self.hba.memory.write_bytes(base, data[done:done + take])
            self.hba.transfers.append((self.index, "to memory", base, take))
            done += take
        return done

    def _gather(self, total, prds):
        out = bytearray()
        for base, n, _ in prds:
            take = min(n, total - len(out))
            if take <= 0:
                break
            out += self.hba.memory.read_bytes(base, take)
            self.hba.transfers.append((self.index, "from memory", base, take))
        return bytes(out)

    def state(self):
        return repr((sorted(self.r.items()), self.tfd)).encode()


class AhciController:
    """The model behind an AHCI function's BAR 5 (ABAR)."""

    ABAR = 5

    def __init__(self, memory, function, nports=6):
        self.memory, self.function = memory, function
        self.ports = [AhciPort(self, i) for i in range(nports)]
        self.ghc = GHC_AE
        self.transfers: list[tuple] = []
        function.model = self

    def attach_disk(self, port, drive, disk: AtaDisk):
        if drive:
            raise ValueError("AHCI ports take one device (drive 0)")
        self.ports[port].attach(disk)

    def update_irq(self):
        level = bool(self.ghc & GHC_IE) and any(p.r[PxIS] & p.r[PxIE] for p in self.ports)
        if level != self.function.intx_asserted:
            self.function.set_intx(level)

    def read(self, off):
        if off == CAP:
            # S64A, ISS Gen3, SAM (AHCI only), 32 command slots, ports - 1
            return 1 << 31 | 3 << 20 | 1 << 18 | 31 << 8 | (len(self.ports) - 1)
        if off == GHC:
            return self.ghc
        if off == IS:
            return sum(1 << p.index for p in self.ports if p.r[PxIS])
        if off == PI:
            return (1 << len(self.ports)) - 1
        if off == VS:
            return 0x00010300
        if off >= PORT0:
            n, reg = (off - PORT0) // PORT_SIZE, (off - PORT0) % PORT_SIZE
            if n < len(self.ports):
                return self.ports[n].read(reg)
        return 0

    def write(self, off, value):
        if off == GHC:
            if value & GHC_HR:
                for p in self.ports:
                    disk = p.disk
                    p.__init__(self, p.index)
                    if disk is not None:
                        p.attach(disk)
                value &= ~GHC_HR
            self.ghc = GHC_AE | (value & GHC_IE)
        elif off == IS:
            for p in self.ports:
                if value >> p.index & 1:
                    p.r[PxIS] = 0
        elif off >= PORT0:
            n, reg = (off - PORT0) // PORT_SIZE, (off - PORT0) % PORT_SIZE
            if n < len(self.ports):
                self.ports[n].write(reg, value)
        self.update_irq()

    def bar_read(self, index, offset, size):
        if index != self.ABAR:
            return (1 << (8 * size)) - 1
        v = self.read(offset & ~3)
        return (v >> (8 * (offset & 3))) & ((1 << (8 * size)) - 1)

    def bar_write(self, index, offset, size, value):
        if index == self.ABAR and size == 4 and not offset & 3:
            self.write(offset, value & 0xFFFFFFFF)

    def state(self):
        return bytes([self.ghc >> 1 & 1]) + b"".join(p.state() for p in self.ports)
