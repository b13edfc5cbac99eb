"""The P2M view: runs, contiguity of a buffer, aggregation of big maps."""

import numpy as np
import pytest

from xenlab.machine.memory import Memory
from xenlab.machine.mmu import walk
from xenlab.viz import ArrayP2M, P2MView, PageTableP2M

from ..machine.ptbuild import Tables


def test_runs_and_buffer_contiguity():
    p2m = np.array([10, 11, 12, 50, 51, 7, -1, 30, 31, 32], dtype=np.int64)
    v = P2MView(ArrayP2M(p2m))
    assert v.frame.values.tolist() == [[0, 10, 3], [3, 50, 2], [5, 7, 1], [7, 30, 3]]
    h = v.highlight((0, 5))
    assert h["mfn"].tolist() == [10, 11, 12, 50, 51] and h["mfn_run"].tolist() == [0, 0, 0, 1, 1]
    assert v.contiguity["pfn_runs"] == 1 and v.contiguity["mfn_runs"] == 2
    assert not v.contiguity["machine_contiguous"]
    assert "not machine-contiguous" in v.summary.value
    v.highlight(range(7, 10))
    assert v.contiguity["machine_contiguous"] and "machine-contiguous" in v.summary.value
    v.highlight([5, 6])
    assert v.contiguity["unmapped"] == 1 and not v.contiguity["machine_contiguous"]
    with pytest.raises(ValueError, match="outside"):
        v.highlight((8, 5))


def test_buffer_text_and_window_text():
    v = P2MView(ArrayP2M(np.arange(100, 200)))
    v.buffer_text.value = "0x10, 8"
    assert v.highlighted["pfn"].tolist() == list(range(16, 24))
    assert v.contiguity["machine_contiguous"]
    v.buffer_text.value = "nonsense"
    assert "first PFN" in v.status.value
    v.window_text.value = "0x10,0x1f"
    assert v.window == (16, 31)


def test_page_table_p2m_is_the_walk():
    m = Memory()
    t = Tables(m)
    base = 0xFFFF_8000_0000_0000
    rng = np.random.Generator(np.random.PCG64(5))
    frames = rng.permutation(np.arange(0x1000, 0x1000 + 64))
    for i, f in enumerate(frames[:60]):
        t.map(base + i * 4096, int(f))
    src = PageTableP2M(m, t.cr3, base, 64)
    arr = src.p2m()
    for pfn in range(64):
        w = walk(m, t.cr3, base + pfn * 4096)
        assert arr[pfn] == (w.maddr >> 12 if w.ok else -1)
    v = P2MView(src, highlight=(0, 16))
    assert v.contiguity["mfn_runs"] > 1            # a permuted buffer is scattered
    assert (v.highlighted["mfn"].to_numpy() == frames[:16]).all()


def test_big_p2m_draws_a_density_not_millions_of_points():
    rng = np.random.Generator(np.random.PCG64(2))
    n = 1 << 22                                    # 16 GiB of PFNs
    chunks = (np.arange(n, dtype=np.int64) + 0x100000).reshape(-1, 64)
    p2m = chunks[rng.permutation(len(chunks))].ravel()
    v = P2MView(ArrayP2M(p2m), highlight=(4096, 256))
    assert len(v.frame) > 3000 and v.drawn.startswith("density")
    v.zoom(4096, 4096 + 1023)
    assert v.drawn == "16 runs"                    # zoomed in: the runs themselves
    assert v.contiguity["mfn_runs"] == 4           # 256 frames in 64-frame chunks


@pytest.mark.filterwarnings("ignore:Passing unrecognized arguments:DeprecationWarning")
def test_interactive_canvas_when_ipympl_is_there():
    pytest.importorskip("ipympl")
    v = P2MView(ArrayP2M(np.arange(10)), interactive=True)
    assert v.pane.interactive and type(v.pane.widget).__name__ == "Canvas"
    assert v.pane.fig.axes and v.pane.fig.axes[0].collections
