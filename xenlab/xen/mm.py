"""The PV MMU: reference counts, page types, page-table validation, and the
mmu_update / mmuext_op / update_va_mapping hypercalls.

This follows Xen 3.1's ``xen/arch/x86/mm.c`` (reference §10), rule by rule:

- a frame has one type at a time; the type may change only while its type
  count is 0; page-table types are *validated* (every entry checked, and
  references taken on what the entries point at) when first used, and
  devalidated when the type count drops back to 0;
- an L1 entry may map a frame owned by the domain (or the foreign domain of
  this hypercall), or an I/O frame (not RAM, or owned by DOMID_IO) if the
  domain has I/O-memory permission; a writable L1 entry takes a
  ``PGT_writable_page`` type reference, which fails while the frame is a page
  table, so page tables are never writable by the guest;
- L2/L3/L4 entries must point at validated tables of the next lower level,
  or read-only at a same-level table (a "linear" page table);
- flags in the disallow masks are refused, L4 slots 256-271 belong to Xen,
  and present entries have ``_PAGE_USER`` (and for kernel L1 mappings
  ``_PAGE_GUEST_KERNEL``, user L1 mappings ``_PAGE_GLOBAL``) added.

Later fixes the model also applies, each named where it is enforced:
XSA-182 (the L2-L4 "unchanged entry" fast path excludes _PAGE_RW and other
control bits) and XSA-240 (a linear page table may not point at a table
that itself holds linear entries).
"""

from __future__ import annotations

import numpy as np

from . import abi
from .abi import (PGC_allocated, PGC_count_mask, PGT_count_mask, PGT_l1_page_table,
                  PGT_l2_page_table, PGT_l3_page_table, PGT_l4_page_table, PGT_pinned,
                  PGT_type_mask, PGT_validated, PGT_writable_page, _PAGE_GLOBAL,
                  _PAGE_GUEST_KERNEL, _PAGE_PRESENT, _PAGE_PSE, _PAGE_RW, _PAGE_USER)
from .frametable import OWNER_NONE, owner_code

_M64 = (1 << 64) - 1
ADDR_MASK = abi.PADDR_MASK & ~0xFFF          # entry bits 12..39: the frame
PT_TYPES = {1: PGT_l1_page_table, 2: PGT_l2_page_table, 3: PGT_l3_page_table,
            4: PGT_l4_page_table}
LEVEL_OF = {v: k for k, v in PT_TYPES.items()}
# XSA-182: flags that may change on an L2-L4 entry without re-validation.
FASTPATH_FLAG_WHITELIST = (abi._PAGE_NX_BIT | (0x7FF << 12) | abi._PAGE_AVAIL |
                           _PAGE_GLOBAL | abi._PAGE_DIRTY | abi._PAGE_ACCESSED | _PAGE_USER)


def e_pfn(e: int) -> int:
    return ((e & _M64) & ADDR_MASK) >> 12


def e_flags(e: int) -> int:
    return abi.get_pte_flags(e)


def e_make(mfn: int, flags: int) -> int:
    return ((mfn << 12) & ADDR_MASK) | abi.put_pte_flags(flags)


def has_changed(old: int, new: int, flags: int) -> bool:
    """lNe_has_changed: do the frame or any of ``flags`` differ?"""
    return ((old ^ new) & _M64 & (ADDR_MASK | abi.put_pte_flags(flags))) != 0


class MmError(Exception):
    """Raised inside the MMU code to unwind a failed operation (never escapes
    a hypercall: the dispatcher turns it into the errno it carries)."""

    def __init__(self, errno: int, why: str = ""):
        self.errno = errno
        self.why = why
        super().__init__(f"{abi.errno_name(-errno)}: {why}")


class PvMm:
    """The reference-counting and validation engine over a frame table."""

    def __init__(self, xen):
        self.xen = xen
        self.ft = xen.frametable
        self.memory = xen.memory
        self.masks = abi.disallow_masks(xen.debug, nx=True)
        self.log: list[str] = []          # MEM_LOG lines (Xen prints them in debug builds)

    # -- logging (Xen's MEM_LOG) -----------------------------------------------------
    def mem_log(self, msg: str):
        self.log.append(msg)
        if len(self.log) > 2000:
            del self.log[:1000]
        self.xen.mem_log(msg)

    # -- entries in machine memory -------------------------------------------------
    def read_entry(self, maddr: int) -> int:
        """An 8-byte entry of a RAM frame (fast path straight from the pool)."""
        arr = self.memory.arrays
        mfn = maddr >> 12
        if 0 <= mfn < len(arr[0]):
            s = int(arr[0][mfn])
            if s >= 0:
                return int(arr[2][s * 512 + ((maddr & 0xFFF) >> 3)]) & _M64
        return self.memory.read64(maddr)

    def write_entry(self, maddr: int, value: int):
        arr = self.memory.arrays
        mfn = maddr >> 12
        if 0 <= mfn < len(arr[0]):
            s = int(arr[0][mfn])
            if s > 0 and not arr[6][s] & 1:          # a touched frame holding no code
                value &= _M64
                arr[2][s * 512 + ((maddr & 0xFFF) >> 3)] = value - (1 << 64) if value >> 63 else value
                return
        self.xen.write_machine(maddr, (value & _M64).to_bytes(8, "little"))

    def read_table(self, mfn: int) -> np.ndarray:
        return np.frombuffer(self.memory.read_bytes(mfn << 12, 4096), dtype=np.uint64).copy()

    # -- general references ------------------------------------------------------------
    def get_page(self, mfn: int, dom) -> bool:
        """Take a general reference on a frame owned by ``dom``."""
        ft = self.ft
        if not ft.valid(mfn) or ft.owner[mfn] != owner_code(dom.domid):
            return False
        c = int(ft.count[mfn])
        n = c & PGC_count_mask
        if n == 0 or n + 1 > PGC_count_mask:
            return False
        ft.count[mfn] = c + 1
        return True

    def put_page(self, mfn: int):
        ft = self.ft
        c = int(ft.count[mfn])
        assert c & PGC_count_mask, f"put_page on mfn {mfn:#x} with no references"
        c -= 1
        ft.count[mfn] = c
        if c & PGC_count_mask == 0:
            self.xen.free_domheap_page(mfn)

    def get_page_from_pagenr(self, mfn: int, dom) -> bool:
        return self.get_page(mfn, dom)

    # -- type references ------------------------------------------------------------------
    def get_page_type(self, mfn: int, ptype: int) -> bool:
        """Take a type reference of ``ptype``; validates a page table on first use."""
        ft = self.ft
        x = int(ft.type[mfn])
        cnt = x & PGT_count_mask
        if cnt + 1 > PGT_count_mask:
            return False
        if cnt == 0:
            nx = x + 1
            if (x & PGT_type_mask) != ptype:
                # The type changes: no TLB may still hold a mapping that the old
                # type allowed (Xen flushes via the tlbflush timestamps).
                if (x & PGT_type_mask) != 0 or x & PGT_validated:
                    self.xen.flush_domain_tlbs(self.ft.owner_of(mfn))
                nx &= ~(PGT_type_mask | PGT_validated | PGT_pinned)
                nx |= ptype
                if ptype == PGT_writable_page:
                    nx |= PGT_validated
            ft.type[mfn] = nx
        else:
            if (x & PGT_type_mask) != ptype:
                return False
            if not x & PGT_validated:
                return False          # mid-validation elsewhere (a loop): refuse
            ft.type[mfn] = x + 1
            return True
        if not int(ft.type[mfn]) & PGT_validated:
            if not self.alloc_page_type(mfn, ptype):
                ft.type[mfn] = 0      # we held the only reference
                return False
            ft.type[mfn] = int(ft.type[mfn]) | PGT_validated
        return True

    def put_page_type(self, mfn: int):
        ft = self.ft
        x = int(ft.type[mfn])
        assert x & PGT_count_mask, f"put_page_type on mfn {mfn:#x} with type count 0"
        nx = x - 1
        if nx & PGT_count_mask == 0:
            t = x & PGT_type_mask
            if t in LEVEL_OF and x & PGT_validated:
                ft.type[mfn] = x & ~PGT_validated
                self.free_page_type(mfn, t)
                nx &= ~PGT_validated
        ft.type[mfn] = nx

    def get_page_and_type(self, mfn: int, dom, ptype: int) -> bool:
        if not self.get_page(mfn, dom):
            return False
        if not self.get_page_type(mfn, ptype):
            self.put_page(mfn)
            return False
        return True

    def put_page_and_type(self, mfn: int):
        self.put_page_type(mfn)
        self.put_page(mfn)

    # -- L1 entries ---------------------------------------------------------------------
    def io_frame(self, mfn: int) -> bool:
        """Not RAM Xen tracks, or owned by DOMID_IO (an I/O frame)."""
        return (not self.ft.valid(mfn)) or self.ft.owner[mfn] == owner_code(abi.DOMID_IO)

    def get_page_from_l1e(self, e: int, dom, current) -> bool:
        """References for one L1 entry mapping on behalf of ``dom`` (FOREIGNDOM)."""
        f = e_flags(e)
        if not f & _PAGE_PRESENT:
            return True
        if f & self.masks[1]:
            self.mem_log(f"Bad L1 flags {f & self.masks[1]:x}")
            return False
        mfn = e_pfn(e)
        if self.io_frame(mfn):
            d = current if dom.domid == abi.DOMID_IO else dom
            if not d.iomem_permitted(mfn):
                self.mem_log(f"Non-privileged ({d.domid}) attempt to map I/O space {mfn:08x}")
                return False
            if not self.ft.valid(mfn):
                return True           # no reference counting outside the table
            dom = self.xen.dom_io
        if f & _PAGE_RW:
            ok = self.get_page_and_type(mfn, dom, PGT_writable_page)
        else:
            ok = self.get_page(mfn, dom)
        if not ok:
            self.mem_log(f"Error getting mfn {mfn:x} from L1 entry {e & _M64:016x} "
                         f"for dom{dom.domid}")
        return ok

    def put_page_from_l1e(self, e: int):
        f = e_flags(e)
        if not f & _PAGE_PRESENT:
            return
        mfn = e_pfn(e)
        if not self.ft.valid(mfn):
            return
        if f & _PAGE_RW:
            self.put_page_and_type(mfn)
        else:
            self.put_page(mfn)

    @staticmethod
    def adjust_guest_l1e(e: int) -> int:
        """x86-64: kernel mappings get U + _PAGE_GUEST_KERNEL, user ones U + G."""
        f = e_flags(e)
        if not f & _PAGE_PRESENT:
            return e
        if not f & _PAGE_USER:
            f |= _PAGE_GUEST_KERNEL | _PAGE_USER
        if not f & _PAGE_GUEST_KERNEL:
            f |= _PAGE_GLOBAL | _PAGE_USER
        return (e & ADDR_MASK) | abi.put_pte_flags(f)

    @staticmethod
    def adjust_guest_lNe(e: int) -> int:
        """L2-L4: present entries get _PAGE_USER."""
        if e & _PAGE_PRESENT:
            e |= _PAGE_USER
        return e

    # -- L2-L4 entries ----------------------------------------------------------------
    def get_page_from_lNe(self, level: int, e: int, table_mfn: int, dom) -> bool:
        f = e_flags(e)
        if not f & _PAGE_PRESENT:
            return True
        if f & self.masks[level]:
            self.mem_log(f"Bad L{level} flags {f & self.masks[level]:x}")
            return False
        mfn = e_pfn(e)
        if self.get_page_and_type(mfn, dom, PT_TYPES[level - 1]):
            return True
        return self.get_linear_pagetable(level, e, table_mfn, dom)

    def get_linear_pagetable(self, level: int, e: int, table_mfn: int, dom) -> bool:
        """A read-only entry pointing at a same-level, validated table."""
        if e_flags(e) & _PAGE_RW:
            self.mem_log("Attempt to create linear p.t. with write perms")
            return False
        mfn = e_pfn(e)
        if mfn == table_mfn:
            return True               # a self-map takes no references
        ft = self.ft
        if not self.get_page(mfn, dom):
            return False
        x = int(ft.type[mfn])
        if ((x & PGT_count_mask) == PGT_count_mask or
                (x & (PGT_type_mask | PGT_validated)) != (PT_TYPES[level] | PGT_validated)):
            self.put_page(mfn)
            return False
        # XSA-240: no chains of linear page tables.
        if ft.linear[table_mfn] > 0 or ft.linear[mfn] < 0:
            self.mem_log("XSA-240: refusing a linear page table chain")
            self.put_page(mfn)
            return False
        ft.type[mfn] = x + 1
        ft.linear[table_mfn] -= 1
        ft.linear[mfn] += 1
        return True

    def put_page_from_lNe(self, level: int, e: int, table_mfn: int):
        if not e & _PAGE_PRESENT:
            return
        mfn = e_pfn(e)
        if mfn == table_mfn:
            return
        ft = self.ft
        if (int(ft.type[mfn]) & PGT_type_mask) == PT_TYPES[level]:
            ft.linear[table_mfn] += 1      # it was a linear entry
            ft.linear[mfn] -= 1
        self.put_page_and_type(mfn)

    @staticmethod
    def guest_slot(level: int, i: int) -> bool:
        """is_guest_lN_slot: only L4 slots 256-271 are Xen's."""
        return level != 4 or not (abi.ROOT_PAGETABLE_FIRST_XEN_SLOT <= i
                                  <= abi.ROOT_PAGETABLE_LAST_XEN_SLOT)

    # -- whole tables -------------------------------------------------------------------
    def alloc_page_type(self, mfn: int, ptype: int) -> bool:
        """Validate a frame as a page table of ``ptype``."""
        level = LEVEL_OF.get(ptype)
        if level is None:
            return True               # GDT/LDT pages are not modelled beyond typing
        dom = self.xen.domain_of_owner(mfn)
        if dom is None:
            return False
        cur = self.xen.current_domain or dom
        table = self.read_table(mfn)
        done = []
        new = table.copy()
        for i in np.flatnonzero(table & _PAGE_PRESENT):
            i = int(i)
            if not self.guest_slot(level, i):
                continue
            e = int(table[i])
            ok = (self.get_page_from_l1e(e, dom, cur) if level == 1
                  else self.get_page_from_lNe(level, e, mfn, dom))
            if not ok:
                self.mem_log(f"Failure in alloc_l{level}_table: entry {i}")
                for j in reversed(done):
                    self._put_entry(level, int(table[j]), mfn)
                return False
            done.append(i)
            new[i] = (self.adjust_guest_l1e(e) if level == 1
                      else self.adjust_guest_lNe(e)) & _M64
        if level == 4:
            self.xen.install_xen_slots(new, mfn, dom)
        if not np.array_equal(new, table):
            self.xen.write_machine(mfn << 12, new.tobytes())
        return True

    def free_page_type(self, mfn: int, ptype: int):
        """Devalidate: drop the references every entry held."""
        level = LEVEL_OF[ptype]
        table = self.read_table(mfn)
        for i in np.flatnonzero(table & _PAGE_PRESENT):
            if self.guest_slot(level, int(i)):
                self._put_entry(level, int(table[i]), mfn)

    def _put_entry(self, level: int, e: int, table_mfn: int):
        if level == 1:
            self.put_page_from_l1e(e)
        else:
            self.put_page_from_lNe(level, e, table_mfn)

    # -- modifying one entry ---------------------------------------------------------------
    def mod_l1_entry(self, maddr: int, new: int, current, foreign) -> bool:
        old = self.read_entry(maddr)
        if new & _PAGE_PRESENT:
            mfn = e_pfn(new)
            new = e_make(mfn, e_flags(new))      # drops address bits above PADDR
            f = e_flags(new)
            if f & self.masks[1]:
                self.mem_log(f"Bad L1 flags {f & self.masks[1]:x}")
                return False
            new = self.adjust_guest_l1e(new)
            if not has_changed(old, new, _PAGE_RW | _PAGE_PRESENT):
                self.write_entry(maddr, new)
                return True
            if not self.get_page_from_l1e(new, foreign, current):
                return False
        self.write_entry(maddr, new)
        self.put_page_from_l1e(old)
        return True

    def mod_lN_entry(self, level: int, maddr: int, new: int, table_mfn: int, current) -> bool:
        slot = (maddr & 0xFFF) >> 3
        if not self.guest_slot(level, slot):
            self.mem_log(f"Illegal L{level} update attempt in Xen-private area slot {slot}")
            return False
        old = self.read_entry(maddr)
        if new & _PAGE_PRESENT:
            f = e_flags(new)
            if f & self.masks[level]:
                self.mem_log(f"Bad L{level} flags {f & self.masks[level]:x}")
                return False
            new = self.adjust_guest_lNe(new) & _M64
            # XSA-182: only whitelisted flag changes skip validation.
            if not has_changed(old, new, ~FASTPATH_FLAG_WHITELIST & 0xFFFFFF):
                self.write_entry(maddr, new)
                return True
            if not self.get_page_from_lNe(level, new, table_mfn, current):
                return False
        self.write_entry(maddr, new)
        self._put_entry(level, old, table_mfn)
        return True
