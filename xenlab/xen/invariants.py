"""``check_invariants(xen)``: Xen's safety properties, recomputed from scratch.

It re-derives every reference count from the page tables that exist and
compares with the frame table, then checks:

1. a frame typed as a page table is never mapped writable (no writable L1
   entry points at it, and no linear L2-L4 entry is writable);
2. general and type counts equal the references that exist (allocation,
   entries of validated page tables, pins, vCPU base pointers, Xen's own holds);
3. Xen's P2M of each domain and the M2P are inverse: every P2M entry names a
   frame the domain owns whose M2P entry names that PFN, and no two PFNs
   share a frame;
4. no domain maps a frame it may not: L1 entries point at the domain's own
   frames, at I/O frames it has permission for, at Xen's read-only shared
   frames (privileged domains), or at other domains' frames (privileged);
5. Xen's own frames are never guest-writable, Xen's L4 slots are intact in
   every validated L4, free heap frames belong to nobody.

Vectorised over all validated page tables, so it is cheap enough to run after
every hypercall in tests (``xen.check_hook = check_invariants``).
"""

from __future__ import annotations

import numpy as np

from ..machine import memory as _mem
from . import abi
from .frametable import owner_code

ADDR = np.uint64(abi.PADDR_MASK & ~0xFFF)


class InvariantError(AssertionError):
    """A safety property of the hypervisor does not hold (a bug in the model)."""


def _tables(xen, mfns: np.ndarray) -> np.ndarray:
    mem = xen.memory.arrays
    slots = mem[_mem.M_SLOT_OF][mfns].astype(np.int64)
    words = mem[_mem.M_WORDS].reshape(-1, 512)
    return words[np.maximum(slots, 0)].view(np.uint64)


def check_invariants(xen, *, check_heap: bool = True) -> None:
    ft = xen.frametable
    n = ft.nframes
    t = ft.type.astype(np.int64)
    c = ft.count.astype(np.int64)
    own = ft.owner.astype(np.int64)
    ptype = t & abi.PGT_type_mask
    problems: list[str] = []

    exp_gen = ((c & abi.PGC_allocated) != 0).astype(np.int64)
    exp_typ = np.zeros(n, dtype=np.int64)
    # Xen's own holds: I/O frames and shared Xen pages carry one type reference
    xen_held = ((own == owner_code(abi.DOMID_IO)) |
                ((own == owner_code(abi.DOMID_XEN)) & (c != 0)))
    for d in xen.domains.values():
        xen_held[d.shared_info_mfn] = True
    exp_typ[xen_held] += 1

    pinned = (t & abi.PGT_pinned) != 0
    exp_gen[pinned] += 1
    exp_typ[pinned] += 1
    for d in xen.domains.values():
        for v in d.vcpus:
            for root in (v.guest_table, v.guest_table_user):
                if root:
                    exp_gen[root] += 1
                    exp_typ[root] += 1

    validated = (t & abi.PGT_validated) != 0
    for level in (1, 2, 3, 4):
        tmfns = np.flatnonzero(validated & (ptype == (level << 29)))
        if len(tmfns) == 0:
            continue
        tabs = _tables(xen, tmfns)
        if level == 4:
            xs = tabs[:, abi.ROOT_PAGETABLE_FIRST_XEN_SLOT:abi.ROOT_PAGETABLE_LAST_XEN_SLOT + 1]
            fixed = [0, 1, 3] + list(range(5, 16))   # 258 (linear) and 260 vary per L4
            bad = np.flatnonzero(~(xs[:, fixed] == xen.xen_slots[fixed]).all(axis=1))
            for b in bad[:3]:
                problems.append(f"L4 {tmfns[b]:#x}: Xen's slots 256-271 were changed")
            guest_cols = np.r_[0:abi.ROOT_PAGETABLE_FIRST_XEN_SLOT,
                               abi.ROOT_PAGETABLE_LAST_XEN_SLOT + 1:512]
        else:
            guest_cols = np.arange(512)
        sub = tabs[:, guest_cols]
        present = (sub & np.uint64(1)) != 0
        rows, cols = np.nonzero(present)
        e = sub[rows, cols]
        tgt = ((e & ADDR) >> np.uint64(12)).astype(np.int64)
        holder = tmfns[rows]
        rw = (e & np.uint64(abi._PAGE_RW)) != 0
        in_table = tgt < n
        if level == 1:
            hi = tgt[in_table]
            np.add.at(exp_gen, hi, 1)
            np.add.at(exp_typ, hi[rw[in_table]], 1)
            # 1: writable mappings only of writable-typed frames
            wr_t = tgt[in_table & rw]
            badw = wr_t[ptype[wr_t] != abi.PGT_writable_page]
            for b in badw[:3]:
                problems.append(f"frame {b:#x} (type {abi.PGT_NAMES[int(ptype[b])]}) is "
                                "mapped writable")
            # 5: Xen frames never writable, Xen-private frames never mapped
            xen_code = owner_code(abi.DOMID_XEN)
            xw = wr_t[own[wr_t] == xen_code]
            for b in xw[:3]:
                problems.append(f"Xen's frame {b:#x} is mapped writable by a guest")
            priv = hi[(own[hi] == xen_code) & (c[hi] == 0)]
            for b in priv[:3]:
                problems.append(f"Xen-private frame {b:#x} is mapped by a guest")
            # 4: who may map what
            h_own = own[holder]
            tgt_own = np.where(in_table, own[np.minimum(tgt, n - 1)], -1)
            for d in xen.domains.values():
                sel = h_own == owner_code(d.domid)
                if not sel.any():
                    continue
                to = tgt_own[sel]
                tg = tgt[sel]
                ok = (to == owner_code(d.domid))
                io_sel = (to == owner_code(abi.DOMID_IO)) | (to == -1)
                if io_sel.any():
                    perm = np.array([d.iomem_permitted(int(m)) for m in tg[io_sel]],
                                    dtype=bool)
                    ok[np.flatnonzero(io_sel)] = perm
                if d.privileged:
                    ok |= (to == owner_code(abi.DOMID_XEN)) & (c[np.minimum(tg, n - 1)] != 0)
                    ok |= (to > 0) & (to < owner_code(abi.DOMID_FIRST_RESERVED))
                for b in tg[~ok][:3]:
                    problems.append(f"dom{d.domid} maps frame {b:#x} owned by "
                                    f"{ft.owner_of(int(b)) if b < n else 'I/O'} "
                                    "without the right")
        else:
            self_ref = tgt == holder
            refs = tgt[~self_ref & in_table]
            np.add.at(exp_gen, refs, 1)
            np.add.at(exp_typ, refs, 1)
            lin = (~self_ref) & in_table & (ptype[np.minimum(tgt, n - 1)] == (level << 29))
            lin |= self_ref
            for b in tgt[lin & rw][:3]:
                problems.append(f"linear L{level} entry to {b:#x} is writable")
            bad_t = (~lin) & in_table & (ptype[np.minimum(tgt, n - 1)] != ((level - 1) << 29))
            for b in tgt[bad_t][:3]:
                problems.append(f"L{level} entry points at {b:#x} which is not an "
                                f"L{level - 1} table")
            if (~in_table).any():
                problems.append(f"L{level} entry points outside the frame table")

    gen = c & abi.PGC_count_mask
    typ = t & abi.PGT_count_mask
    bad = np.flatnonzero(gen != exp_gen)
    for b in bad[:5]:
        problems.append(f"frame {b:#x}: general count {gen[b]} but {exp_gen[b]} references "
                        f"({ft.describe(int(b))})")
    bad = np.flatnonzero(typ != exp_typ)
    for b in bad[:5]:
        problems.append(f"frame {b:#x}: type count {typ[b]} but {exp_typ[b]} type references "
                        f"({ft.describe(int(b))})")
    # a page table in use is validated
    in_use_pt = (ptype >= abi.PGT_l1_page_table) & (ptype <= abi.PGT_l4_page_table) & (typ > 0)
    for b in np.flatnonzero(in_use_pt & ~validated)[:3]:
        problems.append(f"page table {b:#x} is in use but not validated")

    # 3: P2M and M2P
    for d in xen.domains.values():
        pfns = np.flatnonzero(d.p2m >= 0)
        mf = d.p2m[pfns].astype(np.int64)
        if len(mf) == 0:
            continue
        outside = (mf >= n)
        if outside.any():
            problems.append(f"dom{d.domid}: P2M names frames outside the frame table")
            pfns, mf = pfns[~outside], mf[~outside]
        if (np.bincount(mf, minlength=n) > 1).any():
            problems.append(f"dom{d.domid}: two PFNs share one MFN in the P2M")
        wrong_owner = own[mf] != owner_code(d.domid)
        for b in pfns[wrong_owner][:3]:
            problems.append(f"dom{d.domid}: P2M[{b:#x}] = {d.p2m[b]:#x} is not its frame")
        m2p = xen.m2p.get_many(mf)
        for b in pfns[m2p != pfns][:3]:
            problems.append(f"dom{d.domid}: P2M[{b:#x}] = {d.p2m[b]:#x} but "
                            f"M2P[{d.p2m[b]:#x}] = {xen.m2p.get(int(d.p2m[b]))}")

    # 5: free frames belong to nobody
    if check_heap:
        fm, fo = xen.heap.free_blocks()
        if len(fm):
            owned = []
            for m, o in zip(fm[:10000], fo[:10000]):
                seg = own[m:m + (1 << int(o))]
                if seg.any():
                    owned.append(int(m))
            for b in owned[:3]:
                problems.append(f"free heap block at {b:#x} has an owner")
    if problems:
        raise InvariantError("; ".join(problems))
