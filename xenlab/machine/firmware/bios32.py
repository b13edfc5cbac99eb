"""The BIOS32 Service Directory and the 32-bit PCI BIOS ("$PCI") behind it.

The directory is a 16-byte header in 0xE0000-0xFFFFF on a paragraph boundary
(Standard BIOS 32-bit Service Directory Proposal, rev 0.4: signature "_32_",
entry point, revision 0, length 1 paragraph, checksum, 5 reserved bytes).  A
caller asks the entry point for a service by its four-character id in EAX
("$PCI") and gets its base, length and entry offset back.  The PCI BIOS
functions are those of the PCI BIOS Specification 2.1 §3 (AH = 0xB1; AL = 01h
PCI_BIOS_PRESENT, 02h FIND_PCI_DEVICE, 03h FIND_PCI_CLASS_CODE, 08h-0Dh config
reads and writes), with its return codes (§3.2: 00h SUCCESSFUL, 81h
FUNC_NOT_SUPPORTED, 83h BAD_VENDOR_ID, 86h DEVICE_NOT_FOUND, 87h
BAD_REGISTER_NUMBER) and CF set on error.

How the calls are answered (see docs/platform.md, "BIOS calls"): each entry
point in machine memory holds INT3 followed by RET.  A native boot runs the
vCPU with the machine's native run loop, which treats a breakpoint at one of
these machine addresses as a firmware call: it runs the handler here on the
vCPU's registers and returns to the caller.  Nothing else services these
traps: a paravirtualised guest's run loop belongs to the hypervisor, which has
no BIOS to offer.
"""

from __future__ import annotations

import struct

from .acpi import checksum

SIG_32 = b"_32_"
SERVICE_PCI = 0x49435024            # "$PCI" as a little-endian dword
PCI_SIGNATURE = 0x20494350          # "PCI " in EDX after PCI_BIOS_PRESENT
SUCCESSFUL, FUNC_NOT_SUPPORTED, BAD_VENDOR_ID = 0x00, 0x81, 0x83
DEVICE_NOT_FOUND, BAD_REGISTER_NUMBER = 0x86, 0x87
PCI_FUNCTION_ID = 0xB1
(PCI_BIOS_PRESENT, FIND_PCI_DEVICE, FIND_PCI_CLASS_CODE, GENERATE_SPECIAL_CYCLE,
 READ_CONFIG_BYTE, READ_CONFIG_WORD, READ_CONFIG_DWORD, WRITE_CONFIG_BYTE,
 WRITE_CONFIG_WORD, WRITE_CONFIG_DWORD, GET_IRQ_ROUTING_OPTIONS, SET_PCI_IRQ) = (
    0x01, 0x02, 0x03, 0x06, 0x08, 0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x0E, 0x0F)

DIRECTORY = 0xF0000                 # the "_32_" header
DIRECTORY_ENTRY = 0xF0100           # its entry point (INT3; RET)
PCI_SERVICE_BASE = 0xF0000          # the $PCI service as the directory reports it
PCI_ENTRY = 0xF0110                 # $PCI entry point (INT3; RET)
INT3_RET = b"\xCC\xC3"


def directory_header(entry: int) -> bytes:
    raw = bytearray(struct.pack("<4sIBB", SIG_32, entry, 0, 1) + bytes(6))
    raw[10] = checksum(raw)
    return bytes(raw)


def _set8(v, b):
    return (v & ~0xFF) | (b & 0xFF)


def _set_ah(v, b):
    return (v & ~0xFF00) | ((b & 0xFF) << 8)


class PciBios:
    """Answers PCI BIOS calls on a register dict (eax, ebx, ecx, edx, esi, edi)."""

    def __init__(self, host):
        self.host = host
        self.calls: list[tuple[int, int]] = []          # (AL, status) for inspection

    def _mechanisms(self):
        return (0x01 if 1 in self.host.mechanisms else 0) | (0x02 if 2 in self.host.mechanisms else 0)

    def call(self, regs: dict) -> dict:
        r = dict(regs)
        ah, al = (r["eax"] >> 8) & 0xFF, r["eax"] & 0xFF
        if ah != PCI_FUNCTION_ID:
            return self._done(r, FUNC_NOT_SUPPORTED, al)
        if al == PCI_BIOS_PRESENT:
            r["edx"] = PCI_SIGNATURE
            r["eax"] = _set8(_set_ah(r["eax"], 0), self._mechanisms())
            r["ebx"] = (r["ebx"] & ~0xFFFF) | 0x0210       # interface level 2.10 (BCD)
            r["ecx"] = _set8(r["ecx"], self.host.last_bus())
            self.calls.append((al, 0))
            r["cf"] = 0
            return r
        if al in (FIND_PCI_DEVICE, FIND_PCI_CLASS_CODE):
            index = r["esi"] & 0xFFFF
            if al == FIND_PCI_DEVICE:
                vendor, device = r["edx"] & 0xFFFF, r["ecx"] & 0xFFFF
                if vendor == 0xFFFF:
                    return self._done(r, BAD_VENDOR_ID, al)
                match = [f for f in self.host.walk() if f.vendor == vendor and f.device == device]
            else:
                cls = r["ecx"] & 0xFFFFFF
                match = [f for f in self.host.walk() if f.class_code == cls]
            if index >= len(match):
                return self._done(r, DEVICE_NOT_FOUND, al)
            f = match[index]
            r["ebx"] = (r["ebx"] & ~0xFFFF) | f.bus.number << 8 | f.slot[0] << 3 | f.slot[1]
            return self._done(r, SUCCESSFUL, al)
        if READ_CONFIG_BYTE <= al <= WRITE_CONFIG_DWORD:
            size = (1, 2, 4)[(al - READ_CONFIG_BYTE) % 3]
            reg = r["edi"] & 0xFFFF
            if reg % size or reg + size > 256:
                return self._done(r, BAD_REGISTER_NUMBER, al)
            bus, devfn = (r["ebx"] >> 8) & 0xFF, r["ebx"] & 0xFF
            f = self.host.find(bus, devfn >> 3, devfn & 7)
            mask = (1 << (8 * size)) - 1
            if al <= READ_CONFIG_DWORD:
                v = mask if f is None else f.config_read(reg, size)
                r["ecx"] = (r["ecx"] & ~mask) | v
            elif f is not None:
                f.config_write(reg, size, r["ecx"] & mask)
            return self._done(r, SUCCESSFUL, al)
        return self._done(r, FUNC_NOT_SUPPORTED, al)

    def _done(self, r, status, al):
        r["eax"] = _set_ah(r["eax"], status)
        r["cf"] = int(status != SUCCESSFUL)
        self.calls.append((al, status))
        return r


class Bios32:
    """The service directory, the $PCI service, and the trap table the native
    run loop consults."""

    def __init__(self, host):
        self.pci = PciBios(host)
        self.traps = {DIRECTORY_ENTRY: self.directory_call, PCI_ENTRY: self.pci.call}

    def install(self, memory):
        memory.write_bytes(DIRECTORY, directory_header(DIRECTORY_ENTRY))
        memory.write_bytes(DIRECTORY_ENTRY, INT3_RET)
        memory.write_bytes(PCI_ENTRY, INT3_RET)

    def directory_call(self, regs: dict) -> dict:
        r = dict(regs)
        if r["ebx"] & 0xFF:
            r["eax"] = _set8(r["eax"], 0x81)               # bad function selector
        elif r["eax"] & 0xFFFFFFFF == SERVICE_PCI:
            r["eax"] = _set8(r["eax"], 0x00)
            r["ebx"] = PCI_SERVICE_BASE
            r["ecx"] = 0x10000
            r["edx"] = PCI_ENTRY - PCI_SERVICE_BASE
        else:
            r["eax"] = _set8(r["eax"], 0x80)               # service not present
        r["cf"] = 0
        return r
