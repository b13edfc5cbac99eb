"""Benchmarks: each compares xenlab with a peer measured in the same run.

A benchmark module registers a function ``bench_<name>(quick: bool) -> list[Row]``
in :data:`BENCHES`.  ``xenlab bench NAME`` prints the rows as a table, or as
JSON with ``--json``.  Absolute numbers vary about 2x between hosts, so every
row that has a peer carries the ratio too; targets are stated, never asserted
by tests.
"""

from __future__ import annotations

import json
import platform
import time
from dataclasses import asdict, dataclass

# name -> "module:function"
BENCHES = {
    "memory": "xenlab.bench.memory:bench_memory",
    "mmu": "xenlab.bench.mmu:bench_mmu",
    "compile": "xenlab.bench.compile:bench_compile",
    "labs": "xenlab.bench.labs:bench_labs",
    "viz": "xenlab.bench.viz:bench_viz",
    "boot": "xenlab.bench.boot:bench_boot",
    "machine": "xenlab.bench.machine:bench_machine",
    "cpu": "xenlab.bench.cpu:bench_cpu",
    "stages": "xenlab.bench.stages:bench_stages",
    "kmdb": "xenlab.bench.kmdb:bench_kmdb",
}


@dataclass
class Row:
    bench: str
    case: str
    value: float
    unit: str
    peer: str = ""
    peer_value: float | None = None
    ratio: float | None = None
    target: str = ""
    met: bool | None = None

    def with_peer(self, peer: str, peer_value: float) -> "Row":
        self.peer, self.peer_value = peer, peer_value
        self.ratio = self.value / peer_value if peer_value else None
        return self


def best_of(fn, repeat: int = 3) -> float:
    """Fastest wall time of ``repeat`` calls (after they ran once)."""
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def best_of_pair(fn, peer, repeat: int = 5) -> tuple[float, float]:
    """Fastest wall times of ``fn`` and of ``peer``, called in turn ``repeat``
    times each, so a slow spell on a shared host hits both sides alike."""
    best, best_peer = float("inf"), float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
        t = time.perf_counter()
        peer()
        best_peer = min(best_peer, time.perf_counter() - t)
    return best, best_peer


def run(names, quick=False) -> list[Row]:
    import importlib
    rows = []
    for name in names:
        module, fn = BENCHES[name].split(":")
        rows.extend(getattr(importlib.import_module(module), fn)(quick))
    return rows


def _fmt(v):
    if v is None:
        return ""
    if isinstance(v, bool):
        return "yes" if v else "NO"
    if abs(v) >= 1e6:
        return f"{v / 1e6:.2f}M"
    if abs(v) >= 1e3:
        return f"{v / 1e3:.1f}k"
    return f"{v:.3g}"


def table(rows: list[Row]) -> str:
    head = ("bench", "case", "value", "unit", "peer", "peer value", "ratio", "target", "met")
    body = [(r.bench, r.case, _fmt(r.value), r.unit, r.peer, _fmt(r.peer_value),
             f"{r.ratio:.2f}x" if r.ratio is not None else "", r.target, _fmt(r.met))
            for r in rows]
    widths = [max(len(str(x)) for x in col) for col in zip(head, *body)]
    line = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()
    return "\n".join([line(head), line("-" * w for w in widths)] + [line(b) for b in body])


def to_json(rows: list[Row]) -> str:
    return json.dumps({
        "host": {"python": platform.python_version(), "machine": platform.machine(),
                 "processor": platform.processor()},
        "rows": [asdict(r) for r in rows],
    }, indent=2)
