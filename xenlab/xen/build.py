"""The dom0 builder (after Xen 3.1's ``xen/arch/x86/domain_build.c``, x86-64).

Steps, in Xen's order:

1. Work out the boot layout: the kernel image, the initrd, the P2M list
   (``mfn_list``), start_info, the bootstrap page tables, one page of stack,
   rounded up to a 4 MiB boundary with at least 512 KiB to spare (xen.h).
2. dom0's size: all free memory minus 1/16 of it, that reserve capped at
   128 MiB (``dom0_mem`` overrides).
3. One contiguous chunk for the boot region (no address limit), then the rest
   in chunks of at most 2 MiB (``alloc_chunk``), so a big machine gives dom0
   memory from above 4 GiB first.
4. Page tables: L4, then per 2 MiB an L1 (and an L2, L3 as needed), mapping the
   boot region; every page-table frame mapped read-only; the L4 pinned.
5. P2M and M2P for every page; the image copied in; the hypercall page
   written; start_info filled in; the vCPU set to start in ring 3 at the entry
   point with RSI = start_info.

Bulk work (frame table, M2P, the P2M list) runs in numba kernels, so a 64 GiB
dom0 builds in about a second.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import abi
from .frametable import assign_blocks, owner_code
from .physmap import expand_blocks, fill_words

PAGE = 4096


@dataclass
class Segment:
    vaddr: int
    data: bytes
    memsz: int = 0

    def __post_init__(self):
        self.memsz = max(self.memsz, len(self.data))


@dataclass
class KernelImage:
    """A loaded kernel: segments at virtual addresses, entry, hypercall page.

    ``virt_base`` is where the boot region starts (Xen's VIRT_BASE note);
    ``hypercall_page`` is the virtual address Xen fills with the transfer
    stubs (XEN_ELFNOTE_HYPERCALL_PAGE), or None.
    """
    segments: list[Segment]
    entry: int
    virt_base: int | None = None
    hypercall_page: int | None = None
    guest_os: str = ""
    xen_version: str = ""
    loader: str = ""
    features: str = ""
    notes: dict = field(default_factory=dict)

    @property
    def kstart(self) -> int:
        return min(s.vaddr for s in self.segments)

    @property
    def kend(self) -> int:
        return max(s.vaddr + s.memsz for s in self.segments)

    @classmethod
    def from_elf(cls, data: bytes) -> "KernelImage":
        """Parse an ELF64 image: PT_LOAD segments and the Xen ELF notes."""
        import io

        from elftools.elf.elffile import ELFFile
        try:
            elf = ELFFile(io.BytesIO(bytes(data)))
        except Exception as e:        # noqa: BLE001 - report any parse failure plainly
            raise ValueError(f"not an ELF image: {e}") from None
        if elf.elfclass != 64 or elf["e_machine"] != "EM_X86_64":
            raise ValueError(f"dom0 kernel must be ELF64 x86-64, got ELF{elf.elfclass} "
                             f"{elf['e_machine']}")
        segs, notes = [], {}
        for ph in elf.iter_segments():
            if ph["p_type"] == "PT_LOAD":
                segs.append(Segment(ph["p_vaddr"], ph.data(), ph["p_memsz"]))
            elif ph["p_type"] == "PT_NOTE":
                notes.update(_xen_notes(ph.data()))
        if not segs:
            raise ValueError("ELF image has no PT_LOAD segment")

        def num(t):
            raw = notes.get(t)
            return int.from_bytes(raw[:8], "little") if raw else None

        def text(t):
            raw = notes.get(t)
            return raw.rstrip(b"\0").decode("latin-1") if raw else ""

        return cls(segments=segs, entry=num(abi.XEN_ELFNOTE_ENTRY) or elf["e_entry"],
                   virt_base=num(abi.XEN_ELFNOTE_VIRT_BASE),
                   hypercall_page=num(abi.XEN_ELFNOTE_HYPERCALL_PAGE),
                   guest_os=text(abi.XEN_ELFNOTE_GUEST_OS),
                   xen_version=text(abi.XEN_ELFNOTE_XEN_VERSION),
                   loader=text(abi.XEN_ELFNOTE_LOADER),
                   features=text(abi.XEN_ELFNOTE_FEATURES), notes=notes)


def _xen_notes(raw: bytes) -> dict[int, bytes]:
    """The "Xen" notes of a PT_NOTE segment: {type: descriptor} (ELF note
    records: namesz, descsz, type, then name and descriptor, 4-byte aligned)."""
    out, off = {}, 0
    while off + 12 <= len(raw):
        namesz, descsz, ntype = (int.from_bytes(raw[off + 4 * i:off + 4 * i + 4], "little")
                                 for i in range(3))
        name_at = off + 12
        desc_at = name_at + ((namesz + 3) & ~3)
        end = desc_at + ((descsz + 3) & ~3)
        if end > len(raw) + 3:
            break
        if raw[name_at:name_at + namesz].rstrip(b"\0") == b"Xen":
            out[ntype] = raw[desc_at:desc_at + descsz]
        off = end
    return out


def hypercall_page_bytes() -> bytes:
    """The x86-64 ring-3-kernel hypercall page (x86_64/traps.c,
    hypercall_page_initialise_ring3_kernel): 128 entries of 32 bytes,
    ``push %rcx; push %r11; mov $nr,%eax; syscall; pop %r11; pop %rcx; ret``,
    except entry 23 (iret): ``push %rcx; push %r11; push %rax;
    mov $23,%eax; syscall`` (the guest jumps there and never returns)."""
    page = bytearray(PAGE)
    for i in range(PAGE // 32):
        p = 32 * i
        if i == abi.HYPERVISOR_iret:
            page[p:p + 11] = (b"\x51\x41\x53\x50\xb8" + i.to_bytes(4, "little") + b"\x0f\x05")
        else:
            page[p:p + 14] = (b"\x51\x41\x53\xb8" + i.to_bytes(4, "little") +
                              b"\x0f\x05\x41\x5b\x59\xc3")
    return bytes(page)


def _round_up(x, a):
    return (x + a - 1) & ~(a - 1)


def _nr(lo, hi, shift):
    """NR(): page-table pages of size 2**shift needed to cover [lo, hi)."""
    return ((_round_up(hi, 1 << shift)) - (lo & ~((1 << shift) - 1))) >> shift


@dataclass
class Dom0Layout:
    v_start: int
    vkern_start: int
    vkern_end: int
    vinitrd_start: int
    vinitrd_end: int
    vphysmap_start: int
    vphysmap_end: int
    vstartinfo_start: int
    vstartinfo_end: int
    vpt_start: int
    vpt_end: int
    vstack_start: int
    vstack_end: int
    v_end: int
    nr_pt_pages: int
    nr_pages: int

    def frame(self):
        import pandas as pd
        rows = [("kernel", self.vkern_start, self.vkern_end),
                ("initrd", self.vinitrd_start, self.vinitrd_end),
                ("mfn_list (P2M)", self.vphysmap_start, self.vphysmap_end),
                ("start_info", self.vstartinfo_start, self.vstartinfo_end),
                ("page tables", self.vpt_start, self.vpt_end),
                ("stack", self.vstack_start, self.vstack_end),
                ("padding", self.vstack_end, self.v_end)]
        return pd.DataFrame([{"what": w, "start": s, "end": e, "bytes": e - s}
                             for w, s, e in rows])


def compute_layout(image: KernelImage, nr_pages: int, initrd_len: int) -> Dom0Layout:
    v_start = image.virt_base if image.virt_base is not None else \
        image.kstart & ~((1 << 22) - 1)
    vkern_start, vkern_end = image.kstart, image.kend
    vinitrd_start = _round_up(vkern_end, PAGE)
    vinitrd_end = vinitrd_start + initrd_len
    vphysmap_start = _round_up(vinitrd_end, PAGE)
    vphysmap_end = vphysmap_start + nr_pages * 8
    vstartinfo_start = _round_up(vphysmap_end, PAGE)
    vstartinfo_end = vstartinfo_start + abi.start_info.itemsize
    vpt_start = _round_up(vstartinfo_end, PAGE)
    nr_pt = 1
    while True:
        vpt_end = vpt_start + nr_pt * PAGE
        vstack_start = vpt_end
        vstack_end = vstack_start + PAGE
        v_end = _round_up(vstack_end, 1 << 22)
        if v_end - vstack_end < (512 << 10):
            v_end += 1 << 22          # at least 512 KiB of padding
        need = (1 + _nr(v_start, v_end, 39) + _nr(v_start, v_end, 30)
                + _nr(v_start, v_end, 21))
        if need <= nr_pt:
            break
        nr_pt += 1
    return Dom0Layout(v_start, vkern_start, vkern_end, vinitrd_start, vinitrd_end,
                      vphysmap_start, vphysmap_end, vstartinfo_start, vstartinfo_end,
                      vpt_start, vpt_end, vstack_start, vstack_end, v_end, nr_pt, nr_pages)


def compute_dom0_nr_pages(avail: int, dom0_mem: int | None) -> int:
    """All free memory minus 1/16 of it, that reserve capped at 128 MiB."""
    if dom0_mem is not None:
        return min(int(dom0_mem) >> 12, avail)
    return avail - min(avail // 16, (128 << 20) >> 12)


def build_dom0(xen, image: KernelImage, *, cmdline: str = "", initrd: bytes = b"",
               dom0_mem=None, nr_vcpus: int = 1, hw_vcpus=None):
    """Create domain 0 from ``image`` and return it, ready to run."""
    from ..machine import regs as R
    from ..machine.machine import parse_size
    from ..machine.pte import s64

    if 0 in xen.domains:
        raise ValueError("domain 0 already exists")
    if not isinstance(image, KernelImage):
        image = KernelImage.from_elf(image)
    if hw_vcpus is None and getattr(xen.machine, "vcpus", None):
        hw_vcpus = xen.machine.vcpus
    d = xen.create_domain(0, privileged=True, nr_vcpus=nr_vcpus, hw_vcpus=hw_vcpus)
    _dom0_permissions(xen, d)
    mem_bytes = parse_size(dom0_mem) if dom0_mem is not None else None
    nr_pages = compute_dom0_nr_pages(xen.heap.avail(), mem_bytes)
    lay = compute_layout(image, nr_pages, len(initrd))
    if lay.v_end - lay.v_start > nr_pages * PAGE:
        raise ValueError(f"dom0 memory ({nr_pages} pages) is too small for its boot "
                         f"region ({(lay.v_end - lay.v_start) >> 12} pages)")
    if not (lay.v_end <= abi.HYPERVISOR_VIRT_START or lay.v_start >= abi.HYPERVISOR_VIRT_END):
        raise ValueError(f"dom0 boot region {lay.v_start:#x}-{lay.v_end:#x} overlaps "
                         "Xen's reserved virtual area")
    mem = xen.memory
    ft = xen.frametable

    # -- memory: the boot chunk, then 2 MiB chunks ---------------------------------
    order = max(0, ((lay.v_end - lay.v_start) - 1).bit_length() - 12)
    if (1 << order) > nr_pages:
        raise ValueError("Domain 0 allocation is too small for kernel image.")
    alloc_spfn = xen.heap.alloc(order, domid=0, why="dom0 image")
    if alloc_spfn is None:
        raise MemoryError("not enough memory for dom0's boot region")
    c_mfns, c_orders = xen.heap.alloc_chunks(nr_pages - (1 << order), domid=0)
    mfns = np.concatenate([[alloc_spfn], c_mfns]).astype(np.int64)
    orders = np.concatenate([[order], c_orders]).astype(np.int64)
    total = int((np.int64(1) << orders).sum())
    if total < nr_pages:
        raise MemoryError(f"Not enough RAM for DOM0 reservation ({total} of {nr_pages} pages)")
    assign_blocks(ft.owner, ft.count, np.int16(owner_code(0)), mfns, orders,
                  np.uint32(abi.PGC_allocated | 1))
    d.tot_pages = total
    p2m = np.empty(total, dtype=np.int32)
    expand_blocks(mfns, orders, p2m)
    d.p2m = p2m
    pfn0s = np.concatenate([[0], np.cumsum(np.int64(1) << orders)[:-1]])
    xen.m2p.set_blocks(mfns, np.int64(1) << orders, pfn0s)

    def va_to_mfn(va):
        return alloc_spfn + ((va - lay.v_start) >> 12)

    # -- page tables -----------------------------------------------------------------
    npages = (lay.v_end - lay.v_start) >> 12
    pt_next = [va_to_mfn(lay.vpt_start)]

    def take(ptype):
        m = pt_next[0]
        pt_next[0] += 1
        ft.type[m] = ptype
        tables[m] = np.zeros(512, dtype=np.uint64)
        return m

    tables: dict[int, np.ndarray] = {}
    l4 = take(abi.PGT_l4_page_table)
    cur = {3: None, 2: None, 1: None}
    k = 0
    while k < npages:
        va = lay.v_start + (k << 12)
        l1 = take(abi.PGT_l1_page_table)
        if k == 0 or (va & ((1 << 30) - 1)) == 0:
            l2 = take(abi.PGT_l2_page_table)
            if k == 0 or (va & ((1 << 39) - 1)) == 0:
                l3 = take(abi.PGT_l3_page_table)
                tables[l4][(va >> 39) & 511] = (l3 << 12) | abi.L4_PROT
                cur[3] = l3
            tables[cur[3]][(va >> 30) & 511] = (l2 << 12) | abi.L3_PROT
            cur[2] = l2
        tables[cur[2]][(va >> 21) & 511] = (l1 << 12) | abi.L2_PROT
        # the whole 2 MiB run of this L1 at once
        start = (va >> 12) & 511
        last = min(npages, k + 512 - start)
        mf = va_to_mfn(lay.v_start) + np.arange(k, last, dtype=np.int64)
        tables[l1][start:start + (last - k)] = ((mf << 12) | abi.L1_PROT).astype(np.uint64)
        k = last
    used_pt = pt_next[0] - va_to_mfn(lay.vpt_start)
    if used_pt > lay.nr_pt_pages:
        raise AssertionError("page-table estimate too small")
    # every mapped page: writable type (data pages) or read-only (page tables)
    first_pt = va_to_mfn(lay.vpt_start)
    pt_mfns = np.arange(first_pt, first_pt + lay.nr_pt_pages, dtype=np.int64)
    map_mfns = va_to_mfn(lay.v_start) + np.arange(npages, dtype=np.int64)
    data_mfns = map_mfns[(map_mfns < first_pt) | (map_mfns >= first_pt + lay.nr_pt_pages)]
    ft.count[data_mfns] = abi.PGC_allocated | 2
    ft.type[data_mfns] = abi.PGT_writable_page | abi.PGT_validated | 1
    for m in pt_mfns:
        m = int(m)
        va = lay.v_start + ((m - va_to_mfn(lay.v_start)) << 12)
        l1 = _l1_of(tables, l4, va)
        l1[(va >> 12) & 511] &= ~np.uint64(abi._PAGE_RW)
        if m in tables:
            ft.count[m] = abi.PGC_allocated | 3
            ft.type[m] = int(ft.type[m]) | abi.PGT_validated | 1
        else:                         # estimated but unused: an ordinary read-only page
            ft.count[m] = abi.PGC_allocated | 2
            ft.type[m] = 0
    ft.count[l4] = int(ft.count[l4]) + 1
    ft.type[l4] = int(ft.type[l4]) + (1 | abi.PGT_pinned)
    # Xen's guest-adjustments (U on every level, GUEST_KERNEL on kernel L1s)
    for m, tab in tables.items():
        t = int(ft.type[m]) & abi.PGT_type_mask
        pres = (tab & np.uint64(1)) != 0
        if t == abi.PGT_l1_page_table:
            tab[pres] |= np.uint64(abi._PAGE_USER | (1 << 52))
        else:
            tab[pres] |= np.uint64(abi._PAGE_USER)
    xen.install_xen_slots(tables[l4], l4, d)
    for m, tab in tables.items():
        xen.write_machine(m << 12, tab.tobytes())

    # -- contents: image, initrd, P2M list, start_info, hypercall page -------------------
    for seg in image.segments:
        _copy_virt(xen, lay, va_to_mfn, seg.vaddr, seg.data)
    if initrd:
        _copy_virt(xen, lay, va_to_mfn, lay.vinitrd_start, initrd)
    mem.reserve((total * 8) // PAGE + 8)
    ok = fill_words(mem.arrays, va_to_mfn(lay.vphysmap_start), p2m)
    assert ok, "memory pool reservation too small for the P2M list"
    if image.hypercall_page is not None:
        if not lay.vkern_start <= image.hypercall_page < lay.vkern_end:
            raise ValueError(f"hypercall page {image.hypercall_page:#x} is outside the "
                             "kernel image")
        _copy_virt(xen, lay, va_to_mfn, image.hypercall_page & ~0xFFF, hypercall_page_bytes())
    si = np.zeros((), dtype=abi.start_info)
    si["magic"] = f"xen-{abi.XEN_VERSION_MAJOR}.{abi.XEN_VERSION_MINOR}-x86_64".encode()
    si["nr_pages"] = d.tot_pages
    si["shared_info"] = d.shared_info_mfn << 12
    si["flags"] = abi.SIF_PRIVILEGED | abi.SIF_INITDOMAIN
    si["pt_base"] = lay.vpt_start
    si["nr_pt_frames"] = lay.nr_pt_pages
    si["mfn_list"] = lay.vphysmap_start
    si["mod_start"] = lay.vinitrd_start if initrd else 0
    si["mod_len"] = len(initrd)
    si["cmd_line"] = cmdline.encode("latin-1")[:abi.MAX_GUEST_CMDLINE - 1]
    _copy_virt(xen, lay, va_to_mfn, lay.vstartinfo_start, si.tobytes())
    d.start_info_va = lay.vstartinfo_start
    d.layout = lay
    d.image = image
    d.cmdline = cmdline

    # -- the vCPU --------------------------------------------------------------------------
    v = d.vcpus[0]
    v.guest_table = l4
    v.kernel_mode = True
    st = v.hw.state
    st[R.CR3] = l4 << 12
    st[R.RIP] = s64(image.entry)
    st[R.RSP] = s64(lay.vstack_end)
    st[R.RSI] = s64(lay.vstartinfo_start)
    v.hw.mmu.flush()
    for t in d.vcpus:
        xen.update_vcpu_time(t)
    xen.printk("*** LOADING DOMAIN 0 ***")
    xen.printk(f"Dom0 has maximum {nr_vcpus} VCPUs; {d.tot_pages} pages "
               f"({d.tot_pages * 4 // 1024} MiB), boot region "
               f"{lay.v_start:#x}->{lay.v_end:#x}, entry {image.entry:#x}")
    return d


def _l1_of(tables, l4, va):
    t = tables[l4]
    for shift in (39, 30, 21):
        t = tables[int(t[(va >> shift) & 511] & np.uint64(abi.PADDR_MASK & ~0xFFF)) >> 12]
    return t


def _copy_virt(xen, lay, va_to_mfn, va, data: bytes):
    """Copy into the boot region, which is machine-contiguous from alloc_spfn."""
    if not data:
        return
    if va < lay.v_start or va + len(data) > lay.v_end:
        raise ValueError(f"{len(data)} bytes at {va:#x} fall outside dom0's boot region "
                         f"{lay.v_start:#x}-{lay.v_end:#x}")
    xen.write_machine((va_to_mfn(va) << 12) + (va & 0xFFF), bytes(data))


def _dom0_permissions(xen, d):
    """construct_dom0: all I/O except the PIC, PIT, port 0x61, the serial port Xen
    keeps for its console, and the LAPIC and IOAPIC pages."""
    d.ioports[:] = True
    for lo, hi in ((0x20, 0x21), (0xA0, 0xA1), (0x40, 0x43), (0x61, 0x61)):
        d.ioports[lo:hi + 1] = False
    if xen.serial and getattr(xen.machine.ports, "owner", None) is not None \
            and xen.machine.ports.owner[0x3F8]:
        d.ioports[0x3F8:0x400] = False        # ns16550 endboot: Xen's console UART
    d.iomem_all = True
    d.iomem_deny.add(0xFEE00)                 # the local APIC
    for base in _ioapic_bases(xen.machine):
        d.iomem_deny.add(base >> 12)


def _ioapic_bases(machine) -> list[int]:
    bases = []
    for io in getattr(machine, "ioapics", []) or []:
        b = getattr(io, "base", None) or getattr(io, "address", None)
        if b is not None:
            bases.append(int(b))
    if not bases:
        bases = [0xFEC00000]
    return bases
