"""ACPI tables: RSDP, RSDT, XSDT, FADT, FACS, DSDT, MADT and MCFG, with checksums.

Layouts follow the ACPI Specification 6.5:
- §5.2.5.3 Root System Description Pointer (Table 5.3): 36 bytes, a checksum over
  the first 20 and an extended checksum over all 36;
- §5.2.6 System Description Table header (Table 5.4): 36 bytes;
- §5.2.7 RSDT (32-bit entries), §5.2.8 XSDT (64-bit entries);
- §5.2.9 FADT (Table 5.9; revision 4 here, 244 bytes, with Generic Address
  Structures, §5.2.3.2, for the X_ fields);
- §5.2.10 FACS (Table 5.14, 64 bytes, 64-byte aligned, no checksum);
- §5.2.11.1 DSDT, whose body is AML (§20: package lengths §20.2.4, name
  strings §20.2.2, Scope/Device/Name/Package opcodes §20.2.5);
- §5.2.12 MADT (Table 5.19) with Processor Local APIC (§5.2.12.2), I/O APIC
  (§5.2.12.3), Interrupt Source Override (§5.2.12.5, MPS INTI flags Table 5.26)
  and Local APIC NMI (§5.2.12.7) structures;
- MCFG: PCI Firmware Specification 3.0 §4.1.2 (the ECAM base per segment/bus range);
- HPET: IA-PC HPET Specification 1.0a §3.2.4 (event timer block id, base address
  as a GAS, sequence number, minimum tick, page protection).
"""

from __future__ import annotations

import struct

CREATOR_ID = b"XLAB"
CREATOR_REV = 1
MPS_POLARITY = {"conform": 0, "high": 1, "low": 3}
MPS_TRIGGER = {"conform": 0, "edge": 1, "level": 3}


def checksum(data: bytes) -> int:
    """The byte that makes ``data`` sum to zero modulo 256."""
    return (-sum(data)) & 0xFF


def _pad(text: str, n: int) -> bytes:
    return text.encode("ascii", "replace")[:n].ljust(n, b" ")


def sdt(signature: str, revision: int, body: bytes, oem_id: str, oem_table_id: str,
        oem_revision: int = 1) -> bytes:
    """A table with the common header (ACPI §5.2.6) and a correct checksum."""
    length = 36 + len(body)
    head = struct.pack("<4sIBB6s8sI4sI", signature.encode(), length, revision, 0,
                       _pad(oem_id, 6), _pad(oem_table_id, 8), oem_revision,
                       CREATOR_ID, CREATOR_REV)
    raw = bytearray(head + body)
    raw[9] = checksum(raw)
    return bytes(raw)


def rsdp(oem_id: str, rsdt_address: int, xsdt_address: int) -> bytes:
    raw = bytearray(struct.pack("<8sB6sBII", b"RSD PTR ", 0, _pad(oem_id, 6), 2,
                                rsdt_address, 36))
    raw[8] = checksum(raw[:20])
    raw += struct.pack("<QB3x", xsdt_address, 0)
    raw[32] = checksum(raw)
    return bytes(raw)


def rsdt(entries, oem_id, oem_table_id):
    return sdt("RSDT", 1, b"".join(struct.pack("<I", a) for a in entries), oem_id, oem_table_id)


def xsdt(entries, oem_id, oem_table_id):
    return sdt("XSDT", 1, b"".join(struct.pack("<Q", a) for a in entries), oem_id, oem_table_id)


def gas(space: int, bit_width: int, address: int, access_size: int = 0) -> bytes:
    """Generic Address Structure (ACPI §5.2.3.2): 0 = memory, 1 = system I/O."""
    return struct.pack("<BBBBQ", space, bit_width, 0, access_size, address)


def fadt(*, facs: int, dsdt: int, sci_irq: int, pm_base: int, legacy: bool, i8042: bool,
         oem_id: str, oem_table_id: str, century: int = 0x32) -> bytes:
    """FADT revision 4 (ACPI 3.0 layout, 244 bytes), PM blocks at ``pm_base``:
    PM1a_EVT +0 (4 bytes), PM1a_CNT +4 (2), PM_TMR +8 (4), GPE0 +0x20 (8)."""
    boot_arch = (0x1 if legacy else 0) | (0x2 if i8042 else 0)
    flags = 0x1 | 0x4 | 0x20 | 0x100        # WBINVD, PROC_C1, SLP_BUTTON, TMR_VAL_EXT
    body = struct.pack(
        "<IIBBHIBBBBIIIIIIIIBBBBBBBBHHHHBBBBBHBI",
        facs, dsdt, 0, 0, sci_irq, 0, 0, 0, 0, 0,           # SMI_CMD 0: ACPI mode is on
        pm_base, 0, pm_base + 4, 0, 0, pm_base + 8, pm_base + 0x20, 0,
        4, 2, 0, 4, 8, 0, 0, 0,
        101, 1001, 0, 0, 0, 0, 0, 0, century, boot_arch, 0, flags)
    body += gas(1, 8, 0xCF9) + bytes([0x06]) + bytes(3)     # RESET_REG: port 0xCF9
    body += struct.pack("<QQ", facs, dsdt)
    body += (gas(1, 32, pm_base) + gas(0, 0, 0) + gas(1, 16, pm_base + 4) + gas(0, 0, 0)
             + gas(0, 0, 0) + gas(1, 32, pm_base + 8) + gas(1, 64, pm_base + 0x20)
             + gas(0, 0, 0))
    assert 36 + len(body) == 244
    return sdt("FACP", 4, body, oem_id, oem_table_id)


def facs() -> bytes:
    return struct.pack("<4sIIIIIQB3xI24s", b"FACS", 64, 0, 0, 0, 0, 0, 2, 0, bytes(24))


# -- AML (ACPI §20) -------------------------------------------------------------------

def pkg_length(n_body: int) -> bytes:
    """PkgLength encoding for a body of ``n_body`` bytes (the length counts itself)."""
    for nbytes in (1, 2, 3, 4):
        total = n_body + nbytes
        if nbytes == 1 and total < 64:
            return bytes([total])
        if nbytes > 1 and total < 1 << (4 + 8 * (nbytes - 1)):
            out = [((nbytes - 1) << 6) | (total & 0xF)]
            total >>= 4
            for _ in range(nbytes - 1):
                out.append(total & 0xFF)
                total >>= 8
            return bytes(out)
    raise ValueError("AML package too long")


def name_seg(name: str) -> bytes:
    return name.encode("ascii").ljust(4, b"_")[:4]


def aml_int(v: int) -> bytes:
    if v == 0:
        return b"\x00"
    if v == 1:
        return b"\x01"
    if v < 0x100:
        return b"\x0A" + bytes([v])
    if v < 0x10000:
        return b"\x0B" + struct.pack("<H", v)
    if v < 1 << 32:
        return b"\x0C" + struct.pack("<I", v)
    return b"\x0E" + struct.pack("<Q", v)


def aml_name(name: str, value: bytes) -> bytes:
    return b"\x08" + name_seg(name) + value


def aml_package(items) -> bytes:
    body = bytes([len(items)]) + b"".join(items)
    return b"\x12" + pkg_length(len(body)) + body


def aml_scope(path: bytes, body: bytes) -> bytes:
    inner = path + body
    return b"\x10" + pkg_length(len(inner)) + inner


def aml_device(name: str, body: bytes) -> bytes:
    inner = name_seg(name) + body
    return b"\x5B\x82" + pkg_length(len(inner)) + inner


def eisa_id(text: str) -> int:
    """EISA id compression ("PNP0A03" -> 0x030AD041), as ASL's EisaId() does."""
    c = [ord(x) - 0x40 for x in text[:3]]
    v = (c[0] << 26 | c[1] << 21 | c[2] << 16 | int(text[3:], 16))
    return int.from_bytes(v.to_bytes(4, "big"), "little")


def prt(entries) -> bytes:
    """Name(_PRT, Package(){ Package(){address, pin, 0, gsi}, ... }) (ACPI §6.2.13)."""
    return aml_name("_PRT", aml_package([aml_package([aml_int(a), aml_int(p), aml_int(0),
                                                      aml_int(g)]) for a, p, g in entries]))


def _bridge_devices(bridges) -> bytes:
    out = b""
    for name, adr, entries, children in bridges:
        out += aml_device(name, aml_name("_ADR", aml_int(adr))
                          + (prt(entries) if entries else b"") + _bridge_devices(children))
    return out


def dsdt(oem_id, oem_table_id, root_prt=(), bridges=()) -> bytes:
    """\\_SB.PCI0 (a PNP0A03 host bridge with its _PRT, and under it one device per
    PCI-to-PCI bridge, nested as the buses are, each with _ADR and its secondary
    bus's _PRT) and \\_S5 (soft-off sleep type).  ``bridges`` holds
    (name, adr, prt entries, child bridges) tuples."""
    devs = _bridge_devices(bridges)
    pci0 = aml_device("PCI0", aml_name("_HID", aml_int(eisa_id("PNP0A03")))
                      + aml_name("_UID", aml_int(0)) + aml_name("_BBN", aml_int(0))
                      + (prt(root_prt) if root_prt else b"") + devs)
    # at the table's root scope "_SB_" and "_S5_" name \_SB and \_S5 (iasl drops the "\" too)
    body = aml_scope(b"_SB_", pci0)
    body += aml_name("_S5_", aml_package([aml_int(5), aml_int(5), aml_int(0), aml_int(0)]))
    return sdt("DSDT", 2, body, oem_id, oem_table_id)


def madt(*, lapic_address, cpus, ioapics, overrides, nmis, oem_id, oem_table_id) -> bytes:
    body = struct.pack("<II", lapic_address, 1)              # PCAT_COMPAT: dual 8259s
    for c in cpus:
        body += struct.pack("<BBBBI", 0, 8, c["acpi_id"], c["apic_id"] if c["enabled"] else 0xFF,
                            1 if c["enabled"] else 0)
    for io in ioapics:
        body += struct.pack("<BBBBII", 1, 12, io["id"], 0, io["address"], io["gsi_base"])
    for o in overrides:
        flags = MPS_POLARITY[o["polarity"]] | MPS_TRIGGER[o["trigger"]] << 2
        body += struct.pack("<BBBBIH", 2, 10, 0, o["bus_irq"], o["gsi"], flags)
    for n in nmis:
        flags = MPS_POLARITY[n["polarity"]] | MPS_TRIGGER[n["trigger"]] << 2
        body += struct.pack("<BBBHB", 4, 6, n["acpi_id"], flags, n["lint"])
    return sdt("APIC", 3, body, oem_id, oem_table_id)


def mcfg(base, start_bus, end_bus, oem_id, oem_table_id) -> bytes:
    body = bytes(8) + struct.pack("<QHBBI", base, 0, start_bus, end_bus, 0)
    return sdt("MCFG", 1, body, oem_id, oem_table_id)


def hpet(block_id, base, oem_id, oem_table_id, min_tick=0x80) -> bytes:
    body = struct.pack("<I", block_id) + gas(0, 64, base) + struct.pack("<BHB", 0, min_tick, 0)
    return sdt("HPET", 1, body, oem_id, oem_table_id)
