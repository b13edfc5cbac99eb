"""A small ELF64 writer for the kernel's ``unix`` files.

The layouts are the System V ABI's (ELF-64 Object File Format 1.5 and the
x86-64 psABI): a 64-byte file header, 56-byte program headers, 64-byte section
headers, 24-byte symbol entries, and notes as (namesz, descsz, type, name,
desc) padded to 4 bytes.  Reading is pyelftools' job (``KernelImage.from_elf``
and the tests use it); nothing in Python writes ELF, hence this module.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

ET_EXEC = 2
EM_X86_64 = 62
PT_LOAD = 1
PT_NOTE = 4
PF_X, PF_W, PF_R = 1, 2, 4
SHT_PROGBITS, SHT_SYMTAB, SHT_STRTAB, SHT_NOTE = 1, 2, 3, 7
SHF_WRITE, SHF_ALLOC, SHF_EXECINSTR = 1, 2, 4
STB_GLOBAL, STT_FUNC, STT_OBJECT = 1, 2, 1


@dataclass
class LoadSegment:
    vaddr: int
    paddr: int
    data: bytes
    memsz: int = 0
    flags: int = PF_R | PF_W | PF_X
    name: str = ".text"


def note(ntype: int, name: bytes, desc: bytes) -> bytes:
    """One ELF note record (name and descriptor padded to 4 bytes)."""
    name = name + b"\0"
    pad = lambda b: b + b"\0" * (-len(b) % 4)   # noqa: E731
    return struct.pack("<III", len(name), len(desc), ntype) + pad(name) + pad(desc)


def write_elf(entry: int, segments: list[LoadSegment], notes: bytes = b"",
              symbols: dict[str, tuple[int, int]] | None = None) -> bytes:
    """An ELF64 executable: one PT_LOAD per segment, a PT_NOTE if ``notes``,
    and section headers with ``.symtab`` for ``symbols`` (name -> (value, type))."""
    symbols = symbols or {}
    nph = len(segments) + (1 if notes else 0)
    off = 64 + 56 * nph
    blobs, phdrs, shdrs_info = [], [], []

    def place(data: bytes, align: int) -> int:
        nonlocal off
        off += -off % align
        at = off
        blobs.append((at, data))
        off += len(data)
        return at

    for s in segments:
        at = place(s.data, 4096)
        phdrs.append(struct.pack("<IIQQQQQQ", PT_LOAD, s.flags, at, s.vaddr, s.paddr,
                                 len(s.data), max(s.memsz, len(s.data)), 4096))
        shdrs_info.append((s.name, SHT_PROGBITS, SHF_ALLOC | SHF_WRITE | SHF_EXECINSTR,
                           s.vaddr, at, len(s.data), 0, 0, 16, 0))
    if notes:
        at = place(notes, 4)
        phdrs.append(struct.pack("<IIQQQQQQ", PT_NOTE, PF_R, at, 0, 0, len(notes), len(notes), 4))
        shdrs_info.append((".note.Xen", SHT_NOTE, SHF_ALLOC, 0, at, len(notes), 0, 0, 4, 0))
    # symbol table and its strings
    strtab = bytearray(b"\0")
    syms = [bytes(24)]
    for name, (value, kind) in sorted(symbols.items(), key=lambda kv: kv[1][0]):
        idx = len(strtab)
        strtab += name.encode() + b"\0"
        syms.append(struct.pack("<IBBHQQ", idx, (STB_GLOBAL << 4) | kind, 0, 1, value, 0))
    symtab_at = place(b"".join(syms), 8)
    strtab_at = place(bytes(strtab), 1)
    names = bytearray(b"\0")

    def name_of(n):
        i = len(names)
        names.extend(n.encode() + b"\0")
        return i

    nsec = len(shdrs_info)
    strtab_index = nsec + 2
    shdrs = [bytes(64)]
    for (n, t, fl, addr, o, size, link, info, align, ent) in shdrs_info:
        shdrs.append(struct.pack("<IIQQQQIIQQ", name_of(n), t, fl, addr, o, size, link, info,
                                 align, ent))
    shdrs.append(struct.pack("<IIQQQQIIQQ", name_of(".symtab"), SHT_SYMTAB, 0, 0, symtab_at,
                             24 * len(syms), strtab_index, 1, 8, 24))
    shdrs.append(struct.pack("<IIQQQQIIQQ", name_of(".strtab"), SHT_STRTAB, 0, 0, strtab_at,
                             len(strtab), 0, 0, 1, 0))
    shstr_name = name_of(".shstrtab")
    shstr_at = place(bytes(names), 1)
    shdrs.append(struct.pack("<IIQQQQIIQQ", shstr_name, SHT_STRTAB, 0, 0, shstr_at,
                             len(names), 0, 0, 1, 0))
    off += -off % 8
    shoff = off
    ident = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)
    header = ident + struct.pack("<HHIQQQIHHHHHH", ET_EXEC, EM_X86_64, 1, entry, 64, shoff, 0,
                                 64, 56, nph, 64, len(shdrs), len(shdrs) - 1)
    out = bytearray(shoff + 64 * len(shdrs))
    out[:64] = header
    out[64:64 + 56 * nph] = b"".join(phdrs)
    for at, data in blobs:
        out[at:at + len(data)] = data
    out[shoff:] = b"".join(shdrs)
    return bytes(out)


def elf_symbols(data: bytes) -> dict[str, int]:
    """The symbol table of an ELF image (pyelftools), name -> value."""
    import io

    from elftools.elf.elffile import ELFFile
    elf = ELFFile(io.BytesIO(data))
    tab = elf.get_section_by_name(".symtab")
    return {} if tab is None else {s.name: s["st_value"] for s in tab.iter_symbols() if s.name}
