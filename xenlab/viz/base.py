"""What every view shares: a source, a ``.frame``, a refresh button, CSS hooks.

A view reads the model through a small *source* object (each view documents
its protocol).  The view may be given the source itself or a zero-argument
callable that returns one; a callable is called again at every
:meth:`View.refresh`, so a view follows a lab Stage that builds a new machine
at each boot.  A callable may return ``None``: the model has nothing to show
yet (no machine booted), and the view says so instead of failing.

Every widget of a view carries stable CSS classes, ``xenlab-<view>`` on the
root and ``xenlab-<view>-<part>`` on the parts, so browser tests and
notebook styles find them without counting widgets.
"""

from __future__ import annotations

import html
import weakref

import ipywidgets as widgets
import pandas as pd

_LIVE: "weakref.WeakSet[View]" = weakref.WeakSet()


class View:
    """Base of the xenlab views: ``.frame``, ``.widget``, ``refresh()``.

    Subclasses set ``css`` (the class prefix), ``required`` (method names a
    source must have) and ``columns`` (of an empty ``.frame``), and implement
    ``_load()`` (read the source into frames) and ``_render()`` (update the
    widgets from the frames).
    """

    css = "xenlab-view"
    required: tuple[str, ...] = ()
    columns: tuple[str, ...] = ()
    title = "view"

    def __init__(self, source):
        self._source_arg = source
        self.source = None
        self.frame = self._empty()
        self.status = self._cls(widgets.HTML(), "status")
        self.refresh_button = self._cls(
            widgets.Button(description="refresh", icon="refresh",
                           tooltip="read the model again", layout={"width": "auto"}),
            "refresh")
        self.refresh_button.on_click(self._on_refresh_click)
        self.widget = self._build()
        self.widget.add_class(self.css)
        self.widget.add_class("xenlab-view")
        _LIVE.add(self)

    # -- building blocks -----------------------------------------------------
    def _cls(self, w, part: str):
        """Tag widget ``w`` with the CSS class ``<css>-<part>`` and return it."""
        w.add_class(f"{self.css}-{part}")
        return w

    def _empty(self) -> pd.DataFrame:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in self.columns})

    def _build(self):
        """The view's root widget (subclasses put their parts around the button)."""
        return widgets.VBox([self.header(), self.status])

    def header(self, *extra):
        return widgets.HBox([self.refresh_button, *extra])

    # -- the model -------------------------------------------------------------
    def _resolve(self):
        """The current source: the object given, or what the factory returns now."""
        arg = self._source_arg
        if callable(arg) and not self._is_source(arg):
            return arg()
        return arg

    def _is_source(self, obj) -> bool:
        return all(hasattr(obj, name) for name in self.required)

    def refresh(self):
        """Read the model again and redraw.  Returns the view (for chaining)."""
        src = self._resolve()
        if src is not None and not self._is_source(src):
            missing = [n for n in self.required if not hasattr(src, n)]
            raise TypeError(f"{type(self).__name__}: {src!r} is not a {self.title} source "
                            f"(missing {', '.join(missing)}); see docs/viz.md")
        self.source = src
        if src is None:
            self.frame = self._empty()
            self._clear()
            self.say("nothing to show yet: the model has no "
                     f"{self.title} (boot the stage first)")
            return self
        self._load()
        self.say("")
        self._render()
        return self

    def follow(self, stage):
        """Refresh after every boot of ``stage``: registers with
        ``stage.on_boot(callback)`` (a lab Stage calls its callbacks with no
        arguments after each boot).  Errors show in the view.  Returns the view."""
        hook = getattr(stage, "on_boot", None)
        if hook is None:
            raise TypeError(f"{stage!r} has no on_boot(callback): cannot follow its boots")
        ref = weakref.ref(self)

        def after_boot(*_args):
            view = ref()
            if view is not None:
                view._on_refresh_click(None)
        hook(after_boot)
        return self

    def _on_refresh_click(self, _button):
        try:
            self.refresh()
        except Exception as e:          # shown in the view, not lost in a log
            self.say(f"could not read the model: {type(e).__name__}: {e}", error=True)

    def _load(self):
        raise NotImplementedError

    def _render(self):
        raise NotImplementedError

    def _clear(self):
        """Show an empty view (source is None)."""

    def say(self, text: str, *, error: bool = False):
        """A one-line status under the header (red for errors)."""
        if not text:
            self.status.value = ""
            return
        color = "#b00020" if error else "#555"
        self.status.value = f'<span style="color:{color}">{html.escape(text)}</span>'

    def _safely(self, fn, *args):
        """Run a widget callback; an error goes to the status line, not to a
        traceback the student never sees (callbacks run outside the cell)."""
        try:
            self.say("")
            fn(*args)
        except Exception as e:
            self.say(f"{type(e).__name__}: {e}", error=True)

    # -- display -----------------------------------------------------------------
    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)

    def __repr__(self):
        return f"<{type(self).__name__}: {len(self.frame)} rows>"


def refresh_all(errors: str = "show") -> list[tuple[View, Exception]]:
    """Refresh every live view (what a lab Stage calls after a boot).

    A view whose refresh fails shows the error in itself; the failures are
    returned.  ``errors="raise"`` raises the first one instead.
    """
    failed = []
    for view in list(_LIVE):
        try:
            view.refresh()
        except Exception as e:
            if errors == "raise":
                raise
            view.say(f"could not read the model: {type(e).__name__}: {e}", error=True)
            failed.append((view, e))
    return failed


def hexint(text) -> int:
    """An address typed as kmdb takes it: hex by default ('0x1f', '1f',
    'ffff_8000_0000_0000'), decimal with mdb's '0t' prefix ('0t4096'), or an int.

    Raises ValueError naming the text when it is not a number.
    """
    if isinstance(text, int):
        return text
    s = str(text).strip().lower().replace("_", "").replace("`", "")
    if not s:
        raise ValueError("empty address: type a number like 0xffff800000001000")
    try:
        if s.startswith("0t"):
            return int(s[2:], 10)
        return int(s[2:] if s.startswith("0x") else s, 16)
    except ValueError:
        raise ValueError(f"{text!r} is not an address (hex like 0xffff800000001000, "
                         "or decimal with 0t, like 0t4096)") from None


def fmt_size(n: int) -> str:
    """Bytes as 4K / 2M / 1.5G / 64G."""
    for unit, shift in (("T", 40), ("G", 30), ("M", 20), ("K", 10)):
        if n >= 1 << shift:
            v = n / (1 << shift)
            return f"{v:.3g}{unit}" if v != int(v) else f"{int(v)}{unit}"
    return f"{n}"


class PlottedView(View):
    """A view with a matplotlib drawing: subclasses implement ``_draw_on(ax)``
    and set ``figsize``; the widget's pane and :meth:`plot` share that code."""

    figsize = (10, 4)

    def plot(self, ax=None):
        """Draw onto ``ax`` (a new figure if None) and return the Axes."""
        if ax is None:
            from matplotlib.figure import Figure
            ax = Figure(figsize=self.figsize).add_subplot()
        self._draw_on(ax)
        return ax

    def _plot(self, fig):
        self._draw_on(fig.add_subplot())
        fig.tight_layout()

    def _draw_on(self, ax):
        raise NotImplementedError
