"""Decorators for the CPU's kernels.

``hot``: an ordinary cached njit function that LLVM may inline.
``slow``: a cached njit function that is never inlined into its callers.  The
slow paths (page walks, the general executor, exception delivery) are big;
inlined into every caller they made the interpreter loop take over a minute
to compile.  numba marks a function ``noinline`` when it carries full debug
info, which is how this is done (the code is still optimised).
"""

from numba import njit

hot = njit(cache=True)
slow = njit(cache=True, debug=True, boundscheck=False, _dbg_extend_lifetimes=False)
