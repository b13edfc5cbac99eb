"""The decoded-instruction cache shared by the vCPUs of one memory: layout.

Everything lives in one int64 array ``cc`` (plus ``page_of_slot``, int32 per
memory slot, which grows with the memory pool); kernels take the pair as
``dc = (cc, page_of_slot)``.  ``cc`` holds, at the offsets its header gives:

``slot_of_page[p]``
    the memory slot whose instructions cache page ``p`` holds (0: free; page 0
    is never used, so ``page_of_slot[s] == 0`` means "not cached").
``bmap[p * 4096 + offset]``
    the entry index of the block that starts at that byte offset, or 0.
``ent``
    ENT_WORDS words per entry (ops.py, "hot word"); a block is a header entry
    (instruction count, fall-through offset) followed by its instructions.
``gen``
    3 words per entry: the general decoder's ``info, disp, imm``.
scratch
    a page-walk trace, the fetch buffer, decoder output, a state save area.

Entries are handed out in order; when they run out the whole cache is
flushed (like QEMU's translation-block flush).  A store to a cached page
clears that page's ``bmap`` (self-modifying code); its entries become garbage
until the next flush.
"""

from __future__ import annotations

import numpy as np

from .. import regs as R
from .units import NUNITS

# header fields of cc
(C_NEXT, C_NPAGES, C_CODE_GEN, C_MEM_GEN, C_CODEW, C_ENT_NEXT, C_NENT, C_SOP, C_BMAP,
 C_ENT, C_GEN, C_TRACE, C_FBUF, C_DOUT, C_SAVE) = range(15)
C_FP = 16                 # NUNITS words: addresses of the units (units.py)
HEADER = C_FP + NUNITS

PAGE = 4096
ENT_WORDS = 8             # one 64-byte cache line per entry
MAX_BLOCK = 48            # instructions per block at most
TRACE_WORDS = 10          # mmu walk trace, int64[5, 2]
FBUF_WORDS = 16
DOUT_WORDS = 3

DEFAULT_CODE_PAGES = 256
DEFAULT_ENTRIES = 1 << 16


def new_cc(npages: int = DEFAULT_CODE_PAGES, nent: int = DEFAULT_ENTRIES) -> np.ndarray:
    """A fresh, empty cache array with its header filled in."""
    sizes = [(C_SOP, npages), (C_BMAP, npages * PAGE), (C_ENT, ENT_WORDS * nent), (C_GEN, 3 * nent),
             (C_TRACE, TRACE_WORDS), (C_FBUF, FBUF_WORDS), (C_DOUT, DOUT_WORDS),
             (C_SAVE, R.NSTATE)]
    off = HEADER
    offsets = {}
    for field, n in sizes:
        offsets[field] = off
        off += (n + 7) & ~7               # 64-byte aligned regions
    cc = np.zeros(off, dtype=np.int64)
    for field, o in offsets.items():
        cc[field] = o
    cc[C_NEXT] = 1
    cc[C_NPAGES] = npages
    cc[C_ENT_NEXT] = 1
    cc[C_NENT] = nent
    return cc
