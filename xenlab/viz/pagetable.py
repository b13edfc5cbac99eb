"""The page-table explorer: pick a virtual address, see its walk level by level.

Source protocol (:class:`PageTableSource`; docs/viz.md has the full contract)::

    name: str          shown in the header, e.g. "dom0 vcpu0"
    mode: int          4 (4-level paging) or 3 (PAE)
    root: int          machine address of the top table (PML4; PAE: the PDPT)
    walk(va) -> xenlab.machine.mmu.Walk      the one walker, never another
    read_tables(maddrs) -> int64[n, 512]     raw entries of whole tables
    mfn_to_pfn(mfn) -> int | None            optional (PV guests)
    pfn_to_mfn(pfn) -> int | None            optional (PV guests)

Walks always come from :func:`xenlab.machine.mmu.walk` (through the source),
so the explorer cannot show a walk the CPU would not do.  Listing tables and
finding mapped ranges only *read* entries: whole tables at a time, level by
level, so even a 64 GiB direct map costs a few vectorised passes.
"""

from __future__ import annotations

import html
from typing import Protocol

import ipywidgets as widgets
import numpy as np
import pandas as pd

from ..machine.pte import (PF_RSVD, PTE_P, PTE_PS, VEC_PF, decode_flags,
                           decode_pf_error, s64, u64)
from .base import View, fmt_size, hexint

ADDR_52 = ((1 << 52) - 1) & ~0xFFF
LEVEL_NAMES = {4: "PML4E", 3: "PDPTE", 2: "PDE", 1: "PTE"}
TABLE_NAMES = {4: "PML4", 3: "PDPT", 2: "PD", 1: "PT"}
LEVEL_COLORS = {4: "#d9ecff", 3: "#e3f7e3", 2: "#fff2cc", 1: "#fde0e0", 0: "#eeeeee"}
CHUNK = 4096          # tables read per vectorised pass (4096 x 4 KiB = 16 MiB)


class PageTableSource(Protocol):
    name: str
    mode: int
    root: int

    def walk(self, va: int): ...
    def read_tables(self, maddrs) -> np.ndarray: ...


# --------------------------------------------------------------------------
# reading trees
# --------------------------------------------------------------------------

def _levels(mode: int):
    """(level, shift, first entry, entries) from the top; PAE's top is 4 PDPTEs."""
    if mode == 4:
        return [(4, 39, 512), (3, 30, 512), (2, 21, 512), (1, 12, 512)]
    if mode == 3:
        return [(3, 30, 4), (2, 21, 512), (1, 12, 512)]
    raise ValueError(f"mode={mode}: the explorer draws 4-level (4) or PAE (3) paging")


def _sign_extend48(va):
    va = np.asarray(va, dtype=np.int64)
    return np.where(va >= (1 << 47), va - (1 << 48), va)


def _addr_mask(source) -> int:
    bits = int(getattr(source, "maxphyaddr", 52))
    return ADDR_52 & ((1 << bits) - 1)


def _read_top(source, mode):
    """Entries of the top level: PML4 (512), or PAE's 4 PDPTEs at ``root``."""
    root = int(source.root)
    rows = source.read_tables(np.array([root & ~0xFFF], dtype=np.int64))
    if mode == 3:
        first = (root & 0xFFF) >> 3
        return rows[:, first:first + 4]
    return rows


def mapped_ranges(source) -> pd.DataFrame:
    """Virtual ranges mapped by present entries at every level, as runs.

    Columns: va_start, va_end (uint64, end exclusive), pages (4 KiB units),
    page_size (bytes of the leaf entries in the run).  Whether an access is
    allowed (rights, reserved bits) is the walk's business, not this list's.
    """
    mode = int(source.mode)
    levels = _levels(mode)
    mask = np.int64(_addr_mask(source))
    tables = None                              # maddrs of this level's tables
    bases = np.zeros(1, dtype=np.int64)        # VA of each table's first entry
    out_s, out_n, out_size = [], [], []
    for depth, (level, shift, n) in enumerate(levels):
        next_t, next_b = [], []
        if depth == 0:
            chunks = [(_read_top(source, mode), bases)]
        else:
            chunks = ((source.read_tables(tables[i:i + CHUNK]), bases[i:i + CHUNK])
                      for i in range(0, len(tables), CHUNK))
        for ent, base in chunks:
            ent = np.asarray(ent, dtype=np.int64)
            present = (ent & PTE_P) != 0
            large = present & ((ent & PTE_PS) != 0) if level in (2, 3) and not (
                mode == 3 and level == 3) else np.zeros_like(present)
            leaf = present if level == 1 else large
            if leaf.any():
                s, cnt = _row_runs(leaf)
                va = base[s[0]] + (s[1].astype(np.int64) << shift)
                out_s.append(va)
                out_n.append(cnt.astype(np.int64) << (shift - 12))
                out_size.append(np.full(len(va), 1 << shift, dtype=np.int64))
            inner = present & ~leaf if level > 1 else np.zeros_like(present)
            r, c = np.nonzero(inner)
            if r.size:
                next_t.append(ent[r, c] & mask)
                next_b.append(base[r] + (c.astype(np.int64) << shift))
        if not next_t:
            break
        tables = np.concatenate(next_t)
        bases = np.concatenate(next_b)
    if not out_s:
        z = np.zeros(0, dtype=np.uint64)
        return pd.DataFrame({"va_start": z, "va_end": z, "pages": z.astype(np.int64),
                             "page_size": z.astype(np.int64)})
    s = np.concatenate(out_s)
    pages = np.concatenate(out_n)
    size = np.concatenate(out_size)
    if mode == 4:
        s = _sign_extend48(s)
    us = s.astype(np.uint64)
    order = np.argsort(us, kind="stable")
    us, pages, size = us[order], pages[order], size[order]
    # merge runs that touch and have the same leaf size
    ends = us + (pages.astype(np.uint64) << np.uint64(12))
    new = np.ones(len(us), dtype=bool)
    new[1:] = (us[1:] != ends[:-1]) | (size[1:] != size[:-1])
    idx = np.flatnonzero(new)
    merged_pages = np.add.reduceat(pages, idx)
    start = us[idx]
    return pd.DataFrame({"va_start": start,
                         "va_end": start + (merged_pages.astype(np.uint64) << np.uint64(12)),
                         "pages": merged_pages, "page_size": size[idx]})


def _row_runs(mask2d):
    """Runs of True along each row: ((rows, first cols), lengths)."""
    pad = np.zeros((mask2d.shape[0], 1), dtype=np.int8)
    d = np.diff(np.hstack((pad, mask2d.astype(np.int8), pad)), axis=1)
    sr, sc = np.nonzero(d == 1)
    _, ec = np.nonzero(d == -1)
    return (sr, sc), ec - sc


def table_entries(source, table_maddr: int, level: int, va_base: int, *, entries=None):
    """Present entries of one table as a DataFrame.

    Columns: index, va (uint64 start of the range the entry maps), raw (uint64),
    flags, mfn (the frame it points to), pfn (when the source translates;
    -1 where the MFN is not the domain's), leaf, maps (bytes one entry maps).
    """
    mode = int(source.mode)
    shift = 12 + 9 * (level - 1)
    if entries is None:
        row = source.read_tables(np.array([table_maddr & ~0xFFF], dtype=np.int64))[0]
        if mode == 3 and level == 3:
            first = (table_maddr & 0xFFF) >> 3
            row = row[first:first + 4]
        entries = row
    ent = np.asarray(entries, dtype=np.int64)
    idx = np.flatnonzero(ent & PTE_P)
    raw = ent[idx]
    va = np.int64(s64(va_base)) + (idx.astype(np.int64) << shift)
    if mode == 4:
        va = _sign_extend48(va)
    mfn = (raw & np.int64(_addr_mask(source))) >> 12
    large_ok = level == 2 or (level == 3 and mode == 4)
    leaf = (level == 1) | (large_ok & ((raw & PTE_PS) != 0))
    df = pd.DataFrame({
        "index": idx.astype(np.int64), "va": va.astype(np.uint64),
        "raw": raw.astype(np.uint64),
        "flags": [" ".join(decode_flags(int(r), level)) for r in raw],
        "mfn": mfn, "leaf": leaf, "maps": np.int64(1) << shift,
    })
    m2p = getattr(source, "mfn_to_pfn", None)
    if m2p is not None:
        df["pfn"] = [_pfn(m2p, int(x)) for x in mfn]
    return df


def _pfn(m2p, mfn):
    try:
        p = m2p(mfn)
    except Exception:
        return -1
    return -1 if p is None else int(p)


# --------------------------------------------------------------------------
# the view
# --------------------------------------------------------------------------

class PageTableExplorer(View):
    """Pick a VA (hex text or a slider over mapped ranges); see its walk.

    ``.frame``: the walk, one row per level read (level, name, index,
    entry_maddr, raw, flags, mfn, pfn).  ``.walk``: the
    :class:`~xenlab.machine.mmu.Walk`.  ``.mapped``: mapped VA ranges.
    ``.table``: the entries listed for the selected level.  When the source
    can also ``write`` entries, ``.decoder`` is a :class:`PteDecoder` on the
    selected level's entry.
    """

    css = "xenlab-ptexplorer"
    required = ("walk", "read_tables", "mode", "root")
    columns = ("level", "name", "index", "entry_maddr", "raw", "flags", "mfn", "pfn")
    title = "page tables"
    PAGE_ROWS = 16

    def __init__(self, source, va=None, *, decoder: bool = True):
        self._va = None if va is None else u64(hexint(va))
        self._want_decoder = decoder
        self.walk = None
        self.mapped = pd.DataFrame()
        self.table = pd.DataFrame()
        self.decoder = None
        self._page = 0
        self._pinned = None          # the level the user chose to list, if any
        self._guard = False
        self._cum = np.zeros(1, dtype=np.int64)
        super().__init__(source)
        self.refresh()

    # -- widgets ---------------------------------------------------------------
    def _build(self):
        c = self._cls
        self.title_html = c(widgets.HTML(), "title")
        self.va_text = c(widgets.Text(description="VA", placeholder="0xffff800000001000",
                                      continuous_update=False,
                                      layout={"width": "22em"}), "va")
        self.va_text.observe(self._on_va_text, names="value")
        self.slider = c(widgets.IntSlider(min=0, max=0, description="mapped",
                                          continuous_update=False, readout=False,
                                          layout={"width": "30em"}), "va-slider")
        self.slider.observe(self._on_slider, names="value")
        self.slider_label = c(widgets.HTML(), "va-slider-label")
        self.fields_html = c(widgets.HTML(), "fields")
        self.walk_html = c(widgets.HTML(), "walk")
        self.result_html = c(widgets.HTML(), "result")
        self.level_buttons = c(widgets.ToggleButtons(options=[], description="list",
                                                     style={"button_width": "5em"}), "level")
        self.level_buttons.observe(self._on_level, names="value")
        self.table_select = c(widgets.Select(options=[], rows=self.PAGE_ROWS,
                                             layout={"width": "100%"}), "table")
        self.table_select.observe(self._on_pick_entry, names="value")
        self.prev_button = c(widgets.Button(description="◀", layout={"width": "3em"}),
                             "table-prev")
        self.next_button = c(widgets.Button(description="▶", layout={"width": "3em"}),
                             "table-next")
        self.prev_button.on_click(lambda _: self._turn(-1))
        self.next_button.on_click(lambda _: self._turn(+1))
        self.page_label = c(widgets.HTML(), "table-page")
        self.decoder_box = c(widgets.VBox(), "decoder")
        table_box = widgets.VBox([
            self.level_buttons,
            widgets.HBox([self.prev_button, self.next_button, self.page_label]),
            self.table_select])
        return widgets.VBox([
            self.header(self.title_html), self.status,
            widgets.HBox([self.va_text, self.slider, self.slider_label]),
            self.fields_html, self.walk_html, self.result_html, table_box,
            self.decoder_box])

    # -- model -------------------------------------------------------------------
    def _load(self):
        src = self.source
        self.mapped = mapped_ranges(src)
        pages = self.mapped["pages"].to_numpy(dtype=np.int64)
        self._cum = np.concatenate(([0], np.cumsum(pages)))
        if self._va is None:
            self._va = int(self.mapped["va_start"].iloc[0]) if len(self.mapped) else 0
        if self.decoder is None and self._want_decoder and hasattr(src, "write") \
                and hasattr(src, "read"):
            from .ptebits import PteDecoder
            self.decoder = PteDecoder(src, on_write=self._after_decoder_write)
            self.decoder_box.children = [self.decoder.widget]
        elif self.decoder is not None:
            self.decoder.rebind(src)
        self._walk_now()

    def _walk_now(self):
        src = self.source
        self.walk = src.walk(self._va)
        rows = []
        for s in self.walk.steps:
            rows.append({"level": s.level, "name": s.name, "index": s.index,
                         "entry_maddr": s.entry_maddr, "raw": u64(s.raw),
                         "flags": " ".join(s.flags), "mfn": s.frame,
                         "pfn": self._pfn_of(s.frame)})
        self.frame = pd.DataFrame(rows, columns=list(self.columns))

    def _pfn_of(self, mfn):
        m2p = getattr(self.source, "mfn_to_pfn", None)
        return None if m2p is None else _pfn(m2p, mfn)

    # -- public API --------------------------------------------------------------
    @property
    def va(self) -> int:
        return self._va

    @va.setter
    def va(self, value):
        self.show(value)

    def show(self, va):
        """Walk ``va`` (int or hex text) and redraw; returns the Walk."""
        self._va = u64(hexint(va))
        if self.source is None:
            self.refresh()
        else:
            self._walk_now()
            self._render()
        return self.walk

    def slider_va(self, position: int) -> int:
        """The VA at ``position`` 4 KiB pages into the mapped ranges."""
        if not len(self.mapped):
            raise ValueError("nothing is mapped: the slider has no range")
        i = int(np.searchsorted(self._cum, position, side="right")) - 1
        i = min(max(i, 0), len(self.mapped) - 1)
        off = position - int(self._cum[i])
        return int(self.mapped["va_start"].iloc[i]) + (off << 12)

    def _slider_position(self, va: int):
        if not len(self.mapped):
            return None
        starts = self.mapped["va_start"].to_numpy()
        i = int(np.searchsorted(starts, np.uint64(va), side="right")) - 1
        if i < 0 or va >= int(self.mapped["va_end"].iloc[i]):
            return None
        return int(self._cum[i]) + ((va - int(starts[i])) >> 12)

    # -- drawing -------------------------------------------------------------------
    def _clear(self):
        for w in (self.title_html, self.fields_html, self.walk_html, self.result_html,
                  self.page_label):
            w.value = ""
        self.table_select.options = []
        self.walk = None

    def _render(self):
        src = self.source
        self.title_html.value = (f"<b>{html.escape(str(getattr(src, 'name', 'page tables')))}"
                                 f"</b> &nbsp; root {int(src.root):#x}, "
                                 f"{'4-level' if int(src.mode) == 4 else 'PAE'} paging, "
                                 f"{len(self.mapped)} mapped range(s), "
                                 f"{fmt_size(int(self._cum[-1]) << 12)} mapped")
        self._guard = True
        try:
            self.va_text.value = f"{self._va:#018x}"
            pos = self._slider_position(self._va)
            total = int(self._cum[-1])
            self.slider.max = max(total - 1, 0)
            self.slider.disabled = total == 0
            if pos is not None:
                self.slider.value = pos
            self.slider_label.value = ("" if pos is not None else
                                       "<i>VA not in a mapped range</i>")
        finally:
            self._guard = False
        self.fields_html.value = self._fields_html()
        self.walk_html.value = self._walk_html()
        self.result_html.value = self._result_html()
        self._update_levels()

    def _fields_html(self) -> str:
        va, mode = self._va, int(self.source.mode)
        if mode == 4:
            parts = [("sign 63:48", va >> 48, 0), ("PML4 47:39", (va >> 39) & 511, 4),
                     ("PDPT 38:30", (va >> 30) & 511, 3), ("PD 29:21", (va >> 21) & 511, 2),
                     ("PT 20:12", (va >> 12) & 511, 1), ("offset 11:0", va & 0xFFF, 0)]
        else:
            parts = [("PDPTE 31:30", (va >> 30) & 3, 3), ("PD 29:21", (va >> 21) & 511, 2),
                     ("PT 20:12", (va >> 12) & 511, 1), ("offset 11:0", va & 0xFFF, 0)]
        cells = "".join(
            f'<td style="background:{LEVEL_COLORS[lv]};padding:2px 8px;text-align:center">'
            f'<small>{name}</small><br><code>{val:#x}</code></td>' for name, val, lv in parts)
        return f'<table class="xenlab-ptexplorer-fields-table"><tr>{cells}</tr></table>'

    def _walk_html(self) -> str:
        rows = []
        last = len(self.walk.steps) - 1
        for i, s in enumerate(self.walk.steps):
            raw = u64(s.raw)
            present = raw & PTE_P
            flags = " ".join(f'<span style="border:1px solid #999;border-radius:3px;'
                             f'padding:0 3px;margin-right:2px">{f}</span>' for f in s.flags)
            leaf = s.level == 1 or (s.level in (2, 3) and raw & PTE_PS and i == last)
            if not present:
                target = '<b style="color:#b00020">not present</b>'
            elif leaf:
                target = f"page frame {self._frame_text(s.frame)}"
            else:
                target = (f"{TABLE_NAMES.get(s.level - 1, 'table')} at "
                          f"{self._frame_text(s.frame)}")
            rows.append(
                f'<tr style="background:{LEVEL_COLORS[s.level]}">'
                f"<td><b>{s.name}</b></td><td>[{s.index}]</td>"
                f"<td><code>@{s.entry_maddr:#x}</code></td>"
                f"<td><code>{raw:#018x}</code></td><td>{flags}</td><td>&rarr; {target}</td></tr>")
        head = ("<tr><th>level</th><th>index</th><th>entry address</th><th>raw</th>"
                "<th>bits</th><th>points to</th></tr>")
        return f'<table class="xenlab-ptexplorer-walk-table">{head}{"".join(rows)}</table>'

    def _frame_text(self, mfn: int) -> str:
        text = f"mfn {mfn:#x}"
        pfn = self._pfn_of(mfn)
        if pfn is None:
            return text
        if pfn < 0:
            return text + ' <span style="color:#b00020">(not in the P2M)</span>'
        p2m = getattr(self.source, "pfn_to_mfn", None)
        back = None if p2m is None else p2m(pfn)
        if p2m is not None and back != mfn:
            return text + (f' <span style="color:#b00020">(M2P says pfn {pfn:#x}, whose '
                           f'P2M entry is {back if back is None else hex(back)})</span>')
        return text + f" (pfn {pfn:#x})"

    def _result_html(self) -> str:
        w = self.walk
        if w.ok:
            mfn = w.maddr >> 12
            return (f'<div class="xenlab-ptexplorer-ok">VA <code>{self._va:#x}</code> &rarr; '
                    f"machine address <code>{w.maddr:#x}</code> ({self._frame_text(mfn)}, "
                    f"{fmt_size(w.page_size)} page)</div>")
        f = w.fault
        if f.vector == VEC_PF:
            where = w.steps[-1].name if w.steps else "CR3"
            why = "a reserved bit is set" if f.code & PF_RSVD else "it is not present"
            text = (f"#PF, error code {f.code:#x} ({decode_pf_error(f.code)}): the walk "
                    f"stopped at the {where} because {why}")
        else:
            text = str(f)
        return (f'<div class="xenlab-ptexplorer-fault" style="color:#b00020">VA '
                f"<code>{self._va:#x}</code> &rarr; {html.escape(text)}</div>")

    # -- table listing -------------------------------------------------------------
    def _update_levels(self):
        """List the table the user picked (if this walk reads it), else the last one."""
        opts = [(TABLE_NAMES[s.level], s.level) for s in self.walk.steps]
        self._guard = True
        try:
            self.level_buttons.options = opts
            levels = [v for _, v in opts]
            if levels:
                self.level_buttons.value = (self._pinned if self._pinned in levels
                                            else levels[-1])
        finally:
            self._guard = False
        self._list_table()

    def _step(self, level):
        for s in self.walk.steps:
            if s.level == level:
                return s
        return None

    def list_table(self, level: int) -> pd.DataFrame:
        """Present entries of the level-``level`` table on the current walk."""
        self._pinned = level
        self.level_buttons.value = level
        return self.table

    def _list_table(self, keep_page: bool = False):
        level = self.level_buttons.value
        s = self._step(level) if level is not None else None
        if s is None:
            self.table = pd.DataFrame()
            self.table_select.options = []
            self.page_label.value = ""
            return
        mode = int(self.source.mode)
        shift = 12 + 9 * (level - 1)
        span_bits = shift + (2 if (mode == 3 and level == 3) else 9)
        va_base = self._va & ~((1 << span_bits) - 1) if span_bits < 64 else 0
        if mode == 4 and level == 4:
            va_base = 0
        table_maddr = s.entry_maddr & ~0xFFF if not (mode == 3 and level == 3) else \
            s.entry_maddr - 8 * s.index
        self.table = table_entries(self.source, table_maddr, level, va_base)
        pages = max(1, -(-len(self.table) // self.PAGE_ROWS))
        if keep_page:
            self._page = min(self._page, pages - 1)
        else:      # the page that holds the entry this walk used
            at = int(np.searchsorted(self.table["index"].to_numpy(), s.index))
            self._page = min(at // self.PAGE_ROWS, pages - 1)
        self._fill_page()

    def _fill_page(self):
        t = self.table
        pages = max(1, -(-len(t) // self.PAGE_ROWS))
        lo = self._page * self.PAGE_ROWS
        rows = t.iloc[lo:lo + self.PAGE_ROWS]
        has_pfn = "pfn" in t
        opts = []
        for r in rows.itertuples(index=False):
            pfn = f" pfn {r.pfn:#x}" if has_pfn and r.pfn >= 0 else ""
            opts.append((f"[{r.index:3}] va {int(r.va):#018x} = {int(r.raw):#018x} "
                         f"mfn {r.mfn:#x}{pfn} {r.flags}", int(r.index)))
        self._guard = True
        try:
            self.table_select.options = opts
            self.table_select.rows = max(2, min(self.PAGE_ROWS, len(opts)))
            s = self._step(self.level_buttons.value)
            self.table_select.value = s.index if s is not None and s.index in \
                [v for _, v in opts] else None
        finally:
            self._guard = False
        self.page_label.value = (f"{TABLE_NAMES[self.level_buttons.value]} "
                                 f"{len(t)} present entries, page {self._page + 1}/{pages}")
        self.prev_button.disabled = self._page == 0
        self.next_button.disabled = self._page >= pages - 1
        if self.decoder is not None:
            s = self._step(self.level_buttons.value)
            self.decoder.target(s.entry_maddr, s.level, self._va)

    def _turn(self, delta):
        pages = max(1, -(-len(self.table) // self.PAGE_ROWS))
        self._page = min(max(self._page + delta, 0), pages - 1)
        self._fill_page()

    # -- callbacks -------------------------------------------------------------------
    def _on_va_text(self, change):
        if self._guard or self.source is None:
            return
        self.say("")
        self._safely(self.show, change["new"])

    def _on_slider(self, change):
        if self._guard or self.source is None:
            return
        self._safely(lambda: self.show(self.slider_va(change["new"])))

    def _on_level(self, change):
        if self._guard or self.source is None:
            return
        self._pinned = change["new"]
        self._safely(self._list_table)

    def _on_pick_entry(self, change):
        if self._guard or change["new"] is None or self.source is None:
            return
        row = self.table[self.table["index"] == change["new"]]
        if len(row):
            level = self.level_buttons.value
            self._safely(self._pick, int(row["va"].iloc[0]), level)

    def _pick(self, va, level):
        self._pinned = level         # stay on the table the entry was picked from
        self.show(va)

    def _after_decoder_write(self):
        self._walk_now()
        self._render()
