"""The kernel's memory management: the page allocator against a list-based
reference, the HAT's page tables (checked with the machine's own walker and
Xen's frame table), software-bit encodings, hat_getpfnum, XENMEM_exchange,
DMA cookies against a slow reference."""

import numpy as np
import pytest

from xenlab.kernel.intel.hat import PFN_IS_FOREIGN_MFN, PT_SOFTWARE
from xenlab.kernel.intel.rootnex import cookies_by_frame, split_cookies
from xenlab.kernel.intel.ddi import Cookie, DmaAttr
from xenlab.kernel.intel.vm import OutOfMemory, PageAllocator
from xenlab.lab import Stage
from xenlab.xen import abi


# -- the page allocator -----------------------------------------------------------------

class RefAllocator:
    """Obviously right, slow: a set of free frames."""

    def __init__(self, n, ranges):
        self.free = {p for a, b in ranges for p in range(a, b)}

    def create(self, k):
        got = sorted(self.free)[-k:]
        if len(got) < k:
            raise OutOfMemory
        self.free -= set(got)
        return got

    def run(self, k, limit, align, lowest):
        cands = [p for p in range(0, limit - k + 1) if p % align == 0
                 and all(q in self.free for q in range(p, p + k))]
        if not cands:
            raise OutOfMemory
        p = cands[0] if lowest else cands[-1]
        self.free -= set(range(p, p + k))
        return p


@pytest.mark.parametrize("seed", range(6))
def test_page_allocator_matches_a_reference(seed):
    rng = np.random.default_rng(seed)
    n = 3000
    ranges = [(100, 900), (1000, 1700), (2100, 3000)]
    a, ref = PageAllocator(n, ranges), RefAllocator(n, ranges)
    for _ in range(120):
        op = rng.integers(0, 4)
        if op == 0:
            k = int(rng.integers(1, 40))
            try:
                want = ref.create(k)
            except OutOfMemory:
                with pytest.raises(OutOfMemory):
                    a.page_create(k)
                continue
            assert a.page_create(k) == want
        elif op == 1:
            k, limit = int(rng.integers(1, 70)), int(rng.integers(50, n + 1))
            align, lowest = int(rng.choice([1, 2, 8])), bool(rng.integers(0, 2))
            try:
                want = ref.run(k, limit, align, lowest)
            except OutOfMemory:
                with pytest.raises(OutOfMemory):
                    a.page_create_run(k, limit, align=align, lowest=lowest)
                continue
            assert a.page_create_run(k, limit, align=align, lowest=lowest) == want
        elif op == 2 and len(ref.free) < a.total:
            used = sorted(set(range(n)) - ref.free - {p for p in range(n)
                                                     if not any(x <= p < y for x, y in ranges)})
            back = list(rng.choice(used, size=min(5, len(used)), replace=False))
            a.page_free(back)
            ref.free |= {int(p) for p in back}
        elif op == 3:
            p = int(rng.integers(0, n))
            assert a.take(p) == (p in ref.free)
            ref.free.discard(p)
        assert a.nfree == len(ref.free)


def test_page_allocator_refuses_bad_frees():
    a = PageAllocator(100, [(10, 20)])
    with pytest.raises(ValueError, match="already free"):
        a.page_free([12])
    with pytest.raises(ValueError, match="not a page of this kernel"):
        a.page_free([500])


# -- booted kernels -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def booted():
    """qemu-i440fx booted to foreign_pfn: 64-bit PV, 32-bit PV (ring 1), native."""
    out = {}
    for name, kw, fixes in (("xen64", {}, "all"),
                            ("xen32", {}, [s for s in ("toolchain", "platforms", "boot_kmdb",
                                                       "pci_config", "iopl", "foreign_pfn",
                                                       "pte_swbits")]),
                            ("native", {"native": True}, [])):
        s = Stage("foreign_pfn", profile="qemu-i440fx", **kw)
        s.fix(fixes)
        r = s.boot()
        assert r.ok, r.summary()
        out[name] = s
    return out


@pytest.mark.parametrize("which", ["xen64", "xen32", "native"])
def test_kmem_pages_are_mapped_where_the_hat_says(booted, which):
    s = booted[which]
    k = s.kernel
    va = k.kmem.alloc(3 * 4096)
    pfns = k.kmem.blocks[va]
    v = k.cpus[0].vcpu
    for i, pfn in enumerate(pfns):
        w = v.mmu.walk(va + i * 4096)
        assert w.ok
        assert w.maddr >> 12 == k.plat.pfn_to_frame(pfn)
        assert k.hat.getpfnum(va + i * 4096) == pfn
    k.kcpu.write(va + 100, b"through the new tables")
    assert k.kcpu.read(va + 100, 22) == b"through the new tables"
    k.kmem.free(va)
    assert not v.mmu.walk(va).ok
    assert all(k.pages.is_free(p) for p in pfns)


@pytest.mark.parametrize("which", ["xen64", "xen32"])
def test_xen_validated_the_kernels_page_tables(booted, which):
    s = booted[which]
    k, xen = s.kernel, s.xen
    ft = xen.frametable
    assert k.hat.tables, "the HAT made tables of its own"
    for (level, _), t in k.hat.tables.items():
        typ = int(ft.type[t.frame])
        assert typ & abi.PGT_type_mask == level << 29, f"L{level} table typed {typ:#x}"
        assert typ & abi.PGT_validated
    # a page table is never writable to the guest: try
    t = next(t for (lvl, _), t in k.hat.tables.items() if lvl == 1)
    rc = k.plat.hv.update_va_mapping(k.plat.scratch_va,
                                     (t.frame << 12) | 0x3, abi.UVMF_INVLPG)
    assert rc == -abi.EINVAL


def test_device_mappings_are_foreign_and_round_trip(booted):
    s = booted["xen64"]
    k = s.kernel
    devs = [m for m in k.hat.maps.values() if m.kind == "device"]
    assert devs
    for m in devs:
        assert m.pfn & PFN_IS_FOREIGN_MFN
        pte = k.hat.pte_at(m.va)
        assert pte & PT_SOFTWARE == 0x600, "the encoded PT_FOREIGN"
        assert k.hat.getpfnum(m.va) == m.pfn
        assert s.xen.frametable.owner_of(m.pfn & ~PFN_IS_FOREIGN_MFN) in (None, abi.DOMID_IO)


def test_the_2007_software_bits_and_the_encoded_ones():
    from xenlab.lab.stages.pte_swbits import (pte_is_foreign, pte_is_foreign_fixed,
                                              pte_software_bits, pte_software_bits_fixed)
    old, new = pte_software_bits(), pte_software_bits_fixed()
    assert old["foreign"] == 0x800 and new["foreign"] == 0x600
    for sw, test in ((old, pte_is_foreign), (new, pte_is_foreign_fixed)):
        assert test(sw["foreign"]) and not test(sw["noconsist"]) and not test(sw["nosync"])
    assert pte_is_foreign_fixed(0x800), "a grant mapping Xen marks with 0x800 counts"
    assert bool(0x400 & 0x600), "why a bit test of the encoded value goes wrong"


def test_exchange_gives_machine_contiguous_frames_below_the_limit(booted):
    s = booted["xen64"]
    k, d = s.kernel, s.dom0
    pfns = k.xenmem.exchange(4, 30)
    assert pfns is not None and len(pfns) == 4
    mfns = [k.plat.pfn_to_mfn(p) for p in pfns]
    assert mfns == list(range(mfns[0], mfns[0] + 4))
    assert mfns[-1] < 1 << (30 - 12)
    assert [int(d.p2m[p]) for p in pfns] == mfns, "mfn_list and Xen's P2M agree"
    assert [s.xen.m2p.get(m) for m in mfns] == pfns
    assert k.xenmem.requests[-1]["done"] == 1


def slow_cookies(pfns, offset, length, frame_of):
    """Byte by byte: an address per byte, runs where they are consecutive."""
    addrs = [(frame_of(pfns[(offset + i) // 4096]) << 12) + ((offset + i) % 4096)
             for i in range(length)]
    out = []
    for a in addrs:
        if out and out[-1][0] + out[-1][1] == a:
            out[-1][1] += 1
        else:
            out.append([a, 1])
    return [tuple(c) for c in out]


@pytest.mark.parametrize("seed", range(8))
def test_cookies_by_frame_match_the_slow_version(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 7))
    pfns = list(range(100, 100 + n))
    table = {p: int(f) for p, f in zip(pfns, np.cumsum(rng.integers(1, 3, size=n)) + 500)}
    offset = int(rng.integers(0, 4096))
    length = int(rng.integers(1, n * 4096 - offset + 1))
    assert cookies_by_frame(pfns, offset, length, table.__getitem__) == \
        slow_cookies(pfns, offset, length, table.__getitem__)


def test_cookies_split_at_segment_boundaries_and_count_max():
    attr = DmaAttr(seg=0xFFFF, count_max=0x1FFF)
    got = split_cookies([Cookie(0xF000, 0x4000)], attr)
    assert [(c.address, c.size) for c in got] == [(0xF000, 0x1000), (0x10000, 0x2000),
                                                  (0x12000, 0x1000)]


def test_the_kernels_frames():
    s = Stage("multiuser", profile="qemu-i440fx").fix("all")
    assert s.boot().ok
    k = s.kernel
    dev = k.devinfo_frame()
    assert set(dev["state"]) >= {"attached", "no driver"}
    assert (dev[dev["driver"] == "e1000g"]["state"] == "attached").all()
    m = k.mappings_frame()
    assert set(m["kind"]) == {"kmem", "dma", "device"}
    assert (m[m["kind"] == "device"]["avl"] == 0x600).all() and m[m["kind"] == "device"]["foreign"].all()
    d = k.dma_frame()
    assert d["below_limit"].all() and d[d["contig"]]["machine_contiguous"].all()
    i = k.intr_frame()
    disk = i[i["name"] == "pci-ide0"].iloc[0]
    assert disk["pirq"] == 14 and disk["count"] > 0 and disk["handler"] == "pci-ide0"
    assert s.dom0.pirq_to_evtchn[14] == disk["evtchn"]
