"""Checks for the ``pte_swbits`` stage: the kernel's PTE software bits are an
encoded value that never sets bit 11 alone, and foreign entries are told
from the kernel's own."""

from __future__ import annotations

from . import Finding, check, question
from ._model import boot_of, how_far, leaf_entry, native_reached, reached, shipped_boot

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


@check(points=1, title="the i86pc kernel still boots with your hooks", lab=LAB,
       parent="pte_swbits_reached")
def pte_swbits_native(stage):
    return native_reached(stage, "pte_swbits",
                          "every driver attached and the boot memory released on the bare PC",
                          hint="The HAT's marks are the same on i86pc: the kernel's own pages must "
                               "not be taken for foreign ones there either.")


# ---------------------------------------------------------------------------
# the lab's questions (labs/07_pte_swbits.ipynb)
# ---------------------------------------------------------------------------

QLAB = "07_pte_swbits"


def _refused(stage):
    k = boot_of(shipped_boot(stage)).kernel
    if not k.hat.refused:
        raise RuntimeError("Xen refused no page-table entry in the 2007 boot of this variant")
    return k.hat.refused


@question("swbits_refused_pte", lab=QLAB, points=1, answer="ANSWER_REFUSED_PTE",
          title="the entry Xen refused first",
          asks="the value of the first page-table entry Xen refused (mmu_update's val)",
          looked_at="the first entry the HAT's mmu_update got -EINVAL for, in the 2007 boot",
          hint="The first WARNING on the console quotes HYPERVISOR_mmu_update(ptr=..., val=...).")
def q_swbits_refused_pte(stage):
    return int(_refused(stage)[0][1])


@question("swbits_claimed_bit", lab=QLAB, points=1, answer="ANSWER_CLAIMED_BIT",
          title="the PTE bit the debug Xen claims",
          asks="the PTE bit number a debug build of Xen refuses in a guest's L1 entries "
               "(and a release build accepts)",
          looked_at="Xen's L1 disallow mask in the 2007 boot's (debug) build against a "
                    "release build's",
          hint="Xen logs 'Bad L1 flags' with the offending bits in hex; the PTE decoder "
               "names each bit.")
def q_swbits_claimed_bit(stage):
    from ..xen.abi import disallow_masks
    xen = boot_of(shipped_boot(stage)).xen
    if not xen.debug:
        raise RuntimeError("the 2007 boot of this variant ran a release build of Xen")
    extra = disallow_masks(True)[1] & ~disallow_masks(False)[1]
    if extra == 0 or extra & (extra - 1):
        raise RuntimeError(f"the debug build claims bits {extra:#x}, not one bit")
    return extra.bit_length() - 1


@question("swbits_refused_count", lab=QLAB, points=1, answer="ANSWER_REFUSED_COUNT",
          title="how many entries Xen refused",
          asks="the number of page-table entries Xen refused during the 2007 boot",
          looked_at="the HAT's refused mmu_update requests in the 2007 boot of your variant "
                    "(one 'Bad L1 flags' line each on Xen's console)",
          hint="Count the 'Bad L1 flags' lines in lab.xen.console.")
def q_swbits_refused_count(stage):
    return len(_refused(stage))
