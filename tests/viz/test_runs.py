"""Run-length helpers against slow, obviously-correct loops."""

import numpy as np
from hypothesis import given, strategies as st

from xenlab.viz.runs import coalesce, frame_regions, p2m_runs, runs


def slow_runs(values):
    out = []
    for v in sorted(set(values)):
        if out and out[-1][0] + out[-1][1] == v:
            out[-1][1] += 1
        else:
            out.append([v, 1])
    return out


def slow_p2m_runs(p2m):
    out = []
    for pfn, mfn in enumerate(p2m):
        if mfn < 0:
            continue
        if out and out[-1][0] + out[-1][2] == pfn and out[-1][1] + out[-1][2] == mfn:
            out[-1][2] += 1
        else:
            out.append([pfn, mfn, 1])
    return out


@given(st.lists(st.integers(0, 200), max_size=80))
def test_runs_match_slow(values):
    r = runs(values)
    assert [list(x) for x in zip(r["start"], r["count"])] == slow_runs(values)


@given(st.lists(st.integers(-1, 40), max_size=80))
def test_p2m_runs_match_slow_and_rebuild_the_map(p2m):
    r = p2m_runs(p2m)
    assert [list(x) for x in zip(r["pfn"], r["mfn"], r["count"])] == slow_p2m_runs(p2m)
    rebuilt = np.full(len(p2m), -1)
    for pfn, mfn, n in zip(r["pfn"], r["mfn"], r["count"]):
        rebuilt[pfn:pfn + n] = np.arange(mfn, mfn + n)
    assert rebuilt.tolist() == [max(x, -1) for x in p2m]


@given(st.lists(st.tuples(st.integers(0, 1000), st.integers(0, 50)), min_size=1, max_size=60),
       st.integers(0, 30))
def test_coalesce_covers_the_union_and_keeps_gaps(pairs, gap):
    s = np.array([a for a, _ in pairs], dtype=float)
    e = s + np.array([b for _, b in pairs], dtype=float)
    cs, ce = coalesce(s, e, gap)
    # every input interval lies inside one output interval
    for a, b in zip(s, e):
        assert any(x <= a and b <= y for x, y in zip(cs, ce))
    # outputs are sorted and separated by at least `gap`
    assert all(cs[i + 1] - ce[i] >= gap for i in range(len(cs) - 1))
    # nothing is invented: each output starts at an input start and ends at an input end
    assert set(cs) <= set(s) and set(ce) <= set(e)
    assert len(cs) <= len(s)


def test_frame_regions_in_bytes():
    df = frame_regions([5, 6, 7, 100], "dom0", "dom0's frames")
    assert df[["start", "end"]].values.tolist() == [[5 << 12, 8 << 12], [100 << 12, 101 << 12]]
    assert set(df["kind"]) == {"dom0"} and set(df["label"]) == {"dom0's frames"}
