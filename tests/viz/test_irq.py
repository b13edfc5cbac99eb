"""The interrupt-routing view over a routes frame."""

import pandas as pd
import pytest

from xenlab.viz import ROUTE_COLUMNS, FrameRoutes, RoutingView

ROUTES = [
    dict(device="mpt0", bdf="02:01.0", intx="INTA", ioapic=8, ioapic_pin=28, gsi=28,
         trigger="level", polarity="low", pirq=28, evtchn=9, handler="mpt_intr"),
    dict(device="pit", isa_irq=0, override="ISA IRQ 0 -> GSI 2", ioapic=8, ioapic_pin=2,
         gsi=2, trigger="edge", polarity="high", vector=0x20, handler="clock"),
    dict(device="ata0", bdf="00:1f.1", intx="INTA", ioapic=8, ioapic_pin=14, gsi=14, pirq=14),
    dict(device="e1000g0", bdf="03:00.0", intx="INTB"),
]


def test_routes_routed_and_broken():
    v = RoutingView(FrameRoutes(pd.DataFrame(ROUTES)))
    assert list(v.frame.columns) == list(ROUTE_COLUMNS) + ["routed", "broken_at"]
    assert v.frame["routed"].tolist() == [True, True, False, False]
    assert v.frame["broken_at"].tolist()[2:] == ["event channel", "GSI"]
    assert v.broken()["device"].tolist() == ["ata0", "e1000g0"]
    assert "2 go nowhere" in v.summary.value
    assert "ISA IRQ 0 -&gt; GSI 2" in v.table_html.value
    assert "0x20" in v.table_html.value
    assert v.pane.widget.value[:4] == b"\x89PNG"


def test_select_and_dropdown():
    v = RoutingView(FrameRoutes(lambda: pd.DataFrame(ROUTES)))
    assert [o for o, _ in v.device_pick.options] == ["all devices", "mpt0", "pit", "ata0",
                                                     "e1000g0"]
    before = v.pane.widget.value
    v.device_pick.value = "ata0"
    assert v.selected == "ata0" and v.pane.widget.value != before
    assert v.route("ata0")["pirq"].tolist() == [14]


def test_unknown_columns_are_named():
    with pytest.raises(ValueError, match="unknown column.*irq_line"):
        RoutingView(FrameRoutes(pd.DataFrame([{"device": "x", "irq_line": 5}])))


def test_refresh_follows_the_model():
    routes = pd.DataFrame(ROUTES[:3])
    v = RoutingView(FrameRoutes(lambda: routes))
    assert not v.frame["routed"].iloc[2]
    routes.loc[2, "evtchn"] = 12                  # the fixed kernel binds a port ...
    routes.loc[2, "handler"] = "ata_intr"         # ... and a handler
    v.refresh_button.click()
    assert v.frame["routed"].all() and "go nowhere" not in v.summary.value
