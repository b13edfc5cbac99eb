"""Memory: ``::vtop``, ``::pte``, ``::pfntomfn``, ``::mfntopfn``, ``::msgbuf``."""

from __future__ import annotations

import struct

from ...machine.pte import (PTE_A, PTE_AVL_MASK, PTE_D, PTE_G, PTE_NX, PTE_P, PTE_PCD,
                            PTE_PS, PTE_PWT, PTE_RW, PTE_US)
from ..errors import MdbError
from ..session import dcmd, getopts
from ..target import ADDR_MASK

# Software PTE field (bits 9-11) as the illumos HAT encodes it (hat_pte.h / mach_mmu.h):
# a value, not three flags, so that the bit a debug Xen claims is never set alone.
PT_SOFTWARE = {0x200: "nosync", 0x400: "noconsist", 0x600: "foreign"}
XEN_GUEST_KERNEL = 1 << 52      # _PAGE_GUEST_KERNEL: Xen marks kernel L1 entries (x86_64/page.h)


def _addr_arg(k, cmd, what: str) -> int:
    o = getopts(cmd.args, valued="c")
    if cmd.has_addr:
        return cmd.addr
    if o.words:
        return k.eval(" ".join(o.words))
    raise MdbError(f"{what}: an address is required ({what.lstrip(':')} addr, or addr{what})")


def _m2p(k, mfn: int):
    """The pfn of machine frame ``mfn`` (under Xen: the M2P entry, if the kernel's
    mfn_list maps that pfn back to ``mfn``), or None: the frame is not this
    domain's (Xen's own, another domain's, a device's)."""
    if not k.target.pv:
        return mfn
    try:
        pfn = k.target.mfn_to_pfn(mfn, k.cpu)
    except MdbError:
        return None
    return pfn if _p2m_consistent(k, pfn, mfn) else None


def pte_words(raw: int, level: int = 1, pv: bool = False) -> list[str]:
    """The set bits of a paging entry, in words."""
    words = []
    if raw & PTE_NX:
        words.append("noexec")
    if raw & PTE_PS and level in (2, 3):
        words.append("large")
    elif raw & PTE_PS and level == 1:
        words.append("pat")
    if raw & PTE_G:
        words.append("global")
    sw = raw & PTE_AVL_MASK
    if sw:
        words.append(PT_SOFTWARE.get(sw, f"sw={sw:#x}"))
    if pv and raw & XEN_GUEST_KERNEL:
        words.append("guestkernel")
    for bit, name in ((PTE_PCD, "nocache"), (PTE_PWT, "writethrough"), (PTE_D, "dirty"),
                      (PTE_A, "ref"), (PTE_US, "user"), (PTE_RW, "write")):
        if raw & bit:
            words.append(name)
    words.append("present" if raw & PTE_P else "not-present")
    return words


@dcmd("vtop", "addr::vtop [-c cpu]", "walk a virtual address through the guest's page tables",
      help="""
Reads every level of the page-table walk from machine memory, starting at
the CPU's %cr3 (a machine address under Xen: a PV guest's tables hold machine
frame numbers).  For each level: the table, the index, the entry and its bits.
Under Xen each machine frame is also shown with its pseudo-physical frame
(Xen's M2P table, mapped read-only in the guest at MACH2PHYS_VIRT_START), and
the result is given as pfn, mfn and machine address; natively the physical
address.""")
def vtop(k, cmd):
    o = getopts(cmd.args, valued="c")
    va = _addr_arg(k, cmd, "::vtop")
    cpu = k.eval(o.values["c"]) if "c" in o.values else k.cpu
    t = k.target
    pv = t.pv
    tr = t.walk(va, cpu)
    regs = t.regs(t.address_space(cpu))
    lines = [f"virtual {va:x}: %cr3 = {regs['cr3']:#x}"]
    levels = []
    for lv in tr.levels:
        tmfn = lv.table >> 12
        entry = {"level": lv.level, "name": lv.name, "index": lv.index, "table": lv.table,
                 "entry": lv.entry, "raw": lv.raw, "frame": lv.frame,
                 "flags": pte_words(lv.raw, lv.level, pv)}
        where = f"table mfn {tmfn:#x}" if pv else f"table {lv.table:#x}"
        if pv:
            tpfn = _m2p(k, tmfn)
            entry["table_pfn"] = tpfn
            where += f" (pfn {tpfn:#x})" if tpfn is not None else " (no pfn)"
        lines.append(f"  level {lv.level} {lv.name:<5}[{lv.index:3}] {where}: "
                     f"{lv.raw:#018x} {' '.join(entry['flags'])}")
        levels.append(entry)
    data = {"va": va, "levels": levels, "ok": tr.ok, "cpu": cpu, "paging": tr.paging}
    if not tr.ok:
        lines.append(f"mdb: failed to get physical mapping for {va:#x}: {tr.why}")
        data["why"] = tr.why
        return "\n".join(lines) + "\n", data
    ma = tr.ma
    mfn = ma >> 12
    data.update(ma=ma, mfn=mfn, page_size=tr.page_size)
    size = {4096: "", 2 << 20: " (2M page)", 1 << 30: " (1G page)"}.get(tr.page_size, "")
    if not tr.paging:
        lines.append(f"paging is off: virtual {va:x} is physical {ma:x}")
        data["pfn"] = mfn
    elif pv:
        pfn = _m2p(k, mfn)
        data["pfn"] = pfn
        pfn_s = f"pfn {pfn:x}" if pfn is not None else "no pfn (not this domain's frame)"
        lines.append(f"virtual {va:x} mapped to {pfn_s}, mfn {mfn:x}, machine address "
                     f"{ma:x}{size}")
    else:
        data["pfn"] = mfn
        lines.append(f"virtual {va:x} mapped to physical {ma:x}{size}")
    return "\n".join(lines) + "\n", data


@dcmd("pte", "value::pte [-l level]", "decode a page-table entry",
      help="""
Names the bits of a paging entry (SDM Vol. 3 §4.5): present, write, user,
writethrough, nocache, ref (accessed), dirty, large (PS in a PDE/PDPTE) or pat,
global, noexec, and the software field (bits 9-11) as illumos encodes it:
0x200 nosync, 0x400 noconsist, 0x600 foreign; other values are shown as
sw=0x...  Under Xen, the frame is a machine frame: its pfn (M2P) is shown
too, and guestkernel marks Xen's _PAGE_GUEST_KERNEL (bit 52).""")
def pte(k, cmd):
    o = getopts(cmd.args, valued="l")
    if cmd.has_addr:
        raw = cmd.addr
    elif o.words:
        raw = k.eval(" ".join(o.words))
    else:
        raise MdbError("::pte: a PTE value is required (value::pte)")
    level = k.eval(o.values["l"]) if "l" in o.values else 1
    if not 1 <= level <= 4:
        raise MdbError(f"::pte -l {level}: levels are 1 (PTE) to 4 (PML4E)")
    pv = k.target.pv
    frame = (raw & ADDR_MASK) >> 12
    words = pte_words(raw, level, pv)
    data = {"raw": raw, "level": level, "frame": frame, "flags": words,
            "present": bool(raw & PTE_P), "software": raw & PTE_AVL_MASK}
    page = f"page={frame:#x}"
    if pv and raw & PTE_P:
        pfn = _m2p(k, frame)
        data["mfn"], data["pfn"] = frame, pfn
        page = f"mfn={frame:#x} " + (f"pfn={pfn:#x}" if pfn is not None else "(no pfn)")
    rest = [w for w in words if w != "noexec"]
    lead = "noexec " if "noexec" in words else ""
    return f"PTE={raw:x}: {lead}{page} {' '.join(rest)}\n", data


def _p2m_consistent(k, pfn: int, mfn: int) -> bool:
    try:
        return 0 <= pfn and k.target.pfn_to_mfn(pfn, k.cpu) == mfn
    except MdbError:
        return False


@dcmd("pfntomfn", "pfn::pfntomfn", "the machine frame behind a pseudo-physical frame",
      help="""
Reads the kernel's P2M list, mfn_list[pfn] (the array Xen's domain builder
handed over; start_info names its address and length), through the guest's
page tables.  i86xen only.""")
def pfntomfn(k, cmd):
    pfn = _addr_arg(k, cmd, "::pfntomfn")
    k.target.need_xen("::pfntomfn", frames=True)
    mfn = k.target.pfn_to_mfn(pfn, k.cpu)
    return f"{mfn:x}\n", {"pfn": pfn, "mfn": mfn}


@dcmd("mfntopfn", "mfn::mfntopfn", "the pseudo-physical frame of a machine frame",
      help="""
Reads Xen's machine-to-phys table (mapped read-only at MACH2PHYS_VIRT_START in
every PV guest) through the guest's page tables, then checks the answer
against the kernel's mfn_list: a frame that is not this domain's (a device's
registers, another domain's page) has no pfn.  i86xen only.""")
def mfntopfn(k, cmd):
    mfn = _addr_arg(k, cmd, "::mfntopfn")
    t = k.target
    t.need_xen("::mfntopfn", frames=True)
    pfn = t.mfn_to_pfn(mfn, k.cpu)
    _va, n = t.mfn_list(k.cpu)
    data = {"mfn": mfn, "pfn": pfn, "m2p": pfn}
    if not 0 <= pfn < n or not _p2m_consistent(k, pfn, mfn):
        data["pfn"] = None
        why = (f"M2P gives {pfn:#x}, beyond mfn_list" if not 0 <= pfn < n else
               f"M2P gives {pfn:#x} but mfn_list[{pfn:#x}] is not {mfn:#x}")
        raise MdbError(f"mfn {mfn:#x} has no pfn in this domain ({why})")
    return f"{pfn:x}\n", data


@dcmd("msgbuf", "::msgbuf", "the kernel's message buffer, read from guest memory",
      help="""
The ring at the kernel's msgbuf symbol: a header (magic, size of the text
area, bytes ever written, lines) and the text, oldest first.  It holds what
the kernel said even when no console showed it (a boot whose early console
writes nowhere).""")
def msgbuf(k, cmd):
    from ...kernel.intel.cmn_err import HEADER, MSG_MAGIC
    t = k.target
    base = k.symbols.addr("msgbuf")
    magic, size, written, lines = struct.unpack("<IIQQ", t.vread(base, 24, k.cpu))
    if magic != MSG_MAGIC:
        raise MdbError(f"no message buffer at {base:#x} yet (magic {magic:#x}, "
                       f"expected {MSG_MAGIC:#x}): the kernel has not set it up")
    if written <= size:
        raw = t.vread(base + HEADER, written, k.cpu) if written else b""
    else:
        pos = written % size
        raw = t.vread(base + HEADER + pos, size - pos, k.cpu) + t.vread(base + HEADER, pos,
                                                                        k.cpu)
    text = raw.decode("latin-1")
    return text + ("" if text.endswith("\n") or not text else "\n"), {
        "text": text, "written": written, "lines": lines, "size": size, "base": base}
