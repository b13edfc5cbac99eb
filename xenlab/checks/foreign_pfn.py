"""Checks for the ``foreign_pfn`` stage: every driver's register mapping
points at its device's machine frame, through a foreign PFN."""

from __future__ import annotations

from ..kernel.intel.hat import PFN_IS_FOREIGN_MFN
from . import Finding, check
from ._model import boot_of, how_far, reached, walk

LAB = "foreign_pfn"


def _device_maps(stage):
    """(instance, BAR physical address, kernel VA) of every register mapping."""
    k = boot_of(stage).kernel
    out = []
    if getattr(k, "devinfo", None) is None:
        return out
    for dip in k.devinfo.walk():
        for h in dip.maps:
            out.append((dip.instname, h.paddr, h.va))
    return out


@check(points=1, title="every driver attaches (its registers answer)", lab=LAB)
def foreign_pfn_reached(stage):
    ok = reached(stage, "foreign_pfn")
    return Finding(ok, "how far the boot went",
                   "every PCI driver attached: each read its device's ID through its mapping",
                   how_far(stage),
                   hint="A BAR holds a machine address.  What does the HAT do with a PFN "
                        "under Xen?")


@check(points=2, title="register mappings reach the devices' machine frames", lab=LAB)
def foreign_pfn_device_frames(stage):
    maps = _device_maps(stage)
    bad = []
    for inst, paddr, va in maps:
        w = walk(stage, va)
        if not w.ok or (w.maddr >> 12) != (paddr >> 12):
            bad.append(f"{inst}: {va:#x} -> {w.maddr if w.ok else w.fault} "
                       f"(BAR page {paddr >> 12:#x})")
    return Finding(bool(maps) and not bad,
                   "the page-table walk of every register mapping the drivers made",
                   "each maps the machine frame of the BAR it was made for",
                   f"{len(maps)} mappings, all right" if maps and not bad else
                   ("; ".join(bad[:3]) or "no register mappings"),
                   hint="Follow a mapping with a page-table walk: which frame is it?")


@check(points=2, title="rootnex hands the HAT foreign PFNs for device registers", lab=LAB)
def foreign_pfn_foreign(stage):
    b = boot_of(stage)
    k = b.kernel
    if k.plat.name != "i86xen":
        raise RuntimeError("a native boot has no foreign PFNs")
    hat = getattr(k, "hat", None)
    devs = [m for m in hat.maps.values() if m.kind == "device"] if hat is not None else []
    plain = [m for m in devs if not m.pfn & PFN_IS_FOREIGN_MFN]
    frames = [m for m in devs if m.pfn & PFN_IS_FOREIGN_MFN
              and b.xen.frametable.owner_of(m.pfn & ~PFN_IS_FOREIGN_MFN) not in (None, 0x7FF1)]
    ok = bool(devs) and not plain and not frames
    return Finding(ok, "the PFN of each device mapping, and the owner of its machine frame "
                       "in Xen's frame table",
                   "mfn | PFN_IS_FOREIGN_MFN (bit 51), a frame owned by DOMID_IO (or no RAM)",
                   f"{len(devs)} device mappings, all foreign, all I/O frames" if ok else
                   f"{len(plain)} mappings by plain PFN, {len(frames)} of a domain's RAM",
                   hint="illumos: PFN_IS_FOREIGN_MFN in hat_pte.h")
