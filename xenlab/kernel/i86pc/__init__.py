"""i86pc: the kernel on the bare PC (the control experiment).

The kernel runs at CPL 0 with page tables it may write (dboot's, reached
through the 0-4 GiB identity map), a real IDT and TSS, the BIOS's services
(the BIOS32 directory and the PCI BIOS), and port I/O allowed by CPL 0.
"""

from __future__ import annotations

import numpy as np

from ..image import KERNEL_PADDR, KERNELBASE
from ..intel.console import SERIAL_PORTS, SerialConsole, TextConsole
from .dboot import XBOOT_INFO, XBOOT_MAGIC

PAGE = 4096
P, RW, US, PCD = 0x1, 0x2, 0x4, 0x10
KCS_SEL, KDS_SEL, UDS_SEL, UCS_SEL, TSS_SEL = 0x08, 0x10, 0x23, 0x2B, 0x30
MSR_EFER, MSR_STAR, MSR_LSTAR, MSR_SFMASK = 0xC0000080, 0xC0000081, 0xC0000082, 0xC0000084
EFER_SCE = 1
BIOS32_SIG = b"_32_"               # BIOS32 Service Directory (Phoenix BIOS32 spec 0.4)
PCI_SERVICE = 0x49435024           # "$PCI"
CPU_STACK = 16384


class I86pc:
    """Platform services for the native kernel."""

    name = "i86pc"
    pv = False

    def __init__(self, kernel):
        self.k = kernel
        self.bi = None
        self.window_next = self.window_end = 0
        self.user_mapped = False
        self.bios32_entry = 0
        self.pci_bios_entry = 0

    # ------------------------------------------------------------------ boot
    def phys(self, pa: int) -> int:
        """The kernel's address for physical memory below 4 GiB (dboot's identity map)."""
        return pa

    def kva_to_pa(self, va: int) -> int:
        return KERNEL_PADDR + (va - KERNELBASE)

    def early_init(self):
        k = self.k
        kc = k.kcpu
        bi_va = kc.read64(k.sym("boot_info"))
        bi = kc.read_struct(self.phys(bi_va), XBOOT_INFO)
        if int(bi["magic"]) != XBOOT_MAGIC:
            k.bop_panic(f"boot info at {bi_va:#x} is not dboot's")
        self.bi = bi
        self.window_next = int(bi["window_va"])
        self.window_end = self.window_next + 512 * PAGE
        cmd = kc.read(self.phys(int(bi["cmdline"])), 256).split(b"\0")[0].decode("latin-1") \
            if int(bi["cmdline"]) else ""
        k.props_from_cmdline(cmd)
        k.boot_archive = (self.phys(int(bi["mod_start"])), int(bi["mod_len"]))
        self.init_descriptors()
        self.find_pci_bios()

    def init_descriptors(self):
        """TSS in dboot's GDT (LTR), the IDT (LIDT), SYSCALL's MSRs."""
        k = self.k
        kc = k.kcpu
        sym = k.sym
        tss = sym("descr")
        kc.write(tss, bytes(104))
        kc.write16(tss + 102, 104)                 # I/O map base past the limit: no bitmap
        # 64-bit TSS descriptor (SDM Vol. 3 §7.2.3): limit, base 0-23, type 9, P, base 24-63
        lo = (103 & 0xFFFF) | ((tss & 0xFFFFFF) << 16) | (0x89 << 40) | \
            (((tss >> 24) & 0xFF) << 56)
        hi = (tss >> 32) & 0xFFFFFFFF
        gdt = self.phys(int(self.bi["gdt"]))
        kc.write64(gdt + TSS_SEL, lo)
        kc.write64(gdt + TSS_SEL + 8, hi)
        kc.call("wr_tsr", TSS_SEL)
        # IDT: interrupt gates (type 0xE), DPL 0 except #BP and #OF (SDM Vol. 3 §6.14.1)
        idt = np.zeros((256, 2), dtype=np.uint64)
        for v in range(256):
            target = sym(f"trap_{v}") if v < 32 else sym("intr_entry")
            dpl = 3 if v in (3, 4) else 0
            idt[v, 0] = ((target & 0xFFFF) | (KCS_SEL << 16) | ((0x8E | (dpl << 5)) << 40)
                         | (((target >> 16) & 0xFFFF) << 48))
            idt[v, 1] = (target >> 32) & 0xFFFFFFFF
        kc.write(sym("trap_table"), idt.tobytes())
        ptr = sym("hcall_args")
        kc.write(ptr, (256 * 16 - 1).to_bytes(2, "little") + sym("trap_table").to_bytes(8, "little"))
        kc.call("wr_idtr", ptr)
        efer = kc.call("rdmsr_stub", MSR_EFER)
        kc.call("wrmsr_stub", MSR_EFER, efer | EFER_SCE)
        kc.call("wrmsr_stub", MSR_STAR, (0x18 << 48) | (KCS_SEL << 32))
        kc.call("wrmsr_stub", MSR_LSTAR, sym("syscall_entry"))
        kc.call("wrmsr_stub", MSR_SFMASK, 0x200)   # IF off on entry

    def find_pci_bios(self):
        """Scan 0xE0000-0xFFFFF for the BIOS32 Service Directory and ask it for
        the PCI BIOS ("$PCI"); store the entry point in ``bios_pci_entry``."""
        k = self.k
        kc = k.kcpu
        area = kc.read(self.phys(0xE0000), 0x20000)
        for off in range(0, len(area), 16):
            if area[off:off + 4] == BIOS32_SIG and sum(area[off:off + 16]) & 0xFF == 0:
                self.bios32_entry = int.from_bytes(area[off + 4:off + 8], "little")
                break
        if not self.bios32_entry:
            return
        kc.call("bios32_call", regs={"r11": self.phys(self.bios32_entry), "rax": PCI_SERVICE,
                                     "rbx": 0})
        if kc.reg("rax") & 0xFF == 0:
            base, offset = kc.reg("rbx") & 0xFFFFFFFF, kc.reg("rdx") & 0xFFFFFFFF
            self.pci_bios_entry = base + offset
            kc.write64(k.sym("bios_pci_entry"), self.phys(self.pci_bios_entry))

    def boot_console(self):
        name = self.k.props.get("console", "text")
        return SerialConsole(self.k, name) if name in SERIAL_PORTS else TextConsole(self.k)

    # ------------------------------------------------------------------ memory
    def alloc_va(self, npages: int) -> int:
        va = self.window_next
        if va + npages * PAGE > self.window_end:
            self.k.panic("kernel device window exhausted")
        self.window_next += npages * PAGE
        return va

    def hat_devload(self, va: int, pfn: int, writable: bool = True, user: bool = False,
                    l1: int | None = None, base: int | None = None):
        """Write the PTE straight into the page table, then INVLPG."""
        l1 = int(self.bi["window_l1"]) if l1 is None else l1
        base = int(self.bi["window_va"]) if base is None else base
        idx = (va - base) >> 12
        pte = (pfn << 12) | P | (RW if writable else 0) | (US if user else 0)
        self.k.kcpu.write64(self.phys(l1) + 8 * idx, pte)
        self.k.kcpu.call("mmu_invlpg", va)

    def map_phys(self, pa: int, npages: int) -> int:
        va = self.alloc_va(npages)
        for i in range(npages):
            self.hat_devload(va + i * PAGE, (pa >> 12) + i)
        return va + (pa & 0xFFF)

    map_ma = map_phys           # natively physical addresses are machine addresses

    # ------------------------------------------------------------------ traps
    def trap_cr2(self, cpu: int) -> int:
        return self.k.kcpu.call("getcr2")

    # ------------------------------------------------------------------ user mode
    def user_addresses(self) -> tuple[int, int]:
        """Map the probe's text and stack pages at the user window (U=1)."""
        user = int(self.bi["user_va"])
        if not self.user_mapped:
            l1 = int(self.bi["user_l1"])
            self.hat_devload(user, self.kva_to_pa(self.k.sym("user_text")) >> 12,
                             writable=False, user=True, l1=l1, base=user)
            self.hat_devload(user + PAGE, self.kva_to_pa(self.k.sym("user_stack")) >> 12,
                             user=True, l1=l1, base=user)
            self.user_mapped = True
        return user, user + 2 * PAGE

    def enter_user(self, rip: int, rsp: int, kernel_rsp: int) -> tuple[list[int], int]:
        """An IRETQ frame to CPL 3; the TSS's RSP0 is where a trap comes back."""
        self.k.kcpu.write64(self.k.sym("descr") + 4, kernel_rsp)
        return [rip, UCS_SEL, 0x2, rsp, UDS_SEL], self.k.sym("native_iret")

    # ------------------------------------------------------------------ CPUs
    def start_cpu(self, n: int) -> int:
        return -1                   # INIT/SIPI start-up is not modelled: i86pc boots one CPU

    def cpu_stack(self, n: int) -> int:
        return self.k.sym("cpu_stacks") + CPU_STACK * n
