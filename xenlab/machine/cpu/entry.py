"""The vCPU's way in from Python: one address in place of twelve arrays.

Calling a jitted function costs numba a type check and an unboxing per
argument, some 80 ns an array, and a run takes twelve of them; on an exit
that a Python device serves (an ``outb`` to the serial port, a PCI config
read) that was most of the round trip.  So the vCPU writes the address and
length of every array a run needs into one int64 *entry block*, and
``run_entry(block_address, budget, value, supplied)`` rebuilds the arrays from it in place (no
copy) and calls :func:`run.run_loop`.  The value of a port or MMIO read
travels in the same call.

The block holds raw pointers: the Python side (``Vcpu._entry_address``) keeps
every array it points at alive and rebuilds the block whenever one of them is
replaced (the memory pool growing, a new breakpoint list), and a copied vCPU
never inherits it.
"""

import numpy as np
from numba import carray, njit, types
from numba.extending import intrinsic

from ..mmu import NTLB
from . import slots as S
from . import units as U
from .run import run_loop

# Block layout: (address, length) pairs, in run_loop's argument order.
(B_SLOT_OF, B_DATA, B_MFN_OF_SLOT, B_META, B_SLOT_FLAGS, B_STATE, B_TLB, B_CC, B_POS,
 B_OWNER, B_BPS) = range(0, 22, 2)
BLOCK_WORDS = 22


def _pointer(nbtype):
    """An intrinsic turning an int64 address into a typed pointer for ``carray``."""
    @intrinsic
    def as_pointer(typingctx, addr):
        sig = types.CPointer(nbtype)(types.int64)

        def codegen(context, builder, signature, args):
            return builder.inttoptr(args[0], context.get_value_type(signature.return_type))
        return sig, codegen
    return as_pointer


_i64p = _pointer(types.int64)
_i32p = _pointer(types.int32)
_i16p = _pointer(types.int16)
_u8p = _pointer(types.uint8)


@njit(cache=True)
def run_entry(block, budget, value, supplied):
    """``run_loop`` on the arrays the entry block at address ``block`` names.
    With ``supplied`` set, ``value`` first completes the port or MMIO read the
    last run exited for (what ``Vcpu.complete`` does, without a second call)."""
    b = carray(_i64p(block), BLOCK_WORDS)
    st = carray(_i64p(b[B_STATE]), b[B_STATE + 1])
    if supplied != 0 and st[S.X_PENDING] != 0:
        st[st[S.XI + S.XI_SLOT]] = value
    return run_loop(carray(_i32p(b[B_SLOT_OF]), b[B_SLOT_OF + 1]),
                    carray(_u8p(b[B_DATA]), b[B_DATA + 1]),
                    carray(_i64p(b[B_MFN_OF_SLOT]), b[B_MFN_OF_SLOT + 1]),
                    carray(_i64p(b[B_META]), b[B_META + 1]),
                    carray(_u8p(b[B_SLOT_FLAGS]), b[B_SLOT_FLAGS + 1]),
                    st,
                    carray(_i64p(b[B_TLB]), (b[B_TLB + 1], 4)),
                    carray(_i64p(b[B_CC]), b[B_CC + 1]),
                    carray(_i32p(b[B_POS]), b[B_POS + 1]),
                    carray(_i16p(b[B_OWNER]), b[B_OWNER + 1]),
                    carray(_i64p(b[B_BPS]), b[B_BPS + 1]),
                    budget)


U.also_compile(run_entry, (U.I64,) * 4)


def entry_block(arrays) -> np.ndarray:
    """The block for ``arrays`` (run_loop's eleven arrays, in order); the caller
    keeps them alive for as long as it uses the block."""
    blk = np.zeros(BLOCK_WORDS, dtype=np.int64)
    for i, a in enumerate(arrays):
        if not a.flags.c_contiguous:
            raise ValueError(f"entry block: array {i} is not C-contiguous")
        blk[2 * i] = a.ctypes.data
        blk[2 * i + 1] = a.shape[0]
    assert arrays[B_TLB // 2].shape == (NTLB, 4)
    return blk
