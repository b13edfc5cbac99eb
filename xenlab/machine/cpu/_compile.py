"""``python -m xenlab.machine.cpu._compile UNIT...``: compile CPU units into
numba's cache (the helper process of ``units.link`` on a cold cache)."""

import sys

from . import access, decoder, exceptions, execute, hot, slowpath, system, translate  # noqa: F401
from .units import compile_units

if __name__ == "__main__":
    compile_units([int(a) for a in sys.argv[1:]])
