"""Loads the jitted kernels (kept apart so ``import xenlab`` stays light) and
links the CPU's units (units.py) once per process."""

from . import access, decoder, exceptions, execute, hot, slowpath, system, translate  # noqa: F401
from .entry import run_entry  # noqa: F401
from .units import link

FP = link()
