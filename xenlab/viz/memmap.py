"""The memory map: E820, MMIO holes, BIOS areas, Xen's zones, dom0's frames.

Source protocol (:class:`RegionSource`)::

    regions() -> DataFrame with columns start, end (bytes, end exclusive),
                 kind (a short word: ram, reserved, acpi, nvs, mmio, bios,
                 touched, xen-heap, dom0, ...), label (free text), and
                 optionally lane (the row it is drawn in; default by kind)

Frame-level data (dom0 owns these 2 million frames) becomes rows with
:func:`xenlab.viz.runs.frame_regions` (one row per run).  Drawing merges runs
closer than a pixel, so a 64 GiB machine draws at most a few thousand bars.
"""

from __future__ import annotations

import html
from typing import Protocol

import ipywidgets as widgets
import numpy as np
import pandas as pd

from .base import PlottedView, fmt_size, hexint
from .figure import FigurePane
from .runs import coalesce

LANES = {"ram": "E820", "reserved": "E820", "acpi": "E820", "nvs": "E820",
         "unusable": "E820", "bios": "low 1 MiB", "mmio": "MMIO",
         "touched": "frames in use", "xen": "Xen", "xen-heap": "Xen heap",
         "dom0": "dom0", "free": "Xen free frames", "firmware": "firmware tables",
         "io": "I/O frames", "domU": "domUs"}
COLORS = {"ram": "#66bb6a", "reserved": "#9e9e9e", "acpi": "#ffb74d", "nvs": "#ff8a65",
          "unusable": "#616161", "bios": "#ba68c8", "mmio": "#e57373", "touched": "#42a5f5",
          "xen": "#8d6e63", "xen-heap": "#a1887f", "dom0": "#26c6da", "free": "#d7ccc8",
          "firmware": "#fdd835", "io": "#ef9a9a", "domU": "#80deea"}
LANE_ORDER = ("E820", "low 1 MiB", "firmware tables", "MMIO", "Xen heap", "Xen",
              "Xen free frames", "dom0", "domUs", "I/O frames", "frames in use")
PRESETS = {"all": None, "low 1 MiB": (0, 1 << 20), "below 4 GiB": (0, 1 << 32),
           "4 GiB and up": (1 << 32, None)}
LOG_FLOOR = 256          # a log axis starts here (address 0 has no logarithm)
TABLE_ROWS = 40


class RegionSource(Protocol):
    def regions(self) -> pd.DataFrame: ...


def _check_regions(df: pd.DataFrame) -> pd.DataFrame:
    missing = [c for c in ("start", "end", "kind", "label") if c not in df]
    if missing:
        raise ValueError(f"regions frame lacks column(s) {', '.join(missing)}; "
                         "a region source returns start, end, kind, label")
    df = df.copy()
    df["start"] = df["start"].astype(np.int64)
    df["end"] = df["end"].astype(np.int64)
    bad = df[df["end"] < df["start"]]
    if len(bad):
        r = bad.iloc[0]
        raise ValueError(f"region {r['label']!r} ends ({r['end']:#x}) before it starts "
                         f"({r['start']:#x})")
    if "lane" not in df:
        df["lane"] = df["kind"].map(LANES).fillna(df["kind"])
    df["size"] = df["end"] - df["start"]
    return df.sort_values(["start", "end"], kind="stable").reset_index(drop=True)[
        ["start", "end", "size", "kind", "label", "lane"]]


class MemoryMapView(PlottedView):
    """Regions drawn lane by lane on a linear or log address axis, with zoom.

    ``.frame``: every region (start, end, size, kind, label, lane), sorted.
    ``.visible()``: the regions inside the current zoom.  ``.at(addr)``: the
    regions that hold an address.
    """

    figsize = (10, 3.2)
    css = "xenlab-memmap"
    required = ("regions",)
    columns = ("start", "end", "size", "kind", "label", "lane")
    title = "memory map"

    def __init__(self, source, *, scale: str = "log", zoom=None, interactive: bool = False,
                 max_bars: int = 2000):
        self.scale = scale
        self._zoom = zoom
        self.max_bars = max_bars
        self._interactive = interactive
        self.drawn_bars = 0
        super().__init__(source)
        self.refresh()

    def _build(self):
        c = self._cls
        self.pane = FigurePane((10, 3.2), interactive=self._interactive)
        self.pane.widget.add_class(f"{self.css}-figure")
        self.preset = c(widgets.Dropdown(options=list(PRESETS), value="all",
                                         description="zoom", layout={"width": "16em"}),
                        "preset")
        self.preset.observe(self._on_preset, names="value")
        self.lo_text = c(widgets.Text(description="from", continuous_update=False,
                                      layout={"width": "14em"}), "from")
        self.hi_text = c(widgets.Text(description="to", continuous_update=False,
                                      layout={"width": "14em"}), "to")
        for t in (self.lo_text, self.hi_text):
            t.observe(self._on_range, names="value")
        self.scale_buttons = c(widgets.ToggleButtons(options=["log", "linear"],
                                                     value=self.scale,
                                                     style={"button_width": "5em"}), "scale")
        self.scale_buttons.observe(self._on_scale, names="value")
        self.table_html = c(widgets.HTML(), "table")
        self.summary = c(widgets.HTML(), "summary")
        return widgets.VBox([
            self.header(self.preset, self.scale_buttons), self.status,
            widgets.HBox([self.lo_text, self.hi_text]), self.summary,
            self.pane.widget, self.table_html])

    # -- model -----------------------------------------------------------------------
    def _load(self):
        self.frame = _check_regions(pd.DataFrame(self.source.regions()))

    def at(self, addr) -> pd.DataFrame:
        """Regions that contain machine address ``addr``."""
        a = hexint(addr)
        f = self.frame
        return f[(f["start"] <= a) & (a < f["end"])]

    @property
    def window(self) -> tuple[int, int]:
        """The zoomed address window (lo, hi)."""
        top = int(self.frame["end"].max()) if len(self.frame) else 1 << 20
        if self._zoom is None:
            return 0, top
        lo, hi = self._zoom
        return int(lo or 0), int(hi if hi is not None else top)

    def zoom(self, lo=None, hi=None):
        """Show ``[lo, hi)`` (ints or hex text); ``zoom()`` shows everything."""
        if lo is None and hi is None:
            self._zoom = None
        else:
            lo = 0 if lo is None else hexint(lo)
            hi = None if hi is None else hexint(hi)
            if hi is not None and hi <= lo:
                raise ValueError(f"zoom window {lo:#x}..{hi:#x} is empty")
            self._zoom = (lo, hi)
        if self.source is not None:
            self._render()
        return self

    def visible(self) -> pd.DataFrame:
        lo, hi = self.window
        f = self.frame
        return f[(f["end"] > lo) & (f["start"] < hi)]

    # -- drawing ------------------------------------------------------------------------
    def _clear(self):
        self.table_html.value = self.summary.value = ""
        self.pane.draw(lambda fig: None)

    def _render(self):
        lo, hi = self.window
        self.lo_text.unobserve(self._on_range, names="value")
        self.hi_text.unobserve(self._on_range, names="value")
        self.lo_text.value, self.hi_text.value = f"{lo:#x}", f"{hi:#x}"
        self.lo_text.observe(self._on_range, names="value")
        self.hi_text.observe(self._on_range, names="value")
        vis = self.visible()
        self.summary.value = (f"{len(self.frame)} regions, {len(vis)} in "
                              f"<code>{lo:#x}</code>&ndash;<code>{hi:#x}</code> "
                              f"({fmt_size(hi - lo)})")
        self.pane.draw(self._plot)
        self.table_html.value = self._table(vis)

    def _draw_on(self, ax):
        lo, hi = self.window
        log = self.scale == "log"
        x0 = max(lo, LOG_FLOOR) if log else lo
        vis = self.visible()
        seen = list(pd.unique(self.frame["lane"]))
        lanes = [x for x in LANE_ORDER if x in seen] + [x for x in seen if x not in LANE_ORDER]
        width_px = 900
        budget = max(50, self.max_bars // max(len(lanes), 1))
        to_x = (lambda a: np.log2(np.maximum(a, 1))) if log else (lambda a: a)
        from_x = (lambda a: 2.0 ** a) if log else (lambda a: a)
        span = float(to_x(np.float64(hi)) - to_x(np.float64(x0))) or 1.0
        self.drawn_bars = 0
        for y, lane in enumerate(lanes):
            sub = vis[vis["lane"] == lane]
            for kind, g in sub.groupby("kind", sort=False):
                s = to_x(np.clip(g["start"].to_numpy(np.float64), x0, hi))
                e = to_x(np.clip(g["end"].to_numpy(np.float64), x0, hi))
                if len(s) > budget:     # too many to draw: merge what a pixel cannot split
                    s, e = coalesce(s, e, span / width_px)
                    labels = []
                else:
                    labels = g["label"].tolist()
                keep = e > s
                s, e = s[keep], e[keep]
                labels = [lab for lab, k in zip(labels, keep) if k] if labels else []
                self.drawn_bars += len(s)
                e = np.maximum(e, s + 2 * span / width_px)   # at least two pixels wide
                xs, xe = from_x(s), from_x(e)
                # neighbours of one kind alternate in shade, so adjacent regions show
                alpha = np.where(np.arange(len(xs)) % 2 == 0, 1.0, 0.7)
                color = COLORS.get(kind, "#90a4ae")
                for shade in (1.0, 0.7):
                    sel = alpha == shade
                    ax.broken_barh(list(zip(xs[sel], (xe - xs)[sel])), (y - 0.35, 0.7),
                                   facecolors=color, edgecolor="none", alpha=shade,
                                   label=kind if shade == 1.0 else None)
                if labels and len(s) <= 30:
                    for a, b, lab in zip(s, e, labels):
                        if len(str(lab)) <= 150 * (b - a) / span:   # only labels that fit
                            ax.text(from_x((a + b) / 2), y, str(lab), ha="center",
                                    va="center", fontsize=6, clip_on=True)
        ax.set_yticks(range(len(lanes)), lanes)
        ax.set_ylim(-0.6, len(lanes) - 0.4)
        ax.invert_yaxis()
        if log:
            ax.set_xscale("log", base=2)
        ax.set_xlim(x0, hi)
        ax.xaxis.set_major_formatter(_size_formatter())
        ax.set_xlabel("machine address" + (" (log scale)" if log else ""))
        handles, labels = ax.get_legend_handles_labels()
        uniq = dict(zip(labels, handles))
        if uniq:
            ax.legend(uniq.values(), uniq.keys(), loc="upper left", bbox_to_anchor=(1.0, 1.0),
                      fontsize="small", frameon=False)

    def _table(self, vis) -> str:
        rows = vis.head(TABLE_ROWS)
        body = "".join(
            f"<tr><td><code>{r.start:#x}</code></td><td><code>{r.end:#x}</code></td>"
            f"<td>{fmt_size(int(r.size))}</td><td>{html.escape(str(r.kind))}</td>"
            f"<td>{html.escape(str(r.label))}</td></tr>" for r in rows.itertuples())
        more = (f"<div><i>{len(vis) - TABLE_ROWS} more in this window: see "
                "<code>.visible()</code></i></div>" if len(vis) > TABLE_ROWS else "")
        return ("<table><tr><th>start</th><th>end</th><th>size</th><th>kind</th>"
                f"<th>label</th></tr>{body}</table>{more}")

    # -- callbacks --------------------------------------------------------------------------
    def _on_preset(self, change):
        w = PRESETS[change["new"]]
        self._safely(lambda: self.zoom(*(w or (None, None))))

    def _on_range(self, change):
        self._safely(lambda: self.zoom(self.lo_text.value, self.hi_text.value))

    def _on_scale(self, change):
        self.scale = change["new"]
        if self.source is not None:
            self._safely(self._render)


def _size_formatter():
    from matplotlib.ticker import FuncFormatter
    return FuncFormatter(lambda x, _pos: fmt_size(int(x)) if x >= 1 else "0")
