"""``xenlab bench mmu``: batch page walks beside a vectorised numpy walker."""

from __future__ import annotations

import numpy as np

from . import Row, best_of


def build_tree(memory, pages: int, va_base: int = 0x7F00_0000_0000, seed: int = 1):
    """A 4-level tree mapping ``pages`` 4 KiB pages at ``va_base`` onto scattered frames.

    Returns (cr3, vas of mapped pages, their frames).  Used by the bench and tests.
    """
    from ..machine.pte import PTE_P, PTE_RW, PTE_US
    rng = np.random.Generator(np.random.PCG64(seed))
    flags = PTE_P | PTE_RW | PTE_US
    next_table = [0x100]                     # page-table frames from MFN 0x100 up

    def new_table():
        mfn = next_table[0]
        next_table[0] += 1
        return mfn

    cr3 = new_table() << 12
    frames = rng.choice(np.arange(0x100000, 0x100000 + 4 * pages), size=pages, replace=False)
    vas = va_base + (np.arange(pages, dtype=np.int64) << 12)
    tables = {}
    # one L1 table per 512 pages: write each L1 as one bulk array
    for first in range(0, pages, 512):
        va = int(vas[first])
        parent = cr3
        for level, shift in ((4, 39), (3, 30), (2, 21)):
            idx = (va >> shift) & 511
            key = (level, va >> shift)
            if key not in tables:
                tables[key] = new_table() << 12
                memory.write64(parent + 8 * idx, tables[key] | flags)
            parent = tables[key]
        chunk = frames[first:first + 512]
        l1 = np.zeros(512, dtype=np.int64)
        start = (va >> 12) & 511
        l1[start:start + len(chunk)] = (chunk.astype(np.int64) << 12) | flags
        memory.write_bytes(parent, l1.view(np.uint8))
    return cr3, vas, frames


def numpy_walk(memory, cr3: int, vas: np.ndarray) -> np.ndarray:
    """The peer: all addresses walked level by level with numpy fancy indexing."""
    slot_of, words = memory.arrays[0], memory.arrays[2]
    mask = ((1 << 52) - 1) & ~0xFFF
    table = np.full(vas.shape, cr3 & mask, dtype=np.int64)
    ok = np.ones(vas.shape, dtype=bool)
    for shift in (39, 30, 21, 12):
        ea = table + ((vas >> shift) & 511) * 8
        e = words[slot_of[ea >> 12].astype(np.int64) * 512 + ((ea & 0xFFF) >> 3)]
        ok &= (e & 1) != 0
        table = e & mask
    return np.where(ok, table | (vas & 0xFFF), -1)


def bench_mmu(quick: bool) -> list[Row]:
    from ..machine import regs as R
    from ..machine.memory import Memory
    from ..machine.mmu import Mmu, walk_many

    pages = 1 << (14 if quick else 18)            # 64 MiB or 1 GiB mapped
    m = Memory()
    cr3, vas, _ = build_tree(m, pages)
    rng = np.random.Generator(np.random.PCG64(2))
    n = 200_000 if quick else 2_000_000
    probe = vas[rng.integers(0, pages, n)] + rng.integers(0, 4096, n)
    walk_many(m, cr3, probe[:10])                  # compile
    numpy_walk(m, cr3, probe[:10])
    t_nb = best_of(lambda: walk_many(m, cr3, probe))
    t_np = best_of(lambda: numpy_walk(m, cr3, probe))
    assert (walk_many(m, cr3, probe) == numpy_walk(m, cr3, probe)).all()

    mmu = Mmu(m)
    st = mmu.state
    st[R.CR0] |= R.CR0_PG | R.CR0_PE
    st[R.CR4] |= R.CR4_PAE
    st[R.EFER] |= R.EFER_LME | R.EFER_LMA
    mmu.write_cr3(cr3)
    hot = vas[:1024][rng.integers(0, 1024, n)] + rng.integers(0, 4096, n)
    mmu.translate_batch(hot)                       # compile and warm the TLB
    t_tlb = best_of(lambda: mmu.translate_batch(hot))
    rate, peer = n / t_nb, n / t_np
    return [
        Row("mmu", f"batch walk, random VA over {pages} mapped pages", rate, "walks/s",
            target=">= 30M/s and >= 3x numpy", met=rate >= 30e6 and rate >= 3 * peer
            ).with_peer("numpy walker", peer),
        Row("mmu", "translate through the TLB (1024-page working set)", n / t_tlb,
            "translations/s").with_peer("numpy walker", peer),
    ]
