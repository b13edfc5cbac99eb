"""Sources over the hypervisor (``xenlab.xen``): a PV guest's tables, P2M, heap, events.

- :class:`XenPageTables`: a PV domain's page tables as its vCPU walks them,
  frames labelled with the domain's PFNs (M2P / P2M), and PTE writes that go
  through Xen's ``mmu_update``, so the decoder shows Xen's verdict;
- :class:`XenP2M`: the domain's P2M (the ``mfn_list`` Xen built);
- :class:`XenRegions`: Xen's heap zones, the free frames, and who owns what
  (per-domain frame runs, DOMID_XEN, DOMID_IO), for the memory map;
- :func:`xen_route_layer`: PIRQ -> event channel bindings of a domain, a
  layer for :class:`~xenlab.viz.adapters.platform.MachineRoutes`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..ptebits import Verdict
from ..runs import frame_regions
from .machine import MachinePageTables

# xen/include/public/xen.h: special domain ids and the mmu_update command.
DOMID_SELF = 0x7FF0
DOMID_IO = 0x7FF1
DOMID_XEN = 0x7FF2
MMU_NORMAL_PT_UPDATE = 0
HYPERVISOR_mmu_update = 1


def _domain(xen, domain):
    if domain is None:
        return xen.domain(0)
    if isinstance(domain, int):
        d = xen.domain(domain)
        if d is None:
            raise ValueError(f"no domain {domain}; domains: {sorted(xen.domains)}")
        return d
    return domain


class XenPageTables(MachinePageTables):
    """A PV domain's page tables, seen through its vCPU (CR3 = its L4's MFN).

    ``write`` is a ``mmu_update(MMU_NORMAL_PT_UPDATE)`` hypercall by the
    domain's vCPU: Xen validates it as it validates the guest's own updates,
    and the decoder shows its return value (0 or -errno).  The request block
    is placed at ``scratch_va`` in the guest (default: the last page of the
    dom0 builder's bootstrap region); pass ``mmu_update=fn(reqs) -> rc`` to
    issue it another way (the kernel's own hypercall path).
    """

    def __init__(self, xen, domain=None, *, vcpu: int = 0, scratch_va: int | None = None,
                 mmu_update=None, name: str | None = None):
        self.xen = xen
        self.domain = _domain(xen, domain)
        self.vcpu = self.domain.vcpus[vcpu]
        super().__init__(mmu=self.vcpu.hw.mmu,
                         name=name or f"dom{self.domain.domid} vcpu{vcpu} page tables",
                         mfn_to_pfn=self._mfn_to_pfn, pfn_to_mfn=self._pfn_to_mfn)
        self._mmu_update = mmu_update
        lay = getattr(self.domain, "layout", None)
        self.scratch_va = scratch_va if scratch_va is not None else (
            (lay.v_end - 0x1000) if lay is not None else None)

    def _mfn_to_pfn(self, mfn: int):
        pfn = int(self.xen.m2p.get(mfn))
        return None if pfn < 0 else pfn

    def _pfn_to_mfn(self, pfn: int):
        mfn = self.domain.pfn_to_mfn(pfn)
        return None if mfn < 0 else mfn

    def write(self, entry_maddr: int, value: int) -> Verdict:
        rc = self.mmu_update([(entry_maddr | MMU_NORMAL_PT_UPDATE, value)])
        why = "Xen validated the new entry" if rc == 0 else \
            "Xen refused the update (see its log: xen.console())"
        return Verdict(int(rc), f"mmu_update: {why}")

    def mmu_update(self, reqs) -> int:
        """Issue ``mmu_update`` for ``[(ptr, val), ...]`` as the domain; Xen's rc."""
        if self._mmu_update is not None:
            return int(self._mmu_update(reqs))
        from ...xen import abi
        from ...xen.guest import GuestMemory
        if self.scratch_va is None:
            raise ValueError("no scratch_va to put the mmu_update request in")
        arr = np.zeros(len(reqs), dtype=abi.mmu_update)
        for i, (ptr, val) in enumerate(reqs):
            arr[i]["ptr"] = ptr & ((1 << 64) - 1)
            arr[i]["val"] = val & ((1 << 64) - 1)
        if not GuestMemory(self.xen, self.vcpu).write(self.scratch_va, arr.tobytes()):
            raise ValueError(f"scratch_va {self.scratch_va:#x} is not writable by the guest")
        return int(self.xen.hypercall(self.vcpu, HYPERVISOR_mmu_update, self.scratch_va,
                                      len(reqs), 0, DOMID_SELF))


class XenP2M:
    """A domain's P2M as Xen assigned it (PFN -> MFN, -1 where none)."""

    def __init__(self, xen, domain=None, name: str | None = None):
        self.xen = xen
        self.domain = _domain(xen, domain)
        self.name = name or f"dom{self.domain.domid} P2M"

    def p2m(self) -> np.ndarray:
        p = np.asarray(self.domain.p2m, dtype=np.int64)
        valid = np.flatnonzero(p >= 0)
        return p[:valid[-1] + 1] if valid.size else p[:0]

    def mfn_to_pfn(self, mfn: int):
        pfn = int(self.xen.m2p.get(mfn))
        return None if pfn < 0 else pfn


def owner_name(domid: int) -> tuple[str, str]:
    """(kind, label) of a frame owner for the memory map."""
    if domid == DOMID_XEN:
        return "xen", "Xen (DOMID_XEN)"
    if domid == DOMID_IO:
        return "io", "I/O frames (DOMID_IO)"
    if domid == 0:
        return "dom0", "dom0"
    return "domU", f"dom{domid}"


class XenRegions:
    """Xen's view of machine memory: heap zones, free frames, frame owners."""

    def __init__(self, xen, *, free: bool = True, owners: bool = True):
        self.xen, self.free, self.owners = xen, free, owners
        self.name = "Xen"

    def regions(self) -> pd.DataFrame:
        xen = self.xen
        parts = []
        z = xen.heap.zones_frame()
        parts.append(pd.DataFrame({
            "start": z["start"], "end": z["end"], "kind": "xen-heap",
            "label": [f"zone {k}: {n} frames free" for k, n in zip(z["zone"],
                                                                    z["free_frames"])]}))
        if self.free:
            mfns, orders = xen.heap.free_blocks()
            if len(mfns):
                frames = np.repeat(mfns, 1 << orders) + _ramp(orders)
                parts.append(frame_regions(frames, "free", "free in Xen's heap"))
        if self.owners:
            ft = xen.frametable.frame()
            for domid, g in ft.groupby("owner"):
                kind, label = owner_name(int(domid))
                parts.append(frame_regions(g["mfn"].to_numpy(), kind, label))
        out = pd.concat([p for p in parts if len(p)], ignore_index=True)
        return out


def _ramp(orders):
    """0..2**order-1 for each block, concatenated (frame offsets inside blocks)."""
    sizes = 1 << np.asarray(orders, dtype=np.int64)
    starts = np.repeat(np.cumsum(sizes) - sizes, sizes)
    return np.arange(int(sizes.sum()), dtype=np.int64) - starts


def xen_route_layer(xen, domain=None) -> pd.DataFrame:
    """A domain's PIRQ bindings as a routes layer: gsi, pirq, evtchn.

    Xen 3.x gives dom0 PIRQ numbers equal to the IRQ (the GSI) it routes; the
    event channel is the port the guest bound with EVTCHNOP_bind_pirq.
    """
    from ...xen.evtchn import channels_frame
    d = _domain(xen, domain)
    ch = channels_frame(xen, d)
    ch = ch[ch["state"] == "pirq"]
    return pd.DataFrame({"gsi": ch["pirq"].astype("int64").to_numpy(),
                         "pirq": ch["pirq"].astype("int64").to_numpy(),
                         "evtchn": ch["port"].astype("int64").to_numpy()})
