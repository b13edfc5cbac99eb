"""The page-table explorer against the machine's own walker and tree dump."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings, strategies as st

from xenlab.machine import regs as R
from xenlab.machine.memory import Memory
from xenlab.machine.mmu import Mmu, pagetable_frame, walk, walk_many
from xenlab.machine.pte import PTE_P, PTE_RW, PTE_US, u64
from xenlab.viz import MachinePageTables, PageTableExplorer, mapped_ranges, refresh_all

from ..machine import refwalk
from ..machine.ptbuild import Tables
from .conftest import KBASE


def merged_leaf_ranges(memory, cr3):
    """Oracle: mapped ranges from the machine's own tree dump, merged by leaf size."""
    df = pagetable_frame(memory, cr3)
    leaves = df[df["leaf"]].copy()
    leaves["s"] = leaves["va"].astype(np.int64).astype(np.uint64)
    leaves["size"] = (leaves["va_end"] - leaves["va"]).astype(np.int64)
    out = []
    for s, size in sorted(zip(leaves["s"].tolist(), leaves["size"].tolist())):
        if out and out[-1][1] == s and out[-1][2] == size:
            out[-1][1] = s + size
        else:
            out.append([s, s + size, size])
    return out


def ranges_of(df):
    return [[int(a), int(b), int(c)] for a, b, c in
            zip(df["va_start"], df["va_end"], df["page_size"])]


def test_mapped_ranges_match_the_tree_dump(tree):
    src = MachinePageTables(tree["memory"], tree["cr3"])
    got = mapped_ranges(src)
    assert ranges_of(got) == merged_leaf_ranges(tree["memory"], tree["cr3"])
    assert got["pages"].sum() == 40 + 512 + 262144 + 1
    # the high-half direct map shows as one canonical range
    assert [int(x) for x in got["va_start"]].count(KBASE) == 1


@settings(max_examples=25)
@given(st.lists(st.tuples(st.integers(0, 1023), st.sampled_from([0, 1, 256, 511]),
                          st.integers(1, 0xFFFF)), min_size=1, max_size=40))
def test_mapped_ranges_random_trees(pages):
    m = Memory()
    t = Tables(m)
    for page, l4, frame in pages:
        t.map((l4 << 39) | (page << 12), frame)
    got = ranges_of(mapped_ranges(MachinePageTables(m, t.cr3)))
    assert got == [[int(np.int64(a).astype(np.uint64)) if a < 0 else a, b if b >= 0 else
                    int(np.int64(b).astype(np.uint64)), c]
                   for a, b, c in merged_leaf_ranges(m, t.cr3)]
    # and every range's pages really walk, with the machine's walker
    for a, b, _ in got:
        vas = np.array([a, b - 4096], dtype=np.uint64).astype(np.int64)
        assert (walk_many(m, t.cr3, vas) >= 0).all()


def test_explorer_walk_matches_the_reference_walker(tree):
    m, mmu = tree["memory"], tree["mmu"]
    ex = PageTableExplorer(MachinePageTables(mmu=mmu))
    va = KBASE + 7 * 4096 + 0x123
    ex.show(va)
    st = mmu.state
    maddr, used = refwalk.translate(m, cr0=int(st[R.CR0]), cr3=int(st[R.CR3]),
                                    cr4=int(st[R.CR4]), efer=int(st[R.EFER]), va=va)
    assert ex.walk.maddr == maddr == (tree["frames"][KBASE + 7 * 4096] << 12) | 0x123
    assert ex.frame["entry_maddr"].tolist() == [a for a, _ in used]
    assert ex.frame["raw"].tolist() == [m.read64(a) for a, _ in used]
    assert ex.frame["name"].tolist() == ["PML4E", "PDPTE", "PDE", "PTE"]
    assert f"{maddr:#x}" in ex.result_html.value
    assert f"{m.read64(used[-1][0]):#018x}" in ex.walk_html.value


def test_explorer_shows_faults_with_the_error_code(tree):
    ex = PageTableExplorer(MachinePageTables(mmu=tree["mmu"]))
    ex.show(KBASE + 100 * 4096)               # PT present, PTE not
    assert not ex.walk.ok and ex.walk.fault.code == 0
    assert len(ex.frame) == 4
    assert "#PF" in ex.result_html.value and "PTE" in ex.result_html.value
    ex.show(0x0000_6000_0000_0000)            # PML4E not present
    assert len(ex.frame) == 1 and "PML4E" in ex.result_html.value
    ex.show(0x0000_9000_0000_0000)            # not canonical: #GP, no level read
    assert len(ex.frame) == 0 and "#GP" in ex.result_html.value


def test_va_text_and_slider_drive_the_walk(tree):
    ex = PageTableExplorer(MachinePageTables(mmu=tree["mmu"]))
    ex.va_text.value = f"{KBASE + 3 * 4096:#x}"          # what typing + Enter does
    assert ex.va == KBASE + 3 * 4096
    assert ex.walk.maddr == tree["frames"][KBASE + 3 * 4096] << 12
    # every slider position maps to a mapped page and back
    for pos in (0, 1, 511, 512, 600, int(ex._cum[-1]) - 1):
        va = ex.slider_va(pos)
        assert ex._slider_position(va) == pos
        assert walk(tree["memory"], tree["cr3"], va).ok
    # ranges in VA order: 2 MiB page (512), the user page (1), the 1 GiB page ...
    ex.slider.value = 512 + 1 + 5
    assert ex.va == 0x7F00_0000_0000 + 5 * 4096
    assert ex.walk.ok and ex.walk.page_size == 1 << 30


def test_bad_va_text_says_so_and_keeps_the_view(tree):
    ex = PageTableExplorer(MachinePageTables(mmu=tree["mmu"]))
    before = ex.va
    ex.va_text.value = "0xZZZ"
    assert "not an address" in ex.status.value
    assert ex.va == before


def test_table_listing_and_paging(tree):
    m = tree["memory"]
    ex = PageTableExplorer(MachinePageTables(mmu=tree["mmu"]))
    ex.show(KBASE + 33 * 4096)
    pt = ex.frame["entry_maddr"].iloc[-1] & ~0xFFF
    present = [i for i in range(512) if m.read64(pt + 8 * i) & PTE_P]
    assert ex.table["index"].tolist() == present == list(range(40))
    assert [int(v) for v in ex.table["va"]] == [KBASE + i * 4096 for i in present]
    # the listing opens on the page that holds the walked entry (33 // 16 = 2)
    assert ex._page == 2 and "page 3/3" in ex.page_label.value
    ex.prev_button.click()
    assert ex._page == 1 and len(ex.table_select.options) == 16
    # picking an entry walks its VA and stays on that table
    ex.table_select.value = 20
    assert ex.va == KBASE + 20 * 4096 and ex.level_buttons.value == 1
    # listing the PML4 shows both halves, sign-extended
    top = ex.list_table(4)
    assert sorted(int(v) for v in top["va"]) == [0, 0x7F00_0000_0000 & ~((1 << 39) - 1),
                                                 KBASE]


def test_pv_frames_show_pfn_and_foreign_frames(tree):
    frames = tree["frames"]
    # a toy M2P for the kernel pages only: pfn i <-> the i-th page's frame
    m2p = {mfn: i for i, mfn in enumerate(frames.values())}
    p2m = {i: mfn for mfn, i in m2p.items()}
    src = MachinePageTables(mmu=tree["mmu"], mfn_to_pfn=m2p.get, pfn_to_mfn=p2m.get)
    ex = PageTableExplorer(src, va=KBASE + 5 * 4096)
    assert ex.frame["pfn"].iloc[-2] == -1           # the PT frame is not the domain's
    assert ex.frame["pfn"].iloc[-1] == 5            # the page is its pfn 5
    assert f"pfn {5:#x}" in ex.result_html.value
    assert ex.table["pfn"].tolist() == list(range(40))
    ex.show(0x40_0000)                               # a frame outside the toy P2M
    assert "not in the P2M" in ex.result_html.value


def test_pae_tables():
    m = Memory()
    pdpt, pd, pt = 0x10000, 0x11000, 0x12000
    m.write64(pdpt + 8 * 3, pd | PTE_P)
    m.write64(pd + 8 * 5, pt | PTE_P | PTE_RW)
    for i in range(3):
        m.write64(pt + 8 * i, ((0x300 + i) << 12) | PTE_P | PTE_RW)
    m.write64(pd + 8 * 6, (0x400 << 12) | PTE_P | 0x80)       # a 2 MiB page
    src = MachinePageTables(m, pdpt, mode=3)
    base = (3 << 30) | (5 << 21)
    assert ranges_of(mapped_ranges(src)) == [[base, base + 3 * 4096, 4096],
                                             [(3 << 30) | (6 << 21), (3 << 30) | (7 << 21),
                                              2 << 20]]
    ex = PageTableExplorer(src, va=base + 4096 + 8)
    assert ex.walk.maddr == (0x301 << 12) + 8
    assert ex.frame["name"].tolist() == ["PDPTE", "PDE", "PTE"]
    assert ex.list_table(3)["index"].tolist() == [3]


def test_source_factory_and_refresh_all(tree):
    box = {"src": None}
    ex = PageTableExplorer(lambda: box["src"])
    assert len(ex.frame) == 0 and "nothing to show" in ex.status.value
    box["src"] = MachinePageTables(mmu=tree["mmu"])
    failed = refresh_all()
    assert not [f for f in failed if f[0] is ex]
    assert len(ex.frame) >= 1 and ex.status.value == ""
    # the refresh button re-reads the model: unmap the walked page behind its back
    leaf = ex.frame["entry_maddr"].iloc[-1]
    tree["memory"].write64(leaf, 0)
    ex.refresh_button.click()
    assert not ex.walk.ok


def test_not_a_source_is_named():
    with pytest.raises(TypeError, match="missing .*read_tables"):
        PageTableExplorer(object())


def test_decoder_is_embedded_when_the_source_writes(tree):
    ex = PageTableExplorer(MachinePageTables(mmu=tree["mmu"]), va=KBASE + 2 * 4096)
    leaf = int(ex.frame["entry_maddr"].iloc[-1])
    assert ex.decoder.entry_maddr == leaf and ex.decoder.level == 1
    ex.decoder.toggle(0)                       # clear P: the explorer re-walks
    assert not ex.walk.ok and "#PF" in ex.result_html.value
    ex.level_buttons.value = 2                 # the decoder follows the listed level
    assert ex.decoder.level == 2 and ex.decoder.entry_maddr == int(ex.frame["entry_maddr"][2])


@pytest.mark.slow
def test_64gib_direct_map_stays_aggregated():
    """16 Mi pages mapped: one range, quick listing, no per-page rows."""
    from xenlab.bench.mmu import build_tree
    m = Memory()
    base = 0x7F00_0000_0000
    cr3, vas, _ = build_tree(m, 16 << 20, va_base=base)
    ex = PageTableExplorer(MachinePageTables(m, cr3))
    assert len(ex.mapped) == 1 and int(ex.mapped["pages"][0]) == 16 << 20
    ex.slider.value = (16 << 20) - 1
    assert ex.walk.ok and ex.va == base + (((16 << 20) - 1) << 12)


def test_follow_a_stage_refreshes_after_each_boot(tree):
    class Stage:                         # the contract a lab Stage offers
        def __init__(self):
            self.callbacks, self.src = [], None

        def on_boot(self, fn):
            self.callbacks.append(fn)

        def boot(self, src):
            self.src = src
            for fn in self.callbacks:
                fn()

    stage = Stage()
    ex = PageTableExplorer(lambda: stage.src).follow(stage)
    assert len(ex.frame) == 0
    stage.boot(MachinePageTables(mmu=tree["mmu"]))
    assert ex.walk is not None and len(ex.frame) >= 1
    stage.boot(object())                 # a broken source: shown in the view, no raise
    assert "not a page tables source" in ex.status.value
    with pytest.raises(TypeError, match="on_boot"):
        ex.follow(object())
