"""Sources from plain data: a DataFrame, an array, or a callable returning one.

For explorers with their own data (a profile's E820 from a real boot log, a
P2M saved from a run) and for layers that already produce frames
(``m.irq_routing_frame()``): wrap the frame and hand it to a view.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def _now(x):
    return x() if callable(x) else x


class FrameRegions:
    """A memory-map source over a regions DataFrame (start, end, kind, label)."""

    def __init__(self, frame, name: str = "regions"):
        self._frame, self.name = frame, name

    def regions(self) -> pd.DataFrame:
        return pd.DataFrame(_now(self._frame))


class FrameRoutes:
    """An interrupt-routing source over a routes DataFrame (see RoutingView)."""

    def __init__(self, frame, name: str = "routes"):
        self._frame, self.name = frame, name

    def routes(self) -> pd.DataFrame:
        return pd.DataFrame(_now(self._frame))


class ArrayP2M:
    """A P2M source over an array indexed by PFN (value MFN, < 0 = none)."""

    def __init__(self, p2m, name: str = "P2M"):
        self._p2m, self.name = p2m, name

    def p2m(self) -> np.ndarray:
        return np.asarray(_now(self._p2m), dtype=np.int64)
