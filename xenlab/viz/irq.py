"""Interrupt routing: device -> INTx pin -> IOAPIC pin / GSI -> vector or PIRQ
-> event channel -> handler, as a diagram and a table.

Source protocol (:class:`RouteSource`)::

    routes() -> DataFrame, one row per interrupt source, with any of the
                columns in ROUTE_COLUMNS (missing ones read as "not there"):

    device      name of the device ("mpt0", "uart0", "pit")
    bdf         PCI bus:device.function ("00:1f.2"), NA for ISA devices
    intx        PCI interrupt pin "INTA".."INTD", NA for ISA devices
    isa_irq     ISA IRQ number for legacy devices, NA for PCI
    override    the MADT interrupt source override that applied, e.g.
                "ISA IRQ 0 -> GSI 2", NA if none (ACPI 6.x §5.2.12.5)
    ioapic      IOAPIC id;   ioapic_pin: its input pin
    gsi         global system interrupt number
    trigger     "edge" / "level";   polarity: "high" / "low"
    vector      IDT vector (native kernel, or Xen's own)
    pirq        physical IRQ number Xen gave the domain (PV)
    evtchn      event channel port the PIRQ is bound to (PV)
    handler     the interrupt handler that runs ("mpt_intr"), NA if none

A route that does not reach a handler is *broken* and drawn in red: the
interrupts lab's unfixed kernel binds no event channel, so the disk's
interrupt goes nowhere.
"""

from __future__ import annotations

import html
from typing import Protocol

import ipywidgets as widgets
import numpy as np
import pandas as pd

from .base import PlottedView
from .figure import FigurePane

ROUTE_COLUMNS = ("device", "bdf", "intx", "isa_irq", "override", "ioapic", "ioapic_pin",
                 "gsi", "trigger", "polarity", "vector", "pirq", "evtchn", "handler")
STAGES = ("device", "pin", "GSI", "vector / PIRQ", "event channel", "handler")
MAX_DRAWN = 48            # routes drawn in the diagram; the table has them all


class RouteSource(Protocol):
    def routes(self) -> pd.DataFrame: ...


def _na(v) -> bool:
    return v is None or (not isinstance(v, str) and pd.isna(v))


def _num(v) -> str:
    return str(int(v)) if isinstance(v, (int, float, np.integer, np.floating)) else str(v)


def route_nodes(row) -> list[str | None]:
    """The label at each stage of one route (None where the route has nothing)."""
    dev = row["device"] if not _na(row["device"]) else "?"
    if not _na(row["bdf"]):
        dev = f"{dev} ({row['bdf']})"
    if not _na(row["intx"]):
        pin = str(row["intx"])
    elif not _na(row["isa_irq"]):
        pin = f"ISA IRQ {_num(row['isa_irq'])}"
    else:
        pin = None
    gsi = None
    if not _na(row["gsi"]):
        gsi = f"GSI {_num(row['gsi'])}"
        if not _na(row["ioapic"]) and not _na(row["ioapic_pin"]):
            gsi = f"IOAPIC {_num(row['ioapic'])} pin {_num(row['ioapic_pin'])} = {gsi}"
        if not _na(row["override"]):
            gsi += " *"
    vp = None
    if not _na(row["pirq"]):
        vp = f"PIRQ {_num(row['pirq'])}"
    elif not _na(row["vector"]):
        vp = f"vector {int(row['vector']):#x}"
    ev = None if _na(row["evtchn"]) else f"port {_num(row['evtchn'])}"
    hd = None if _na(row["handler"]) else str(row["handler"])
    return [dev, pin, gsi, vp, ev, hd]


class RoutingView(PlottedView):
    """Interrupt routes as a layered diagram and a table.

    ``.frame``: the routes with every column of ROUTE_COLUMNS plus ``routed``
    (reaches a handler) and ``broken_at`` (the first stage it lacks).
    """

    figsize = (11, 4)
    css = "xenlab-irqroute"
    required = ("routes",)
    columns = ROUTE_COLUMNS + ("routed", "broken_at")
    title = "interrupt routes"

    def __init__(self, source, *, interactive: bool = False):
        self._interactive = interactive
        self.selected = None
        super().__init__(source)
        self.refresh()

    def _build(self):
        c = self._cls
        self.pane = FigurePane((11, 3), interactive=self._interactive)
        self.pane.widget.add_class(f"{self.css}-figure")
        self.device_pick = c(widgets.Dropdown(options=[("all devices", None)],
                                              description="device"), "device")
        self.device_pick.observe(self._on_pick, names="value")
        self.summary = c(widgets.HTML(), "summary")
        self.table_html = c(widgets.HTML(), "table")
        return widgets.VBox([self.header(self.device_pick), self.status, self.summary,
                             self.pane.widget, self.table_html])

    # -- model -------------------------------------------------------------------------
    def _load(self):
        df = pd.DataFrame(self.source.routes())
        unknown = [c for c in df.columns if c not in ROUTE_COLUMNS]
        if unknown:
            raise ValueError(f"routes frame has unknown column(s) {', '.join(unknown)}; "
                             f"the columns are {', '.join(ROUTE_COLUMNS)}")
        for col in ROUTE_COLUMNS:
            if col not in df:
                df[col] = pd.NA
        df = df[list(ROUTE_COLUMNS)].reset_index(drop=True)
        nodes = [route_nodes(r) for _, r in df.iterrows()]
        df["routed"] = [n[-1] is not None for n in nodes]
        df["broken_at"] = [self._broken_at(n) for n in nodes]
        self.frame = df
        self._nodes = nodes
        opts = [("all devices", None)] + [(str(d), str(d)) for d in
                                          dict.fromkeys(df["device"].dropna())]
        self.device_pick.unobserve(self._on_pick, names="value")
        self.device_pick.options = opts
        if self.selected not in [v for _, v in opts]:
            self.selected = None
        self.device_pick.value = self.selected
        self.device_pick.observe(self._on_pick, names="value")

    @staticmethod
    def _broken_at(nodes):
        if nodes[-1] is not None:
            return None
        last = max((i for i, n in enumerate(nodes) if n is not None), default=-1)
        return STAGES[min(last + 1, len(STAGES) - 1)]

    def broken(self) -> pd.DataFrame:
        """Routes that never reach a handler."""
        return self.frame[~self.frame["routed"].astype(bool)]

    def route(self, device: str) -> pd.DataFrame:
        return self.frame[self.frame["device"] == device]

    def select(self, device: str | None):
        """Highlight one device's routes (None: all)."""
        self.selected = device
        self.device_pick.value = device
        return self

    # -- drawing --------------------------------------------------------------------------
    def _clear(self):
        self.summary.value = self.table_html.value = ""
        self.pane.draw(lambda fig: None)

    def _render(self):
        n, bad = len(self.frame), int((~self.frame["routed"].astype(bool)).sum())
        text = f"{n} interrupt source(s), {n - bad} reach a handler"
        if bad:
            devs = ", ".join(map(str, self.broken()["device"].head(5)))
            text += (f', <b style="color:#b00020">{bad} go nowhere</b> ({html.escape(devs)}'
                     f"{'...' if bad > 5 else ''})")
        if n > MAX_DRAWN:
            text += f"; the diagram shows the first {MAX_DRAWN}, the table all"
        self.summary.value = text
        self.pane.fig.set_size_inches(11, max(2.5, 0.45 * min(n, MAX_DRAWN) + 1.2))
        self.pane.draw(self._plot)
        self.table_html.value = self._table()

    def _draw_on(self, ax):
        nodes = self._nodes[:MAX_DRAWN]
        devices = list(self.frame["device"][:MAX_DRAWN])
        # A node is a label at a stage; a device's own pin is its own node, the
        # later stages (GSI, PIRQ, port, handler) may be shared.  A node sits at
        # the mean row of the routes through it, nudged apart where they collide.
        keys = [[None if lab is None else ((r, lab) if s < 2 else lab)
                 for s, lab in enumerate(chain)] for r, chain in enumerate(nodes)]
        ypos = []
        for s in range(len(STAGES)):
            rows: dict = {}
            for r, chain in enumerate(keys):
                if chain[s] is not None:
                    rows.setdefault(chain[s], []).append(r)
            placed, last = {}, -1.0
            for key, rs in sorted(rows.items(), key=lambda kv: np.mean(kv[1])):
                y = max(float(np.mean(rs)), last + 0.9)
                placed[key] = last = y
            ypos.append(placed)
        height = max([max(p.values(), default=0) for p in ypos] + [0]) + 1
        for chain, dev in zip(keys, devices):
            focus = self.selected is None or dev == self.selected
            ok = chain[-1] is not None
            color = ("#1e88e5" if ok else "#e53935") if focus else "#dddddd"
            pts = [(s, ypos[s][k]) for s, k in enumerate(chain) if k is not None]
            for (s0, y0), (s1, y1) in zip(pts, pts[1:]):
                ax.plot([s0, s1], [y0, y1], color=color, linestyle="-" if s1 == s0 + 1
                        else "--", linewidth=2 if focus else 1, zorder=1)
            if not ok and pts:
                s, y = pts[-1]
                ax.plot([s, s + 0.6], [y, y], color=color, linestyle=":", zorder=1)
                ax.text(s + 0.62, y, "x nowhere", color=color, va="center",
                        fontsize="small", zorder=3)
        for s, placed in enumerate(ypos):
            for key, y in placed.items():
                label = key[1] if isinstance(key, tuple) else key
                ax.text(s, y, label, ha="center", va="center", fontsize=7, zorder=2,
                        bbox={"boxstyle": "round,pad=0.25", "fc": "white", "ec": "#888"})
        ax.set_xticks(range(len(STAGES)), STAGES)
        ax.xaxis.tick_top()
        ax.set_xlim(-0.6, len(STAGES) - 0.4)
        ax.set_ylim(height - 0.4, -0.6)
        ax.set_yticks([])
        for side in ("left", "right", "bottom"):
            ax.spines[side].set_visible(False)

    def _table(self) -> str:
        cols = [c for c in ROUTE_COLUMNS if self.frame[c].notna().any()] + ["routed"]
        head = "".join(f"<th>{c}</th>" for c in cols)
        body = []
        for _, r in self.frame.iterrows():
            style = "" if r["routed"] else ' style="color:#b00020"'
            if self.selected is not None and r["device"] != self.selected:
                style = ' style="color:#aaa"'
            cells = "".join(f"<td>{'&mdash;' if _na(r[c]) else html.escape(_cell(c, r[c]))}"
                            "</td>" for c in cols)
            body.append(f"<tr{style}>{cells}</tr>")
        return f"<table><tr>{head}</tr>{''.join(body)}</table>"

    def _on_pick(self, change):
        self.selected = change["new"]
        if self.source is not None:
            try:
                self._render()
            except Exception as e:
                self.say(f"{type(e).__name__}: {e}", error=True)


def _cell(col, v) -> str:
    if col == "vector" and not isinstance(v, str):
        return f"{int(v):#x}"
    if col == "routed":
        return "yes" if v else "NO"
    if isinstance(v, (float, np.floating)) and float(v).is_integer():
        return str(int(v))
    return str(v)
