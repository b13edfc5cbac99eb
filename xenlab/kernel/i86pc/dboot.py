"""dboot for i86pc: from the multiboot loader to the 64-bit kernel.

Runs on the boot vCPU while it is still in 32-bit protected mode with paging
off, exactly where a multiboot loader leaves it (EAX = 0x2BADB002, EBX = the
multiboot information).  Every load and store goes through the vCPU's MMU
(with paging off that is the identity), and the switch to long mode is done by
the vCPU executing dboot.s.

The initial page tables (built in low memory at :data:`TABLES`):

* 0-4 GiB identity-mapped with 2 MiB pages, supervisor-only: the kernel's view
  of physical memory (BIOS areas, ACPI tables, boot modules, its own tables);
* the kernel image at KERNELBASE -> KERNEL_PADDR with 4 KiB pages;
* an empty page table for the kernel's device window at KERNELBASE + 16 MiB
  (``map_phys`` fills it) and one for user pages at 4 GiB.

The boot info handed to the kernel in %rsi (:data:`XBOOT_INFO`) says where all
of that is.
"""

from __future__ import annotations

import struct

import numpy as np

from ..image import DBOOT_PADDR, KERNEL_PADDR, KERNELBASE

MB_MAGIC = 0x2BADB002            # Multiboot 0.6.96 §3.2: EAX at entry
MBI_CMDLINE, MBI_MODS = 1 << 2, 1 << 3
TABLES = 0x200000                # dboot's page tables and the boot info
XBOOT_MAGIC = 0x58424931         # "1IBX"
WINDOW_VA = KERNELBASE + (16 << 20)
USER_VA = 1 << 32
P, RW, US, PS = 0x1, 0x2, 0x4, 0x80

XBOOT_INFO = np.dtype([
    ("magic", "<u4"), ("pad", "<u4"), ("cmdline", "<u8"), ("mod_start", "<u8"),
    ("mod_len", "<u8"), ("window_va", "<u8"), ("window_l1", "<u8"), ("user_va", "<u8"),
    ("user_l1", "<u8"), ("gdt", "<u8"), ("pml4", "<u8"), ("kernel_pa", "<u8"),
    ("kernel_pages", "<u8"), ("mem_upper_kb", "<u8")])


class PhysMem:
    """Loads and stores through a vCPU whose paging is still off."""

    def __init__(self, vcpu):
        self.vcpu = vcpu
        self.mem = vcpu.memory

    def read(self, pa: int, n: int) -> bytes:
        return self.mem.read_bytes(self.vcpu.mmu.translate(pa), n)

    def write(self, pa: int, data: bytes):
        self.mem.write_bytes(self.vcpu.mmu.translate(pa, write=True), data)

    def u32(self, pa: int) -> int:
        return int.from_bytes(self.read(pa, 4), "little")

    def cstring(self, pa: int, limit: int = 1024) -> str:
        raw = self.read(pa, limit)
        return raw.split(b"\0")[0].decode("latin-1")


def read_multiboot(pm: PhysMem, mbi: int) -> dict:
    """The parts of the multiboot information dboot uses (Multiboot 0.6.96 §3.3)."""
    flags = pm.u32(mbi)
    info = {"flags": flags, "mem_upper_kb": pm.u32(mbi + 8), "cmdline": 0, "modules": []}
    if flags & MBI_CMDLINE:
        info["cmdline"] = pm.u32(mbi + 16)
    if flags & MBI_MODS:
        count, addr = pm.u32(mbi + 20), pm.u32(mbi + 24)
        for i in range(count):
            start, end, string = struct.unpack("<III", pm.read(addr + 16 * i, 12))
            info["modules"].append((start, end, string))
    return info


def dboot(vcpu, unix, mbi: int) -> int:
    """Build the page tables and boot info, point the vCPU at dboot's mode
    switch; returns the boot info's physical address.  The caller then runs
    the vCPU (the kernel's first run stops at ``kpy_entry``)."""
    if vcpu.get("rax") & 0xFFFFFFFF != MB_MAGIC:
        raise RuntimeError(f"dboot: not entered by a multiboot loader (EAX={vcpu.get('rax'):#x})")
    pm = PhysMem(vcpu)
    mb = read_multiboot(pm, mbi)
    if not mb["modules"]:
        raise RuntimeError("dboot: the boot loader gave no boot archive module")
    nxt = [TABLES]

    def page() -> int:
        pa = nxt[0]
        nxt[0] += 4096
        pm.write(pa, bytes(4096))
        return pa

    def put(table: int, index: int, value: int):
        pm.write(table + 8 * index, value.to_bytes(8, "little"))

    pml4 = page()
    pdpt_low = page()
    put(pml4, 0, pdpt_low | P | RW | US)
    for g in range(4):                      # 0-4 GiB, 2 MiB pages
        pd = page()
        entries = (np.arange(512, dtype=np.uint64) << np.uint64(21)) + np.uint64(g << 30)
        pm.write(pd, (entries | np.uint64(P | RW | PS)).tobytes())
        put(pdpt_low, g, pd | P | RW | US)
    pd_user = page()
    user_l1 = page()
    put(pdpt_low, 4, pd_user | P | RW | US)
    put(pd_user, 0, user_l1 | P | RW | US)
    pdpt_k = page()
    pd_k = page()
    l1_k = page()
    window_l1 = page()
    put(pml4, (KERNELBASE >> 39) & 511, pdpt_k | P | RW)
    put(pdpt_k, (KERNELBASE >> 30) & 511, pd_k | P | RW)
    put(pd_k, (KERNELBASE >> 21) & 511, l1_k | P | RW)
    put(pd_k, (WINDOW_VA >> 21) & 511, window_l1 | P | RW)
    npages = (len(unix.image) + 4095) // 4096
    if npages > 512:
        raise RuntimeError("dboot: the kernel image is larger than 2 MiB")
    ptes = (KERNEL_PADDR + (np.arange(npages, dtype=np.uint64) << np.uint64(12))) | \
        np.uint64(P | RW)
    pm.write(l1_k, ptes.astype(np.uint64).tobytes())
    bi_pa = page()
    gdt = unix.dboot_symbols["dboot_gdt"]
    start, end, _ = mb["modules"][0]
    bi = np.zeros((), dtype=XBOOT_INFO)
    bi["magic"] = XBOOT_MAGIC
    bi["cmdline"] = mb["cmdline"]
    bi["mod_start"], bi["mod_len"] = start, end - start
    bi["window_va"], bi["window_l1"] = WINDOW_VA, window_l1
    bi["user_va"], bi["user_l1"] = USER_VA, user_l1
    bi["gdt"], bi["pml4"] = gdt, pml4
    bi["kernel_pa"], bi["kernel_pages"] = KERNEL_PADDR, npages
    bi["mem_upper_kb"] = mb["mem_upper_kb"]
    pm.write(bi_pa, bi.tobytes())
    ds = unix.dboot_symbols
    pm.write(ds["dboot_cr3"], pml4.to_bytes(8, "little"))
    pm.write(ds["dboot_bootinfo"], bi_pa.to_bytes(8, "little"))
    pm.write(ds["dboot_entry64"], unix.sym("_start").to_bytes(8, "little"))
    vcpu.set("rsi", 0)
    vcpu.set("rip", ds["dboot_entry"])
    assert ds["dboot_entry"] == DBOOT_PADDR
    return bi_pa
