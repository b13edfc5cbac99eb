"""i86xen: the kernel as a 64-bit paravirtualised domain 0.

What is different from i86pc, as a PV guest sees it:

* the kernel runs in ring 3; Xen's ``start_info`` (``%rsi`` at entry) says
  where everything is: ``mfn_list`` (the P2M: pseudo-physical frame ->
  machine frame), the bootstrap page tables, the initrd (our boot archive),
  ``shared_info`` (a *machine* address), the command line;
* page tables are read-only to the guest: mappings change by hypercall
  (``update_va_mapping``, ``mmu_update``), and a PTE holds an MFN;
* exceptions arrive through a virtual IDT (``set_trap_table``) as Xen's bounce
  frame; events arrive through ``hypervisor_callback``;
* there is no BIOS, and port I/O works only with a virtual IOPL
  (``PHYSDEVOP_set_iopl``), which Xen keeps per vCPU.
"""

from __future__ import annotations

import numpy as np

from ...xen import abi
from ..intel.console import STRBUF_OFFSET, STRBUF_SIZE, Console
from ..image import KERNELBASE
from .hypercall import Hypervisor

PAGE = 4096
PTE_P, PTE_RW, PTE_A, PTE_D = 0x1, 0x2, 0x20, 0x40
WINDOW_PAGES = 128                  # the 512 KiB Xen guarantees after the boot stack
HAT_WINDOWS = 2                     # the HAT's scratch and page-table windows (last pages)
CPU_STACK = 16384
PFN_IS_FOREIGN_MFN = 1 << 51        # illumos hat_pte.h (LP64)
MFN_MASK = (1 << 40) - 1


class HypervisorConsole(Console):
    """Xen's console: CONSOLEIO_write / CONSOLEIO_read (dom0 only)."""

    name = "hypervisor"

    def __init__(self, kernel):
        self.k = kernel

    def puts(self, text: str):
        raw = text.encode("latin-1", "replace")
        buf = self.k.sym("hcall_args") + STRBUF_OFFSET
        hv = self.k.plat.hv
        for i in range(0, len(raw), STRBUF_SIZE):
            chunk = raw[i:i + STRBUF_SIZE]
            self.k.kcpu.write(buf, chunk)
            hv.console_write(buf, len(chunk))

    def getc(self) -> int | None:
        buf = self.k.sym("hcall_args") + STRBUF_OFFSET
        n = self.k.plat.hv.console_read(buf, 1)
        return self.k.kcpu.read8(buf) if n == 1 else None


class I86xen:
    """Platform services for the PV kernel (one per kernel)."""

    name = "i86xen"
    pv = True

    def __init__(self, kernel):
        self.k = kernel
        self.hv = Hypervisor(kernel)
        self.xen_info = None            # the start_info record (numpy)
        self.shared_info_va = 0
        self.window_next = self.window_end = 0
        self.user_base_set = False
        self.port_pirq: dict[int, int] = {}

    # ------------------------------------------------------------------ boot
    def early_init(self):
        """Read start_info, map shared_info, install the trap table and callbacks."""
        k = self.k
        kc = k.kcpu
        self.detect_ring()
        si_va = kc.read64(k.sym("boot_info"))
        self.start_info_va = si_va
        si = kc.read_struct(si_va, abi.start_info)
        magic = bytes(si["magic"]).rstrip(b"\0").decode("latin-1")
        if not magic.startswith("xen-"):
            k.bop_panic(f"start_info at {si_va:#x} has no Xen magic ({magic!r})")
        self.xen_info = si
        self.mfn_list = int(si["mfn_list"])
        self.mfn_count = int(si["nr_pages"])
        pad = int(si["pt_base"]) + (int(si["nr_pt_frames"]) + 1) * PAGE
        self.window_next, self.window_end = pad, pad + (WINDOW_PAGES - HAT_WINDOWS) * PAGE
        self.scratch_va = self.window_end                 # zeroing new page tables
        self.ptwin_va = self.window_end + PAGE            # reading page tables (read-only)
        self.ptwin_frame = None
        # xen.h: the boot region ends on a 4 MiB boundary, with >= 512 KiB to spare
        v_end = (pad + (4 << 20) - 1) & ~((4 << 20) - 1)
        if v_end - pad < (512 << 10):
            v_end += 4 << 20
        self.boot_end = v_end
        self.shared_info_va = self.map_ma(int(si["shared_info"]), 1)
        for n, c in enumerate(k.cpus):
            c.upcall_mask_va = self._vcpu_info("evtchn_upcall_mask", n)
        self.install_traps()
        k.props_from_cmdline(bytes(si["cmd_line"]).split(b"\0")[0].decode("latin-1"))
        k.boot_archive = (int(si["mod_start"]), int(si["mod_len"]))

    def detect_ring(self):
        """Which PV privilege model this kernel runs with: its CS's RPL (3: a
        64-bit PV kernel; 1: the 32-bit PV model, int $0x82 hypercalls)."""
        self.ring = self.k.kcpu.call("getcs") & 3
        for c in self.k.cpus:
            c.ring = self.ring
        if self.ring == 1:
            self.kernel_cs, self.kernel_ss = abi.FLAT_RING1_CS, abi.FLAT_RING1_SS
            self.user_cs, self.user_ss = abi.FLAT_COMPAT_RING3_CS | 3, abi.FLAT_COMPAT_RING3_SS | 3
        else:
            self.kernel_cs, self.kernel_ss = abi.FLAT_KERNEL_CS, abi.FLAT_KERNEL_SS
            self.user_cs, self.user_ss = abi.FLAT_USER_CS | 3, abi.FLAT_USER_SS | 3

    @property
    def bits(self) -> int:
        """32 or 64: which PV kernel this is (what uname -m and isainfo would say)."""
        return 32 if self.ring == 1 else 64

    def install_traps(self):
        sym = self.k.sym
        kc, hv = self.k.kcpu, self.hv
        table = np.zeros(33, dtype=abi.trap_info)
        for n in range(32):
            dpl = 3 if n in (3, 4) else 0       # int3 and into may come from anywhere
            table[n] = (n, dpl, self.kernel_cs, sym(f"trap_{n}"))
        kc.write(sym("trap_table"), table.tobytes())
        rc = hv.set_trap_table(sym("trap_table"))
        if rc:
            self.k.bop_panic(f"HYPERVISOR_set_trap_table failed: {rc}")
        rc = hv.set_callbacks(sym("hypervisor_callback"), sym("failsafe_callback"),
                              sym("syscall_entry"))
        if rc:
            self.k.bop_panic(f"HYPERVISOR_set_callbacks failed: {rc}")

    def boot_console(self) -> Console:
        """dboot's console under Xen: dom0 writes to the hypervisor console."""
        return HypervisorConsole(self.k)

    # ------------------------------------------------------------------ memory
    def pfn_to_mfn(self, pfn: int) -> int:
        """A foreign PFN carries its MFN; any other is looked up in mfn_list
        (read through the kernel's own mapping of the P2M list); -1 past its end."""
        if pfn & PFN_IS_FOREIGN_MFN:
            return pfn & ~PFN_IS_FOREIGN_MFN
        if not 0 <= pfn < self.mfn_count:
            return -1
        return self.k.kcpu.read64(self.mfn_list + 8 * pfn)

    def mfn_to_pfn(self, mfn: int) -> int:
        """illumos mfn_to_pfn: Xen's M2P entry (the read-only table Xen maps at
        MACH2PHYS_VIRT_START), trusted only if mfn_list maps back; otherwise the
        frame is not ours: ``mfn | PFN_IS_FOREIGN_MFN``."""
        from ..kcpu import KernelFault
        try:
            pfn = self.k.kcpu.read64(abi.MACH2PHYS_VIRT_START + 8 * mfn)
        except KernelFault:
            return mfn | PFN_IS_FOREIGN_MFN
        if pfn < self.mfn_count and self.pfn_to_mfn(pfn) == mfn:
            return pfn
        return mfn | PFN_IS_FOREIGN_MFN

    def reassign_pfn(self, pfn: int, mfn: int):
        """Give ``pfn`` a new machine frame: mfn_list and Xen's M2P (illumos
        reassign_pfn: the P2M entry, then MMU_MACHPHYS_UPDATE)."""
        self.k.kcpu.write64(self.mfn_list + 8 * pfn, mfn)
        rc = self.hv.mmu_update([((mfn << 12) | abi.MMU_MACHPHYS_UPDATE, pfn)])
        if rc:
            self.k.panic(f"reassign_pfn: MMU_MACHPHYS_UPDATE({mfn:#x} -> {pfn:#x}) failed: {rc}")

    def max_ram_page(self) -> int:
        """XENMEM_maximum_ram_page (asked once)."""
        if getattr(self, "_max_ram_page", None) is None:
            self._max_ram_page = self.hv.memory_op(abi.XENMEM_maximum_ram_page, 0)
        return self._max_ram_page

    def mfn_list_array(self, low_first: int = 65536, below: int = 1 << 20):
        """The top of mfn_list, read through the kernel's mapping from the top
        PFN down in chunks until ``low_first`` entries below MFN ``below`` were
        seen (dom0's top PFNs hold its lowest machine frames).  Returns (array
        of mfn_list[lo:], lo)."""
        import numpy as np
        n = self.mfn_count
        parts = []
        seen = 0
        hi = n
        while hi > 0 and seen < low_first:
            lo = max(0, hi - 65536)
            raw = self.k.kcpu.read(self.mfn_list + 8 * lo, 8 * (hi - lo))
            part = np.frombuffer(raw, dtype="<i8")
            parts.append(part)
            seen += int((part < below).sum())
            hi = lo
        arr = np.concatenate(parts[::-1]) if parts else np.zeros(0, dtype=np.int64)
        return arr, hi

    def exchange_contig(self, npages: int, address_bits: int, log: list) -> list | None:
        """XENMEM_exchange: 2**order free pages (PFN-contiguous) for one
        machine-contiguous extent; the PFNs get the new frames (reassign_pfn).
        The pages traded are the lowest free PFNs: under Xen the ones with the
        highest machine frames (dom0's memory was handed out top-down), so the
        frames given back are never the scarce low ones (illumos's balloon,
        too, gives Xen its highest MFNs)."""
        from ..intel.vm import OutOfMemory
        k = self.k
        order = max(0, (npages - 1).bit_length())
        ext = 1 << order
        try:
            first = k.pages.page_create_run(ext, lowest=True)
        except OutOfMemory:
            return None
        pfns = list(range(first, first + ext))
        in_va = k.sym("scratch")
        out_va = in_va + 8 * ext
        k.kcpu.write(in_va, b"".join(self.pfn_to_mfn(p).to_bytes(8, "little") for p in pfns))
        k.kcpu.write64(out_va, first)
        ex = np.zeros((), dtype=abi.xen_memory_exchange)
        ex["in"]["extent_start"], ex["in"]["nr_extents"] = in_va, ext
        ex["in"]["extent_order"], ex["in"]["domid"] = 0, abi.DOMID_SELF
        ex["out"]["extent_start"], ex["out"]["nr_extents"] = out_va, 1
        ex["out"]["extent_order"], ex["out"]["address_bits"] = order, address_bits
        ex["out"]["domid"] = abi.DOMID_SELF
        arg = in_va + 4096
        k.kcpu.write(arg, ex.tobytes())
        rc = self.hv.memory_op(abi.XENMEM_exchange, arg)
        done = k.kcpu.read64(arg + 64)
        new = k.kcpu.read64(out_va)
        ok = rc == 0 and done == ext
        log.append({"npages": npages, "order": order, "address_bits": address_bits,
                    "rc": rc, "done": 1 if ok else 0, "mfn": new if ok else None})
        if not ok:
            k.pages.page_free(pfns)
            return None
        for i, p in enumerate(pfns):
            self.reassign_pfn(p, new + i)
        if ext > npages:
            k.pages.page_free(pfns[npages:])
        return pfns[:npages]

    # ------------------------------------------------------------------ the HAT's primitives
    def init_pages(self):
        """The page allocator: every PFN past the boot region Xen built."""
        from ..intel.vm import PageAllocator
        first = self.va_to_pfn(self.boot_end)
        return PageAllocator(self.mfn_count, [(first, self.mfn_count)], name="dom0 pages")

    def hat_root(self):
        from ..intel.hat import HTable
        pfn = self.va_to_pfn(int(self.xen_info["pt_base"]))
        return HTable(4, pfn, self.pfn_to_mfn(pfn), 0)

    def pfn_to_frame(self, pfn: int) -> int:
        return self.pfn_to_mfn(pfn)

    def frame_to_pfn(self, mfn: int) -> int:
        return self.mfn_to_pfn(mfn)

    def pfn_describe(self, pfn: int) -> str:
        return (f"mfn_list has {self.mfn_count:#x} entries" if pfn < PFN_IS_FOREIGN_MFN
                else "a foreign PFN")

    def hat_pt_page_ok(self, pfn: int) -> bool:
        return True

    def hat_pte_extra(self, user: bool, table: bool = False) -> int:
        """Bits the platform adds: none for 64-bit PV (Xen adds _PAGE_USER itself)."""
        return 0

    def hat_zero_page(self, pfn: int):
        """Zero a page through the scratch window, then unmap it again (a page
        table must have no writable mapping left when Xen validates it)."""
        mfn = self.pfn_to_mfn(pfn)
        rc = self.hv.update_va_mapping(self.scratch_va, (mfn << 12) | PTE_P | PTE_RW | PTE_A
                                       | PTE_D, abi.UVMF_INVLPG)
        if rc:
            self.k.panic(f"hat: cannot map pfn {pfn:#x} (mfn {mfn:#x}) to zero it: {rc}")
        self.k.kcpu.write(self.scratch_va, bytes(PAGE))
        self.hv.update_va_mapping(self.scratch_va, 0, abi.UVMF_INVLPG)
        if self.ptwin_frame == mfn:
            self.ptwin_frame = None

    def hat_write(self, table, entries, *, foreign: bool):
        """mmu_update of entries of ``table`` (foreign device frames: DOMID_IO)."""
        from ..intel.hat import HatError
        reqs = [(((table.frame << 12) + 8 * idx) | abi.MMU_NORMAL_PT_UPDATE, val)
                for idx, val in entries]
        rc = self.hv.mmu_update(reqs, abi.DOMID_IO if foreign else abi.DOMID_SELF)
        if rc:
            idx, val = entries[0]
            raise HatError(f"HYPERVISOR_mmu_update(ptr={(table.frame << 12) + 8 * idx:#x}, "
                           f"val={val & ((1 << 64) - 1):#x}"
                           f"{', DOMID_IO' if foreign else ''}) failed: "
                           f"{rc} ({abi.errno_name(rc)})")

    def hat_invalidate(self, va: int):
        self.hv.mmuext_op(abi.MMUEXT_INVLPG_ALL, va)

    def hat_read(self, table, idx: int) -> int:
        """An entry of a page table, read through a read-only window mapping of it."""
        if table.level == 4 and table.pfn == self.va_to_pfn(int(self.xen_info["pt_base"])):
            return self.k.kcpu.read64(int(self.xen_info["pt_base"]) + 8 * idx)
        if self.ptwin_frame != table.frame:
            rc = self.hv.update_va_mapping(self.ptwin_va, (table.frame << 12) | PTE_P | PTE_A,
                                           abi.UVMF_INVLPG)
            if rc:
                self.k.panic(f"hat: cannot map page table mfn {table.frame:#x}: {rc}")
            self.ptwin_frame = table.frame
        return self.k.kcpu.read64(self.ptwin_va + 8 * idx)

    def va_to_pfn(self, va: int) -> int:
        """Pseudo-physical frame of an address in the boot region (mapped 1:1 from
        KERNELBASE by the domain builder)."""
        return (va - KERNELBASE) >> 12

    def alloc_va(self, npages: int) -> int:
        va = self.window_next
        if va + npages * PAGE > self.window_end:
            self.k.panic(f"kernel device window exhausted ({WINDOW_PAGES} pages)")
        self.window_next += npages * PAGE
        return va

    def hat_devload(self, va: int, mfn: int, writable: bool = True):
        pte = (mfn << 12) | PTE_P | PTE_A | PTE_D | (PTE_RW if writable else 0)
        rc = self.hv.update_va_mapping(va, pte, abi.UVMF_INVLPG)
        if rc:
            self.k.panic(f"hat_devload: HYPERVISOR_update_va_mapping({va:#x}, {pte:#x}) "
                         f"failed: {rc}")

    def map_phys(self, pa: int, npages: int) -> int:
        """psm_map_phys as the i86pc code does it: treat ``pa`` as a physical
        address, i.e. under Xen a *pseudo-physical* one, looked up in mfn_list."""
        va = self.alloc_va(npages)
        for i in range(npages):
            pfn = (pa >> 12) + i
            self.hat_devload(va + i * PAGE, self.pfn_to_mfn(pfn))
        return va + (pa & 0xFFF)

    def map_ma(self, ma: int, npages: int) -> int:
        """Map machine frames (shared_info, device registers) by MFN."""
        va = self.alloc_va(npages)
        for i in range(npages):
            self.hat_devload(va + i * PAGE, (ma >> 12) + i)
        return va + (ma & 0xFFF)

    # ------------------------------------------------------------------ traps
    def trap_cr2(self, cpu: int) -> int | None:
        """A PV guest's CR2 is vcpu_info[cpu].arch.cr2 in shared_info."""
        if not self.shared_info_va:
            return None
        off = 64 * cpu + abi.vcpu_info.fields["arch"][1]
        return self.k.kcpu.read64(self.shared_info_va + off)

    # ------------------------------------------------------------------ privileges
    def physdev_op(self, cmd: int, **fields) -> int:
        dtype = {abi.PHYSDEVOP_set_iopl: abi.physdev_set_iopl,
                 abi.PHYSDEVOP_set_iobitmap: abi.physdev_set_iobitmap}.get(cmd)
        if dtype is None:
            raise ValueError(f"physdev_op {cmd}: not a command this kernel issues")
        rec = np.zeros((), dtype=dtype)
        for name, value in fields.items():
            rec[name] = value
        return self.hv.physdev_op(cmd, rec)

    # ------------------------------------------------------------------ user mode
    def enter_user(self, rip: int, rsp: int, kernel_rsp: int) -> tuple[list[int], int]:
        """The iret frame and stub that drop this vCPU to user mode."""
        kc, hv = self.k.kcpu, self.hv
        if self.ring == 1:
            # one page table for kernel and user: IRETQ to ring 3 (allowed from ring 1)
            hv.stack_switch(self.kernel_ss, kernel_rsp)
            return [rip, self.user_cs, 0x202, rsp, self.user_ss], self.k.sym("native_iret")
        if not getattr(kc, "user_base_set", False):
            l4 = self.user_root() if getattr(self.k, "hat", None) is not None else \
                self.pfn_to_mfn(self.va_to_pfn(int(self.xen_info["pt_base"])))
            rc = hv.mmuext_op(abi.MMUEXT_NEW_USER_BASEPTR, l4)
            if rc:
                self.k.panic(f"MMUEXT_NEW_USER_BASEPTR failed: {rc}")
            kc.user_base_set = True
        hv.stack_switch(abi.FLAT_KERNEL_SS, kernel_rsp)
        frame = [0, rip, abi.FLAT_USER_CS | 3, 0x202, rsp, abi.FLAT_USER_SS | 3]
        return frame, self.k.sym("hypercall_page") + 32 * abi.HYPERVISOR_iret

    USER_VA = 0x400000                  # where the probe process lives in its own tables

    def user_root(self) -> int:
        """A page table of the user process's own (64-bit PV): L4, L3, L2 and L1
        pages mapping its text (read-only) and stack at USER_VA, filled in
        while they are ordinary pages, then pinned as an L4 (Xen validates the
        whole tree); returns the L4's MFN."""
        if getattr(self, "_user_l4", None) is not None:
            return self._user_l4
        k = self.k
        pfns = k.pages.page_create(4)
        m4, m3, m2, m1 = (self.pfn_to_mfn(p) for p in pfns)
        text = self.pfn_to_mfn(self.va_to_pfn(k.sym("user_text")))
        stack = self.pfn_to_mfn(self.va_to_pfn(k.sym("user_stack")))
        P, RW, US = PTE_P, PTE_RW, 0x4
        v = self.USER_VA
        contents = {m4: {(v >> 39) & 511: (m3 << 12) | P | RW | US},
                    m3: {(v >> 30) & 511: (m2 << 12) | P | RW | US},
                    m2: {(v >> 21) & 511: (m1 << 12) | P | RW | US},
                    m1: {(v >> 12) & 511: (text << 12) | P | US | PTE_A,
                         ((v >> 12) & 511) + 1: (stack << 12) | P | RW | US | PTE_A | PTE_D}}
        for mfn, entries in contents.items():
            page = bytearray(PAGE)
            for idx, val in entries.items():
                page[8 * idx:8 * idx + 8] = val.to_bytes(8, "little")
            rc = self.hv.update_va_mapping(self.scratch_va, (mfn << 12) | P | RW | PTE_A | PTE_D,
                                           abi.UVMF_INVLPG)
            if rc:
                k.panic(f"user page table: cannot map mfn {mfn:#x}: {rc}")
            k.kcpu.write(self.scratch_va, bytes(page))
            self.hv.update_va_mapping(self.scratch_va, 0, abi.UVMF_INVLPG)
        rc = self.hv.mmuext_op(abi.MMUEXT_PIN_L4_TABLE, m4)
        if rc:
            k.panic(f"MMUEXT_PIN_L4_TABLE of the user page table failed: {rc}")
        self._user_l4 = m4
        return m4

    def user_addresses(self) -> tuple[int, int]:
        """Where the probe process's text and stack are.  64-bit PV: every page
        is user-accessible (Xen adds _PAGE_USER), so the kernel's own mapping
        serves.  32-bit PV: the kernel's pages are supervisor-only; the two
        pages get user mappings of their own (U/S set by the kernel)."""
        sym = self.k.sym
        if self.ring == 3 and getattr(self.k, "hat", None) is not None:
            return self.USER_VA, self.USER_VA + 2 * PAGE
        if self.ring == 1 and not getattr(self, "user_mapped", False):
            for va, rw in ((sym("user_text"), False), (sym("user_stack"), True)):
                mfn = self.pfn_to_mfn(self.va_to_pfn(va))
                pte = (mfn << 12) | PTE_P | PTE_A | 0x4 | (PTE_RW | PTE_D if rw else 0)
                rc = self.hv.update_va_mapping(va, pte, abi.UVMF_INVLPG)
                if rc:
                    self.k.panic(f"cannot make {va:#x} a user page: {rc}")
            self.user_mapped = True
        return sym("user_text"), sym("user_stack_top")

    # ------------------------------------------------------------------ events (evtchn.c)
    def _phys_rec(self, cmd, dtype, **fields):
        rec = np.zeros((), dtype=dtype)
        for name, value in fields.items():
            rec[name] = value
        va = self.hv._put(rec)
        rc = self.hv.call(abi.HYPERVISOR_physdev_op, cmd, va)
        return rc, self.k.kcpu.read_struct(va, dtype)

    def alloc_irq_vector(self, irq: int) -> int:
        rc, rec = self._phys_rec(abi.PHYSDEVOP_alloc_irq_vector, abi.physdev_irq, irq=irq)
        if rc:
            self.k.panic(f"PHYSDEVOP_alloc_irq_vector(irq {irq}) failed: {rc}")
        return int(rec["vector"])

    def apic_op(self, write: bool, base: int, reg: int, value: int) -> int:
        cmd = abi.PHYSDEVOP_apic_write if write else abi.PHYSDEVOP_apic_read
        rc, rec = self._phys_rec(cmd, abi.physdev_apic, apic_physbase=base, reg=reg,
                                 value=value)
        if rc:
            self.k.panic(f"PHYSDEVOP_apic_{'write' if write else 'read'}({base:#x}, "
                         f"reg {reg:#x}) failed: {rc}")
        return rc if write else int(rec["value"])

    def bind_pirq(self, pirq: int) -> int:
        rec = np.zeros((), dtype=abi.evtchn_bind_pirq)
        rec["pirq"] = pirq
        rc, out = self.hv.event_channel_op(abi.EVTCHNOP_bind_pirq, rec)
        if rc:
            self.k.panic(f"EVTCHNOP_bind_pirq(pirq {pirq}) failed: {rc}")
        port = int(out["port"])
        self.port_pirq[port] = pirq
        self.unmask_port(port)
        return port

    def bind_virq(self, virq: int, vcpu: int = 0) -> int:
        rec = np.zeros((), dtype=abi.evtchn_bind_virq)
        rec["virq"], rec["vcpu"] = virq, vcpu
        rc, out = self.hv.event_channel_op(abi.EVTCHNOP_bind_virq, rec)
        if rc:
            self.k.panic(f"EVTCHNOP_bind_virq(virq {virq}) failed: {rc}")
        port = int(out["port"])
        self.unmask_port(port)
        return port

    def unmask_port(self, port: int):
        rec = np.zeros((), dtype=abi.evtchn_unmask)
        rec["port"] = port
        self.hv.event_channel_op(abi.EVTCHNOP_unmask, rec)

    def set_periodic_timer(self, period_ns: int) -> int:
        cpu = self.k.curcpu
        self.k.kcpu.write64(self.k.sym("scratch") + 4096, period_ns)
        return self.hv.vcpu_op(abi.VCPUOP_set_periodic_timer, cpu,
                               va=self.k.sym("scratch") + 4096)

    def pirq_eoi(self, pirq: int):
        rec = np.zeros((), dtype=abi.physdev_eoi)
        rec["irq"] = pirq
        self.hv.physdev_op(abi.PHYSDEVOP_eoi, rec)

    def _vcpu_info(self, field: str, cpu: int) -> int:
        return self.shared_info_va + 64 * cpu + abi.vcpu_info.fields[field][1]

    def events_enable(self, on: bool):
        """vcpu_info.evtchn_upcall_mask (the PV 'sti'/'cli'); after unmasking,
        make Xen deliver what is already pending (a null hypercall)."""
        cpu = self.k.curcpu
        kc = self.k.kcpu
        kc.write8(self._vcpu_info("evtchn_upcall_mask", cpu), 0 if on else 1)
        if on and kc.read8(self._vcpu_info("evtchn_upcall_pending", cpu)):
            self.hv.xen_version()

    def pending_ports(self) -> list[int]:
        """Take the pending, unmasked ports (clearing the selector and the
        pending bits), as the upcall handler does."""
        kc = self.k.kcpu
        cpu = self.k.curcpu
        kc.write8(self._vcpu_info("evtchn_upcall_pending", cpu), 0)
        sel_va = self._vcpu_info("evtchn_pending_sel", cpu)
        sel = kc.read64(sel_va)
        kc.write64(sel_va, 0)
        pend = self.shared_info_va + abi.shared_info.fields["evtchn_pending"][1]
        mask = self.shared_info_va + abi.shared_info.fields["evtchn_mask"][1]
        ports = []
        for word in range(64):
            if not sel >> word & 1:
                continue
            p = kc.read64(pend + 8 * word)
            m = kc.read64(mask + 8 * word)
            hit = p & ~m
            if hit:
                kc.write64(pend + 8 * word, p & ~hit)
                ports += [64 * word + b for b in range(64) if hit >> b & 1]
        return ports

    # ------------------------------------------------------------------ CPUs
    def start_cpu(self, n: int) -> int:
        """Bring up vCPU ``n`` at kpy_entry on its own stack (VCPUOP_initialise, up)."""
        k = self.k
        sym = k.sym
        ctx = np.zeros((), dtype=abi.vcpu_guest_context)
        ctx["flags"] = abi.VGCF_in_kernel
        top = sym("cpu_stacks") + CPU_STACK * n
        ur = ctx["user_regs"]
        ur["rip"] = sym("kpy_entry")
        ur["rsp"] = top
        ur["cs"] = self.kernel_cs
        ur["ss"] = self.kernel_ss
        ur["rflags"] = 0x202
        ctx["user_regs"] = ur
        for v in range(32):
            ctx["trap_ctxt"][v] = (v, 3 if v in (3, 4) else 0, self.kernel_cs,
                                   sym(f"trap_{v}"))
        ctx["kernel_ss"] = self.kernel_ss
        ctx["kernel_sp"] = top
        ctx["event_callback_eip"] = sym("hypervisor_callback")
        ctx["failsafe_callback_eip"] = sym("failsafe_callback")
        ctx["syscall_callback_eip"] = sym("syscall_entry")
        l4 = self.pfn_to_mfn(self.va_to_pfn(int(self.xen_info["pt_base"])))
        ctx["ctrlreg"][3] = l4 << 12
        k.kcpu.write(sym("scratch"), ctx.tobytes())
        rc = self.hv.vcpu_op(abi.VCPUOP_initialise, n, va=sym("scratch"))
        if rc:
            return rc
        return self.hv.vcpu_op(abi.VCPUOP_up, n)

    def cpu_stack(self, n: int) -> int:
        return self.k.sym("cpu_stacks") + CPU_STACK * n
