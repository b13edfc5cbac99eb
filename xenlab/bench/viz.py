"""``xenlab bench viz``: the views stay responsive on a 64 GiB machine.

- mapped ranges of a tree of 16 Mi 4 KiB pages (what the page-table
  explorer's slider needs), beside the machine's full tree dump
  (``pagetable_frame``) turned into the same ranges;
- a P2M view of 16 Mi PFNs in 2 MiB chunks, loaded and drawn, beside one
  numpy pass over the same array (``np.diff``), the least any view must do.
"""

from __future__ import annotations

import numpy as np

from . import Row, best_of


def _tree_ranges(memory, cr3):
    from ..machine.mmu import pagetable_frame
    df = pagetable_frame(memory, cr3)
    leaves = df[df["leaf"]]
    va = np.sort(leaves["va"].to_numpy())
    return np.count_nonzero(np.diff(va) != 4096) + 1


def bench_viz(quick: bool) -> list[Row]:
    from ..machine.memory import Memory
    from ..viz import ArrayP2M, MachinePageTables, P2MView, mapped_ranges
    from .mmu import build_tree
    pages = 1 << 20 if quick else 16 << 20
    mem = Memory()
    cr3, _, _ = build_tree(mem, pages)
    src = MachinePageTables(mem, cr3)
    t = best_of(lambda: mapped_ranges(src), 1 if not quick else 3)
    peer = best_of(lambda: _tree_ranges(mem, cr3), 1)
    rows = [Row("viz", f"mapped ranges, {pages >> 20} Mi pages", pages / t, "pages/s",
                target=">= 10x the tree dump").with_peer("pagetable_frame", pages / peer)]
    rows[0].met = rows[0].ratio is not None and rows[0].ratio >= 10
    rng = np.random.Generator(np.random.PCG64(1))
    chunks = (np.arange(pages, dtype=np.int64) + 0x100000).reshape(-1, 512)
    p2m = chunks[rng.permutation(len(chunks))].ravel()
    t = best_of(lambda: P2MView(ArrayP2M(p2m), highlight=(1000, 64)), 1)
    peer = best_of(lambda: np.diff(p2m), 3)
    rows.append(Row("viz", f"P2M view load+draw, {pages >> 20} Mi PFNs", t, "s",
                    target="< 2 s", met=t < 2).with_peer("np.diff of the P2M", peer))
    return rows
