"""``xenlab.Xen``: the hypervisor over one machine.

Booting it (the constructor) does what Xen 3.1's ``__start_xen`` does to
memory: the frame table covers every frame up to the top of RAM; the first
MiB and every non-RAM frame belong to DOMID_IO; Xen keeps 1-8 MiB (its image
and the Xen heap, DOMID_XEN); the M2P table is allocated in 2 MiB chunks; the
rest of RAM goes to the domain heap.  ``build_dom0`` then creates domain 0.

Two switches model 2007 behaviour (DESIGN.md):

``debug=True``
    the debug build: it claims PTE bit 11 (``_PAGE_GNTTAB``, AVL bit 2) to
    mark grant mappings, so a guest L1 entry with that bit set is refused
    (asm-x86/page.h, ``#ifndef NDEBUG``); it also logs MEM_LOG lines to the
    console and clobbers the argument registers a hypercall used.
``lowmem_2g_4g=True``
    the low-memory allocator hands out only frames between 2 GiB and 4 GiB
    (see :mod:`xenlab.xen.heap`).
"""

from __future__ import annotations

import numpy as np

from ..machine import memory as _mem
from ..machine import mmu as _mmu
from ..machine.e820 import E820_RAM, ram_frames
from . import abi
from .domain import Domain, HwVcpu, Vcpu
from .frametable import FrameTable, assign_range, owner_code
from .heap import Heap
from .mm import PvMm
from .physmap import M2P

XEN_FIRST_MFN = 0x100           # Xen is loaded at 1 MiB
XENHEAP_END_MFN = 0x800         # and keeps 1-8 MiB: its image and the Xen heap
XEN_IMAGE_FRAMES = 0x200        # the image itself: 2 MiB
CONRING_SIZE = 16384            # drivers/char/console.c: the console ring


class Xen:
    """The hypervisor.  ``Xen(machine, debug=False, lowmem_2g_4g=False)``."""

    def __init__(self, machine, *, debug: bool = False, lowmem_2g_4g: bool = False,
                 dma_emergency_pool: int = 0, serial: bool = True, cpu: bool = True):
        self.machine = machine
        self.memory = machine.memory
        self.debug = bool(debug)
        self.lowmem_2g_4g = bool(lowmem_2g_4g)
        self.serial = serial
        self.use_cpu = cpu
        self.console_text: list[str] = []
        self.conring = bytearray()
        self.console_input = bytearray()
        self.domains: dict[int, Domain] = {}
        self.current: Vcpu | None = None
        self.foreign: Domain | None = None
        self._flush_pending = False
        self.on_code_write = None        # set by the CPU layer: drop decoded code of a frame
        self.system_time_ns = 0
        self.irq_vector: dict[int, int] = {}     # vector -> irq (assign_irq_vector)
        self.irq_bound: dict[int, list] = {}     # irq -> [domain, ...] (pirq_guest_bind)
        self.irq_in_flight: dict[int, set] = {}
        self.irq_level: dict[int, bool] = {}
        self.irq_shareable: dict[int, bool] = {}
        self.irq_pin: dict[int, tuple[int, int]] = {}   # irq -> (IOAPIC base, pin)
        self._next_vector = 0x20
        self.shutdown: tuple[int, int] | None = None
        self.check_hook = None           # tests: called after every hypercall
        self.hypercall_log: list[tuple] = []
        self._boot_memory()
        self.mm = PvMm(self)
        self.printk(f"Xen version {abi.XEN_VERSION_MAJOR}.{abi.XEN_VERSION_MINOR}.0 "
                    f"({'debug' if self.debug else 'release'} build)")
        self.printk(f"System RAM: {self.ram_frames * 4 // 1024}MB "
                    f"({self.ram_frames * 4}kB), max_page={self.max_page:#x}")

    # ------------------------------------------------------------------ boot
    def _boot_memory(self):
        e820 = self.machine.e820
        runs = ram_frames(e820)
        if not runs:
            raise ValueError("the machine's E820 map has no usable RAM")
        runs = self._without_mmio(runs)
        self.max_page = max(first + n for first, n in runs)
        if self.max_page <= XENHEAP_END_MFN + 1024:
            raise ValueError(f"{self.max_page * 4096 >> 20} MiB of RAM is too little for "
                             "Xen and a domain 0 (need more than 20 MiB)")
        self.ram_frames = sum(n for _, n in runs)
        self.frametable = ft = FrameTable(self.max_page)
        self.dom_io = Domain(self, abi.DOMID_IO)
        self.dom_xen = Domain(self, abi.DOMID_XEN)
        io = owner_code(abi.DOMID_IO)
        shared_w = abi.PGT_writable_page | abi.PGT_validated | 1
        # Everything that is not RAM is I/O; so is the first MiB (arch_init_memory).
        prev = 0
        for first, n in runs + [(self.max_page, 0)]:
            if first > prev:
                assign_range(ft.owner, ft.count, io, prev, first - prev,
                             np.uint32(abi.PGC_allocated | 1))
                ft.type[prev:first] = shared_w
            prev = max(prev, first + n)
        assign_range(ft.owner, ft.count, io, 0, 0x100, np.uint32(abi.PGC_allocated | 1))
        ft.type[0:0x100] = shared_w
        # Xen's own image and heap.
        ft.owner[XEN_FIRST_MFN:XENHEAP_END_MFN] = owner_code(abi.DOMID_XEN)
        self._xenheap_free = [m for m in range(XENHEAP_END_MFN - 1,
                                               XEN_FIRST_MFN + XEN_IMAGE_FRAMES - 1, -1)
                              if self._is_ram(m, runs)]
        # The domain heap: the rest of RAM.
        self.heap = Heap(self.max_page, lowmem_2g_4g=self.lowmem_2g_4g)
        for first, n in runs:
            lo = max(first, XENHEAP_END_MFN)
            if first + n > lo:
                self.heap.add_range(lo, first + n - lo)
        self._boot_m2p()
        self._boot_xen_pagetables()

    def _without_mmio(self, runs):
        """RAM runs minus frames the machine decodes as device MMIO (those are I/O)."""
        top = max(f + n for f, n in runs)
        mmio = self.memory.arrays[_mem.M_SLOT_OF][:top] < 0
        if not mmio.any():
            return runs
        out = []
        for f, n in runs:
            seg = mmio[f:f + n]
            if not seg.any():
                out.append((f, n))
                continue
            edges = np.flatnonzero(np.diff(np.r_[True, seg, True].astype(np.int8)))
            starts, ends = edges[::2], edges[1::2]   # runs of non-MMIO frames
            for a, b in zip(starts, ends):
                if b > a:
                    out.append((f + int(a), int(b - a)))
        return out

    @staticmethod
    def _is_ram(mfn, runs):
        return any(f <= mfn < f + n for f, n in runs)

    def alloc_xenheap_page(self) -> int:
        """A zeroed frame of Xen's own heap (DOMID_XEN, never guest-mappable)."""
        if self._xenheap_free:
            mfn = self._xenheap_free.pop()
        else:                        # more from the domain heap, still Xen-private
            mfn = self.heap.alloc(0, domid=abi.DOMID_XEN, why="xenheap")
            if mfn is None:
                raise MemoryError("Xen heap exhausted")
            self.frametable.owner[mfn] = owner_code(abi.DOMID_XEN)
        self.memory.fill(mfn, 1, 0)
        self.frametable.count[mfn] = 0
        return mfn

    def _boot_m2p(self):
        nchunks = (self.max_page * 8 + (2 << 20) - 1) >> 21
        chunks = []
        xen = owner_code(abi.DOMID_XEN)
        ft = self.frametable
        for _ in range(nchunks):
            mfn = self.heap.alloc(9, domid=abi.DOMID_XEN, why="m2p")
            if mfn is None:
                raise MemoryError("not enough memory for the M2P table")
            chunks.append(mfn)
            # shared read-only with privileged guests (share_xen_page_with_privileged_guests)
            assign_range(ft.owner, ft.count, xen, mfn, 512, np.uint32(abi.PGC_allocated | 1))
            ft.type[mfn:mfn + 512] = abi.PGT_none | abi.PGT_validated | 1
        self.m2p = M2P(self.memory, np.array(chunks, dtype=np.int64), self.max_page)

    def _boot_xen_pagetables(self):
        """Xen's half of every guest L4: the RO M2P (slot 256, user-readable),
        the direct map (262, supervisor only)."""
        P, RW, US, A, D, PS = 1, 2, 4, 0x20, 0x40, 0x80
        self.idle_l4 = self.alloc_xenheap_page()
        # slot 256: read-only machine-to-phys table, 2 MiB pages, user-readable
        l3 = self.alloc_xenheap_page()
        l2s: dict[int, np.ndarray] = {}
        for i, chunk in enumerate(self.m2p.chunks):
            va = abi.MACH2PHYS_VIRT_START + (i << 21)
            l3i, l2i = (va >> 30) & 511, (va >> 21) & 511
            if l3i not in l2s:
                l2s[l3i] = np.zeros(512, dtype=np.uint64)
            l2s[l3i][l2i] = (int(chunk) << 12) | P | US | A | PS
        l3tab = np.zeros(512, dtype=np.uint64)
        for l3i, tab in l2s.items():
            l2 = self.alloc_xenheap_page()
            self.memory.write_bytes(l2 << 12, tab.tobytes())
            l3tab[l3i] = (l2 << 12) | P | RW | US | A | D
        self.memory.write_bytes(l3 << 12, l3tab.tobytes())
        l4 = np.zeros(512, dtype=np.uint64)
        l4[abi.L4_SLOT_RO_MPT] = (l3 << 12) | P | RW | US | A | D
        # slots 262-263: the 1:1 map of RAM, supervisor-only, 2 MiB pages
        dm_l3 = self.alloc_xenheap_page()
        dm = np.zeros(512, dtype=np.uint64)
        n2m = (self.max_page + 511) >> 9
        for g in range((n2m + 511) >> 9):
            l2 = self.alloc_xenheap_page()
            first = g * 512
            k = np.arange(first, min(first + 512, n2m), dtype=np.uint64)
            tab = np.zeros(512, dtype=np.uint64)
            tab[:len(k)] = (k << np.uint64(21)) | np.uint64(P | RW | A | D | PS)
            self.memory.write_bytes(l2 << 12, tab.tobytes())
            dm[g] = (l2 << 12) | P | RW | A | D
        self.memory.write_bytes(dm_l3 << 12, dm.tobytes())
        l4[abi.L4_SLOT_DIRECTMAP] = (dm_l3 << 12) | P | RW | A | D
        self.memory.write_bytes(self.idle_l4 << 12, l4.tobytes())
        # Xen's TSS (an I/O bitmap offset past its limit: no port is allowed)
        # and Xen's GDT page (the flat selectors at FIRST_RESERVED_GDT_ENTRY).
        self.tss_mfn = self.alloc_xenheap_page()
        self.memory.write16((self.tss_mfn << 12) + 0x66, 0x68)
        self.gdt_mfn = self.alloc_xenheap_page()
        gdt = np.zeros(512, dtype=np.uint64)
        gdt[1] = 0x00AF9A000000FFFF      # 0xe008: ring-0 64-bit code
        gdt[2] = 0x00CF92000000FFFF      # 0xe010: ring-0 data
        gdt[4] = 0x00CFFA000000FFFF      # 0xe023: FLAT_RING3_CS32
        gdt[5] = 0x00CFF2000000FFFF      # 0xe02b: FLAT_RING3_DS32/SS
        gdt[6] = 0x00AFFA000000FFFF      # 0xe033: FLAT_RING3_CS64
        self.memory.write_bytes(self.gdt_mfn << 12, gdt.tobytes())
        self.xen_slots = l4[abi.ROOT_PAGETABLE_FIRST_XEN_SLOT:
                            abi.ROOT_PAGETABLE_LAST_XEN_SLOT + 1].copy()

    def install_xen_slots(self, l4: np.ndarray, mfn: int, dom: Domain):
        """alloc_l4_table's tail: copy Xen's slots, point the linear slot at the
        table itself and the per-domain slot at the domain's area."""
        l4[abi.ROOT_PAGETABLE_FIRST_XEN_SLOT:abi.ROOT_PAGETABLE_LAST_XEN_SLOT + 1] = \
            self.xen_slots
        l4[abi.L4_SLOT_LINEAR_PT] = (mfn << 12) | abi.PAGE_HYPERVISOR
        l4[abi.L4_SLOT_PERDOMAIN] = (getattr(dom, "perdomain_l3", 0) << 12) | \
            abi.PAGE_HYPERVISOR if getattr(dom, "perdomain_l3", 0) else 0

    # ------------------------------------------------------------------ memory access
    def read_machine(self, maddr: int, n: int) -> bytes:
        """Xen's direct-map read (device registers through the MMIO bus)."""
        mfn = maddr >> 12
        if self.memory.mmio_region(mfn) is not None:
            return bytes(self.machine.mmio.read(maddr + i, 1) & 0xFF for i in range(n))
        return self.memory.read_bytes(maddr, n)

    def write_machine(self, maddr: int, data: bytes):
        """Xen's direct-map write; frames holding decoded guest code are told."""
        mfn = maddr >> 12
        if self.memory.mmio_region(mfn) is not None:
            for i, b in enumerate(data):
                self.machine.mmio.write(maddr + i, 1, b)
            return
        self.memory.write_bytes(maddr, data)
        self._code_check(mfn, (maddr + max(len(data), 1) - 1) >> 12)

    def _code_check(self, first: int, last: int):
        slot_of = self.memory.arrays[_mem.M_SLOT_OF]
        flags = self.memory.arrays[_mem.M_SLOT_FLAGS]
        for mfn in range(first, last + 1):
            s = int(slot_of[mfn])
            if s > 0 and flags[s] & _mem.SLOT_CODE:
                if self.on_code_write is not None:
                    self.on_code_write(mfn)
                for d in self.domains.values():
                    for v in d.vcpus:
                        _mmu.tlb_drop_slot(v.hw.mmu.tlb, s)

    # ------------------------------------------------------------------ domains
    def domain(self, domid: int) -> Domain | None:
        return self.domains.get(domid)

    @property
    def dom0(self) -> Domain | None:
        return self.domains.get(0)

    @property
    def current_domain(self) -> Domain | None:
        return self.current.domain if self.current is not None else None

    def domain_of_owner(self, mfn: int) -> Domain | None:
        d = self.frametable.owner_of(mfn)
        if d is None:
            return None
        if d == abi.DOMID_IO:
            return self.dom_io
        if d == abi.DOMID_XEN:
            return self.dom_xen
        return self.domains.get(d)

    def create_domain(self, domid: int, *, privileged: bool = False, nr_vcpus: int = 1,
                      hw_vcpus=None) -> Domain:
        if domid in self.domains or domid >= abi.DOMID_FIRST_RESERVED:
            raise ValueError(f"domid {domid} is taken or reserved")
        d = Domain(self, domid, privileged=privileged)
        if privileged:
            d.ioports[:] = True
        d.shared_info_mfn = self.alloc_xenheap_page()
        ft = self.frametable
        # share_xen_page_with_guest(shared_info, d, XENSHARE_writable)
        ft.owner[d.shared_info_mfn] = owner_code(domid)
        ft.count[d.shared_info_mfn] = abi.PGC_allocated | 1
        ft.type[d.shared_info_mfn] = abi.PGT_writable_page | abi.PGT_validated | 1
        d.perdomain_l3 = self.alloc_xenheap_page()
        l2 = self.alloc_xenheap_page()
        l1 = self.alloc_xenheap_page()
        self.memory.write64(d.perdomain_l3 << 12, (l2 << 12) | abi.PAGE_HYPERVISOR)
        self.memory.write64(l2 << 12, (l1 << 12) | abi.PAGE_HYPERVISOR)
        for i in range(nr_vcpus):
            # GDT page 14 of each vCPU's GDT area: Xen's flat selectors
            self.memory.write64((l1 << 12) + 8 * ((i << 4) + abi.FIRST_RESERVED_GDT_PAGE),
                                (self.gdt_mfn << 12) | abi.PAGE_HYPERVISOR)
        for i in range(nr_vcpus):
            d.vcpus.append(Vcpu(d, i, self._hw_vcpu(i, hw_vcpus)))
            self.init_hw_state(d.vcpus[-1])
            self.write_vcpu_info(d, i, "evtchn_upcall_mask", 1)
        self.domains[domid] = d
        return d

    def _hw_vcpu(self, i: int, given):
        """The machine vCPU a domain's vCPU runs on: one handed in, the
        machine's own, a new CPU on the machine, or (cpu=False) a stand-in."""
        if given is not None and i < len(given):
            return given[i]
        m = self.machine
        if self.use_cpu:
            try:
                from ..machine.cpu import Vcpu as CpuVcpu
            except ImportError:
                CpuVcpu = None
            if CpuVcpu is not None:
                while len(m.vcpus) <= i:
                    m.vcpus.append(CpuVcpu(m.memory, m.ports, m.mmio, len(m.vcpus)))
                hw = m.vcpus[i]
                router = getattr(m, "interrupts", None)
                if router is not None and router.on_pending is None:
                    router.on_pending = self._irq_pending
                return hw
        return HwVcpu(self.memory, i)

    def _irq_pending(self, cpu: int):
        if cpu < len(self.machine.vcpus) and hasattr(self.machine.vcpus[cpu], "irq_pending"):
            self.machine.vcpus[cpu].irq_pending = True

    def run(self, max_instructions: int = 10**7, vcpu=None):
        """Run a vCPU (default: dom0's first) on the CPU; returns the last exit."""
        from .run import run
        v = vcpu if vcpu is not None else self.dom0.vcpus[0]
        return run(self, v, max_instructions)

    def call(self, vcpu, rip: int, regs: dict | None = None, *, stop_at: int,
             max_instructions: int = 1_000_000):
        """Run guest code at ``rip`` under Xen (hypercalls, traps, emulation all
        served) until RIP reaches ``stop_at``; returns the last exit.  This is how
        a Python kernel runs a small instruction stub as the guest."""
        from ..machine.pte import s64
        for k, val in (regs or {}).items():
            vcpu.set_reg(k, val)
        vcpu.hw.state[16] = s64(rip)
        from .run import run
        return run(self, vcpu, max_instructions, stop_at=stop_at)

    def schedule(self, max_instructions: int = 10**7, quantum: int = 20_000, domid: int = 0):
        """Round-robin the domain's runnable vCPUs, ``quantum`` instructions at
        a time, until the budget is spent or none can run."""
        from ..machine import regs as R
        from .run import run
        d = self.domains[domid]
        left = int(max_instructions)
        while left > 0 and d.shutdown_reason is None:
            ran = False
            for v in d.vcpus:
                if not v.up or v.blocked or not v.initialised:
                    continue
                before = int(v.hw.state[R.ICOUNT])
                run(self, v, min(quantum, left))
                left -= max(int(v.hw.state[R.ICOUNT]) - before, 1)
                ran = True
            if not ran:
                break

    def init_hw_state(self, v: Vcpu):
        """The machine state a 64-bit PV vCPU runs with: Xen's CR0/CR4/EFER,
        ring 3 with the flat selectors, IOPL 0, no I/O bitmap."""
        from ..machine import regs as R
        st = v.hw.state
        st[R.CR0] = (R.CR0_PE | R.CR0_MP | R.CR0_ET | R.CR0_NE | R.CR0_WP | R.CR0_PG)
        st[R.CR4] = R.CR4_PAE | R.CR4_PGE | R.CR4_OSFXSR | R.CR4_OSXMMEXCPT
        st[R.EFER] = R.EFER_SCE | R.EFER_LME | R.EFER_LMA | R.EFER_NXE
        st[R.CPL] = 3
        st[R.CS] = abi.FLAT_KERNEL_CS
        st[R.SS] = abi.FLAT_KERNEL_SS
        st[R.DS] = st[R.ES] = st[R.FS] = st[R.GS] = abi.FLAT_KERNEL_DS
        st[R.RFLAGS] = R.FLAGS_FIXED | R.FLAG_IF
        st[R.CSBASE_MODE] = R.MODE_LONG64
        from .run import setup_hw
        setup_hw(self, v)
        if hasattr(v.hw, "mmu"):
            v.hw.mmu.flush()

    # ------------------------------------------------------------------ shared_info
    def shared_info_addr(self, d: Domain, field: str, vcpu: int | None = None) -> int:
        base = d.shared_info_mfn << 12
        if vcpu is not None:
            dt = abi.vcpu_info
            return base + 64 * vcpu + dt.fields[field][1]
        return base + abi.shared_info.fields[field][1]

    def write_vcpu_info(self, d: Domain, vcpu: int, field: str, value: int):
        size = abi.vcpu_info.fields[field][0].itemsize
        self.write_machine(self.shared_info_addr(d, field, vcpu),
                           int(value).to_bytes(size, "little"))

    def read_vcpu_info(self, d: Domain, vcpu: int, field: str) -> int:
        size = abi.vcpu_info.fields[field][0].itemsize
        return int.from_bytes(self.read_machine(self.shared_info_addr(d, field, vcpu), size),
                              "little")

    def shared_info(self, d: Domain):
        """The domain's shared_info page as a numpy record (a copy)."""
        raw = self.memory.read_bytes(d.shared_info_mfn << 12, abi.shared_info.itemsize)
        return np.frombuffer(raw, dtype=abi.shared_info)[0].copy()

    # ------------------------------------------------------------------ frames
    def assign_page(self, d: Domain, mfn: int, order: int = 0):
        """assign_pages: the domain owns the block, with its allocation reference."""
        n = 1 << order
        ft = self.frametable
        ft.owner[mfn:mfn + n] = owner_code(d.domid)
        ft.count[mfn:mfn + n] = abi.PGC_allocated | 1
        ft.type[mfn:mfn + n] = 0
        ft.linear[mfn:mfn + n] = 0
        d.tot_pages += n

    def free_domheap_page(self, mfn: int):
        """The last reference went: the frame leaves its domain for the heap."""
        ft = self.frametable
        d = self.domain_of_owner(mfn)
        if d is not None and d.domid < abi.DOMID_FIRST_RESERVED:
            d.tot_pages -= 1
            pfn = self.m2p.get(mfn)
            if 0 <= pfn < len(d.p2m) and d.p2m[pfn] == mfn:
                d.p2m[pfn] = -1
        self.m2p.set(mfn, -1)
        ft.owner[mfn] = 0
        ft.count[mfn] = 0
        ft.type[mfn] = 0
        ft.linear[mfn] = 0
        self.heap.free(mfn, 0, domid=d.domid if d is not None else -1)
        self._flush_pending = True

    def flush_domain_tlbs(self, domid):
        """Flush every TLB that might map frames of ``domid`` (all, to be safe)."""
        self._flush_pending = True

    def flush_pending(self):
        if self._flush_pending:
            for d in self.domains.values():
                for v in d.vcpus:
                    _mmu.tlb_flush_all(v.hw.mmu.tlb)
            self._flush_pending = False

    # ------------------------------------------------------------------ console
    def printk(self, msg: str):
        """Xen's own message: the console ring and the serial line, '(XEN) ' prefixed."""
        self._console_out("(XEN) " + msg + ("" if msg.endswith("\n") else "\n"), ring=True)

    def mem_log(self, msg: str):
        if self.debug:
            self.printk(f"mm.c: {msg}")

    def _console_out(self, text: str, ring: bool):
        self.console_text.append(text)
        if ring:
            self.conring += text.encode("latin-1", "replace")
            if len(self.conring) > CONRING_SIZE:
                del self.conring[:len(self.conring) - CONRING_SIZE]
        if self.serial:
            self._serial_puts(text)

    def _serial_puts(self, text: str):
        ports = self.machine.ports
        owner = getattr(ports, "owner", None)
        if owner is None or not owner[0x3F8]:
            return
        for ch in text.encode("latin-1", "replace"):
            if ch == 0x0A:
                ports.write(0x3F8, 1, 0x0D)
            ports.write(0x3F8, 1, ch)

    @property
    def console(self) -> str:
        """Everything Xen printed on its console (its messages and dom0's writes)."""
        return "".join(self.console_text)

    def guest_console_write(self, d: Domain, text: str):
        d.console_out.append(text)
        self._console_out(text, ring=False)

    # ------------------------------------------------------------------ time, input
    def update_vcpu_time(self, v: Vcpu):
        """Publish Xen system time in vcpu_info.time (version odd while updating).

        The scale is exact: one TSC tick is one nanosecond (tsc_shift 1,
        tsc_to_system_mul 2**31), matching the run loop's clock."""
        from ..machine import regs as R
        d = v.domain
        base = self.shared_info_addr(d, "time", v.vcpu_id)
        ver = int.from_bytes(self.read_machine(base, 4), "little")
        rec = np.zeros((), dtype=abi.vcpu_time_info)
        rec["version"] = (ver + 2) | 0
        rec["tsc_timestamp"] = (int(v.hw.state[R.TSC]) + int(v.hw.state[R.ICOUNT])) & ((1 << 64) - 1)
        rec["system_time"] = self.system_time_ns
        rec["tsc_to_system_mul"] = 1 << 31
        rec["tsc_shift"] = 1
        self.write_machine(base, (ver + 1).to_bytes(4, "little"))
        self.write_machine(base, rec.tobytes())

    def send_virq(self, virq: int, domid: int = 0, vcpu: int = 0):
        """Raise a VIRQ (e.g. VIRQ_DEBUG for a debug key) for a domain's vCPU."""
        from .evtchn import send_guest_virq
        send_guest_virq(self, self.domains[domid].vcpus[vcpu], virq)

    def serial_input(self, data: bytes | str):
        """Characters typed on Xen's console: queued for CONSOLEIO_read, VIRQ_CONSOLE to dom0."""
        if isinstance(data, str):
            data = data.encode("latin-1")
        self.console_input += data
        from .evtchn import send_global_virq
        send_global_virq(self, self.dom0, abi.VIRQ_CONSOLE)

    # ------------------------------------------------------------------ views
    def frame_table(self, *, owned_only: bool = True):
        """pandas: one row per frame (owner, type, counts, pin, validated)."""
        return self.frametable.frame(owned_only=owned_only)

    def p2m_frame(self, domid: int = 0):
        """pandas: a domain's P2M as Xen assigned it, with the M2P entry of each
        frame (``m2p`` equals ``pfn`` wherever the tables agree)."""
        import pandas as pd
        d = self.domains[domid]
        pfn = np.flatnonzero(d.p2m >= 0)
        mfn = d.p2m[pfn].astype(np.int64)
        return pd.DataFrame({"pfn": pfn, "mfn": mfn, "maddr": mfn << 12,
                             "m2p": self.m2p.get_many(mfn) if len(mfn) else mfn,
                             "below_4g": mfn < (1 << 20)})

    def evtchn_frame(self, domid: int = 0):
        """pandas: a domain's open event-channel ports."""
        from .evtchn import channels_frame
        return channels_frame(self, self.domains[domid])

    def allocations(self):
        """pandas: every heap allocation and free, in order (seq)."""
        return self.heap.history()

    # ------------------------------------------------------------------ dom0
    def build_dom0(self, image, **kw):
        """Build domain 0 from a kernel image (see :func:`xenlab.xen.build.build_dom0`)."""
        from .build import build_dom0
        return build_dom0(self, image, **kw)

    # ------------------------------------------------------------------ hypercalls
    def hypercall(self, vcpu: Vcpu, nr: int, *args) -> int:
        """Run hypercall ``nr`` for ``vcpu`` with up to 5 arguments; returns the
        value the guest sees in RAX (0, a count, or a negative Xen errno)."""
        from .hypercall import do_hypercall
        return do_hypercall(self, vcpu, nr, list(args))

    def __repr__(self):
        return (f"<Xen {abi.XEN_VERSION_MAJOR}.{abi.XEN_VERSION_MINOR} "
                f"{'debug' if self.debug else 'release'} on {self.machine!r}: "
                f"{len(self.domains)} domain(s), {self.heap.avail()} free frames>")
