"""Machine time: a nanosecond counter that timers (LAPIC timer, PIT, RTC) read.

Nothing advances it on its own; the CPU's run loop (or a test) calls
``advance(ns)``, and every timer whose deadline falls inside fires in time
order.  Timers implement ``next_deadline() -> ns | None`` and ``expire(now)``.
"""

from __future__ import annotations

MAX_EXPIRIES_PER_ADVANCE = 64     # a fast periodic timer coalesces beyond this


class Clock:
    def __init__(self, start_ns: int = 0):
        self.now = start_ns
        self.timers: list = []

    def add(self, timer):
        self.timers.append(timer)

    def advance(self, ns: int):
        """Move time forward by ``ns`` and fire what expires on the way."""
        if ns < 0:
            raise ValueError(f"ns={ns}: machine time only moves forward")
        target = self.now + ns
        fired = {id(t): 0 for t in self.timers}
        while True:
            best, when = None, None
            for t in self.timers:
                if fired[id(t)] >= MAX_EXPIRIES_PER_ADVANCE:
                    continue
                d = t.next_deadline()
                if d is not None and d <= target and (when is None or d < when):
                    best, when = t, d
            if best is None:
                break
            self.now = max(self.now, when)
            fired[id(best)] += 1
            best.expire(self.now)
        self.now = target
