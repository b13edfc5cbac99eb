"""The dcmds; importing this package registers them in ``session.DCMDS``."""

from . import core, regs, run, vm, xpv  # noqa: F401
