"""The HAT: the kernel's page tables for its own address ranges.

Common code (illumos ``hat_i86.c``/``htable.c`` in spirit): a 4-level tree
walked from the top table; a missing table is allocated (a zeroed page from
the page allocator) and linked into its parent; leaf entries are made from a
PFN and attributes (``MAKEPTE``) and read back into a PFN (``pte2pfn``).  The
platform does what differs (``plat.hat_*``):

* **i86pc**: tables are ordinary pages below 4 GiB; the kernel writes entries
  with stores through dboot's identity map and invalidates with INVLPG;
* **i86xen**: a PTE holds a machine frame (``pfn_to_mfn``); page tables are
  read-only to the guest, so a new table is zeroed through a scratch mapping,
  the scratch mapping removed, and the table linked with ``mmu_update``, which
  Xen validates; leaf entries are written with ``mmu_update`` too (foreign
  device frames with ``DOMID_IO`` as the foreign domain); entries are read
  back through a read-only window mapping of the table.

The software bits (AVL, PTE bits 9-11) say how the kernel made a mapping:
``nosync`` (HAT_NOSYNC), ``noconsist`` (HAT_LOAD_NOCONSIST: no page_t
bookkeeping) and ``foreign`` (the frame is a machine frame with no PFN of
ours).  Their encoding comes from the ``pte_software_bits`` hook and the test
for a foreign entry from ``pte_is_foreign`` (stage ``pte_swbits``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .vm import PAGESHIFT, PAGESIZE

# illumos hat_pte.h / mach_mmu.h bit names
PT_VALID, PT_WRITABLE, PT_USER = 0x1, 0x2, 0x4
PT_WRITETHRU, PT_NOCACHE, PT_REF, PT_MOD = 0x8, 0x10, 0x20, 0x40
PT_PAGESIZE, PT_GLOBAL = 0x80, 0x100
PT_SOFTWARE = 0xE00
PT_NX = 1 << 63
PT_PADDR = ((1 << 52) - 1) & ~0xFFF
PFN_IS_FOREIGN_MFN = 1 << 51        # hat_pte.h, LP64
MFN_INVALID = -1
LEVEL_SHIFT = {4: 39, 3: 30, 2: 21, 1: 12}


@dataclass
class HTable:
    """One page table of the kernel's tree (illumos ``htable_t``)."""

    level: int
    pfn: int                 # the table's page (pseudo-physical under Xen)
    frame: int               # what its parent entry holds: MFN under Xen, PFN natively
    vbase: int               # first VA it maps
    valid: int = 0           # entries the kernel made present
    written: dict = field(default_factory=dict)     # index -> value the kernel wrote

    @property
    def span(self) -> int:
        return 1 << (LEVEL_SHIFT[self.level] + 9)


@dataclass
class Mapping:
    """What the kernel asked for at one VA (kept for debuggers and checks)."""

    va: int
    pfn: int
    pte: int                 # the entry the kernel wrote
    kind: str                # "kmem", "device", "dma"
    foreign: bool


class HatError(Exception):
    """The hypervisor refused a page-table update (or the platform could not make one)."""


class Hat:
    """The kernel's HAT over its platform's page-table primitives."""

    def __init__(self, kernel):
        self.k = kernel
        self.plat = kernel.plat
        self.root = self.plat.hat_root()
        self.tables: dict[tuple[int, int], HTable] = {}      # (level, vbase) -> table
        self.maps: dict[int, Mapping] = {}                    # va -> mapping
        self.pt_pages = 0
        self.refused: list[tuple[int, int, str]] = []         # (va, pte, why) Xen said no

    # -- software bits ------------------------------------------------------------------
    def swbits(self) -> dict:
        """The encoding of the software bits (the ``pte_software_bits`` hook)."""
        cached = getattr(self, "_sw", None)
        if cached is None:
            cached = self._sw = dict(self.k.hooks.call("pte_software_bits"))
        return cached

    def is_foreign(self, pte: int) -> bool:
        return bool(self.k.hooks.call("pte_is_foreign", pte & ((1 << 64) - 1)))

    # -- MAKEPTE / pte2pfn ----------------------------------------------------------------
    def makepte(self, pfn: int, *, writable=True, nocache=False, nosync=False,
                noconsist=True, user=False, execute=False) -> tuple[int, bool]:
        """The entry for ``pfn`` (a foreign PFN carries its MFN) and whether it is foreign."""
        sw = self.swbits()
        foreign = bool(pfn & PFN_IS_FOREIGN_MFN)
        frame = self.plat.pfn_to_frame(pfn)
        if frame < 0:
            raise HatError(f"pfn {pfn:#x} has no machine frame "
                           f"({self.plat.pfn_describe(pfn)})")
        pte = (frame << PAGESHIFT) | PT_VALID | PT_REF | PT_MOD
        if writable:
            pte |= PT_WRITABLE
        if nocache:
            pte |= PT_NOCACHE | PT_WRITETHRU
        if user:
            pte |= PT_USER
        if not execute:
            pte |= PT_NX
        # one mark per mapping, the strongest that applies: foreign (which
        # implies the others), else noconsist, else nosync (illumos: "the
        # attributes are inclusive as the values increase")
        soft = sw["foreign"] if foreign else sw["noconsist"] if noconsist else \
            sw["nosync"] if nosync else 0
        pte |= soft
        return pte | self.plat.hat_pte_extra(user), foreign

    def pte2pfn(self, pte: int) -> int:
        """The PFN an entry maps: a foreign entry gives ``mfn | PFN_IS_FOREIGN_MFN``,
        any other the owner's PFN (under Xen through the M2P table)."""
        frame = (pte & PT_PADDR) >> PAGESHIFT
        if self.plat.pv and self.is_foreign(pte):
            return frame | PFN_IS_FOREIGN_MFN
        return self.plat.frame_to_pfn(frame)

    # -- the tree --------------------------------------------------------------------------
    def _index(self, va: int, level: int) -> int:
        return (va >> LEVEL_SHIFT[level]) & 511

    def table_for(self, va: int, create: bool = True) -> HTable | None:
        """The level-1 table mapping ``va``, allocating the levels above as needed."""
        parent = self.root
        for level in (3, 2, 1):
            vbase = va & ~((1 << (LEVEL_SHIFT[level] + 9)) - 1)
            t = self.tables.get((level, vbase))
            if t is None:
                if not create:
                    return None
                t = self._new_table(level, vbase, parent, self._index(va, level + 1))
            parent = t
        return parent

    def _new_table(self, level: int, vbase: int, parent: HTable, idx: int) -> HTable:
        pfn = self.k.pages.page_create(1)[0]
        if not self.plat.hat_pt_page_ok(pfn):
            # natively tables must sit where the kernel can write them (below 4 GiB)
            self.k.pages.page_free([pfn])
            pfn = self.k.pages.page_create_run(1, limit=1 << 20)
        self.plat.hat_zero_page(pfn)
        frame = self.plat.pfn_to_frame(pfn)
        t = HTable(level, pfn, frame, vbase)
        entry = (frame << PAGESHIFT) | PT_VALID | PT_WRITABLE | PT_REF | PT_MOD
        entry |= self.plat.hat_pte_extra(False, table=True)
        self.plat.hat_write(parent, [(idx, entry)], foreign=False)
        parent.valid += 1
        parent.written[idx] = entry
        self.tables[(level, vbase)] = t
        self.pt_pages += 1
        return t

    # -- loading and unloading ------------------------------------------------------------
    def _load(self, va: int, pfns: list[int], kind: str, **attrs):
        """Map consecutive pages at ``va``, one table's worth per platform write."""
        i = 0
        while i < len(pfns):
            t = self.table_for(va + i * PAGESIZE)
            first = self._index(va + i * PAGESIZE, 1)
            n = min(len(pfns) - i, 512 - first)
            batch, foreign_batch, made = [], [], []
            for j in range(n):
                cur = va + (i + j) * PAGESIZE
                pte, foreign = self.makepte(pfns[i + j], **attrs)
                (foreign_batch if foreign else batch).append((first + j, pte))
                made.append(Mapping(cur, pfns[i + j], pte, kind, foreign))
            replaced = [t.vbase + (idx << PAGESHIFT) for idx, _ in batch + foreign_batch
                        if t.written.get(idx, 0) & PT_VALID]
            for b, foreign in ((batch, False), (foreign_batch, True)):
                if b:
                    try:
                        self.plat.hat_write(t, b, foreign=foreign)
                    except HatError as e:
                        self.refused.append((t.vbase + (b[0][0] << PAGESHIFT), b[0][1],
                                             str(e)))
                        raise
                    for idx, pte in b:
                        if not (t.written.get(idx, 0) & PT_VALID):
                            t.valid += 1
                        t.written[idx] = pte
            for cur in replaced:
                self.plat.hat_invalidate(cur)
            for m in made:
                self.maps[m.va] = m
            i += n

    def memload_many(self, va: int, pfns: list[int], *, nosync: bool = False,
                     writable: bool = True):
        """hat_memload_array: kernel memory (HAT_LOAD_NOCONSIST), or DMA memory
        (HAT_NOSYNC: its REF/MOD bits mean nothing to the page_t)."""
        self._load(va, pfns, "dma" if nosync else "kmem", writable=writable, nosync=nosync,
                   noconsist=not nosync)

    def devload(self, va: int, pfn: int, npages: int = 1, *, nocache: bool = True):
        """hat_devload: device registers (uncached).  ``pfn`` may be foreign."""
        self._load(va, [pfn + i for i in range(npages)], "device", nocache=nocache)

    def unload(self, va: int, npages: int = 1):
        """hat_unload: clear the entries and invalidate the TLB."""
        for i in range(npages):
            cur = va + i * PAGESIZE
            t = self.table_for(cur, create=False)
            if t is None:
                continue
            idx = self._index(cur, 1)
            if not t.written.get(idx, 0) & PT_VALID:
                continue
            self.plat.hat_write(t, [(idx, 0)], foreign=False)
            t.written[idx] = 0
            t.valid -= 1
            self.plat.hat_invalidate(cur)
            self.maps.pop(cur, None)

    # -- reading back ------------------------------------------------------------------------
    def pte_at(self, va: int) -> int:
        """The entry now in the level-1 table for ``va`` (read through the kernel's
        mapping of that table), or 0."""
        t = self.table_for(va, create=False)
        if t is None:
            return 0
        return self.plat.hat_read(t, self._index(va, 1))

    def getpfnum(self, va: int) -> int:
        """hat_getpfnum: the PFN ``va`` maps (from the entry in the table)."""
        pte = self.pte_at(va)
        if not pte & PT_VALID:
            return MFN_INVALID
        return self.pte2pfn(pte)

    def l1_entries(self):
        """(va, entry) of every present entry in the kernel's level-1 tables, read
        back from the tables (for checks and views)."""
        out = []
        for (level, vbase), t in sorted(self.tables.items()):
            if level != 1:
                continue
            for idx in sorted(t.written):
                if t.written[idx] & PT_VALID:
                    out.append((vbase + (idx << PAGESHIFT), self.plat.hat_read(t, idx)))
        return out
