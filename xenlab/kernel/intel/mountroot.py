"""vfs_mountroot: interrupts take over, the root file system is mounted.

Mixed into :class:`xenlab.kernel.Kernel`.  Up to here every disk read was
polled.  ``vfs_mountroot`` is where the Solaris drivers take the disk over
and wait for its interrupts: the PSM routes the boot disk's interrupt
(``psm_route_intr`` hook), the driver reads the root file system's superblock
and waits; the clock is started (``psm_clkinit`` hook) and the kernel waits
for its first tick.  On a machine without a disk the root is the boot
archive (a RAM disk).

Interrupts arrive natively through the IDT (``intr_entry``: the vector is
the highest bit of the local APIC's in-service register; EOI to the local
APIC) and under Xen through the event upcall (``hypervisor_callback``: the
pending ports in shared_info; PHYSDEVOP_eoi for a PIRQ).
"""

from __future__ import annotations

from ..kcpu import KernelHang
from .autoconf import FS_MAGIC, SB_MAGIC_OFFSET
from .ddi import DdiFailure
from .drivers import DRIVERS, DriverFailure
from .phase import phase
from .psm import LAPIC_EOI, LAPIC_ISR, IntrRecord, IntrSpec, Psm

HZ = 1000                            # hires_tick: 1 ms
CLOCK_WAIT = 20_000_000              # instructions the kernel waits for its first tick
SPIN_CHUNK = 50_000                  # instructions per idle step while waiting
STORM = 2000                         # unclaimed interrupts before a source is disabled


class Mountroot:
    """The phase; ``self`` is the Kernel."""

    # -- physical memory for the PSM and ACPI -------------------------------------------
    def psm_map_phys(self, paddr: int, npages: int = 1) -> int:
        """psm_map_phys_new: map hard-coded physical addresses (BIOS tables,
        APICs).  The PFN comes from the ``psm_map_phys_pfn`` hook (stage
        ``multiuser``); 2007: the address taken as a page of ours."""
        from .hat import HatError
        pfn = self.hooks.call("psm_map_phys_pfn", self.plat.name, paddr & ~0xFFF)
        va = self.devarena.alloc(npages)
        try:
            self.hat.devload(va, pfn, npages, nocache=False)
        except HatError as e:
            raise DdiFailure(f"psm_map_phys_new({paddr:#x}): {e}") from None
        self.phys_maps.append((paddr & ~0xFFF, pfn, va, npages))
        return va + (paddr & 0xFFF)

    def _reader(self, mapper, cache):
        def read(pa: int, n: int) -> bytes:
            out = bytearray()
            while n > 0:
                page = pa & ~0xFFF
                va = cache.get(page)
                if va is None:
                    va = cache[page] = mapper(page)
                take = min(n, 4096 - (pa & 0xFFF))
                out += self.kcpu.read(va + (pa & 0xFFF), take)
                pa += take
                n -= take
            return bytes(out)
        return read

    @property
    def phys_read(self):
        """Read 'physical' memory the i86pc way (through psm_map_phys_new)."""
        return self._reader(lambda page: self.psm_map_phys(page, 1), self._phys_cache)

    @property
    def machine_read(self):
        """Read machine memory: natively through dboot's identity map, under Xen
        through foreign PFNs in the device arena."""
        if not self.plat.pv:
            return self._reader(lambda page: page, {})
        return self._reader(self.map_machine_page, self._machine_cache)

    def map_machine_page(self, maddr: int) -> int:
        """Map one machine frame (read-only data: BIOS and ACPI tables) as a
        foreign PFN (i86xen)."""
        from .hat import PFN_IS_FOREIGN_MFN, HatError
        va = self.devarena.alloc(1)
        try:
            self.hat.devload(va, (maddr >> 12) | PFN_IS_FOREIGN_MFN, 1, nocache=False)
        except HatError as e:
            self.panic(f"cannot map machine frame {maddr >> 12:#x}: {e}")
        return va

    def ebda(self) -> int | None:
        """The EBDA's address from the BIOS data area (0x40E: its segment)."""
        seg = int.from_bytes(self.machine_read(0x40E, 2), "little")
        return seg << 4 if seg else None

    # -- interrupts -------------------------------------------------------------------------
    def psm_init(self):
        self.psm = Psm(self)
        self.intrs: dict[tuple, IntrRecord] = {}
        self.lbolt = 0

    def ddi_add_intr(self, dip, spec: IntrSpec, isr: str = "driver") -> IntrRecord:
        """Route the interrupt (``psm_route_intr`` hook) and install the
        handler: ``"driver"`` -- the interrupt routine of ``dip``'s driver.
        (Handlers are named, not closures, so a snapshot of the model restores
        them bound to the restored objects.)"""
        arrival = tuple(self.hooks.call("psm_route_intr", spec, self.psm))
        rec = self.intrs.get(arrival)
        if rec is None:
            rec = self.intrs[arrival] = IntrRecord(spec, arrival)
        rec.handlers.append((dip, isr))
        self.printf(f"{spec.name}: interrupt "
                    f"{'IRQ ' + str(spec.isa_irq) if spec.isa_irq is not None else 'INT' + '?ABCD'[spec.pin] + '#'}"
                    f" -> {arrival[0]} {arrival[1]:#x}\n")
        return rec

    def _dispatch(self, rec: IntrRecord):
        rec.count += 1
        claimed = False
        for dip, isr in rec.handlers:
            claimed |= bool(self._handler(dip, isr))
        if not claimed:
            rec.spurious += 1
            if rec.spurious == STORM:
                rec.disabled = True
                self.cmn_err(2, f"{rec.spec.name}: interrupt storm: {STORM} interrupts no "
                                f"driver claimed on {rec.arrival[0]} {rec.arrival[1]:#x}; "
                                f"disabling it")

    def _handler(self, dip, isr: str) -> bool:
        if isr == "clock":
            self.lbolt += 1
            return True
        return DRIVERS[dip.driver]().intr(self, dip)

    def native_intr(self):
        """An interrupt through the IDT (i86pc): find the vector in the local
        APIC's ISR, run its handlers, EOI."""
        vector = None
        for i in range(7, 0, -1):
            isr = self.psm.lapic_read(LAPIC_ISR + 0x10 * i)
            if isr:
                vector = 32 * i + isr.bit_length() - 1
                break
        if vector is not None:
            rec = self.intrs.get(("vector", vector))
            if rec is not None:
                self._dispatch(rec)
            self.psm.lapic_write(LAPIC_EOI, 0)

    def xen_intr(self):
        """The event upcall: every pending port's handlers, then PHYSDEVOP_eoi
        for a physical IRQ."""
        while True:
            ports = self.plat.pending_ports()
            if not ports:
                return
            for port in ports:
                rec = getattr(self, "intrs", {}).get(("evtchn", port))
                if rec is not None:
                    self._dispatch(rec)
                pirq = self.plat.port_pirq.get(port)
                if pirq is not None and not (rec is not None and rec.disabled):
                    self.plat.pirq_eoi(pirq)        # a disabled storm stays masked at Xen

    def wait_for(self, cond, budget: int, what: str = "") -> bool:
        """Let interrupts in and idle until ``cond()`` holds or ``budget``
        instructions went by (natively STI; spin; CLI -- under Xen the event
        mask, spinning with a yield to Xen between steps)."""
        kc = self.kcpu
        start = kc.instructions
        if self.plat.pv:
            self.plat.events_enable(True)
        try:
            while not cond():
                if kc.instructions - start >= budget:
                    return False
                if self.plat.pv:
                    kc.call("kdelay", SPIN_CHUNK, budget=4 * SPIN_CHUNK + 100)
                    self.plat.hv.sched_yield()
                else:
                    kc.call("idle_spin", SPIN_CHUNK, budget=8 * SPIN_CHUNK + 100)
            return True
        finally:
            if self.plat.pv:
                self.plat.events_enable(False)

    def intr_spec(self, dip, disk=None) -> IntrSpec:
        """The interrupt a disk controller raises: a compatibility-mode IDE
        channel's ISA IRQ, else the function's INTx pin."""
        if disk is not None and "channel" in disk and disk["channel"].get("isa_irq") is not None:
            return IntrSpec(dip.instname, isa_irq=disk["channel"]["isa_irq"])
        f = dip.pci
        bridges = []
        p = dip.parent
        while p is not None and p.pci is not None:
            bridges.append((p.pci.dev << 16) | p.pci.func)
            p = p.parent
        return IntrSpec(dip.instname, bus=f.bus, dev=f.dev, pin=f.pin or 1,
                        bridges=tuple(reversed(bridges)), line=f.line)

    # -- the clock ------------------------------------------------------------------------
    def clkinit(self):
        """Start the clock (``psm_clkinit`` hook) and wait for its first tick."""
        hz = int(self.tunables.get("hz", HZ))
        arrival = tuple(self.hooks.call("psm_clkinit", hz, self.psm))
        rec = self.intrs.get(arrival)
        if rec is None:
            rec = self.intrs[arrival] = IntrRecord(IntrSpec("clock"), arrival)

        rec.handlers.append((None, "clock"))
        self.clock = rec
        if not self.wait_for(lambda: self.lbolt > 0, CLOCK_WAIT, "the first clock tick"):
            raise KernelHang(f"no progress: the clock never ticked: no clock interrupt in "
                             f"{CLOCK_WAIT:,} instructions ({arrival[0]} {arrival[1]:#x})")
        self.printf(f"clock: {hz} Hz, first tick on {arrival[0]} {arrival[1]:#x}\n")

    # -- the phase ------------------------------------------------------------------------
    @phase
    def vfs_mountroot(self):
        self.psm_init()
        root = self.rootdisk
        if root is None:
            self.root_path = "/ramdisk:a"
            self.printf("root on /ramdisk:a fstype ufs (the boot archive)\n")
        else:
            dip, drv, disk = root
            path = self.disk_path(root)
            self.ddi_add_intr(dip, self.intr_spec(dip, disk), "driver")
            sb_lba = self.label["start"] + 16
            try:
                drv.read(self, dip, disk, sb_lba, 16, self.bufcache, interrupt=True)
            except (DriverFailure, DdiFailure) as e:
                self.panic(f"vfs_mountroot: cannot mount root path {path}:a ({e})")
            sb = self.kcpu.read(self.bufcache, 8192)
            if int.from_bytes(sb[SB_MAGIC_OFFSET:SB_MAGIC_OFFSET + 4], "little") != FS_MAGIC:
                self.panic(f"vfs_mountroot: cannot mount root path {path}:a "
                           f"(no ufs superblock)")
            self.root_path = f"{path}:a"
            self.printf(f"root on {path}:a fstype ufs\n")
        self.clkinit()
        self.milestone("vfs_mountroot")


__all__ = ["Mountroot", "DRIVERS"]
