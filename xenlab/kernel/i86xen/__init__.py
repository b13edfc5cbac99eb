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
CPU_STACK = 16384


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

    # ------------------------------------------------------------------ boot
    def early_init(self):
        """Read start_info, map shared_info, install the trap table and callbacks."""
        k = self.k
        kc = k.kcpu
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
        self.window_next, self.window_end = pad, pad + WINDOW_PAGES * PAGE
        self.shared_info_va = self.map_ma(int(si["shared_info"]), 1)
        self.install_traps()
        k.props_from_cmdline(bytes(si["cmd_line"]).split(b"\0")[0].decode("latin-1"))
        k.boot_archive = (int(si["mod_start"]), int(si["mod_len"]))

    def install_traps(self):
        sym = self.k.sym
        kc, hv = self.k.kcpu, self.hv
        table = np.zeros(33, dtype=abi.trap_info)
        for n in range(32):
            dpl = 3 if n in (3, 4) else 0       # int3 and into may come from anywhere
            table[n] = (n, dpl, abi.FLAT_KERNEL_CS, sym(f"trap_{n}"))
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
        """mfn_list[pfn] (read through the kernel's own mapping of the P2M list)."""
        if not 0 <= pfn < self.mfn_count:
            return -1
        return self.k.kcpu.read64(self.mfn_list + 8 * pfn)

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
        if not getattr(kc, "user_base_set", False):
            l4 = self.pfn_to_mfn(self.va_to_pfn(int(self.xen_info["pt_base"])))
            rc = hv.mmuext_op(abi.MMUEXT_NEW_USER_BASEPTR, l4)
            if rc:
                self.k.panic(f"MMUEXT_NEW_USER_BASEPTR failed: {rc}")
            kc.user_base_set = True
        hv.stack_switch(abi.FLAT_KERNEL_SS, kernel_rsp)
        frame = [0, rip, abi.FLAT_USER_CS | 3, 0x202, rsp, abi.FLAT_USER_SS | 3]
        return frame, self.k.sym("hypercall_page") + 32 * abi.HYPERVISOR_iret

    def user_addresses(self) -> tuple[int, int]:
        """Where the probe process's text and stack are (64-bit PV: every page
        is user-accessible, so the kernel's own mapping of the page serves)."""
        return self.k.sym("user_text"), self.k.sym("user_stack_top")

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
        ur["cs"] = abi.FLAT_KERNEL_CS
        ur["ss"] = abi.FLAT_KERNEL_SS
        ur["rflags"] = 0x202
        ctx["user_regs"] = ur
        for v in range(32):
            ctx["trap_ctxt"][v] = (v, 3 if v in (3, 4) else 0, abi.FLAT_KERNEL_CS,
                                   sym(f"trap_{v}"))
        ctx["kernel_ss"] = abi.FLAT_KERNEL_SS
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
