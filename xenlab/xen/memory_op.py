"""memory_op: reservations, populate_physmap, exchange, and the memory maps.

After ``xen/common/memory.c`` and the x86 ``arch_memory_op`` of Xen 3.1.  Note
the reservation calls' return convention: the number of extents done (a bad
argument block, or a domain the caller may not touch, simply gives 0 done),
not an errno.  ``address_bits`` limits where new frames may come from: see
:mod:`xenlab.xen.heap` for how, and for the 2007 2-4 GiB switch.
"""

from __future__ import annotations

import numpy as np

from ..machine.e820 import E820_RAM
from . import abi
from .guest import range_ok
from .hypercall import guest, register
from .heap import MAX_ORDER

_M64 = (1 << 64) - 1


def _target(xen, v, domid):
    if domid == abi.DOMID_SELF:
        return v.domain
    if not v.domain.privileged:
        return None
    return xen.domain(domid)


def _memflags_bits(xen, address_bits: int) -> int | None:
    """0 (no limit), the limit, or None (the request cannot be met)."""
    if address_bits == 0:
        return 0
    order_max = (xen.max_page - 1).bit_length() if xen.max_page > 1 else 1
    if address_bits >= order_max + abi.PAGE_SHIFT:
        return 0
    if address_bits <= abi.PAGE_SHIFT:
        return None
    return address_bits


def alloc_for(xen, d, order: int, bits: int):
    """__alloc_domheap_pages + assign_pages: a block owned by ``d``, or None."""
    if d is not None and d.tot_pages + (1 << order) > d.max_pages:
        return None
    mfn = xen.heap.alloc(order, address_bits=bits, domid=d.domid if d else -1)
    if mfn is None:
        xen.printk(f"Could not allocate order={order} extent: id={d.domid if d else -1} "
                   f"memflags={bits << 8:#x}") if xen.debug else None
        return None
    if d is not None:
        xen.assign_page(d, mfn, order)
    return mfn


def guest_remove_page(xen, d, gmfn: int) -> bool:
    mm = xen.mm
    mfn = gmfn
    if not xen.frametable.valid(mfn) or not mm.get_page(mfn, d):
        mm.mem_log(f"Bad page free for domain {d.domid}")
        return False
    ft = xen.frametable
    if int(ft.type[mfn]) & abi.PGT_pinned:
        ft.type[mfn] = int(ft.type[mfn]) & ~abi.PGT_pinned
        mm.put_page_and_type(mfn)
    if int(ft.count[mfn]) & abi.PGC_allocated:
        ft.count[mfn] = int(ft.count[mfn]) & ~abi.PGC_allocated
        mm.put_page(mfn)
    mm.put_page(mfn)
    return True


@register(abi.HYPERVISOR_memory_op, 2)
def do_memory_op(xen, v, cmd, arg):
    op = cmd & ((1 << abi.START_EXTENT_SHIFT) - 1)
    start = (cmd & 0xFFFFFFFF) >> abi.START_EXTENT_SHIFT
    g = guest(xen, v)
    if op in (abi.XENMEM_increase_reservation, abi.XENMEM_decrease_reservation,
              abi.XENMEM_populate_physmap):
        r = g.read_struct(arg, abi.xen_memory_reservation)
        if r is None:
            return start
        nr = int(r["nr_extents"])
        order = int(r["extent_order"])
        if nr > (_M64 >> abi.START_EXTENT_SHIFT) or start > nr:
            return start
        bits = 0 if op == abi.XENMEM_decrease_reservation else \
            _memflags_bits(xen, int(r["address_bits"]))
        if bits is None:
            return start
        d = _target(xen, v, int(r["domid"]))
        if d is None:
            return start
        ext = int(r["extent_start"])
        if nr and not range_ok(ext, 8):
            return start
        if order and not v.domain.privileged:     # multipage_allocation_permitted
            return start
        if order > MAX_ORDER:
            return start
        fn = {abi.XENMEM_increase_reservation: increase_reservation,
              abi.XENMEM_decrease_reservation: decrease_reservation,
              abi.XENMEM_populate_physmap: populate_physmap}[op]
        return fn(xen, g, d, ext, start, nr, order, bits)
    if op == abi.XENMEM_exchange:
        return memory_exchange(xen, v, g, arg)
    if op == abi.XENMEM_maximum_ram_page:
        return xen.max_page
    if op in (abi.XENMEM_current_reservation, abi.XENMEM_maximum_reservation,
              abi.XENMEM_maximum_gpfn):
        raw = g.read(arg, 2)
        if raw is None:
            return -abi.EFAULT
        domid = int.from_bytes(raw, "little")
        d = v.domain if domid == abi.DOMID_SELF else xen.domain(domid)
        if d is None:
            return -abi.ESRCH
        if d is not v.domain and not v.domain.privileged:
            return -abi.EPERM
        if op == abi.XENMEM_current_reservation:
            return d.tot_pages
        if op == abi.XENMEM_maximum_reservation:
            return d.max_pages
        valid = np.flatnonzero(d.p2m >= 0)
        return int(valid[-1]) if len(valid) else 0
    if op == abi.XENMEM_machphys_mfn_list:
        r = g.read_struct(arg, abi.xen_machphys_mfn_list)
        if r is None:
            return -abi.EFAULT
        n = min(int(r["max_extents"]), len(xen.m2p.chunks))
        ext = int(r["extent_start"])
        for i in range(n):
            if not g.write_u64(ext + 8 * i, int(xen.m2p.chunks[i])):
                return -abi.EFAULT
        r["nr_extents"] = n
        return 0 if g.write_struct(arg, r) else -abi.EFAULT
    if op == abi.XENMEM_machphys_mapping:
        rec = np.zeros((), dtype=abi.xen_machphys_mapping)
        rec["v_start"] = abi.MACH2PHYS_VIRT_START
        rec["v_end"] = abi.MACH2PHYS_VIRT_START + len(xen.m2p.chunks) * (2 << 20)
        rec["max_mfn"] = xen.max_page - 1
        return 0 if g.write_struct(arg, rec) else -abi.EFAULT
    if op == abi.XENMEM_memory_map:
        d = v.domain
        if not d.e820:
            return -abi.ENOSYS            # no pseudo-physical map was set for it
        return _put_map(g, arg, d.e820, clip=True)
    if op == abi.XENMEM_machine_memory_map:
        if not v.domain.privileged:
            return -abi.EINVAL
        entries = [(e.base, e.length, e.type) for e in sorted(xen.machine.e820)]
        return _put_map(g, arg, entries, clip=False)
    if op == abi.XENMEM_set_memory_map:
        return -abi.EPERM if not v.domain.privileged else -abi.ENOSYS
    if op == abi.XENMEM_add_to_physmap:
        return -abi.ENOSYS                # translated guests only
    return -abi.ENOSYS


def _put_map(g, arg, entries, clip: bool) -> int:
    m = g.read_struct(arg, abi.xen_memory_map)
    if m is None:
        return -abi.EFAULT
    n = int(m["nr_entries"])
    if not clip and n < len(entries) + 1:
        return -abi.EINVAL                # machine_memory_map wants room for one more
    n = min(n, len(entries))
    recs = np.zeros(n, dtype=abi.e820entry)
    for i in range(n):
        recs[i] = entries[i]
    if n and not g.write(int(m["buffer"]), recs.tobytes()):
        return -abi.EFAULT
    m["nr_entries"] = n
    return 0 if g.write_struct(arg, m) else -abi.EFAULT


def increase_reservation(xen, g, d, ext, start, nr, order, bits):
    i = start
    while i < nr:
        mfn = alloc_for(xen, d, order, bits)
        if mfn is None:
            break
        if ext and not g.write_u64(ext + 8 * i, mfn):
            _give_back(xen, d, mfn, order)
            break
        i += 1
    return i


def populate_physmap(xen, g, d, ext, start, nr, order, bits):
    i = start
    while i < nr:
        gpfn = g.read_u64(ext + 8 * i)
        if gpfn is None:
            break
        mfn = alloc_for(xen, d, order, bits)
        if mfn is None:
            break
        for k in range(1 << order):
            _set_pair(xen, d, mfn + k, gpfn + k)
        if not g.write_u64(ext + 8 * i, mfn):
            break
        i += 1
    return i


def decrease_reservation(xen, g, d, ext, start, nr, order, bits):
    i = start
    while i < nr:
        gmfn = g.read_u64(ext + 8 * i)
        if gmfn is None:
            break
        ok = True
        for k in range(1 << order):
            if not guest_remove_page(xen, d, gmfn + k):
                ok = False
                break
        if not ok:
            break
        i += 1
    return i


def _set_pair(xen, d, mfn: int, pfn: int):
    from .mmuops import set_machphys
    set_machphys(xen, d, mfn, pfn)


def _give_back(xen, d, mfn: int, order: int):
    for k in range(1 << order):
        m = mfn + k
        xen.frametable.count[m] = int(xen.frametable.count[m]) & ~abi.PGC_allocated
        xen.mm.put_page(m)


def steal_page(xen, d, mfn: int) -> bool:
    """Take a frame away from ``d``: only if nothing but its allocation holds it."""
    ft = xen.frametable
    if not ft.valid(mfn) or ft.owner_of(mfn) != d.domid:
        return False
    c = int(ft.count[mfn])
    if (c & (abi.PGC_count_mask | abi.PGC_allocated)) != (1 | abi.PGC_allocated):
        return False
    if int(ft.type[mfn]) & abi.PGT_count_mask:
        return False
    pfn = xen.m2p.get(mfn)
    if 0 <= pfn < len(d.p2m) and d.p2m[pfn] == mfn:
        d.p2m[pfn] = -1
    xen.m2p.set(mfn, -1, xen.write_machine)
    ft.owner[mfn] = 0
    ft.count[mfn] = 0
    ft.type[mfn] = 0
    d.tot_pages -= 1
    return True


def _unsteal(xen, d, mfn: int, pfn: int):
    xen.assign_page(d, mfn, 0)
    if pfn >= 0:
        _set_pair(xen, d, mfn, pfn)


def memory_exchange(xen, v, g, arg) -> int:
    """XENMEM_exchange: trade frames for frames that meet out.address_bits."""
    exch = g.read_struct(arg, abi.xen_memory_exchange)
    if exch is None:
        return -abi.EFAULT
    ein, eout = exch["in"], exch["out"]
    in_n, out_n = int(ein["nr_extents"]), int(eout["nr_extents"])
    in_o, out_o = int(ein["extent_order"]), int(eout["extent_order"])
    done = int(exch["nr_exchanged"])

    def finish(rc, nr_exchanged):
        exch["nr_exchanged"] = nr_exchanged
        if not g.write(arg + 64, int(nr_exchanged).to_bytes(8, "little")):
            return -abi.EFAULT
        return rc

    if (done > in_n or int(ein["domid"]) != int(eout["domid"])
            or in_o > 63 or out_o > 63
            or (_M64 >> in_o) < in_n or (_M64 >> out_o) < out_n
            or (in_n << in_o) != (out_n << out_o)):
        return finish(-abi.EINVAL, done)
    if (in_o or out_o) and not v.domain.privileged:
        return finish(-abi.EPERM, done)
    if in_o > MAX_ORDER or out_o > MAX_ORDER:
        return finish(-abi.EINVAL, done)
    # XSA-212: both extent lists must lie wholly in guest space.
    if not range_ok(int(ein["extent_start"]), 8 * in_n) or \
            not range_ok(int(eout["extent_start"]), 8 * out_n):
        return finish(-abi.EFAULT, done)
    bits = _memflags_bits(xen, int(eout["address_bits"]))
    if bits is None:
        return finish(-abi.ENOMEM, done)
    d = _target(xen, v, int(ein["domid"]))
    if d is None:
        return finish(-abi.EPERM if not v.domain.privileged else -abi.ESRCH, done)
    if in_o <= out_o:
        in_chunk, out_chunk = out_o - in_o, 0
    else:
        in_chunk, out_chunk = 0, in_o - out_o
    in_ext, out_ext = int(ein["extent_start"]), int(eout["extent_start"])
    i = done >> in_chunk
    while i < (in_n >> in_chunk):
        stolen: list[tuple[int, int]] = []
        rc = 0
        for j in range(1 << in_chunk):
            gmfn = g.read_u64(in_ext + 8 * ((i << in_chunk) + j))
            if gmfn is None:
                rc = -abi.EFAULT
                break
            for k in range(1 << in_o):
                mfn = gmfn + k
                pfn = xen.m2p.get(mfn) if xen.frametable.valid(mfn) else -1
                if not steal_page(xen, d, mfn):
                    rc = -abi.EINVAL
                    break
                stolen.append((mfn, pfn))
            if rc:
                break
        outs: list[int] = []
        if rc == 0:
            for j in range(1 << out_chunk):
                mfn = xen.heap.alloc(out_o, address_bits=bits, domid=d.domid)
                if mfn is None:
                    rc = -abi.ENOMEM
                    break
                outs.append(mfn)
        if rc == 0:
            gpfns = []
            for j in range(1 << out_chunk):
                gp = g.read_u64(out_ext + 8 * ((i << out_chunk) + j))
                if gp is None:
                    rc = -abi.EFAULT
                    break
                gpfns.append(gp)
        if rc:
            for mfn in outs:
                xen.heap.free(mfn, out_o, domid=d.domid)
            for mfn, pfn in stolen:
                _unsteal(xen, d, mfn, pfn)
            return finish(rc, i << in_chunk)
        # the inputs go back to the heap, the outputs to the domain
        for mfn, _ in stolen:
            xen.heap.free(mfn, 0, domid=d.domid)
            xen._flush_pending = True
        for j, mfn in enumerate(outs):
            xen.assign_page(d, mfn, out_o)
            for k in range(1 << out_o):
                _set_pair(xen, d, mfn + k, gpfns[j] + k)
            if not g.write_u64(out_ext + 8 * ((i << out_chunk) + j), mfn):
                return finish(-abi.EFAULT, (i + 1) << in_chunk)
        i += 1
    return finish(0, in_n)
