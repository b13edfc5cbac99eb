"""The frame table: Xen's record of every machine frame (``struct page_info``).

One entry per frame below ``max_page``, kept as a structure of arrays:

``owner`` (int16)
    the owning domain as ``domid + 1`` (0: nobody, a free or never-used frame);
    DOMID_IO owns I/O frames and DOMID_XEN Xen's own.
``count`` (uint32)
    ``count_info``: the general reference count (bits 0-28, PGC_count_mask)
    and PGC_allocated (bit 31: the domain holds its allocation reference).
``type`` (uint32)
    ``type_info``: the type (bits 29-31: PGT_l1..l4_page_table, PGT_writable_page
    ...), PGT_pinned (28), PGT_validated (27) and the type count (bits 0-15).
``linear`` (int16)
    the XSA-240 fix's linear-page-table counter: > 0 when the table is the target
    of that many linear entries, < 0 when it holds that many linear entries.

Xen 3.1 packs ``count_info`` and ``type_info`` into 32 bits each (asm-x86/mm.h),
so the model stores them as uint32.  The arrays are ``np.zeros`` allocations:
the host maps their pages lazily, so a 64 GiB machine costs nothing here until
frames are assigned, and then about 10 bytes per assigned frame (Xen itself
spends 32).  ``frame()`` is the pandas view.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from . import abi

OWNER_NONE = 0


def owner_code(domid: int) -> int:
    """The value the ``owner`` array stores for ``domid``."""
    return int(domid) + 1


def owner_domid(code: int) -> int | None:
    """The domid an ``owner`` value names (None: nobody)."""
    return None if code == OWNER_NONE else int(code) - 1


@njit(cache=True)
def assign_range(owner, count, code, first, n, count_info):
    """Give frames [first, first+n) to an owner with ``count_info`` each."""
    for m in range(first, first + n):
        owner[m] = code
        count[m] = count_info


@njit(cache=True)
def assign_blocks(owner, count, code, mfns, orders, count_info):
    """Give every frame of the blocks (mfns[i], 2**orders[i]) to an owner."""
    total = np.int64(0)
    for i in range(mfns.shape[0]):
        n = np.int64(1) << orders[i]
        for m in range(mfns[i], mfns[i] + n):
            owner[m] = code
            count[m] = count_info
        total += n
    return total


class FrameTable:
    """Xen's ``frame_table[]`` for frames 0 .. ``nframes - 1``."""

    def __init__(self, nframes: int):
        self.nframes = int(nframes)
        self.owner = np.zeros(self.nframes, dtype=np.int16)
        self.count = np.zeros(self.nframes, dtype=np.uint32)
        self.type = np.zeros(self.nframes, dtype=np.uint32)
        self.linear = np.zeros(self.nframes, dtype=np.int16)

    @property
    def arrays(self):
        return (self.owner, self.count, self.type, self.linear)

    def valid(self, mfn: int) -> bool:
        """mfn_valid(): does the frame table describe this frame?"""
        return 0 <= mfn < self.nframes

    # -- one frame ----------------------------------------------------------------
    def owner_of(self, mfn: int) -> int | None:
        return owner_domid(int(self.owner[mfn])) if self.valid(mfn) else None

    def set_owner(self, mfn: int, domid: int | None):
        self.owner[mfn] = OWNER_NONE if domid is None else owner_code(domid)

    def refs(self, mfn: int) -> int:
        return int(self.count[mfn]) & abi.PGC_count_mask

    def allocated(self, mfn: int) -> bool:
        return bool(int(self.count[mfn]) & abi.PGC_allocated)

    def ptype(self, mfn: int) -> int:
        return int(self.type[mfn]) & abi.PGT_type_mask

    def type_count(self, mfn: int) -> int:
        return int(self.type[mfn]) & abi.PGT_count_mask

    def pinned(self, mfn: int) -> bool:
        return bool(int(self.type[mfn]) & abi.PGT_pinned)

    def validated(self, mfn: int) -> bool:
        return bool(int(self.type[mfn]) & abi.PGT_validated)

    def describe(self, mfn: int) -> str:
        """One line, e.g. 'mfn 0x1234: dom0 L1 pinned validated type_count=1 refs=3 +alloc'."""
        if not self.valid(mfn):
            return f"mfn {mfn:#x}: outside the frame table (I/O or absent)"
        own = self.owner_of(mfn)
        who = {None: "free", abi.DOMID_IO: "DOMID_IO", abi.DOMID_XEN: "DOMID_XEN"}.get(
            own, f"dom{own}")
        bits = [abi.PGT_NAMES[self.ptype(mfn)]]
        if self.pinned(mfn):
            bits.append("pinned")
        if self.validated(mfn):
            bits.append("validated")
        return (f"mfn {mfn:#x}: {who} {' '.join(bits)} type_count={self.type_count(mfn)} "
                f"refs={self.refs(mfn)}{' +alloc' if self.allocated(mfn) else ''}")

    # -- views ----------------------------------------------------------------------
    def frame(self, mfns=None, *, owned_only: bool = True):
        """pandas DataFrame: mfn, owner, type, type_count, pinned, validated, refs,
        allocated, linear.  By default only frames that have an owner."""
        import pandas as pd
        if mfns is None:
            mfns = np.flatnonzero(self.owner) if owned_only else np.arange(self.nframes)
        mfns = np.asarray(mfns, dtype=np.int64)
        own = self.owner[mfns].astype(np.int64) - 1
        t = self.type[mfns].astype(np.int64)
        c = self.count[mfns].astype(np.int64)
        names = np.array([abi.PGT_NAMES[k << 29] for k in range(8)], dtype=object)
        return pd.DataFrame({
            "mfn": mfns, "owner": own,
            "type": names[(t >> 29) & 7], "type_count": t & abi.PGT_count_mask,
            "pinned": (t & abi.PGT_pinned) != 0, "validated": (t & abi.PGT_validated) != 0,
            "refs": c & abi.PGC_count_mask, "allocated": (c & abi.PGC_allocated) != 0,
            "linear": self.linear[mfns].astype(np.int64),
        })

    def __repr__(self):
        return f"<FrameTable {self.nframes:#x} frames, {int(np.count_nonzero(self.owner))} owned>"
