"""Checks for the ``foreign_pfn`` stage: every driver's register mapping
points at its device's machine frame, through a foreign PFN."""

from __future__ import annotations

from ..kernel.intel.hat import PFN_IS_FOREIGN_MFN
from . import Finding, check, question
from ._model import boot_of, how_far, native_variant, reached, shipped_boot, shipped_dom0, walk

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


@check(points=1, title="the i86pc kernel still maps its devices with your hook", lab=LAB,
       parent="foreign_pfn_reached")
def foreign_pfn_native(stage):
    n = native_variant(stage)
    ok = reached(n, "foreign_pfn")
    hat = getattr(boot_of(n).kernel, "hat", None)
    # illumos defines PFN_IS_FOREIGN_MFN only for __xpv: an i86pc PFN never carries it
    tagged = [m for m in hat.maps.values() if m.kind == "device"
              and m.pfn & PFN_IS_FOREIGN_MFN] if ok and hat is not None else []
    found = (how_far(n) if not ok else
             f"{len(tagged)} device mappings with a foreign PFN on i86pc" if tagged else
             "every driver attached, by plain PFNs")
    return Finding(ok and not tagged,
                   "the same machine booted natively (i86pc) with your hook, and the PFNs "
                   "its HAT mapped device registers with",
                   "every driver attached on the bare PC, by plain PFNs (paddr >> 12)", found,
                   hint="On i86pc a physical page is the machine frame: there is no mfn_list "
                        "and no foreign PFN.  Look at the platform argument.")


# ---------------------------------------------------------------------------
# the lab's questions (labs/06_foreign_pfn.ipynb)
# ---------------------------------------------------------------------------

QLAB = "06_foreign_pfn"


def first_failed_bar(stage) -> tuple[str, int]:
    """(instance, BAR 0 address) of the first PCI driver, in device-tree order,
    whose register mapping failed in the 2007 boot of this variant."""
    k = boot_of(shipped_boot(stage)).kernel
    for d in k.devinfo.walk():
        if d.state in ("failed", "deferred") and d.pci is not None and d.pci.mem_regs():
            return d.instname, int(d.pci.mem_regs()[0].base)
    raise RuntimeError("no driver failed to map its registers in the 2007 boot of this variant")


@question("fpfn_bar_pfn", lab=QLAB, points=1, answer="ANSWER_BAR_PFN",
          title="the PFN rootnex handed the HAT",
          asks="the page frame number rootnex gave hat_devload for the first failing "
               "driver's registers",
          looked_at="the first driver (device-tree order) whose register mapping failed in "
                    "the 2007 boot, and its BAR 0",
          hint="The console's first WARNING names the driver and its register address; "
               "mmu_btop shifts by 12.")
def q_fpfn_bar_pfn(stage):
    return first_failed_bar(stage)[1] >> 12


@question("fpfn_nr_pages", lab=QLAB, points=1, answer="ANSWER_NR_PAGES",
          title="the size of dom0's mfn_list",
          asks="how many entries dom0's mfn_list (its P2M) has",
          looked_at="start_info.nr_pages of the 2007 boot of your variant",
          hint="::print start_info nr_pages, or the P2M view's last PFN + 1.")
def q_fpfn_nr_pages(stage):
    return int(len(shipped_dom0(stage).p2m))


@question("fpfn_foreign_bit", lab=QLAB, points=1, answer="ANSWER_FOREIGN_BIT",
          title="the bit that makes a PFN foreign",
          asks="the bit number of PFN_IS_FOREIGN_MFN",
          looked_at="the HAT's PFN_IS_FOREIGN_MFN (illumos hat_pte.h, LP64)",
          hint="PFN_IS_FOREIGN_MFN is a power of two: which one?")
def q_fpfn_foreign_bit(stage):
    return PFN_IS_FOREIGN_MFN.bit_length() - 1
