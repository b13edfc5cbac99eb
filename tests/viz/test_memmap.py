"""The memory map over a real Machine, and its aggregation."""

import numpy as np
import pandas as pd
import pytest

from xenlab.machine import Machine
from xenlab.machine.e820 import E820_RAM, E820Entry
from xenlab.viz import FrameRegions, MachineRegions, MemoryMapView, bios_areas, runs


class Reg:
    def mmio_read(self, off, size):
        return 0

    def mmio_write(self, off, size, value):
        pass


@pytest.fixture
def machine():
    m = Machine("8G", seed=3)
    m.memory.write16(0x40E, 0x9FC0)            # the BDA says: EBDA at 0x9FC00
    m.memory.fill(0x2000, 100, 7)              # frames holding data
    m.memory.write64(0x1234_5000, 1)
    m.mmio.map(0xFEC0_0000, 0x1000, Reg(), "ioapic")
    m.mmio.map(0xE000_0000, 0x100_0000, Reg(), "vga bar")
    return m


def test_regions_come_from_the_model(machine):
    v = MemoryMapView(MachineRegions(machine))
    f = v.frame
    e820 = f[f["lane"] == "E820"]
    assert sorted(zip(e820["start"], e820["end"])) == sorted(
        (e.base, e.end) for e in machine.e820)
    mmio = f[f["kind"] == "mmio"].set_index("label")
    assert mmio.loc["ioapic", "start"] == 0xFEC0_0000 and mmio.loc["vga bar", "size"] == 1 << 24
    touched = f[f["kind"] == "touched"]
    expect = runs(machine.memory.frame()["mfn"])
    assert touched["start"].tolist() == (expect["start"].to_numpy() << 12).tolist()
    assert (touched["size"].to_numpy() >> 12).tolist() == expect["count"].tolist()
    ebda = f[f["label"].str.startswith("EBDA")]
    assert ebda[["start", "end"]].values.tolist() == [[0x9FC00, 0xA0000]]
    assert (f["start"].diff().dropna() >= 0).all()            # sorted


def test_at_and_zoom(machine):
    v = MemoryMapView(MachineRegions(machine))
    assert set(v.at("0xfec00010")["kind"]) == {"reserved", "mmio"}
    assert set(v.at(0x0)["label"]) >= {"IVT (real-mode interrupt vectors)", "E820 usable"}
    v.preset.value = "low 1 MiB"
    assert v.window == (0, 1 << 20)
    assert (v.visible()["start"] < 1 << 20).all() and len(v.visible()) >= 8
    assert "0x100000" in v.hi_text.value
    v.lo_text.value = "0x100000"
    assert "empty" in v.status.value                             # 1M..1M is empty
    v.hi_text.value = "0x200000"
    assert v.window == (0x100000, 0x200000)
    v.zoom()
    assert v.window == (0, int(v.frame["end"].max()))


def test_scales_draw(machine):
    v = MemoryMapView(MachineRegions(machine), scale="linear")
    png_linear = v.pane.widget.value
    v.scale_buttons.value = "log"
    assert v.scale == "log" and v.pane.widget.value != png_linear
    assert v.pane.widget.value[:8] == b"\x89PNG\r\n\x1a\n"


def test_many_frames_are_aggregated_before_drawing():
    """2 million scattered frames in one lane draw as at most a pixel's worth of bars."""
    rng = np.random.Generator(np.random.PCG64(1))
    mfns = np.unique(rng.integers(0, 1 << 24, 2_000_000))
    s, n = runs(mfns)["start"].to_numpy(), runs(mfns)["count"].to_numpy()
    r = runs(mfns)
    df = pd.DataFrame({"start": s << 12, "end": (s + n) << 12,
                       "kind": "dom0", "label": "dom0"})
    v = MemoryMapView(FrameRegions(df), scale="linear", max_bars=2000)
    assert len(v.frame) == len(r) > 1_000_000
    assert v.drawn_bars <= 1000
    v.zoom(0, 1 << 24)                 # zoomed in far enough, runs are drawn one by one
    assert 100 < len(v.visible()) < 2000 and v.drawn_bars == len(v.visible())


def test_bad_regions_are_named():
    with pytest.raises(ValueError, match="'oops' ends"):
        MemoryMapView(FrameRegions(pd.DataFrame(
            [{"start": 10, "end": 5, "kind": "ram", "label": "oops"}])))
    with pytest.raises(ValueError, match="lacks column"):
        MemoryMapView(FrameRegions(pd.DataFrame([{"start": 0, "end": 5}])))


def test_extra_sources_and_custom_lanes(machine):
    heap = pd.DataFrame([{"start": 1 << 31, "end": 1 << 32, "kind": "xen-heap",
                          "label": "DMA zone"}])
    v = MemoryMapView(MachineRegions(machine, FrameRegions(heap)))
    assert v.at(0x9000_0000)["label"].tolist().count("DMA zone") == 1
    assert "Xen heap" in set(v.frame["lane"])


def test_bios_areas_without_ebda():
    assert not bios_areas()["label"].str.startswith("EBDA").any()
    assert bios_areas()["end"].max() == 1 << 20
