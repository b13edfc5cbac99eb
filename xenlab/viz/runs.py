"""Run-length aggregation, so a view of a 64 GiB machine draws runs, not frames.

A 64 GiB machine has 16 Mi frames; a view never draws one artist per frame.
These vectorised helpers turn frame-level arrays into runs (a start and a
count), and merge runs that are closer than a pixel before drawing.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

PAGE_SHIFT = 12


def runs(values) -> pd.DataFrame:
    """Runs of consecutive integers: ``[3,4,5,9,10] -> (start 3, count 3), (9, 2)``.

    ``values`` may be unsorted and repeat; the runs are of the distinct values.
    """
    v = np.sort(np.asarray(values, dtype=np.int64), kind="stable")
    if v.size:
        # distinct values by sorting: numpy 2.4's hash-based np.unique takes ~1.5 us per
        # element on 2 Mi frames, about 20x slower than a sort (xenlab bench viz)
        v = v[np.concatenate(([True], v[1:] != v[:-1]))]
    if v.size == 0:
        return pd.DataFrame({"start": np.zeros(0, np.int64), "count": np.zeros(0, np.int64)})
    breaks = np.flatnonzero(np.diff(v) != 1) + 1
    starts = np.concatenate(([0], breaks))
    ends = np.concatenate((breaks, [v.size]))
    return pd.DataFrame({"start": v[starts], "count": (ends - starts).astype(np.int64)})


def frame_regions(mfns, kind: str, label: str = "") -> pd.DataFrame:
    """Frames (numbers) as regions rows (start, end, kind, label) in bytes, one per run."""
    r = runs(mfns)
    return pd.DataFrame({
        "start": r["start"].to_numpy() << PAGE_SHIFT,
        "end": (r["start"].to_numpy() + r["count"].to_numpy()) << PAGE_SHIFT,
        "kind": kind, "label": label or kind,
    })


def p2m_runs(p2m) -> pd.DataFrame:
    """A P2M array (index PFN, value MFN, < 0 = no frame) as runs where both
    numbers advance together: columns pfn, mfn, count."""
    a = np.asarray(p2m, dtype=np.int64)
    if a.size == 0:
        z = np.zeros(0, np.int64)
        return pd.DataFrame({"pfn": z, "mfn": z, "count": z})
    valid = a >= 0
    pfn = np.arange(a.size, dtype=np.int64)
    # a run starts where the entry is valid and is not the continuation of the previous
    cont = np.zeros(a.size, dtype=bool)
    cont[1:] = valid[1:] & valid[:-1] & (a[1:] == a[:-1] + 1)
    start = valid & ~cont
    starts = np.flatnonzero(start)
    # a run ends just before the next start or the next invalid entry
    stop = np.flatnonzero(valid & ~np.concatenate((cont[1:], [False]))) + 1
    return pd.DataFrame({"pfn": pfn[starts], "mfn": a[starts],
                         "count": (stop - starts).astype(np.int64)})


def coalesce(start, end, gap: float):
    """Merge sorted intervals ``[start, end)`` whose gap is below ``gap``.

    Drawing helper: with ``gap`` one pixel's worth of address, no more
    rectangles are drawn than the axis has pixels.  Returns (start, end) arrays.
    """
    s = np.asarray(start, dtype=np.float64)
    e = np.asarray(end, dtype=np.float64)
    if s.size == 0:
        return s, e
    order = np.argsort(s, kind="stable")
    s, e = s[order], e[order]
    reach = np.maximum.accumulate(e)               # overlaps count as touching
    new = np.ones(s.size, dtype=bool)
    new[1:] = s[1:] - reach[:-1] >= gap
    idx = np.flatnonzero(new)
    out_e = np.maximum.reduceat(e, idx)
    return s[idx], out_e
