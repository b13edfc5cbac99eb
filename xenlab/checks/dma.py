"""Checks for the ``dma`` stage: the label the disk read by DMA is in the
buffer's machine frames and nowhere else; the cookies are machine addresses,
split where the machine frames are not consecutive; NIC rings are
machine-contiguous."""

from __future__ import annotations

from . import Finding, check
from ._model import boot_of, how_far, machine_frames, reached

LAB = "dma"


def _label(stage):
    k = boot_of(stage).kernel
    lr = getattr(k, "label_read", None)
    if lr is None:
        raise RuntimeError("the kernel read no disk label (no disk on this machine?)")
    return k, lr


@check(points=1, title="the boot disk's label reads back right; NICs get their rings", lab=LAB)
def dma_reached(stage):
    ok = reached(stage, "dma")
    return Finding(ok, "how far the boot went",
                   "cmlb found the MBR, the VTOC and the UFS superblock; every NIC has its "
                   "descriptor rings", how_far(stage),
                   hint="Which addresses does a bus-master IDE controller use?")


@check(points=2, title="the sectors read are in the buffer's machine frames", lab=LAB)
def dma_data_in_buffer(stage):
    b = boot_of(stage)
    k, lr = _label(stage)
    got = b"".join(b.machine.memory.read_bytes(f << 12, 4096)
                   for f in machine_frames(stage, lr["va"], lr["sectors"] * 512))
    want = b.machine.disks[0].read(lr["lba"], lr["sectors"])
    ok = got[:len(want)] == want
    return Finding(ok, "the buffer's machine frames (page-table walk) against the disk's "
                       f"sectors {lr['lba']}-{lr['lba'] + lr['sectors'] - 1}",
                   "the same bytes", "the same bytes" if ok else "different bytes",
                   hint="Compare the cookies with the buffer's MFNs (::vtop, mfn_list).")


@check(points=2, title="DMA cookies hold MFNs, one per machine-contiguous run", lab=LAB)
def dma_cookies_are_machine(stage):
    k, lr = _label(stage)
    frames = machine_frames(stage, lr["va"], lr["sectors"] * 512)
    runs = []
    for f in frames:
        addr = f << 12
        if runs and runs[-1][0] + runs[-1][1] == addr and (addr & 0xFFFF):
            runs[-1][1] += 4096
        else:
            runs.append([addr, 4096])
    want = [tuple(r) for r in runs]
    got = [(c.address, c.size) for c in lr["cookies"]]
    return Finding(got == want, "the label read's cookies against the buffer's machine frames",
                   "cookies " + ", ".join(f"{a:#x}+{n:#x}" for a, n in want),
                   "cookies " + ", ".join(f"{a:#x}+{n:#x}" for a, n in got),
                   hint="Two pages with consecutive PFNs need not have consecutive MFNs.")


@check(points=1, title="the disk wrote no other machine frame", lab=LAB)
def dma_no_stray_writes(stage):
    b = boot_of(stage)
    k, lr = _label(stage)
    frames = set(machine_frames(stage, lr["va"], lr["sectors"] * 512))
    stray = [(bdf, t) for bdf, t in getattr(b, "dma_transfers", [])
             if t[1] == "to memory" and any((a >> 12) not in frames
                                            for a in range(t[2], t[2] + t[3], 4096))]
    n = len(getattr(b, "dma_transfers", []))
    return Finding(n > 0 and not stray, "every transfer the disk controller made in this stage",
                   "all into the label buffer's frames",
                   f"{n} transfers, none elsewhere" if not stray else
                   f"{len(stray)} went elsewhere, e.g. {stray[0][1][2]:#x}",
                   hint="Where did the sectors go?  (the controller's transfer log)")


@check(points=1, title="NIC descriptor rings are machine-contiguous", lab=LAB,
       parent="dma_reached")
def dma_rings_contiguous(stage):
    k = boot_of(stage).kernel
    rings = [m for m in k.dma_allocations if "descriptor ring" in m.owner]
    bad = []
    for m in rings:
        fr = machine_frames(stage, m.va, m.length)
        if any(b2 != a + 1 for a, b2 in zip(fr, fr[1:])):
            bad.append(m.owner)
    if not rings:
        return Finding(True, "NIC descriptor rings", "machine-contiguous",
                       "this machine has no NIC driver")
    return Finding(not bad, "each NIC ring's pages (page-table walk)",
                   "consecutive machine frames",
                   f"{len(rings)} rings, all contiguous" if not bad else ", ".join(bad),
                   hint="XENMEM_exchange with an extent_order gives a contiguous extent.")
