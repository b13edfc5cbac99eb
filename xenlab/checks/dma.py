"""Checks for the ``dma`` stage: the label the disk read by DMA is in the
buffer's machine frames and nowhere else; the cookies are machine addresses,
split where the machine frames are not consecutive; NIC rings are
machine-contiguous.

A page of the buffer the disk cannot address (its frame above the
controller's ``addr_hi``: dom0 with more than 4 GiB) is bound through a copy
buffer: the disk is then given the bounce page's frame instead, and the data
reaches the buffer when the driver unbinds.  The checks count the frames the
disk was given (``_device_frames``): the buffer's own, or the bounce page
standing in for it."""

from __future__ import annotations

from . import Finding, check, question
from ._model import boot_of, how_far, machine_frames, native_reached, reached, shipped_boot

LAB = "dma"


def _label(stage):
    k = boot_of(stage).kernel
    lr = getattr(k, "label_read", None)
    if lr is None:
        raise RuntimeError("the kernel read no disk label (no disk on this machine?)")
    return k, lr


def _device_frames(stage, lr) -> list[int]:
    """The machine frame the disk was given for each page of the label buffer:
    the page's own (page-table walk), or the frame of the copy buffer's page in
    its place (rootnex's record: the bounce page is gone after the unbind)."""
    frames = machine_frames(stage, lr["va"], lr["sectors"] * 512)
    for page, _pfn, frame in lr.get("copybuf", []):
        frames[page] = frame
    return frames


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
    frames = _device_frames(stage, lr)
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
    frames = set(_device_frames(stage, lr))
    stray = [(bdf, t) for bdf, t in getattr(b, "dma_transfers", [])
             if t[1] == "to memory" and any((a >> 12) not in frames
                                            for a in range(t[2], t[2] + t[3], 4096))]
    n = len(getattr(b, "dma_transfers", []))
    return Finding(n > 0 and not stray, "every transfer the disk controller made in this stage",
                   "all into the label buffer's frames (or its copy buffer's)",
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


@check(points=1, title="the i86pc kernel still reads its label with your hooks", lab=LAB,
       parent="dma_reached")
def dma_native(stage):
    return native_reached(stage, "dma",
                          "the native boot through the label read and the NICs' rings",
                          hint="On i86pc pfn_to_mfn is the identity, and contig_alloc is "
                               "not called.")


# ---------------------------------------------------------------------------
# the lab's questions (labs/08_dma.ipynb)
# ---------------------------------------------------------------------------

QLAB = "08_dma"
LABEL_PAGES = 8                     # cmlb reads 64 sectors: 32 KiB


def _buffer(stage):
    """The 2007 boot of the variant and its label buffer's machine frames."""
    b = shipped_boot(stage)
    k = boot_of(b).kernel
    return b, machine_frames(b, k.bufcache, LABEL_PAGES * 4096)


@question("dma_buf_mfn", lab=QLAB, points=1, answer="ANSWER_BUF_MFN",
          title="the machine frame of the label buffer's first page",
          asks="the MFN of the page at the label buffer's address",
          looked_at="a page-table walk of the buffer's first page in the 2007 boot",
          hint="addr::vtop prints the pfn and the mfn of the page it reaches.")
def q_dma_buf_mfn(stage):
    return _buffer(stage)[1][0]


@question("dma_cookie_addr", lab=QLAB, points=1, answer="ANSWER_COOKIE_ADDR",
          title="the bus address the 2007 bind gave the disk",
          asks="the address in the first DMA cookie of the label read under the 2007 code "
               "(pfn << 12 of the buffer's first page)",
          looked_at="the buffer's first PFN in the 2007 boot (dom0's P2M, read backwards)",
          hint="The 2007 bind shifts the PFN hat_getpfnum gives; ::vtop prints that PFN.")
def q_dma_cookie_addr(stage):
    import numpy as np
    b, frames = _buffer(stage)
    hit = np.flatnonzero(np.asarray(boot_of(b).dom0.p2m) == frames[0])
    if not hit.size:
        raise RuntimeError("the label buffer's first frame is not one of dom0's")
    return int(hit[0]) << 12


@question("dma_run_pages", lab=QLAB, points=1, answer="ANSWER_RUN_PAGES",
          title="where the buffer stops being machine-contiguous",
          asks="how many pages at the start of the label buffer have consecutive MFNs",
          looked_at="the machine frames of the buffer's 8 pages in the 2007 boot",
          hint="Highlight the buffer in the P2M view, or ::vtop each page (+0x1000).")
def q_dma_run_pages(stage):
    frames = _buffer(stage)[1]
    n = 1
    while n < len(frames) and frames[n] == frames[n - 1] + 1:
        n += 1
    return n
