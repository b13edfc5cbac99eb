"""The PTE bit decoder: a live 64-bit entry as clickable bits.

Source protocol (:class:`PteSource`; docs/viz.md has the full contract)::

    read(entry_maddr) -> int                 the entry as stored now
    write(entry_maddr, value) -> int | Verdict
                                             0 if the write happened, or a
                                             negative errno (Xen's way of
                                             saying no), or a Verdict
    probe(va) -> DataFrame                   optional: what each kind of
                                             access to ``va`` does now
                                             (see :func:`probe_translation`)
    invlpg(va)                               optional: flush ``va`` from the TLB

For the bare machine the write goes straight to machine memory and the probe
walks the tables (and looks in the vCPU's TLB, so a stale translation shows);
for a PV guest the write is an ``mmu_update`` hypercall and ``write`` returns
Xen's return value, so that adapter is a few lines.
"""

from __future__ import annotations

import errno
import html
from dataclasses import dataclass
from typing import Protocol

import ipywidgets as widgets
import pandas as pd

from ..machine import regs as R
from ..machine.mmu import ACC_FETCH, ACC_READ, ACC_USER, ACC_WRITE, tlb_lookup, walk
from ..machine.pte import (ADDR_MASK_52, PTE_A, PTE_AVL0, PTE_AVL1, PTE_AVL2, PTE_D,
                           PTE_G, PTE_NX, PTE_P, PTE_PCD, PTE_PS, PTE_PWT, PTE_RW,
                           PTE_US, decode_pf_error, s64, u64)
from .base import View, hexint

# (bit, name in a PTE, name above level 1, meaning) -- Intel SDM Vol. 3 §4.5,
# Tables 4-14 to 4-20.
BITS = (
    (63, "NX", "NX", "execute-disable (honoured when IA32_EFER.NXE = 1)"),
    (11, "AVL11", "AVL11", "ignored by the hardware: free for software"),
    (10, "AVL10", "AVL10", "ignored by the hardware: free for software"),
    (9, "AVL9", "AVL9", "ignored by the hardware: free for software"),
    (8, "G", "G", "global: survives MOV CR3 when CR4.PGE = 1 (leaf only)"),
    (7, "PAT", "PS", "PTE: PAT memory type bit; PDE/PDPTE: maps a large page"),
    (6, "D", "D", "dirty: set by the CPU on the first write (leaf only)"),
    (5, "A", "A", "accessed: set by the CPU when a walk uses the entry"),
    (4, "PCD", "PCD", "cache disable"),
    (3, "PWT", "PWT", "write-through"),
    (2, "US", "US", "user: CPL 3 may access (must be set at every level)"),
    (1, "RW", "RW", "writable (must be set at every level)"),
    (0, "P", "P", "present: clear, and every other bit is the OS's"),
)
_BIT_VALUE = {63: PTE_NX, 11: PTE_AVL2, 10: PTE_AVL1, 9: PTE_AVL0, 8: PTE_G, 7: PTE_PS,
              6: PTE_D, 5: PTE_A, 4: PTE_PCD, 3: PTE_PWT, 2: PTE_US, 1: PTE_RW, 0: PTE_P}

ACCESS_KINDS = (("read", ACC_READ), ("write", ACC_WRITE), ("fetch", ACC_FETCH),
                ("user read", ACC_USER | ACC_READ), ("user write", ACC_USER | ACC_WRITE),
                ("user fetch", ACC_USER | ACC_FETCH))
PROBE_COLUMNS = ("access", "maddr", "fault", "error_code", "tlb_maddr", "stale")


class PteSource(Protocol):
    def read(self, entry_maddr: int) -> int: ...
    def write(self, entry_maddr: int, value: int): ...


@dataclass
class Verdict:
    """What became of a write: ``rc`` 0 (done) or a negative errno, and why."""

    rc: int = 0
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.rc == 0

    @classmethod
    def of(cls, result) -> "Verdict":
        """A Verdict from what a source's ``write`` returned (int, None or Verdict)."""
        if isinstance(result, Verdict):
            return result
        if result is None:
            return cls(0)
        return cls(int(result))

    @property
    def errno_name(self) -> str:
        # Xen's public errno.h uses the Linux x86 numbers (xen/include/public/errno.h)
        return errno.errorcode.get(-self.rc, f"errno {-self.rc}") if self.rc < 0 else ""

    def __str__(self):
        if self.ok:
            return "accepted" + (f": {self.message}" if self.message else "")
        return f"refused, -{self.errno_name} ({self.rc})" + (
            f": {self.message}" if self.message else "")


def probe_translation(memory, va: int, *, cr3: int | None = None, state=None, tlb=None,
                      mode: int = 4) -> pd.DataFrame:
    """What each access kind to ``va`` does now, with no side effects.

    The walk is :func:`xenlab.machine.mmu.walk` with the access-rights checks
    of the vCPU ``state`` (CR0.WP, CR4.SMEP, EFER.NXE; without a state: a
    4-level walk from ``cr3``, WP off).  With ``tlb`` (an Mmu's TLB) the TLB is
    looked at too, and a hit that disagrees with the walk is *stale*: the CPU
    keeps using it until a MOV CR3 or INVLPG.

    Columns: access, maddr (walk result or NA), fault ("" / "#PF" / "#GP"),
    error_code (NA if none), tlb_maddr (NA on a miss), stale.
    """
    if state is None and cr3 is None:
        raise ValueError("probe_translation needs cr3= or a vCPU state=")
    rows = []
    sva = s64(va)
    for name, acc in ACCESS_KINDS:
        if state is not None:
            w = walk(memory, int(state[R.CR3]), va, state=state, access=acc, check=True)
        else:
            w = walk(memory, cr3, va, mode=mode, access=acc, check=True)
        hit = int(tlb_lookup(tlb, sva, acc)) if tlb is not None else -1
        maddr = w.maddr if w.ok else None
        rows.append({
            "access": name, "maddr": maddr,
            "fault": "" if w.ok else ("#PF" if w.fault.vector == 14 else f"#{w.fault.vector}"),
            "error_code": None if w.ok else w.fault.code,
            "tlb_maddr": hit if hit >= 0 else None,
            "stale": hit >= 0 and hit != maddr,
        })
    df = pd.DataFrame(rows, columns=list(PROBE_COLUMNS))
    for c in ("maddr", "error_code", "tlb_maddr"):
        df[c] = df[c].astype("Int64")
    return df


class PteDecoder(View):
    """One live paging-structure entry as bits you can click.

    ``.frame``: one row per field (bits, name, value, meaning).  ``.outcome``:
    the source's probe of ``va`` after the last read/write.  ``.verdict``: what
    the last write got.  ``.history``: every write (entry, old, new, rc).
    """

    css = "xenlab-ptedecoder"
    required = ("read", "write")
    columns = ("bits", "name", "value", "meaning")
    title = "entry"

    def __init__(self, source, entry_maddr: int | None = None, *, level: int = 1,
                 va: int | None = None, on_write=None):
        self.entry_maddr = None if entry_maddr is None else hexint(entry_maddr)
        self.level = level
        self.va = None if va is None else u64(hexint(va))
        self.value = None
        self.verdict: Verdict | None = None
        self.outcome = pd.DataFrame(columns=list(PROBE_COLUMNS))
        self.history: list[dict] = []
        self._on_write = on_write
        self._guard = False
        super().__init__(source)
        self.refresh()

    # -- widgets ---------------------------------------------------------------
    def _build(self):
        c = self._cls
        self.entry_html = c(widgets.HTML(), "entry")
        self.bit_buttons = {}
        for bit, name, _, meaning in BITS:
            b = widgets.ToggleButton(description=name, tooltip=f"bit {bit}: {meaning}",
                                     layout={"width": "4.2em", "padding": "0"})
            b.add_class("xenlab-ptedecoder-bit")
            b.add_class(f"xenlab-ptedecoder-bit-{bit}")
            b.observe(self._on_bit(bit), names="value")
            self.bit_buttons[bit] = b
        self.addr_text = c(widgets.Text(description="frame", continuous_update=False,
                                        tooltip="bits 51:12: the frame number",
                                        layout={"width": "14em"},
                                        style={"description_width": "4em"}), "addr")
        self.addr_text.observe(self._on_addr, names="value")
        self.raw_text = c(widgets.Text(description="raw", continuous_update=False,
                                       layout={"width": "16em"},
                                       style={"description_width": "3em"}), "raw")
        self.raw_text.observe(self._on_raw, names="value")
        self.verdict_html = c(widgets.HTML(), "verdict")
        self.outcome_html = c(widgets.HTML(), "outcome")
        self.invlpg_button = c(widgets.Button(description="INVLPG", tooltip="flush this VA "
                                              "from the TLB", layout={"width": "auto"}),
                               "invlpg")
        self.invlpg_button.on_click(lambda _: self._safely(self.invlpg))
        hi = [self.bit_buttons[63], self.addr_text]
        lo = [self.bit_buttons[b] for b in (11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0)]
        return widgets.VBox([
            self.header(self.entry_html), self.status,
            widgets.HBox(hi + [self.raw_text]), widgets.HBox(lo),
            self.verdict_html, widgets.HBox([self.invlpg_button]), self.outcome_html])

    # -- public API ---------------------------------------------------------------
    def target(self, entry_maddr: int, level: int = 1, va: int | None = None):
        """Point the decoder at another entry (and the VA whose walk uses it)."""
        entry_maddr = hexint(entry_maddr)
        if entry_maddr != self.entry_maddr:
            self.verdict = None          # a verdict belongs to the entry it was about
        self.entry_maddr = entry_maddr
        self.level = level
        self.va = None if va is None else u64(hexint(va))
        return self.refresh()

    def rebind(self, source):
        """Use another source object (the explorer's, after a reboot)."""
        self._source_arg = source
        self.source = source

    def write(self, value: int) -> Verdict:
        """Write ``value`` through the source; read back; probe; return the verdict."""
        if self.entry_maddr is None:
            raise ValueError("the decoder has no entry: call target(entry_maddr) first")
        old = self.value
        value = u64(value)
        try:
            v = Verdict.of(self.source.write(self.entry_maddr, value))
        except Exception as e:       # a model error is a verdict too, in words
            v = Verdict(-errno.EINVAL, f"{type(e).__name__}: {e}")
        self.verdict = v
        self.history.append({"entry_maddr": self.entry_maddr, "old": old, "new": value,
                             "rc": v.rc, "stored": None})
        self._load()
        self.history[-1]["stored"] = self.value
        self._render()
        if self._on_write is not None:
            self._on_write()
        return v

    def toggle(self, bit: int) -> Verdict:
        """Flip one bit (0-11 or 63) of the entry."""
        if bit not in _BIT_VALUE:
            raise ValueError(f"bit {bit}: the decoder flips bits 0-11 and 63; "
                             "set the frame with set_frame()")
        return self.write(u64(self.value ^ u64(_BIT_VALUE[bit])))

    def set_frame(self, mfn: int) -> Verdict:
        """Point the entry at frame ``mfn`` (bits 51:12), keeping the other bits."""
        mfn = hexint(mfn)
        if mfn < 0 or mfn >= 1 << 40:
            raise ValueError(f"frame {mfn:#x}: a frame number has at most 40 bits")
        return self.write((self.value & ~ADDR_MASK_52) | (mfn << 12))

    def invlpg(self):
        """Flush the VA from the TLB (when the source has a TLB)."""
        fn = getattr(self.source, "invlpg", None)
        if fn is None or self.va is None:
            raise ValueError("this source has no TLB to flush")
        fn(self.va)
        self._load()
        self._render()

    # -- model ------------------------------------------------------------------------
    def _load(self):
        if self.entry_maddr is None:
            self.value = None
            self.frame = self._empty()
            return
        self.value = u64(int(self.source.read(self.entry_maddr)))
        self.frame = self.fields(self.value, self.level)
        probe = getattr(self.source, "probe", None)
        if probe is not None and self.va is not None:
            self.outcome = probe(self.va)
        else:
            self.outcome = pd.DataFrame(columns=list(PROBE_COLUMNS))

    @staticmethod
    def fields(value: int, level: int = 1) -> pd.DataFrame:
        """The entry split into its fields (a row per bit, one for the address)."""
        rows = []
        for bit, leaf_name, upper_name, meaning in BITS:
            name = leaf_name if level == 1 else upper_name
            rows.append({"bits": str(bit), "name": name, "value": (value >> bit) & 1,
                         "meaning": meaning})
            if bit == 63:
                rows.append({"bits": "62:52", "name": "ignored",
                             "value": (value >> 52) & 0x7FF,
                             "meaning": "ignored by the hardware (62:59 are protection "
                                        "keys when CR4.PKE = 1)"})
                rows.append({"bits": "51:12", "name": "frame", "value": (value >> 12)
                             & ((1 << 40) - 1), "meaning": "frame number of the next "
                             "table or of the page"})
        return pd.DataFrame(rows, columns=["bits", "name", "value", "meaning"])

    # -- drawing --------------------------------------------------------------------------
    def _clear(self):
        self.entry_html.value = ""
        self.verdict_html.value = ""
        self.outcome_html.value = ""

    def _render(self):
        if self.value is None:
            self.entry_html.value = "<i>no entry selected</i>"
            return
        names = {4: "PML4E", 3: "PDPTE", 2: "PDE", 1: "PTE"}
        va = "" if self.va is None else f", on the walk of VA <code>{self.va:#x}</code>"
        self.entry_html.value = (f"<b>{names.get(self.level, 'entry')}</b> at machine address "
                                 f"<code>{self.entry_maddr:#x}</code>{va}")
        self._guard = True
        try:
            for bit, b in self.bit_buttons.items():
                b.value = bool((self.value >> bit) & 1)
                b.description = BITS[[x[0] for x in BITS].index(bit)][1 if self.level == 1
                                                                       else 2]
                b.button_style = "info" if b.value else ""
            self.addr_text.value = f"{(self.value >> 12) & ((1 << 40) - 1):#x}"
            self.raw_text.value = f"{self.value:#018x}"
        finally:
            self._guard = False
        self.verdict_html.value = self._verdict_text()
        self.outcome_html.value = self._outcome_html()
        self.invlpg_button.layout.display = (
            None if getattr(self.source, "invlpg", None) and self.va is not None else "none")

    def _verdict_text(self) -> str:
        v = self.verdict
        if v is None:
            return ""
        color = "#1b5e20" if v.ok else "#b00020"
        return (f'<span style="color:{color}">write {html.escape(str(v))}; the entry now '
                f"reads <code>{self.value:#018x}</code></span>")

    def _outcome_html(self) -> str:
        o = self.outcome
        if self.va is None or not len(o):
            return ""
        rows = []
        for r in o.itertuples(index=False):
            if r.fault:
                walk_txt = (f'<span style="color:#b00020">{r.fault} error code '
                            f"{int(r.error_code):#x} ({decode_pf_error(int(r.error_code))})"
                            "</span>")
            else:
                walk_txt = f"&rarr; <code>{int(r.maddr):#x}</code>"
            if pd.isna(r.tlb_maddr):
                tlb_txt = "miss (the next access walks)"
            else:
                tlb_txt = f"hit &rarr; <code>{int(r.tlb_maddr):#x}</code>"
            if r.stale:
                tlb_txt += (' <b style="color:#e65100">STALE: the CPU still uses this until '
                            "INVLPG or MOV CR3</b>")
            rows.append(f"<tr><td>{r.access}</td><td>{walk_txt}</td><td>{tlb_txt}</td></tr>")
        return ('<table class="xenlab-ptedecoder-outcome-table"><tr><th>access</th>'
                "<th>page walk says</th><th>TLB</th></tr>" + "".join(rows) + "</table>")

    # -- callbacks --------------------------------------------------------------------------
    def _safely(self, fn, *args):
        try:
            self.say("")
            return fn(*args)
        except Exception as e:
            self.say(f"{type(e).__name__}: {e}", error=True)
            self._render()

    def _on_bit(self, bit):
        def handler(change):
            if self._guard or self.value is None:
                return
            self._safely(self.toggle, bit)
        return handler

    def _on_addr(self, change):
        if self._guard or self.value is None:
            return
        self._safely(self.set_frame, change["new"])

    def _on_raw(self, change):
        if self._guard or self.value is None:
            return
        self._safely(lambda: self.write(hexint(change["new"])))
