"""The multiboot information a boot loader hands to a kernel (Multiboot
Specification 0.6.96, §3.3): the loader side (write) and the kernel side (read).

Only the fields xenlab uses: flags, mem_lower/mem_upper, cmdline, mods_count,
mods_addr (each module entry is mod_start, mod_end, string, reserved), and the
BIOS memory map (mmap_length/mmap_addr at offsets 44/48: entries of size,
base_addr, length, type -- the E820 map as the loader got it from the BIOS).
"""

from __future__ import annotations

import struct

MB_MAGIC = 0x2BADB002              # EAX when the loader enters the kernel
MBI_MEM, MBI_CMDLINE, MBI_MODS, MBI_MMAP = 1 << 0, 1 << 2, 1 << 3, 1 << 6
MBI_SIZE = 88


def write_mbi(memory, at: int, *, cmdline: str, modules: list[tuple[int, int, str]],
              mem_lower_kb: int = 639, mem_upper_kb: int = 0,
              mmap: list[tuple[int, int, int]] | None = None) -> int:
    """Write the information block at ``at`` (the memory map, module list and
    strings after it); returns ``at``.  ``mmap``: (base, length, type) triples."""
    mm = b"".join(struct.pack("<IQQI", 20, base, length, typ) for base, length, typ in mmap or ())
    mmap_at = at + MBI_SIZE + 16 * len(modules)
    strings = mmap_at + len(mm)
    blobs = []

    def string(s: str) -> int:
        nonlocal strings
        addr = strings
        raw = s.encode("latin-1") + b"\0"
        blobs.append((addr, raw))
        strings += len(raw)
        return addr

    mods = b""
    for start, end, name in modules:
        mods += struct.pack("<IIII", start, end, string(name), 0)
    info = bytearray(MBI_SIZE)
    flags = MBI_MEM | MBI_CMDLINE | MBI_MODS | (MBI_MMAP if mm else 0)
    struct.pack_into("<IIII", info, 0, flags, mem_lower_kb, mem_upper_kb, 0)
    struct.pack_into("<III", info, 16, string(cmdline), len(modules), at + MBI_SIZE)
    if mm:
        struct.pack_into("<II", info, 44, len(mm), mmap_at)
    memory.write_bytes(at, bytes(info) + mods + mm)
    for addr, raw in blobs:
        memory.write_bytes(addr, raw)
    return at


def read_mbi(memory, at: int) -> dict:
    """The same fields back, as the hypervisor's C code reads them."""
    flags, mem_lower, mem_upper = struct.unpack("<III", memory.read_bytes(at, 12))
    cmd_pa, count, mods_addr = struct.unpack("<III", memory.read_bytes(at + 16, 12))

    def cstr(pa):
        return memory.read_bytes(pa, 1024).split(b"\0")[0].decode("latin-1") if pa else ""

    mods = []
    if flags & MBI_MODS:
        for i in range(count):
            start, end, s, _ = struct.unpack("<IIII", memory.read_bytes(mods_addr + 16 * i, 16))
            mods.append((start, end, cstr(s)))
    mmap = []
    if flags & MBI_MMAP:
        length, addr = struct.unpack("<II", memory.read_bytes(at + 44, 8))
        off = 0
        while off + 24 <= length:
            size, base, n, typ = struct.unpack("<IQQI", memory.read_bytes(addr + off, 24))
            mmap.append((base, n, typ))
            off += size + 4
    return {"flags": flags, "mem_lower_kb": mem_lower, "mem_upper_kb": mem_upper,
            "cmdline": cstr(cmd_pa) if flags & MBI_CMDLINE else "", "modules": mods,
            "mmap": mmap}
