"""Kernels compiled apart and called through their addresses, to keep compile time down.

When one ``@njit`` function calls another, numba links the callee's whole
LLVM module into the caller's and optimises and generates machine code for
all of it again; every cached function pays for its full call tree.  The
CPU's slow paths are a deep tree (general executor -> system instructions ->
memory access -> page walk), so a plain call graph compiles the same code
four or five times over.

Instead the big slow-path kernels are *units*: each is compiled once, on its
own, and the others call it through its address, which Python puts in a
table (``fp``) at start-up.  A call costs a few nanoseconds more than a linked
one and LLVM cannot inline across it; both are fine on slow paths.  The
hot loop links only tiny helpers.

:func:`caller` makes the calling intrinsic for a unit's signature, and
:func:`link` compiles (or loads from numba's cache) every registered unit and
fills the table.  The address of a unit is only valid in the process that
loaded it; the table is rebuilt on every start.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

# -- the numba types of the arrays the kernels share ----------------------------

I64 = types.int64
I64A = types.Array(types.int64, 1, "C")
I32A = types.Array(types.int32, 1, "C")
U8A = types.Array(types.uint8, 1, "C")
I16A = types.Array(types.int16, 1, "C")
TLB_T = types.Array(types.int64, 2, "C")
MEM_T = types.Tuple((I32A, U8A, I64A, types.Array(types.uint32, 1, "C"), I64A, I64A, U8A))
DC_T = types.Tuple((I64A, I32A))        # code cache: (cc, page_of_slot), see cache.py

# The signature shared by the general executor's units (execute.py, system.py):
# (mem, st, tlb, dc, owner, info, disp, imm, maxel) -> instructions retired
EXEC_ARGS = (MEM_T, I64A, TLB_T, DC_T, I16A, I64, I64, I64, I64)

# Unit numbers: index into the address table.
(U_XLATE, U_PAGE, U_TRANSLATE, U_SLOW, U_BASIC, U_SYSTEM, U_STRING, U_EVENT,
 U_DECODE, U_HOT, U_ARITH) = range(11)
NUNITS = 16

FP = np.zeros(NUNITS, dtype=np.int64)   # addresses, filled by link()

_REGISTRY: dict[int, tuple] = {}        # unit -> (dispatcher, argtypes)


def caller(restype, argtypes):
    """An intrinsic ``call(fp, (args...))`` that calls the native function at
    address ``fp`` with the numba calling convention for ``argtypes``.  The
    argument tuple is cast to ``argtypes`` (so literals and the like are fine)."""
    argtypes = tuple(argtypes)
    tuple_t = types.Tuple(argtypes)

    @intrinsic
    def call(typingctx, fp, args):
        if not isinstance(args, types.BaseTuple) or len(args) != len(argtypes):
            return None
        sig = restype(I64, tuple_t)

        def codegen(context, builder, signature, llargs):
            fpv, tup = llargs
            vals = cgutils.unpack_tuple(builder, tup, len(argtypes))
            fnty = context.call_conv.get_function_type(restype, argtypes)
            callee = builder.inttoptr(fpv, fnty.as_pointer())
            _, out = context.call_conv.call_function(builder, callee, restype,
                                                     list(argtypes), vals)
            return out
        return sig, codegen
    return call


def register(unit: int, dispatcher, argtypes):
    """Declare that ``dispatcher`` (an ``@njit`` function) implements ``unit``
    with exactly ``argtypes``."""
    _REGISTRY[unit] = (dispatcher, tuple(argtypes))


# Units a helper process compiles while this one compiles the rest, when the
# cache is cold (about half the work each; see link()).
HELPER_UNITS = (U_BASIC, U_ARITH, U_SYSTEM, U_EVENT, U_STRING, U_PAGE)

# Other kernels this process compiles while the helper works (entry.run_entry,
# which links the run loop): (dispatcher, argtypes).
_ALSO: list[tuple] = []


def also_compile(dispatcher, argtypes):
    """Compile ``dispatcher`` for ``argtypes`` in :func:`link`, beside the units."""
    _ALSO.append((dispatcher, tuple(argtypes)))


def _cached(unit) -> bool:
    """Is the unit's compiled code in numba's on-disk cache (without compiling it)?"""
    disp, argtypes = _REGISTRY[unit]
    cache = getattr(disp, "_cache", None)
    try:
        return cache is not None and cache.load_overload(argtypes, disp.targetctx) is not None
    except Exception:                  # an unreadable cache entry: numba recompiles it
        return False


def compile_units(units) -> None:
    for unit in units:
        disp, argtypes = _REGISTRY[unit]
        disp.compile(argtypes)


def _helper(units):
    """Start a process that compiles ``units`` into numba's cache, or None."""
    if not units or (os.cpu_count() or 1) < 2 or os.environ.get("XENLAB_SERIAL_COMPILE"):
        return None
    # the helper must import this very copy of xenlab (a worktree, an unpacked sdist ...)
    root = str(Path(__file__).resolve().parents[3])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [root] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    try:
        return subprocess.Popen([sys.executable, "-m", "xenlab.machine.cpu._compile",
                                 *map(str, units)], stdout=subprocess.DEVNULL, env=env)
    except OSError:
        return None


def link() -> np.ndarray:
    """Compile or load every unit and put its address in :data:`FP`.

    On a cold cache (the first use after a fresh checkout or an edit) a helper
    process compiles about half of the units into numba's cache while this
    process compiles the others, then this one loads the helper's from the
    cache: the compile takes about half the wall time on two cores.  If the
    helper cannot help (no writable cache, one core, ``XENLAB_SERIAL_COMPILE``
    set) this process simply compiles everything itself.
    """
    if FP[U_SLOW] != 0:
        return FP
    cold = [u for u in sorted(_REGISTRY) if not _cached(u)]
    helper = _helper([u for u in cold if u in HELPER_UNITS]) if len(cold) > 3 else None
    if helper is not None:
        compile_units([u for u in cold if u not in HELPER_UNITS])
        for disp, argtypes in _ALSO:
            disp.compile(argtypes)
        helper.wait()
    for unit, (disp, argtypes) in sorted(_REGISTRY.items()):
        disp.compile(argtypes)
        cres = disp.overloads[argtypes]
        addr = cres.library.get_pointer_to_function(cres.fndesc.llvm_func_name)
        if not addr:
            raise RuntimeError(f"CPU unit {disp.__name__}: no native entry point found")
        FP[unit] = addr
    return FP
