"""Loads the jitted kernels (kept apart so ``import xenlab`` stays light)."""

from .run import run_loop  # noqa: F401
