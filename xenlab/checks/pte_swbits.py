"""Checks for the ``pte_swbits`` stage: the kernel's PTE software bits are an
encoded value that never sets bit 11 alone, and foreign entries are told
from the kernel's own."""

from __future__ import annotations

from . import Finding, check
from ._model import boot_of, how_far, leaf_entry, reached

LAB = "pte_swbits"
ENCODED = {0, 0x200, 0x400, 0x600}


@check(points=1, title="drivers attach on the debug build of Xen", lab=LAB)
def pte_swbits_reached(stage):
    ok = reached(stage, "pte_swbits")
    return Finding(ok, "how far the boot went (Xen's debug build)",
                   "every driver attached and the boot memory released", how_far(stage),
                   hint="Which PTE bit does a debug Xen keep for itself?  ('Bad L1 flags' on "
                        "Xen's console)")


@check(points=2, title="no kernel page-table entry sets software bit 11 alone", lab=LAB)
def pte_swbits_avl(stage):
    k = boot_of(stage).kernel
    seen, bad = {}, []
    for va, m in k.hat.maps.items():
        e = leaf_entry(stage, va)
        if e is None:
            continue
        avl = e & 0xE00
        seen[avl] = seen.get(avl, 0) + 1
        if avl not in ENCODED:
            bad.append(f"{va:#x}: {e:#x}")
    refused = k.hat.refused
    found = ", ".join(f"{a:#x}: {n}" for a, n in sorted(seen.items())) or "no entries"
    if bad:
        found += f"; e.g. {bad[0]}"
    if refused:
        found += (f"; Xen refused {len(refused)} entries, e.g. {refused[0][1] & 0xFFF:#x} "
                  f"in its low bits")
    return Finding(bool(seen) and not bad and not refused,
                   "the AVL field (bits 9-11) of every entry the HAT made (from the page "
                   "tables) and the entries Xen refused",
                   "one of 0x200, 0x400, 0x600 (or 0): never bit 11 alone; none refused",
                   found,
                   hint="illumos mach_mmu.h: PT_FOREIGN is 0x600")


@check(points=2, title="foreign entries are recognised, the kernel's own are not", lab=LAB)
def pte_swbits_foreign_test(stage):
    b = boot_of(stage)
    k = b.kernel
    wrong = []
    for va, m in k.hat.maps.items():
        e = leaf_entry(stage, va)
        if e is None:
            continue
        if bool(b.hooks.call("pte_is_foreign", e)) != m.foreign:
            wrong.append(f"{m.kind} mapping {va:#x} ({e & 0xE00:#x})")
    kinds = {m.kind for m in k.hat.maps.values()}
    return Finding(not wrong and {"device", "kmem"} <= kinds,
                   "pte_is_foreign on every entry the HAT made (device, kmem, DMA memory)",
                   "True exactly for the device (foreign) mappings",
                   "all right" if not wrong else f"{len(wrong)} wrong, e.g. {wrong[0]}",
                   hint="With encoded values, test the field, not a bit: "
                        "(pte & PT_SOFTWARE) >= PT_FOREIGN")
