"""Checks for the ``lowmem`` stage: constrained DMA memory lies below the
device's limit, comes from the kernel's own low frames, and the kernel does
not ask Xen for low memory it cannot give."""

from __future__ import annotations

from . import Finding, check, question
from ._model import (boot_of, how_far, machine_frames, native_reached, reached, shipped_boot,
                     shipped_dom0)

LAB = "lowmem"


@check(points=1, title="32-bit DMA devices get their memory", lab=LAB)
def lowmem_reached(stage):
    ok = reached(stage, "lowmem")
    return Finding(ok, "how far the boot went",
                   "every 32-bit device (USB host controllers) allocated its DMA memory",
                   how_far(stage),
                   hint="Where in machine memory does Xen 3.1 look for a 32-bit request, and "
                        "who owns that memory already?")


@check(points=2, title="constrained DMA memory is below the device's limit and contiguous",
       lab=LAB, parent="lowmem_reached")
def lowmem_below_limit(stage):
    k = boot_of(stage).kernel
    bad, n = [], 0
    for m in k.dma_allocations:
        if m.attr.addr_hi >= (1 << 64) - 1 and not m.contig:
            continue
        n += 1
        fr = machine_frames(stage, m.va, m.length)
        if any((f << 12) > m.attr.addr_hi for f in fr) or \
                (m.contig and any(b2 != a + 1 for a, b2 in zip(fr, fr[1:]))):
            bad.append(m.owner)
    return Finding(n > 0 and not bad,
                   "the machine frames of every DMA allocation with a limit or a contiguity "
                   "requirement", "below dma_attr_addr_hi, consecutive where required",
                   f"{n} allocations, all right" if n and not bad else
                   (", ".join(bad) or "none were made"),
                   hint="mfn_list shows where each page really is.")


@check(points=1, title="the kernel keeps an I/O pool of its own low frames", lab=LAB)
def lowmem_pool(stage):
    b = boot_of(stage)
    k = b.kernel
    pools = getattr(k, "io_pools", {}) or {}
    p4 = pools.get("io_pool_4g", [])
    bad = [(m, p) for name, lim in (("io_pool_4g", 1 << 20), ("io_pool_16m", 1 << 12))
           for m, p in pools.get(name, []) if m >= lim]
    d = b.dom0
    mismatch = [p for m, p in p4 if d.pfn_to_mfn(p) != m]
    ok = bool(p4) and not bad and not mismatch
    return Finding(ok, "io_pool_4g and io_pool_16m (pfn, mfn) against Xen's P2M of dom0",
                   "a non-empty io_pool_4g of dom0's own frames, each below its pool's limit",
                   f"io_pool_4g {len(p4)} pages, io_pool_16m {len(pools.get('io_pool_16m', []))}"
                   + (f"; {len(bad)} above their limit" if bad else ""),
                   hint="populate_io_pool: scan mfn_list for frames below 4 GiB.")


@check(points=2, title="no request for low memory that Xen refused", lab=LAB)
def lowmem_no_refusals(stage):
    b = boot_of(stage)
    h = b.xen.heap.history()
    after = h[(h["domid"] == 0) & (h["address_bits"] > 0) & (h["address_bits"] <= 32)]
    refused = after[~after["ok"]]
    return Finding(len(refused) == 0, "Xen's allocation history: dom0's requests limited to "
                                      "32 address bits or fewer",
                   "none refused (the kernel serves them from its own pools)",
                   f"{len(after)} requests, {len(refused)} refused" +
                   (f" (address_bits {sorted(set(refused['address_bits']))})" if len(refused)
                    else ""),
                   hint="Xen 3.1's constrained allocator only looks at 2-4 GiB.")


@check(points=1, title="the i86pc kernel still attaches its 32-bit devices with your hooks",
       lab=LAB, parent="lowmem_reached")
def lowmem_native(stage):
    return native_reached(stage, "lowmem",
                          "the native boot through the USB host controllers' DMA memory",
                          hint="Natively a PFN is the machine frame and there is no Xen to ask.")


# ---------------------------------------------------------------------------
# the lab's questions (labs/09_lowmem.ipynb)
# ---------------------------------------------------------------------------

QLAB = "09_lowmem"


@question("lowmem_device", lab=QLAB, points=1, answer="ANSWER_DEVICE",
          title="the first device without its DMA memory",
          asks="the instance name (e.g. xyz0) of the first device that failed in the stage",
          looked_at="the attach failures of the 2007 boot, in order",
          hint="lab.result.why starts with it.")
def q_lowmem_device(stage):
    k = boot_of(shipped_boot(stage)).kernel
    fails = getattr(k, "attach_failures", None)
    if not fails:
        raise RuntimeError("the 2007 boot of this variant had no attach failure in 'lowmem'")
    return fails[0][0].instname


@question("lowmem_dom0_low", lab=QLAB, points=1, answer="ANSWER_DOM0_LOW",
          title="how much of the memory below 4 GiB dom0 owns",
          asks="the number of dom0's pages whose machine frame lies below 4 GiB",
          looked_at="Xen's P2M of dom0 in the 2007 boot (MFN < 0x100000)",
          hint="The P2M view's .p2m array holds the MFN of every PFN (-1: none).")
def q_lowmem_dom0_low(stage):
    import numpy as np
    p2m = np.asarray(shipped_dom0(stage).p2m)
    return int(((p2m >= 0) & (p2m < (1 << 20))).sum())


@question("lowmem_xen_free_low", lab=QLAB, points=1, answer="ANSWER_XEN_FREE_LOW",
          title="what Xen has left between 2 and 4 GiB",
          asks="the number of free frames in Xen's heap with machine addresses from 2 GiB "
               "up to 4 GiB, when dom0 asks",
          looked_at="Xen's heap in the 2007 boot (its free frames)",
          hint="The memory map's 'Xen free frames' lane, zoomed to 2-4 GiB; or "
               "lab.xen.heap.is_free.")
def q_lowmem_xen_free_low(stage):
    import numpy as np
    mfns, orders = boot_of(shipped_boot(stage)).xen.heap.free_blocks()
    ends = mfns + (np.int64(1) << orders)
    lo, hi = np.maximum(mfns, 1 << 19), np.minimum(ends, 1 << 20)
    return int(np.clip(hi - lo, 0, None).sum())
