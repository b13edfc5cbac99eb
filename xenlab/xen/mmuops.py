"""mmu_update, mmuext_op, update_va_mapping(_otherdomain): the PV MMU hypercalls.

Each follows ``xen/arch/x86/mm.c`` of Xen 3.1: requests are processed in order
until one fails; the failing one and the rest are not done; ``pdone`` (if not
NULL) receives how many were; the return value is 0 or the first error.
"""

from __future__ import annotations

from ..machine import mmu as _mmu
from ..machine.pte import s64
from . import abi
from .guest import addr_ok
from .hypercall import foreigndom, guest, register, set_foreigndom
from .mm import LEVEL_OF, e_pfn

_M64 = (1 << 64) - 1
MMU_UPDATE_PREEMPTED = 1 << 31


def _write_done(xen, v, pdone, done):
    if pdone:
        guest(xen, v).write_u32(pdone, done)


@register(abi.HYPERVISOR_mmu_update, 4)
def do_mmu_update(xen, v, ureqs, count, pdone, fdom):
    mm = xen.mm
    d = v.domain
    g = guest(xen, v)
    count &= 0xFFFFFFFF
    done = 0
    if count & MMU_UPDATE_PREEMPTED:
        count &= ~MMU_UPDATE_PREEMPTED
    if not addr_ok(ureqs):
        _write_done(xen, v, pdone, done)
        return -abi.EFAULT
    if not set_foreigndom(xen, v, fdom):
        _write_done(xen, v, pdone, done)
        return -abi.ESRCH
    fd = foreigndom(xen, v)
    rc = 0
    i = 0
    batch = _Batch(g, ureqs, count, 16)
    while i < count:
        req = batch.get(i)
        if req is None:
            rc = -abi.EFAULT
            break
        ptr = int.from_bytes(req[:8], "little")
        val = int.from_bytes(req[8:], "little")
        batch.written(ptr)
        cmd = ptr & 7                     # sizeof(l1_pgentry_t) - 1
        okay = False
        if cmd == abi.MMU_NORMAL_PT_UPDATE:
            okay = normal_pt_update(xen, v, ptr, val, fd)
        elif cmd == abi.MMU_MACHPHYS_UPDATE:
            mfn = ptr >> 12
            if mm.get_page_from_pagenr(mfn, fd):
                set_machphys(xen, fd, mfn, val)
                mm.put_page(mfn)
                okay = True
            else:
                mm.mem_log("Could not get page for mach->phys update")
        else:
            mm.mem_log(f"Invalid page update command {cmd:x}")
            rc = -abi.ENOSYS
        if not okay:
            rc = rc or -abi.EINVAL
            break
        i += 1
    _write_done(xen, v, pdone, i)
    return rc


class _Batch:
    """The request array, read a page at a time (Xen reads one request at a
    time; a request that writes into the array's own frames re-reads it)."""

    def __init__(self, g, va, count, size):
        self.g, self.va, self.count, self.size = g, va, count, size
        self.first, self.data, self.frames = 0, b"", set()

    def get(self, i):
        off = (i - self.first) * self.size
        if not (0 <= off and off + self.size <= len(self.data)):
            va = self.va + i * self.size
            n = min(self.count - i, max(1, (4096 - (va & 0xFFF)) // self.size))
            raw = self.g.read(va, n * self.size)
            if raw is None:
                raw = self.g.read(va, self.size)
                if raw is None:
                    return None
            ma = self.g.translate(va, False)
            self.frames = {ma >> 12} if ma is not None else set()
            self.first, self.data, off = i, raw, 0
        return self.data[off:off + self.size]

    def written(self, ptr):
        if (ptr >> 12) in self.frames:
            self.data = b""                  # the guest edits its own request list


def normal_pt_update(xen, v, ptr, val, fd) -> bool:
    """One MMU_NORMAL_PT_UPDATE: the frame holding the entry decides the rules."""
    mm = xen.mm
    d = v.domain
    mfn = ptr >> 12
    maddr = ptr & ~7
    if not mm.get_page_from_pagenr(mfn, d):
        mm.mem_log("Could not get page for normal update")
        return False
    ft = xen.frametable
    ok = False
    try:
        ptype = int(ft.type[mfn]) & abi.PGT_type_mask
        level = LEVEL_OF.get(ptype)
        if level is not None and mm.get_page_type(mfn, ptype):
            try:
                if level == 1:
                    ok = mm.mod_l1_entry(maddr, val, d, fd)
                else:
                    ok = mm.mod_lN_entry(level, maddr, val, mfn, d)
            finally:
                mm.put_page_type(mfn)
            return ok
        # not (or no longer) a page table: a plain write needs a writable type
        if mm.get_page_type(mfn, abi.PGT_writable_page):
            mm.write_entry(maddr, val)
            mm.put_page_type(mfn)
            ok = True
        return ok
    finally:
        mm.put_page(mfn)


def set_machphys(xen, d, mfn: int, pfn: int):
    """M2P[mfn] = pfn, keeping Xen's P2M of the owner its inverse.

    Xen 3.1 writes only the M2P entry; the model also moves the domain's P2M
    entry and invalidates stale partners so the two tables stay inverse (a
    guest can observe no difference: illumos and Linux check both directions).
    """
    pfn &= _M64
    old_pfn = xen.m2p.get(mfn)
    if 0 <= old_pfn < len(d.p2m) and d.p2m[old_pfn] == mfn:
        d.p2m[old_pfn] = -1
    if pfn < (1 << 40):
        prev = d.pfn_to_mfn(pfn)
        if prev >= 0 and prev != mfn and xen.m2p.get(prev) == pfn:
            xen.m2p.set(prev, -1, xen.write_machine)
        d.set_p2m(pfn, mfn)
    xen.m2p.set(mfn, pfn, xen.write_machine)


# ---------------------------------------------------------------------------
# mmuext_op
# ---------------------------------------------------------------------------

PIN_TYPES = {abi.MMUEXT_PIN_L1_TABLE: abi.PGT_l1_page_table,
             abi.MMUEXT_PIN_L2_TABLE: abi.PGT_l2_page_table,
             abi.MMUEXT_PIN_L3_TABLE: abi.PGT_l3_page_table,
             abi.MMUEXT_PIN_L4_TABLE: abi.PGT_l4_page_table}


@register(abi.HYPERVISOR_mmuext_op, 4)
def do_mmuext_op(xen, v, uops, count, pdone, fdom):
    mm = xen.mm
    g = guest(xen, v)
    count &= 0xFFFFFFFF
    if count & MMU_UPDATE_PREEMPTED:
        count &= ~MMU_UPDATE_PREEMPTED
    if not addr_ok(uops):
        _write_done(xen, v, pdone, 0)
        return -abi.EFAULT
    if not set_foreigndom(xen, v, fdom):
        _write_done(xen, v, pdone, 0)
        return -abi.ESRCH
    rc = 0
    i = 0
    while i < count:
        op = g.read_struct(uops + 24 * i, abi.mmuext_op)
        if op is None:
            rc = -abi.EFAULT
            break
        r = mmuext_one(xen, v, int(op["cmd"]), int(op["arg1"]), int(op["arg2"]))
        if r != 0:
            rc = r
            break
        i += 1
    _write_done(xen, v, pdone, i)
    return rc


def mmuext_one(xen, v, cmd: int, arg1: int, arg2: int) -> int:
    mm = xen.mm
    d = v.domain
    fd = foreigndom(xen, v)
    ft = xen.frametable
    mfn = arg1 & ((1 << 52) - 1)
    if cmd in PIN_TYPES:
        if not mm.get_page_and_type(mfn, fd, PIN_TYPES[cmd]):
            mm.mem_log(f"Error while pinning mfn {mfn:x}")
            return -abi.EINVAL
        if int(ft.type[mfn]) & abi.PGT_pinned:
            mm.mem_log(f"Mfn {mfn:x} already pinned")
            mm.put_page_and_type(mfn)
            return -abi.EINVAL
        ft.type[mfn] = int(ft.type[mfn]) | abi.PGT_pinned
        return 0
    if cmd == abi.MMUEXT_UNPIN_TABLE:
        if not mm.get_page_from_pagenr(mfn, d):
            mm.mem_log(f"Mfn {mfn:x} bad domain")
            return -abi.EINVAL
        if int(ft.type[mfn]) & abi.PGT_pinned:
            ft.type[mfn] = int(ft.type[mfn]) & ~abi.PGT_pinned
            mm.put_page_and_type(mfn)
            mm.put_page(mfn)
            return 0
        mm.put_page(mfn)
        mm.mem_log(f"Mfn {mfn:x} not pinned")
        return -abi.EINVAL
    if cmd == abi.MMUEXT_NEW_BASEPTR:
        return 0 if new_guest_cr3(xen, v, mfn) else -abi.EINVAL
    if cmd == abi.MMUEXT_NEW_USER_BASEPTR:
        if mfn != 0 and not mm.get_page_and_type(mfn, d, abi.PGT_root_page_table):
            mm.mem_log(f"Error while installing new mfn {mfn:x}")
            return -abi.EINVAL
        old = v.guest_table_user
        v.guest_table_user = mfn
        if not v.kernel_mode:
            load_cr3(xen, v)
        if old:
            mm.put_page_and_type(old)
        return 0
    if cmd == abi.MMUEXT_TLB_FLUSH_LOCAL:
        _mmu.tlb_flush_all(v.hw.mmu.tlb)
        return 0
    if cmd == abi.MMUEXT_INVLPG_LOCAL:
        _mmu.tlb_invlpg(v.hw.mmu.tlb, s64(arg1))
        return 0
    if cmd in (abi.MMUEXT_TLB_FLUSH_ALL, abi.MMUEXT_TLB_FLUSH_MULTI):
        targets = _vcpus_of(xen, v, cmd == abi.MMUEXT_TLB_FLUSH_MULTI, arg2)
        if targets is None:
            return -abi.EFAULT
        for t in targets:
            _mmu.tlb_flush_all(t.hw.mmu.tlb)
        return 0
    if cmd in (abi.MMUEXT_INVLPG_ALL, abi.MMUEXT_INVLPG_MULTI):
        targets = _vcpus_of(xen, v, cmd == abi.MMUEXT_INVLPG_MULTI, arg2)
        if targets is None:
            return -abi.EFAULT
        for t in targets:
            _mmu.tlb_invlpg(t.hw.mmu.tlb, s64(arg1))
        return 0
    if cmd == abi.MMUEXT_FLUSH_CACHE:
        return 0 if d.privileged else -abi.EINVAL
    if cmd == abi.MMUEXT_SET_LDT:
        nr = arg2 & 0xFFFFFFFF
        if (arg1 & 0xFFF) or nr > 8192 or not addr_ok(arg1):
            return -abi.EINVAL
        v.ldt_base, v.ldt_ents = arg1, nr
        return 0
    mm.mem_log(f"Invalid extended pt command {cmd:#x}")
    return -abi.ENOSYS


def _vcpus_of(xen, v, multi: bool, mask_va: int):
    vcpus = v.domain.vcpus
    if not multi:
        return vcpus
    raw = guest(xen, v).read(mask_va, 8)
    if raw is None:
        return None
    mask = int.from_bytes(raw, "little")
    return [t for t in vcpus if mask >> t.vcpu_id & 1]


def new_guest_cr3(xen, v, mfn: int) -> bool:
    """MMUEXT_NEW_BASEPTR / MOV to CR3: the new L4 takes a root type reference."""
    mm = xen.mm
    if not mm.get_page_and_type(mfn, v.domain, abi.PGT_root_page_table):
        mm.mem_log(f"Error while installing new baseptr {mfn:x}")
        return False
    old = v.guest_table
    v.guest_table = mfn
    if v.kernel_mode:
        load_cr3(xen, v)
    if old:
        mm.put_page_and_type(old)
    return True


def load_cr3(xen, v):
    """write_ptbase: the hardware CR3 follows the vCPU's mode (flushes the TLB)."""
    from ..machine import regs as R
    mfn = v.guest_table if v.kernel_mode else v.guest_table_user
    v.hw.state[R.CR3] = mfn << 12
    _mmu.tlb_flush_all(v.hw.mmu.tlb)


# ---------------------------------------------------------------------------
# update_va_mapping
# ---------------------------------------------------------------------------

def guest_l1e_maddr(xen, v, va: int):
    """Find the L1 entry for ``va`` in the current page tables (guest_map_l1e):
    (entry machine address, L1 frame) or None."""
    from ..machine import regs as R
    table = (int(v.hw.state[R.CR3]) & abi.PADDR_MASK) >> 12
    for shift in (39, 30, 21):
        e = xen.mm.read_entry((table << 12) + ((va >> shift) & 511) * 8)
        if not e & 1:
            return None
        if shift != 39 and e & abi._PAGE_PSE:
            return None
        table = e_pfn(e)
    return (table << 12) + ((va >> 12) & 511) * 8, table


@register(abi.HYPERVISOR_update_va_mapping, 3)
def do_update_va_mapping(xen, v, va, val, flags):
    mm = xen.mm
    if not addr_ok(va):
        return -abi.EINVAL
    fd = foreigndom(xen, v)
    rc = 0
    found = guest_l1e_maddr(xen, v, va)
    if found is None:
        rc = -abi.EINVAL
    else:
        maddr, l1mfn = found
        if not mm.get_page_from_pagenr(l1mfn, v.domain):
            rc = -abi.EINVAL
        else:
            try:
                if (int(xen.frametable.type[l1mfn]) & abi.PGT_type_mask) != \
                        abi.PGT_l1_page_table or not mm.mod_l1_entry(maddr, val, v.domain, fd):
                    rc = -abi.EINVAL
            finally:
                mm.put_page(l1mfn)
    kind = flags & abi.UVMF_FLUSHTYPE_MASK
    where = flags & ~abi.UVMF_FLUSHTYPE_MASK
    if kind in (abi.UVMF_TLB_FLUSH, abi.UVMF_INVLPG):
        if where == abi.UVMF_LOCAL:
            targets = [v]
        elif where == abi.UVMF_ALL:
            targets = v.domain.vcpus
        else:
            targets = _vcpus_of(xen, v, True, where)
            if targets is None:
                return -abi.EFAULT
        for t in targets:
            if kind == abi.UVMF_TLB_FLUSH:
                _mmu.tlb_flush_all(t.hw.mmu.tlb)
            else:
                _mmu.tlb_invlpg(t.hw.mmu.tlb, s64(va))
    return rc


@register(abi.HYPERVISOR_update_va_mapping_otherdomain, 4)
def do_update_va_mapping_otherdomain(xen, v, va, val, flags, domid):
    if not v.domain.privileged:
        return -abi.EPERM
    if not set_foreigndom(xen, v, domid):
        return -abi.ESRCH
    return do_update_va_mapping(xen, v, va, val, flags)
