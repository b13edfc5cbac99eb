"""A PCI IDE controller with bus-master DMA, and the ATA disks on it.

The task-file registers and command protocols are ATA/ATAPI-6 (T13/1410D)
§7 (register descriptions) and §8 (commands: IDENTIFY DEVICE 8.15, READ DMA
8.23, READ DMA EXT 8.24, READ SECTORS 8.27, WRITE DMA 8.45, ...).  The
bus-master part is SFF-8038i "Programming Interface for Bus Master IDE
Controller" rev. 1.0: per channel a command register (+0: bit 0 start, bit 3
direction), status (+2: bit 0 active, bit 1 error, bit 2 interrupt (write one
to clear), bits 5/6 drive DMA capable) and the PRD table pointer (+4).  A PRD
entry is a 32-bit **physical** base address and a 16-bit byte count (0 means
64 KiB) with bit 31 of the second dword marking the last entry.

The controller reaches memory the way hardware does: at the machine address
written in the PRD, nothing else.  A driver that puts pseudo-physical
addresses there reads into whatever machine frames carry those numbers.

Each channel is in compatibility mode (0x1F0/0x3F6 IRQ 14, 0x170/0x376 IRQ 15)
or native PCI mode (BARs 0-3, PCI INTx) as the class code's programming
interface says (PCI IDE Controller Specification rev. 1.0 §2).
"""

from __future__ import annotations

from .disk import SECTOR, DiskImage

ST_ERR, ST_DRQ, ST_DSC, ST_DF, ST_DRDY, ST_BSY = 0x01, 0x08, 0x10, 0x20, 0x40, 0x80
ERR_ABRT, ERR_IDNF = 0x04, 0x10
CTL_NIEN, CTL_SRST = 0x02, 0x04
BM_START, BM_READ = 0x01, 0x08           # BM_READ: the controller writes memory
BMS_ACTIVE, BMS_ERROR, BMS_IRQ = 0x01, 0x02, 0x04
CMD_READ_SECTORS, CMD_READ_SECTORS_EXT = 0x20, 0x24
CMD_WRITE_SECTORS, CMD_WRITE_SECTORS_EXT = 0x30, 0x34
CMD_READ_DMA, CMD_READ_DMA_EXT = 0xC8, 0x25
CMD_WRITE_DMA, CMD_WRITE_DMA_EXT = 0xCA, 0x35
CMD_IDENTIFY, CMD_SET_FEATURES, CMD_FLUSH, CMD_FLUSH_EXT = 0xEC, 0xEF, 0xE7, 0xEA
CMD_INIT_PARAMS, CMD_SET_MULTIPLE, CMD_IDLE_IMMEDIATE = 0x91, 0xC6, 0xE1
COMPAT = ((0x1F0, 0x3F6, 14), (0x170, 0x376, 15))


def _ata_string(text, nbytes):
    """ATA strings: ASCII, space padded, the two bytes of each word swapped."""
    s = text.encode("ascii")[:nbytes].ljust(nbytes)
    return bytes(b for i in range(0, nbytes, 2) for b in (s[i + 1], s[i]))


class AtaDisk:
    """An ATA hard disk backed by a ``DiskImage``."""

    def __init__(self, image: DiskImage, model="XENLAB VIRTUAL DISK", serial="XL0001"):
        self.image, self.model, self.serial = image, model, serial

    def identify(self) -> bytes:
        w = [0] * 256
        n = self.image.sectors
        w[0] = 0x0040                                  # fixed disk
        w[1], w[3], w[6] = min(n // (16 * 63), 16383), 16, 63
        w[47] = 0x8010
        w[49] = 0x0300                                 # LBA and DMA supported
        w[53] = 0x0006                                 # words 64-70 and 88 valid
        w[60], w[61] = min(n, 0x0FFFFFFF) & 0xFFFF, min(n, 0x0FFFFFFF) >> 16
        w[63] = 0x0007
        w[64] = 0x0003
        w[80] = 0x007E                                 # ATA-1..ATA-6
        w[83] = 0x4400                                 # 48-bit address feature set
        w[86] = 0x0400
        w[88] = 0x203F                                 # UDMA 0-5 supported, mode 5 selected
        for i in range(4):
            w[100 + i] = (n >> (16 * i)) & 0xFFFF
        raw = bytearray(b"".join(x.to_bytes(2, "little") for x in w))
        raw[20:40] = _ata_string(self.serial, 20)
        raw[46:54] = _ata_string("1.0", 8)
        raw[54:94] = _ata_string(self.model, 40)
        return bytes(raw)


class IdeChannel:
    """One channel: task file, up to two drives, and its bus-master registers."""

    def __init__(self, ctrl, index):
        self.ctrl, self.index = ctrl, index
        self.drives: list[AtaDisk | None] = [None, None]
        self.regs = {k: 0 for k in ("features", "count", "lba0", "lba1", "lba2")}
        self.hob = dict(self.regs)
        self.device = 0xA0
        self.status = ST_DRDY | ST_DSC
        self.error = 0
        self.control = 0
        self.buffer = bytearray()
        self.buffer_pos = 0
        self.pio_write = None               # (lba, sectors) awaiting data
        self.dma_pending = None             # (is_read, lba, sectors)
        self.irq_pending = False
        self.bm_cmd = 0
        self.bm_status = 0x60               # both drives DMA capable
        self.prdt = 0

    @property
    def selected(self):
        return self.drives[(self.device >> 4) & 1]

    # -- interrupt --------------------------------------------------------------------
    def raise_irq(self):
        self.irq_pending = True
        self.bm_status |= BMS_IRQ
        self.ctrl.update_irq()

    def irq_level(self):
        return self.irq_pending and not self.control & CTL_NIEN

    # -- task file ----------------------------------------------------------------------
    def read_cmd(self, reg, size):
        if not any(self.drives):
            return (1 << (8 * size)) - 1              # nobody on the cable
        if reg == 0:
            return self._data_read(size)
        if self.selected is None:
            return 0
        if reg == 1:
            return self.error
        if reg == 2:
            return self._hobsel("count")
        if reg in (3, 4, 5):
            return self._hobsel(f"lba{reg - 3}")
        if reg == 6:
            return self.device
        if reg == 7:
            self.irq_pending = False                 # reading Status clears INTRQ
            self.ctrl.update_irq()
            return self.status
        return 0

    def _hobsel(self, name):
        return self.hob[name] if self.control & 0x80 else self.regs[name]

    def write_cmd(self, reg, size, value):
        if reg == 0:
            self._data_write(size, value)
            return
        names = {1: "features", 2: "count", 3: "lba0", 4: "lba1", 5: "lba2"}
        if reg in names:
            n = names[reg]
            self.hob[n] = self.regs[n]                # the previous byte becomes HOB
            self.regs[n] = value & 0xFF
        elif reg == 6:
            self.device = value & 0xFF
        elif reg == 7:
            self.command(value & 0xFF)

    def read_ctl(self):
        if not any(self.drives):
            return 0xFF
        return self.status if self.selected is not None else 0

    def write_ctl(self, value):
        if value & CTL_SRST and not self.control & CTL_SRST:
            self.status, self.error = ST_BSY, 0
        elif self.control & CTL_SRST and not value & CTL_SRST:
            self.status, self.error = ST_DRDY | ST_DSC, 0x01    # diagnostic: no error
            self.regs.update(count=1, lba0=1, lba1=0, lba2=0)
            self.device = 0
        self.control = value & 0xFF
        self.ctrl.update_irq()

    # -- commands -----------------------------------------------------------------------
    def _lba(self, ext):
        r, h = self.regs, self.hob
        if ext:
            lba = r["lba0"] | r["lba1"] << 8 | r["lba2"] << 16 | h["lba0"] << 24 \
                | h["lba1"] << 32 | h["lba2"] << 40
            n = r["count"] | h["count"] << 8
            return lba, n or 65536
        lba = r["lba0"] | r["lba1"] << 8 | r["lba2"] << 16 | (self.device & 0xF) << 24
        return lba, r["count"] or 256

    def _abort(self, err=ERR_ABRT):
        self.status = ST_DRDY | ST_ERR
        self.error = err
        self.raise_irq()

    def command(self, cmd):
        d = self.selected
        if d is None:
            return
        self.error = 0
        ext = cmd in (CMD_READ_SECTORS_EXT, CMD_WRITE_SECTORS_EXT, CMD_READ_DMA_EXT,
                      CMD_WRITE_DMA_EXT)
        if cmd == CMD_IDENTIFY:
            self._pio_in(d.identify())
        elif cmd in (CMD_READ_SECTORS, CMD_READ_SECTORS_EXT, CMD_WRITE_SECTORS,
                     CMD_WRITE_SECTORS_EXT, CMD_READ_DMA, CMD_READ_DMA_EXT,
                     CMD_WRITE_DMA, CMD_WRITE_DMA_EXT):
            lba, n = self._lba(ext)
            if lba + n > d.image.sectors:
                self._abort(ERR_IDNF | ERR_ABRT)
                return
            if cmd in (CMD_READ_SECTORS, CMD_READ_SECTORS_EXT):
                self._pio_in(d.image.read(lba, n))
            elif cmd in (CMD_WRITE_SECTORS, CMD_WRITE_SECTORS_EXT):
                self.pio_write = (lba, n)
                self.buffer, self.buffer_pos = bytearray(n * SECTOR), 0
                self.status = ST_DRDY | ST_DRQ | ST_DSC
            else:
                is_read = cmd in (CMD_READ_DMA, CMD_READ_DMA_EXT)
                self.dma_pending = (is_read, lba, n)
                self.status = ST_DRDY | ST_BSY | ST_DSC
                self.try_dma()
        elif cmd in (CMD_SET_FEATURES, CMD_FLUSH, CMD_FLUSH_EXT, CMD_INIT_PARAMS,
                     CMD_SET_MULTIPLE, CMD_IDLE_IMMEDIATE):
            self.status = ST_DRDY | ST_DSC
            self.raise_irq()
        else:
            self._abort()

    def _pio_in(self, data):
        self.buffer, self.buffer_pos = bytearray(data), 0
        self.status = ST_DRDY | ST_DRQ | ST_DSC
        self.raise_irq()

    def _data_read(self, size):
        if not self.status & ST_DRQ or self.pio_write is not None:
            return 0
        b = self.buffer[self.buffer_pos:self.buffer_pos + size]
        self.buffer_pos += size
        if self.buffer_pos >= len(self.buffer):
            self.status = ST_DRDY | ST_DSC
        elif self.buffer_pos % SECTOR == 0:
            self.raise_irq()                         # one interrupt per sector (DRQ block)
        return int.from_bytes(bytes(b).ljust(size, b"\0"), "little")

    def _data_write(self, size, value):
        if self.pio_write is None:
            return
        self.buffer[self.buffer_pos:self.buffer_pos + size] = value.to_bytes(size, "little")
        self.buffer_pos += size
        if self.buffer_pos >= len(self.buffer):
            lba, _ = self.pio_write
            self.selected.image.write(lba, bytes(self.buffer))
            self.pio_write = None
            self.status = ST_DRDY | ST_DSC
            self.raise_irq()
        elif self.buffer_pos % SECTOR == 0:
            self.raise_irq()

    # -- bus master -----------------------------------------------------------------------
    def read_bm(self, reg, size):
        v = bytes([self.bm_cmd, 0, self.bm_status, 0]) + self.prdt.to_bytes(4, "little")
        return int.from_bytes(v[reg:reg + size].ljust(size, b"\0"), "little")

    def write_bm(self, reg, size, value):
        for i in range(size):
            r, b = reg + i, (value >> (8 * i)) & 0xFF
            if r == 0:
                start = b & BM_START and not self.bm_cmd & BM_START
                self.bm_cmd = b & (BM_START | BM_READ)
                if start:
                    self.bm_status |= BMS_ACTIVE
                    self.try_dma()
                elif not b & BM_START:
                    self.bm_status &= ~BMS_ACTIVE
            elif r == 2:
                self.bm_status = (self.bm_status & ~(b & (BMS_ERROR | BMS_IRQ))) & ~0x60 \
                    | (b & 0x60)
                self.ctrl.update_irq()
            elif 4 <= r < 8:
                sh = 8 * (r - 4)
                self.prdt = (self.prdt & ~(0xFF << sh)) | (b << sh)
                self.prdt &= 0xFFFFFFFC

    def prd_entries(self):
        """The PRD table as (machine address, byte count, last) triples."""
        mem = self.ctrl.memory
        out, a = [], self.prdt
        for _ in range(8192):
            base = mem.read32(a) & 0xFFFFFFFE
            ctl = mem.read32(a + 4)
            count = (ctl & 0xFFFF) or 0x10000
            last = bool(ctl & 0x80000000)
            out.append((base, count, last))
            if last:
                break
            a += 8
        return out

    def try_dma(self):
        """Run the pending DMA command once the engine is started."""
        if self.dma_pending is None or not self.bm_cmd & BM_START:
            return
        is_read, lba, n = self.dma_pending
        if bool(self.bm_cmd & BM_READ) != is_read:
            return                                   # direction mismatch: engine waits
        self.dma_pending = None
        disk = self.selected
        total = n * SECTOR
        mem = self.ctrl.memory
        data = disk.image.read(lba, n) if is_read else None
        out = bytearray()
        done, error = 0, False
        try:
            prds = self.prd_entries()
            for base, count, _ in prds:
                take = min(count, total - done)
                if take <= 0:
                    break
                if is_read:
                    mem.write_bytes(base, data[done:done + take])
                else:
                    out += mem.read_bytes(base, take)
                done += take
                self.ctrl.transfers.append((self.index, "to memory" if is_read else "from memory",
                                            base, take))
        except Exception as e:                        # a PRD pointing at MMIO or nowhere
            self.ctrl.last_error = str(e)
            error = True
        if not is_read and not error:
            disk.image.write(lba, bytes(out[:total - total % SECTOR]))
        short = done < total
        prd_left = sum(c for _, c, _ in prds) > total if not error else False
        if error or short:
            self.bm_status |= BMS_ERROR
        if not prd_left:
            self.bm_status &= ~BMS_ACTIVE
        self.status = ST_DRDY | ST_DSC | (ST_ERR if error or short else 0)
        self.error = ERR_ABRT if error or short else 0
        self.raise_irq()

    def state(self):
        return repr((sorted(self.regs.items()), sorted(self.hob.items()), self.device,
                     self.status, self.error, self.control, self.buffer_pos, self.pio_write,
                     self.dma_pending, self.irq_pending, self.bm_cmd, self.bm_status,
                     self.prdt)).encode() + bytes(self.buffer)


class IdeController:
    """The IDE function's model: ``bar_read``/``bar_write`` for its BARs and legacy ports."""

    def __init__(self, memory, function=None, router=None):
        self.memory, self.function, self.router = memory, function, router
        self.channels = [IdeChannel(self, 0), IdeChannel(self, 1)]
        self.transfers: list[tuple] = []
        self.last_error = ""
        self.legacy_lines = [None, None]
        prog = function.class_code & 0xFF if function is not None else 0x80
        self.native = [bool(prog & 0x01), bool(prog & 0x04)]
        if function is not None:
            function.model = self

    def attach_disk(self, channel, drive, disk: AtaDisk):
        self.channels[channel].drives[drive] = disk

    def attach_legacy(self, ports):
        """Claim compatibility-mode ports and ISA IRQ lines for non-native channels."""
        for i, (cmd, ctl, irq) in enumerate(COMPAT):
            if self.native[i]:
                continue
            ports.claim(cmd, 8, _LegacyPorts(self.channels[i], cmd, ctl), f"ide{i}")
            ports.claim(ctl, 1, _LegacyPorts(self.channels[i], cmd, ctl), f"ide{i}-ctl")
            if self.router is not None:
                self.legacy_lines[i] = self.router.isa_line(irq)

    def update_irq(self):
        native_level = False
        for i, ch in enumerate(self.channels):
            if self.native[i]:
                native_level |= ch.irq_level()
            elif self.legacy_lines[i] is not None:
                self.legacy_lines[i].set(ch.irq_level())
        if self.function is not None and any(self.native):
            if native_level != self.function.intx_asserted:
                self.function.set_intx(native_level)

    # BAR 0/1: primary command/control, 2/3 secondary, 4 bus master (PCI IDE spec §2)
    def bar_read(self, index, offset, size):
        if index == 4:
            ch = self.channels[offset >> 3]
            return ch.read_bm(offset & 7, size)
        ch = self.channels[index >> 1]
        if index & 1:
            return ch.read_ctl() if offset == 2 else 0xFF
        return ch.read_cmd(offset, size)

    def bar_write(self, index, offset, size, value):
        if index == 4:
            self.channels[offset >> 3].write_bm(offset & 7, size, value)
            return
        ch = self.channels[index >> 1]
        if index & 1:
            if offset == 2:
                ch.write_ctl(value & 0xFF)
            return
        ch.write_cmd(offset, size, value)

    def state(self):
        return b"".join(c.state() for c in self.channels)


class _LegacyPorts:
    def __init__(self, ch, cmd, ctl):
        self.ch, self.cmd, self.ctl = ch, cmd, ctl

    def io_read(self, port, size):
        if port == self.ctl:
            return self.ch.read_ctl()
        return self.ch.read_cmd(port - self.cmd, size)

    def io_write(self, port, size, value):
        if port == self.ctl:
            self.ch.write_ctl(value & 0xFF)
        else:
            self.ch.write_cmd(port - self.cmd, size, value)
