"""An independent, slow, obviously-correct page walker for the tests.

Written straight from Intel SDM Vol. 3 §4.4-§4.8 with plain Python ints and
``Memory.read64``/``write64`` only, sharing no code with xenlab.machine.mmu.
"""

P, RW, US, A, D, PS = 1, 2, 4, 0x20, 0x40, 0x80
XD = 1 << 63
ADDR = ((1 << 52) - 1) & ~0xFFF


class Fault(Exception):
    def __init__(self, kind, code=0):
        self.kind, self.code = kind, code


def bits(v, lo, hi):
    """Bits lo..hi (inclusive) of v."""
    return (v >> lo) & ((1 << (hi - lo + 1)) - 1)


def translate(mem, *, cr0, cr3, cr4, efer, va, write=False, user=False, fetch=False,
              maxphy=40, page1gb=True, pdptes=None):
    """Returns (maddr, [(entry address, is_pdpte_register)...]) or raises Fault."""
    pg, pae = cr0 >> 31 & 1, cr4 >> 5 & 1
    lma, nxe = efer >> 10 & 1, efer >> 11 & 1
    wp, smep = cr0 >> 16 & 1, cr4 >> 20 & 1
    va &= (1 << 64) - 1
    if not pg:
        return (va if lma else va & 0xFFFFFFFF), []
    id_ok = smep or (pae and nxe)

    def pf(present, rsvd=False):
        code = (1 if present or rsvd else 0) | (2 if write else 0) | (4 if user else 0)
        code |= 8 if rsvd else 0
        code |= 16 if fetch and id_ok else 0
        raise Fault("pf", code)

    if lma:
        top = bits(va, 47, 63)
        if top not in (0, (1 << 17) - 1):
            raise Fault("gp")
        levels = [(39, 4), (30, 3), (21, 2), (12, 1)]
        table = cr3 & ADDR & ((1 << maxphy) - 1)
        hi_reserved = list(range(maxphy, 52))
        used = []
        entries = []
    else:
        assert pae
        va &= 0xFFFFFFFF
        e = pdptes[va >> 30]
        if not e & P:
            pf(False)
        levels = [(21, 2), (12, 1)]
        table = e & ADDR
        hi_reserved = list(range(maxphy, 63))
        used = [((cr3 & 0xFFFFFFE0) + 8 * (va >> 30), True)]
        entries = [e]
    size = 12
    for shift, level in levels:
        addr = table + 8 * bits(va, shift, shift + 8)
        e = mem.read64(addr)
        used.append((addr, False))
        entries.append(e)
        if not e & P:
            pf(False)
        if any(e >> b & 1 for b in hi_reserved) or (e & XD and not nxe):
            pf(True, True)
        if level > 1 and e & PS:
            if level == 4 or (level == 3 and not page1gb):
                pf(True, True)
            lo = 13
            hi = 29 if level == 3 else 20
            if bits(e, lo, hi):
                pf(True, True)
            size = shift
            break
        table = e & ADDR
    walked = entries[1:] if not lma else entries
    rw_all = all(x & RW for x in walked)
    us_all = all(x & US for x in walked)
    xd_any = any(x & XD for x in walked) and nxe
    if user:
        if not us_all or (write and not rw_all) or (fetch and xd_any):
            pf(True)
    else:
        if (write and wp and not rw_all) or (fetch and xd_any) or (fetch and smep and us_all):
            pf(True)
    leaf = entries[-1]
    maddr = (leaf & ADDR & ~((1 << size) - 1)) | (va & ((1 << size) - 1))
    return maddr, used


def set_ad(mem, used, write):
    """What the hardware writes back after a successful walk."""
    real = [a for a, reg in used if not reg]
    for i, addr in enumerate(real):
        e = mem.read64(addr)
        e |= A
        if write and i == len(real) - 1:
            e |= D
        mem.write64(addr, e)
