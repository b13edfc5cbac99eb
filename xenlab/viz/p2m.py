"""The P2M view: pseudo-physical frame number against machine frame number.

Source protocol (:class:`P2MSource`)::

    name: str
    p2m() -> int64 array indexed by PFN: the MFN, or < 0 where the domain
             has no frame (Xen's INVALID_P2M_ENTRY)

A PV guest's memory is contiguous in PFNs but scattered in MFNs; a device
doing DMA sees MFNs.  The view draws the map as runs (a run: PFNs and MFNs
advancing together), so a 64 GiB domain is a few segments when Xen gave it
large chunks and a density image when it did not; and it highlights a
buffer's frames, saying whether the buffer is machine-contiguous.
"""

from __future__ import annotations

import html
from typing import Protocol

import ipywidgets as widgets
import numpy as np
import pandas as pd

from .base import PlottedView, hexint
from .figure import FigurePane
from .runs import p2m_runs, runs

MAX_SEGMENTS = 3000       # above this many runs in the window, draw a density image
SAMPLE = 200_000          # frames sampled for the density image
HIGHLIGHT_POINTS = 5000   # above this, a highlight is drawn as runs


class P2MSource(Protocol):
    name: str

    def p2m(self) -> np.ndarray: ...


def _pfns(sel, n: int) -> np.ndarray:
    """PFNs from an array, a range, a slice, or (first, count)."""
    if isinstance(sel, slice):
        return np.arange(n, dtype=np.int64)[sel]
    if isinstance(sel, tuple) and len(sel) == 2:
        first, count = hexint(sel[0]), int(sel[1])
        return np.arange(first, first + count, dtype=np.int64)
    return np.asarray(list(sel) if isinstance(sel, range) else sel, dtype=np.int64).ravel()


class P2MView(PlottedView):
    """PFN -> MFN, aggregated into runs, with a highlighted buffer.

    ``.frame``: the runs (pfn, mfn, count).  ``.p2m``: the raw array.
    ``.highlight(pfns)`` marks a buffer; ``.highlighted`` then holds its frames
    (pfn, mfn, mfn_run) and ``.contiguity`` a summary dict.
    """

    figsize = (7, 4.5)
    css = "xenlab-p2m"
    required = ("p2m",)
    columns = ("pfn", "mfn", "count")
    title = "P2M"

    def __init__(self, source, *, highlight=None, label: str = "buffer",
                 interactive: bool = False):
        self.p2m = np.zeros(0, dtype=np.int64)
        self._hl = highlight
        self._hl_label = label
        self.highlighted = pd.DataFrame(columns=["pfn", "mfn", "mfn_run"])
        self.contiguity: dict = {}
        self._window = None
        self._interactive = interactive
        self.drawn = ""
        super().__init__(source)
        self.refresh()

    def _build(self):
        c = self._cls
        self.pane = FigurePane((7, 4.5), interactive=self._interactive)
        self.pane.widget.add_class(f"{self.css}-figure")
        self.title_html = c(widgets.HTML(), "title")
        self.buffer_text = c(widgets.Text(description="buffer", placeholder="pfn,count "
                                          "e.g. 0x100,16", continuous_update=False,
                                          layout={"width": "20em"}), "buffer")
        self.buffer_text.observe(self._on_buffer, names="value")
        self.window_text = c(widgets.Text(description="PFNs", placeholder="first,last",
                                          continuous_update=False,
                                          layout={"width": "20em"}), "window")
        self.window_text.observe(self._on_window, names="value")
        self.summary = c(widgets.HTML(), "summary")
        self.highlight_html = c(widgets.HTML(), "highlight")
        return widgets.VBox([
            self.header(self.title_html), self.status,
            widgets.HBox([self.buffer_text, self.window_text]), self.summary,
            self.pane.widget, self.highlight_html])

    # -- model ----------------------------------------------------------------------
    def _load(self):
        self.p2m = np.asarray(self.source.p2m(), dtype=np.int64)
        self.frame = p2m_runs(self.p2m)
        self._compute_highlight()

    def highlight(self, pfns, label: str = "buffer"):
        """Mark a buffer's frames: an array of PFNs, a range, a slice or (first, count)."""
        self._hl, self._hl_label = pfns, label
        self._compute_highlight()
        if self.source is not None:
            self._render()
        return self.highlighted

    def _compute_highlight(self):
        if self._hl is None:
            self.highlighted = pd.DataFrame(columns=["pfn", "mfn", "mfn_run"])
            self.contiguity = {}
            return
        pfns = _pfns(self._hl, len(self.p2m))
        bad = pfns[(pfns < 0) | (pfns >= len(self.p2m))]
        if bad.size:
            raise ValueError(f"PFN {int(bad[0]):#x} is outside this P2M "
                             f"(0..{len(self.p2m) - 1:#x})")
        mfns = self.p2m[pfns]
        # a new machine run starts wherever the next frame is not the next MFN
        new = np.ones(len(pfns), dtype=bool)
        new[1:] = (mfns[1:] != mfns[:-1] + 1) | (mfns[1:] < 0)
        self.highlighted = pd.DataFrame({"pfn": pfns, "mfn": mfns,
                                         "mfn_run": np.cumsum(new) - 1})
        self.contiguity = {
            "label": self._hl_label, "frames": int(len(pfns)),
            "pfn_runs": int(len(runs(pfns))) if len(pfns) else 0,
            "mfn_runs": int(new.sum()),
            "unmapped": int((mfns < 0).sum()),
            "machine_contiguous": bool(len(pfns) and new.sum() == 1 and (mfns >= 0).all()),
        }

    @property
    def window(self):
        n = len(self.p2m)
        return self._window or (0, max(n - 1, 0))

    def zoom(self, first=None, last=None):
        """Show PFNs first..last (inclusive); ``zoom()`` shows all."""
        if first is None and last is None:
            self._window = None
        else:
            first = 0 if first is None else hexint(first)
            last = len(self.p2m) - 1 if last is None else hexint(last)
            if last < first:
                raise ValueError(f"PFN window {first:#x}..{last:#x} is empty")
            self._window = (first, last)
        if self.source is not None:
            self._render()
        return self

    # -- drawing ------------------------------------------------------------------------
    def _clear(self):
        self.title_html.value = self.summary.value = self.highlight_html.value = ""
        self.pane.draw(lambda fig: None)

    def _render(self):
        n = len(self.p2m)
        valid = int((self.p2m >= 0).sum())
        self.title_html.value = (f"<b>{html.escape(str(getattr(self.source, 'name', 'P2M')))}"
                                 f"</b> &nbsp; {n} PFNs, {valid} with a frame, "
                                 f"{len(self.frame)} contiguous run(s)")
        self.pane.draw(self._plot)
        self.summary.value = self._summary()
        self.highlight_html.value = self._highlight_table()

    def _draw_on(self, ax):
        first, last = self.window
        f = self.frame
        sel = f[(f["pfn"] + f["count"] > first) & (f["pfn"] <= last)]
        if len(sel) <= MAX_SEGMENTS:
            from matplotlib.collections import LineCollection
            p0 = np.maximum(sel["pfn"].to_numpy(), first)
            off = p0 - sel["pfn"].to_numpy()
            p1 = np.minimum(sel["pfn"].to_numpy() + sel["count"].to_numpy(), last + 1)
            m0 = sel["mfn"].to_numpy() + off
            segs = np.stack([np.stack([p0, m0], 1), np.stack([p1, m0 + (p1 - p0)], 1)], 1)
            ax.add_collection(LineCollection(segs.astype(np.float64), colors="#1e88e5",
                                             linewidths=2))
            if len(sel) <= 500:
                ax.plot(p0, m0, ".", color="#1e88e5", markersize=3)
            self.drawn = f"{len(sel)} runs"
        else:
            idx = np.linspace(first, last, min(SAMPLE, last - first + 1)).astype(np.int64)
            m = self.p2m[idx]
            ok = m >= 0
            ax.hist2d(idx[ok], m[ok], bins=300, cmin=1, cmap="Blues")
            self.drawn = f"density of {int(ok.sum())} sampled frames ({len(sel)} runs)"
        hl = self.highlighted
        if len(hl):
            h = hl[(hl["pfn"] >= first) & (hl["pfn"] <= last) & (hl["mfn"] >= 0)]
            if len(h) <= HIGHLIGHT_POINTS:
                ax.plot(h["pfn"], h["mfn"], "o", color="#e53935", markersize=4,
                        label=self._hl_label)
            else:
                r = p2m_runs(np.where(np.isin(np.arange(len(self.p2m)), h["pfn"]),
                                      self.p2m, -1))
                for row in r.itertuples():
                    ax.plot([row.pfn, row.pfn + row.count], [row.mfn, row.mfn + row.count],
                            color="#e53935", linewidth=3)
                ax.plot([], [], color="#e53935", label=self._hl_label)
            ax.legend(loc="upper left", fontsize="small")
        valid = self.p2m[first:last + 1]
        valid = valid[valid >= 0]
        ax.set_xlim(first - 0.5, last + 0.5)
        if valid.size:
            ax.set_ylim(valid.min() - 0.5, valid.max() + 1.5)
        ax.set_xlabel("pseudo-physical frame number (PFN)")
        ax.set_ylabel("machine frame number (MFN)")
        ax.set_title(f"P2M: {self.drawn}", fontsize="small")

    def _summary(self) -> str:
        c = self.contiguity
        if not c:
            return "<i>type a buffer (first PFN, count) to see where its frames are</i>"
        verdict = ('<b style="color:#1b5e20">machine-contiguous</b>' if c["machine_contiguous"]
                   else '<b style="color:#b00020">not machine-contiguous</b>: a device '
                   "doing DMA from its first MFN runs into other frames")
        return (f"{html.escape(c['label'])}: {c['frames']} frames in {c['pfn_runs']} PFN "
                f"run(s), {c['mfn_runs']} MFN run(s)"
                + (f", {c['unmapped']} without a frame" if c["unmapped"] else "")
                + f" &mdash; {verdict}")

    def _highlight_table(self) -> str:
        h = self.highlighted
        if not len(h):
            return ""
        rows = "".join(f"<tr><td><code>{r.pfn:#x}</code></td><td><code>"
                       f"{r.mfn:#x}</code></td><td>{r.mfn_run}</td></tr>"
                       for r in h.head(32).itertuples())
        more = f"<i>{len(h) - 32} more: see .highlighted</i>" if len(h) > 32 else ""
        return ("<table><tr><th>PFN</th><th>MFN</th><th>machine run</th></tr>"
                f"{rows}</table>{more}")

    # -- callbacks ------------------------------------------------------------------
    def _on_buffer(self, change):
        text = change["new"].strip()
        if not text:
            self._safely(lambda: self.highlight(None))
            return
        parts = [p for p in text.replace(" ", ",").split(",") if p]
        if len(parts) != 2:
            self.say(f"buffer {text!r}: type the first PFN and a count, e.g. 0x100,16",
                     error=True)
            return
        count = parts[1]       # a count reads as decimal unless it says 0x
        n = int(count, 16) if count.lower().startswith("0x") else int(count) \
            if count.isdigit() else None
        if n is None:
            self.say(f"count {count!r} is not a number", error=True)
            return
        self._safely(lambda: self.highlight((parts[0], n)))

    def _on_window(self, change):
        text = change["new"].strip()
        if not text:
            self._safely(self.zoom)
            return
        parts = [p for p in text.replace(" ", ",").split(",") if p]
        if len(parts) != 2:
            self.say(f"PFNs {text!r}: type first,last, e.g. 0,0x3ff", error=True)
            return
        self._safely(lambda: self.zoom(parts[0], parts[1]))
