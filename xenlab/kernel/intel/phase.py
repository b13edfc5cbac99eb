"""The ``phase`` decorator of the kernel's boot phases."""

from __future__ import annotations

import functools

from ..kcpu import KernelFault


def phase(fn):
    """A boot phase: a load or store of the kernel's own that faults becomes the
    kernel's BAD TRAP panic, as it would for compiled code."""

    @functools.wraps(fn)
    def run(self, *a, **kw):
        try:
            return fn(self, *a, **kw)
        except KernelFault as f:
            import traceback
            names = [fr.name for fr in traceback.extract_tb(f.__traceback__)]
            self.fault_panic(f, names[::-1])
    return run
