"""DMA beyond a device's reach: rootnex's copy (bounce) buffers.

With 8 GiB the dma stage's buffer cache lands above 4 GiB in machine memory;
the ICH9 IDE bus master takes 32-bit PRD entries (``addr_hi`` 0xFFFFFFFF).
Before copy buffers the reference fix gave it ``0x230080000`` and the
controller wrote the label to ``0x30080000``: "corrupt label".
"""

import pytest

import xenlab.checks  # noqa: F401  (Stage.check)
from xenlab.kernel.intel.ddi import (DDI_DMA_READ, DDI_DMA_SYNC_FORDEV, DDI_DMA_SYNC_FORKERNEL,
                                     DDI_DMA_WRITE, DmaAttr)
from xenlab.checks._model import boot_of
from xenlab.kernel.intel.drivers import Ata
from xenlab.kernel.intel.rootnex import cookies_by_frame
from xenlab.lab import Stage

BIG = dict(profile="dell-optiplex755", memory="8G")
LIMIT = Ata.IO_ATTR.addr_hi


def _ide(k):
    return next(d for d in k.devinfo.walk() if d.driver == "pci-ide" and d.state == "attached")


def test_8g_label_read_goes_through_a_copy_buffer_below_4g():
    s = Stage("dma", **BIG).apply_reference_fix()
    r = s.boot()
    assert r.ok, r.why
    assert "corrupt label" not in r.console
    k = s.kernel
    lr = k.label_read
    # the buffer itself is (partly) above 4 GiB ...
    frames = [k.plat.pfn_to_mfn(k.hat.getpfnum(lr["va"] + i * 4096)) for i in range(8)]
    assert any((f << 12) > LIMIT for f in frames)
    # ... so rootnex bounced exactly those pages, and the disk got addresses it can reach
    assert sorted(p for p, _, _ in lr["copybuf"]) == \
        [i for i, f in enumerate(frames) if (f << 12) > LIMIT]
    assert all(c.address + c.size - 1 <= LIMIT for c in lr["cookies"])
    assert sum(c.size for c in lr["cookies"]) == lr["sectors"] * 512
    moved = [t for _, t in boot_of(s).dma_transfers if t[1] == "to memory"]
    assert moved and all(a + n - 1 <= LIMIT for _, _, a, n in moved)
    # the checks of lab 08 hold with the copy buffer
    cards = {c.name: c for c in s.check()}
    for name in ("dma_reached", "dma_data_in_buffer", "dma_cookies_are_machine",
                 "dma_no_stray_writes"):
        assert cards[name].passed, name


def test_8g_without_the_fix_still_fails_as_in_2007():
    r = Stage("dma", **BIG).boot()
    assert r.failed == "dma" and "cannot allocate the PRD table" in r.why
    # contig_alloc fixed, cookies still pfn << 12: the bounce pages do not save it
    s = Stage("dma", **BIG).apply_reference_fix()
    s.hooks.dma_cookies = lambda pfns, off, n, p2m: cookies_by_frame(pfns, off, n, lambda p: p)
    r = s.boot()
    assert r.failed == "dma" and "corrupt label" in r.why


@pytest.fixture(scope="module")
def booted():
    s = Stage("dma", **BIG).apply_reference_fix()
    assert s.boot().ok
    return s


def _high_buffer(k, npages):
    """Kernel memory whose every page is above 4 GiB in machine memory."""
    va = k.kmem.alloc(npages * 4096)
    mfns = [k.plat.pfn_to_mfn(k.hat.getpfnum(va + i * 4096)) for i in range(npages)]
    assert all((m << 12) > LIMIT for m in mfns), [hex(m) for m in mfns]
    return va


def _dev_read(s, cookies):
    return b"".join(s.machine.memory.read_bytes(a, n) for a, n in cookies)


def _dev_write(s, cookies, data):
    pos = 0
    for a, n in cookies:
        s.machine.memory.write_bytes(a, data[pos:pos + n])
        pos += n


def test_dma_bind_bounces_pages_above_addr_hi_both_ways(booted):
    s = booted
    k = s.kernel
    dip = _ide(k)
    attr = DmaAttr(addr_hi=0xFFFFFFFF, sgllen=256, seg=0xFFFF, count_max=0xFFFF)
    base = _high_buffer(k, 3)
    va, n = base + 100, 2 * 4096 + 17               # unaligned, over three pages
    out = bytes((i * 7 + 3) & 0xFF for i in range(n))
    k.kcpu.write(va, out)
    free_before = k.pages.nfree

    # memory -> device: bind copies the buffer into the bounce pages
    h = k.ddi.dma_bind_handle(dip, attr, va, n, DDI_DMA_WRITE)
    assert h.copybuf is not None and h.copybuf.pages == [0, 1, 2]
    assert all(c.address + c.size - 1 <= attr.addr_hi for c in h.cookies)
    assert sum(c.size for c in h.cookies) == n
    assert _dev_read(s, h.cookies) == out
    # the driver changes the buffer and syncs for the device again
    out2 = out[::-1]
    k.kcpu.write(va, out2)
    k.ddi.dma_sync(h, DDI_DMA_SYNC_FORDEV)
    assert _dev_read(s, h.cookies) == out2
    k.ddi.dma_unbind(h)
    assert not h.bound
    assert k.kcpu.read(va, n) == out2, "a write binding does not copy back"

    # device -> memory: what the device wrote reaches the buffer on sync / unbind
    h = k.ddi.dma_bind_handle(dip, attr, va, n, DDI_DMA_READ)
    assert all(c.address + c.size - 1 <= attr.addr_hi for c in h.cookies)
    inn = bytes((i * 13 + 1) & 0xFF for i in range(n))
    _dev_write(s, h.cookies, inn)
    assert k.kcpu.read(va, n) == out2, "nothing reaches the buffer before the sync"
    k.ddi.dma_sync(h, DDI_DMA_SYNC_FORKERNEL)
    assert k.kcpu.read(va, n) == inn
    inn2 = bytes(reversed(inn))
    _dev_write(s, h.cookies, inn2)
    k.ddi.dma_unbind(h)
    assert k.kcpu.read(va, n) == inn2
    # the bytes around the buffer in its first and last page are untouched
    assert k.kcpu.read(base, 100) == bytes(100)
    # the bounce pages are given back
    assert k.pages.nfree == free_before


def test_dma_bind_leaves_reachable_pages_alone(booted):
    k = booted.kernel
    dip = _ide(k)
    va = _high_buffer(k, 2)
    h = k.ddi.dma_bind_handle(dip, DmaAttr(), va, 8192)       # a 64-bit device
    assert h.copybuf is None
    assert [c.address >> 12 for c in h.cookies][0] == \
        k.plat.pfn_to_mfn(k.hat.getpfnum(va))
    k.ddi.dma_unbind(h)


def test_copy_buffer_pages_from_an_io_pool_go_back_to_it():
    s = Stage("lowmem", **BIG).apply_reference_fix()
    assert s.boot().ok
    k = s.kernel
    dip = _ide(k)
    pool = list(k.io_pools["io_pool_4g"])
    va = _high_buffer(k, 2)
    k.kcpu.write(va, b"\x5a" * 8192)
    h = k.ddi.dma_bind_handle(dip, DmaAttr(addr_hi=0xFFFFFFFF), va, 8192, DDI_DMA_WRITE)
    assert set(h.copybuf.pfns) <= {p for _, p in pool}
    assert len(k.io_pools["io_pool_4g"]) == len(pool) - 2
    assert _dev_read(s, h.cookies) == b"\x5a" * 8192
    k.ddi.dma_unbind(h)
    assert k.io_pools["io_pool_4g"] == pool


def test_8g_boots_with_copy_buffers_are_deterministic():
    a = Stage("dma", **BIG).apply_reference_fix()
    b = Stage("dma", **BIG).apply_reference_fix()
    assert a.boot().ok and b.boot().ok
    assert a.kernel.copybuf_log == b.kernel.copybuf_log
    assert a.console == b.console and a.state_hash() == b.state_hash()
