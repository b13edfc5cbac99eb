"""The first megabyte as a PC BIOS leaves it: real-mode IVT, BIOS data area, EBDA,
the F-segment entry points.

BIOS data area offsets are the IBM PC/AT BIOS conventions (also in Ralf Brown's
memory map): 0x400 COM1-COM4 base ports, 0x408 LPT1-LPT3 (then the EBDA segment
at 0x40E), 0x410 equipment word, 0x413 base memory in KiB, 0x46C timer ticks.
The EBDA's first byte is its size in KiB.  The reset vector at 0xFFFF0 is a
far jump to F000:E05B, the BIOS date is at 0xFFFF5 and the model byte (0xFC,
AT class) at 0xFFFFE.  Each IVT entry points at an IRET at F000:FF53, the
address IBM's BIOS used for its dummy handler.  A machine with a display adapter
has its video BIOS shadowed at 0xC0000 as an option ROM (PCI Firmware
Specification 3.0 §5.1.1: 0x55 0xAA, length in 512-byte units, and a byte sum of
zero over the image), "IBM" at offset 0x1E as VGA BIOSes carry it.
"""

from __future__ import annotations

import struct

IVT, BDA = 0x0, 0x400
VIDEO_ROM, VIDEO_ROM_SIZE = 0xC0000, 0x8000
DUMMY_IRET = 0xFFF53
RESET_VECTOR = 0xFFFF0


def ebda_base(e820) -> int:
    """Where the EBDA goes: the end of the RAM that starts at 0, below 640 KiB."""
    for e in sorted(e820):
        if e.base == 0 and e.type == 1:
            return min(e.end, 0xA0000) & ~0x3FF if e.end <= 0xA0000 else 0x9FC00
    return 0x9FC00


def video_rom() -> bytes:
    rom = bytearray(VIDEO_ROM_SIZE)
    rom[0:3] = bytes([0x55, 0xAA, VIDEO_ROM_SIZE // 512])
    rom[3:6] = b"\xCB\x90\x90"                  # init entry: RETF
    rom[0x1E:0x21] = b"IBM"
    rom[-1] = (-sum(rom)) & 0xFF
    return bytes(rom)


def install(memory, *, e820, serial_ports, parallel_ports, floppy, bios_date="01/01/07",
            vga=False):
    ebda = ebda_base(e820)
    memory.write_bytes(IVT, struct.pack("<I", 0xF000 << 16 | (DUMMY_IRET & 0xFFFF)) * 256)
    com = [p for p in serial_ports[:4]] + [0] * (4 - len(serial_ports[:4]))
    lpt = [p for p in parallel_ports[:3]] + [0] * (3 - len(parallel_ports[:3]))
    equipment = (0x0001 if floppy else 0) | 0x0002 | 0x0020 | (len(serial_ports[:4]) << 9) \
        | (len(parallel_ports[:3]) << 14)
    bda = struct.pack("<4H3HHHBH", *com, *lpt, ebda >> 4, equipment, 0, ebda >> 10)
    memory.write_bytes(BDA, bda)
    memory.write8(ebda, 1)                        # EBDA size: 1 KiB
    memory.write8(DUMMY_IRET, 0xCF)               # IRET
    if vga:
        memory.write_bytes(VIDEO_ROM, video_rom())
    memory.write_bytes(RESET_VECTOR, b"\xEA\x5B\xE0\x00\xF0" + bios_date.encode()[:8].ljust(8, b"/")
                       + b"\x00\xFC\x00")
    return ebda
