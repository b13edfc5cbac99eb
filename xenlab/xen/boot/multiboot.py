"""The multiboot information a boot loader hands to a kernel (Multiboot
Specification 0.6.96, §3.3): the loader side (write) and the kernel side (read).

Only the fields xenlab uses: flags, mem_lower/mem_upper, cmdline, mods_count,
mods_addr; each module entry is mod_start, mod_end, string, reserved.
"""

from __future__ import annotations

import struct

MB_MAGIC = 0x2BADB002              # EAX when the loader enters the kernel
MBI_MEM, MBI_CMDLINE, MBI_MODS = 1 << 0, 1 << 2, 1 << 3
MBI_SIZE = 88


def write_mbi(memory, at: int, *, cmdline: str, modules: list[tuple[int, int, str]],
              mem_lower_kb: int = 639, mem_upper_kb: int = 0) -> int:
    """Write the information block at ``at`` (strings after it); returns ``at``."""
    strings = at + MBI_SIZE + 16 * len(modules)
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
    struct.pack_into("<IIII", info, 0, MBI_MEM | MBI_CMDLINE | MBI_MODS, mem_lower_kb,
                     mem_upper_kb, 0)
    struct.pack_into("<III", info, 16, string(cmdline), len(modules), at + MBI_SIZE)
    memory.write_bytes(at, bytes(info) + mods)
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
    return {"flags": flags, "mem_lower_kb": mem_lower, "mem_upper_kb": mem_upper,
            "cmdline": cstr(cmd_pa) if flags & MBI_CMDLINE else "", "modules": mods}
