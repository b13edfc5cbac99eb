"""A matplotlib figure inside a view: a PNG image, or an ipympl canvas.

The PNG form works everywhere (a headless run, nbconvert, the grader) and
never touches pyplot's global state; ``interactive=True`` gives an ipympl
canvas with pan and zoom when ipympl is installed (``pip install xenlab[lab]``).
"""

from __future__ import annotations

import io

import ipywidgets as widgets
from matplotlib.figure import Figure


class FigurePane:
    """Owns one Figure; ``draw(fn)`` clears it, calls ``fn(fig)`` and shows it."""

    def __init__(self, size=(9, 3), *, interactive: bool = False, dpi: int = 90):
        self.interactive = False
        self.fig = None
        if interactive:
            try:
                from ipympl.backend_nbagg import new_figure_manager_given_figure
                self.fig = Figure(figsize=size, dpi=dpi)
                self._manager = new_figure_manager_given_figure(id(self), self.fig)
                self.widget = self._manager.canvas
                self.widget.header_visible = False
                self.interactive = True
            except ImportError:
                self.fig = None
        if self.fig is None:
            from matplotlib.backends.backend_agg import FigureCanvasAgg
            self.fig = Figure(figsize=size, dpi=dpi)
            FigureCanvasAgg(self.fig)
            self.widget = widgets.Image(format="png", layout={"max_width": "100%"})

    def draw(self, fn):
        self.fig.clear()
        fn(self.fig)
        if self.interactive:
            self.widget.draw_idle()
        else:
            buf = io.BytesIO()
            self.fig.savefig(buf, format="png")
            self.widget.value = buf.getvalue()

    def png(self) -> bytes:
        """The current figure as PNG bytes (for tests and saving)."""
        buf = io.BytesIO()
        self.fig.savefig(buf, format="png")
        return buf.getvalue()
