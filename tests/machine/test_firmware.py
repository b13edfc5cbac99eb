"""Firmware in machine memory: ACPI tables (checked by ACPICA's own disassembler),
the BIOS32 directory and PCI BIOS, the BIOS data area."""

import shutil
import struct
import subprocess

import pytest

from xenlab.machine import Machine
from xenlab.machine.firmware import acpi
from xenlab.machine.firmware import bios32 as B
from xenlab.machine.profile import list_profiles

PROFILES = list_profiles()


@pytest.fixture(scope="module", params=PROFILES)
def machine(request):
    return Machine.from_profile(request.param, seed=3)


def find_rsdp(mem):
    """What an OS does: scan 0xE0000-0xFFFFF on 16-byte boundaries (ACPI §5.2.5.1)."""
    rom = mem.read_bytes(0xE0000, 0x20000)
    for off in range(0, len(rom), 16):
        if rom[off:off + 8] == b"RSD PTR " and sum(rom[off:off + 20]) % 256 == 0:
            return 0xE0000 + off, rom[off:off + 36]
    return None, None


def tables(mem):
    addr, rsdp = find_rsdp(mem)
    assert rsdp is not None and sum(rsdp) % 256 == 0 and rsdp[15] == 2
    rsdt_addr, length, xsdt_addr = struct.unpack_from("<IIQ", rsdp, 16)
    out = {}
    for root, width in ((xsdt_addr, 8), (rsdt_addr, 4)):
        head = mem.read_bytes(root, 36)
        n = struct.unpack_from("<I", head, 4)[0]
        body = mem.read_bytes(root, n)
        assert sum(body) % 256 == 0
        ptrs = [int.from_bytes(body[i:i + width], "little") for i in range(36, n, width)]
        for p in ptrs:
            ln = struct.unpack_from("<I", mem.read_bytes(p + 4, 4))[0]
            data = mem.read_bytes(p, ln)
            out[data[:4].decode()] = data
        out[body[:4].decode()] = body
    fadt = out["FACP"]
    dsdt_addr = struct.unpack_from("<Q", fadt, 140)[0]
    assert dsdt_addr == struct.unpack_from("<I", fadt, 40)[0]
    ln = struct.unpack_from("<I", mem.read_bytes(dsdt_addr + 4, 4))[0]
    out["DSDT"] = mem.read_bytes(dsdt_addr, ln)
    facs_addr = struct.unpack_from("<I", fadt, 36)[0]
    out["FACS"] = mem.read_bytes(facs_addr, 64)
    assert facs_addr % 64 == 0
    return out


def test_tables_checksums_and_madt_contents(machine):
    t = tables(machine.memory)
    for sig, data in t.items():
        if sig != "FACS":
            assert sum(data) % 256 == 0, sig
    madt = t["APIC"]
    assert struct.unpack_from("<I", madt, 36)[0] == machine.profile["lapic"]["address"]
    lapics, ioapics, ovr, nmis = [], [], [], []
    off = 44
    while off < len(madt):
        typ, ln = madt[off], madt[off + 1]
        if typ == 0:
            lapics.append((madt[off + 3], struct.unpack_from("<I", madt, off + 4)[0] & 1))
        elif typ == 1:
            ioapics.append((madt[off + 2], *struct.unpack_from("<II", madt, off + 4)))
        elif typ == 2:
            ovr.append((madt[off + 3], struct.unpack_from("<I", madt, off + 4)[0]))
        elif typ == 4:
            nmis.append(madt[off + 5])
        off += ln
    prof = machine.profile
    assert [a for a, en in lapics if en] == [c["apic_id"] for c in prof.cpus]
    assert ioapics == [(i["id"], i["address"], i["gsi_base"]) for i in prof["ioapics"]]
    assert ovr == [(o["bus_irq"], o["gsi"]) for o in prof["overrides"]]
    assert len(nmis) == len(prof["lapic_nmi"])
    if prof["pci_host"]["mcfg"]:
        base = struct.unpack_from("<Q", t["MCFG"], 44)[0]
        assert base == prof["pci_host"]["mcfg"]["base"]


IASL = shutil.which("iasl")


@pytest.mark.skipif(IASL is None, reason="iasl (Debian acpica-tools) not installed; "
                                         "tools/sysdeps.sh installs it")
def test_acpica_disassembles_every_table_cleanly(machine, tmp_path):
    t = tables(machine.memory)
    prof = machine.profile
    expect = {
        "APIC": ["Local Apic Address : FEE00000", "Processor Local APIC", "I/O APIC",
                 f"Local Apic ID : {prof.cpus[-1]['apic_id']:02X}"],
        "FACP": ["Fixed ACPI Description Table", "SCI Interrupt : 0009" if prof["acpi"]["sci_irq"] == 9
                 else "SCI Interrupt", f"PM Timer Block Address : {prof['acpi']['pm_timer_port']:08X}"],
        "DSDT": ["PNP0A03", "_S5_", "_PRT"],
        "RSDT": ["Root System Description Table"],
        "XSDT": ["Extended System Description Table"],
        "FACS": ['Signature : "FACS"', "Version : 02"],
    }
    if prof["overrides"]:
        expect["APIC"].append("Interrupt Source Override")
    if prof["acpi"]["hpet"] is not None:
        expect["HPET"] = [f"Hardware Block ID : {prof['acpi']['hpet_id']:08X}",
                          f"Address : {prof['acpi']['hpet']:016X}"]
    if prof["pci_host"]["mcfg"]:
        expect["MCFG"] = ["Memory Mapped Configuration Table",
                          f"Base Address : {prof['pci_host']['mcfg']['base']:016X}"]
    for sig, words in expect.items():
        f = tmp_path / f"{sig.lower()}.dat"
        f.write_bytes(t[sig])
        r = subprocess.run([IASL, "-d", str(f)], capture_output=True, text=True, cwd=tmp_path)
        out = r.stdout + r.stderr
        assert r.returncode == 0, out
        assert "Error" not in out and "Invalid" not in out, out
        dsl = (tmp_path / f"{sig.lower()}.dsl").read_text()
        assert "Checksum" in dsl or sig == "FACS"
        assert "Incorrect checksum" not in dsl and "**** ACPI table terminates" not in dsl
        norm = " ".join(dsl.split()).lower()
        for w in words:
            assert " ".join(w.split()).lower() in norm, f"{sig}: {w!r} not in disassembly"
    if any(f.get("interrupt") for f in prof["pci"] if f["bus"] == 0):
        dsl = (tmp_path / "dsdt.dsl").read_text()
        gsi = next(f["interrupt"]["gsi"] for f in prof["pci"] if f.get("interrupt") and f["bus"] == 0)
        assert f"0x{gsi:02X}" in dsl or f"0x{gsi:08X}" in dsl or f"0x{gsi:04X}" in dsl


@pytest.mark.skipif(IASL is None, reason="iasl not installed")
def test_our_aml_matches_what_iasl_compiles(tmp_path):
    """The hand-encoded AML of the DSDT equals iasl's compilation of the same ASL."""
    asl = """DefinitionBlock ("", "DSDT", 2, "XENLAB", "XLPC", 0x00000001)
{
    Scope (\\_SB)
    {
        Device (PCI0)
        {
            Name (_HID, EisaId ("PNP0A03"))
            Name (_UID, Zero)
            Name (_BBN, Zero)
            Name (_PRT, Package (0x02)
            {
                Package (0x04) { 0x0003FFFF, Zero, Zero, 0x10 },
                Package (0x04) { 0x001FFFFF, One, Zero, 0x11 }
            })
            Device (BR01)
            {
                Name (_ADR, 0x001E0000)
                Name (_PRT, Package (0x01)
                {
                    Package (0x04) { 0xFFFF, 0x03, Zero, 0x0123 }
                })
            }
        }
    }
    Name (\\_S5, Package (0x04) { 0x05, 0x05, Zero, Zero })
}
"""
    (tmp_path / "t.asl").write_text(asl)
    r = subprocess.run([IASL, "-p", str(tmp_path / "t"), str(tmp_path / "t.asl")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    ref = (tmp_path / "t.aml").read_bytes()
    ours = acpi.dsdt("XENLAB", "XLPC", [(0x0003FFFF, 0, 0x10), (0x001FFFFF, 1, 0x11)],
                     [("BR01", 0x001E0000, [(0xFFFF, 3, 0x123)], [])])
    assert ours[36:] == ref[36:]


def test_pkg_length_encoding():
    assert acpi.pkg_length(10) == bytes([11])
    assert acpi.pkg_length(62) == bytes([63])
    assert acpi.pkg_length(63) == bytes([0x40 | 1, 4])        # 65 = 0x41
    assert acpi.eisa_id("PNP0A03") == 0x030AD041


def test_bios32_directory_and_pci_bios(machine):
    mem = machine.memory
    hits = [a for a in range(0xE0000, 0x100000, 16) if mem.read_bytes(a, 4) == b"_32_"]
    assert len(hits) == 1
    hdr = mem.read_bytes(hits[0], 16)
    assert sum(hdr) % 256 == 0 and hdr[9] == 1
    entry = struct.unpack_from("<I", hdr, 4)[0]
    assert mem.read_bytes(entry, 2) == b"\xCC\xC3"           # INT3 for the trap, then RET
    bios = machine.firmware.bios32
    r = bios.traps[entry](dict(eax=B.SERVICE_PCI, ebx=0, ecx=0, edx=0, esi=0, edi=0))
    assert r["eax"] & 0xFF == 0
    pci_entry = r["ebx"] + r["edx"]
    assert pci_entry in machine.firmware.traps
    call = machine.firmware.traps[pci_entry]
    regs = dict(eax=0xB101, ebx=0, ecx=0, edx=0, esi=0, edi=0)
    r = call(regs)
    assert r["cf"] == 0 and r["edx"] == 0x20494350 and (r["eax"] >> 8) & 0xFF == 0
    assert r["eax"] & 0xFF == 0x01                          # mechanism #1 only
    assert r["ebx"] & 0xFFFF == 0x0210
    assert r["ecx"] & 0xFF == machine.pci.last_bus()
    for i, f in enumerate(machine.profile["pci"][:12]):
        r = call(dict(eax=0xB102, ebx=0, ecx=f["device"], edx=f["vendor"], esi=0, edi=0))
        assert r["cf"] == 0
        bus, devfn = (r["ebx"] >> 8) & 0xFF, r["ebx"] & 0xFF
        r = call(dict(eax=0xB10A, ebx=bus << 8 | devfn, ecx=0, edx=0, esi=0, edi=0))
        assert r["ecx"] == f["vendor"] | f["device"] << 16
        assert r["cf"] == 0
    r = call(dict(eax=0xB109, ebx=0, ecx=0, edx=0, esi=0, edi=3))
    assert r["cf"] == 1 and (r["eax"] >> 8) & 0xFF == B.BAD_REGISTER_NUMBER
    r = call(dict(eax=0xB102, ebx=0, ecx=0x1234, edx=0x1111, esi=0, edi=0))
    assert r["cf"] == 1 and (r["eax"] >> 8) & 0xFF == B.DEVICE_NOT_FOUND
    r = call(dict(eax=0xB102, ebx=0, ecx=0, edx=0xFFFF, esi=0, edi=0))
    assert (r["eax"] >> 8) & 0xFF == B.BAD_VENDOR_ID


def test_pci_bios_write_and_class_search():
    m = Machine.from_profile("qemu-i440fx")
    call = m.firmware.traps[B.PCI_ENTRY]
    r = call(dict(eax=0xB103, ebx=0, ecx=0x020000, edx=0, esi=0, edi=0))
    assert r["cf"] == 0 and r["ebx"] & 0xFF == 3 << 3                    # the e1000
    call(dict(eax=0xB10B, ebx=3 << 3, ecx=0x0E, edx=0, esi=0, edi=0x3C))
    assert m.pci.find(0, 3, 0).config_read(0x3C, 1) == 0x0E
    r = call(dict(eax=0xB1FF, ebx=0, ecx=0, edx=0, esi=0, edi=0))
    assert r["cf"] == 1 and (r["eax"] >> 8) & 0xFF == B.FUNC_NOT_SUPPORTED


def test_bios_data_area(machine):
    mem = machine.memory
    com1 = mem.read16(0x400)
    serial = machine.profile["serial"]
    assert com1 == (serial[0]["port"] if serial else 0)
    ebda = mem.read16(0x40E) << 4
    assert ebda == machine.firmware.ebda and mem.read8(ebda) == 1
    assert mem.read16(0x413) == ebda >> 10
    assert (mem.read16(0x410) >> 9) & 7 == len(serial[:4])
    assert mem.read32(0x20) == 0xF000FF53 and mem.read8(0xFFF53) == 0xCF
    assert mem.read8(0xFFFF0) == 0xEA


def test_video_option_rom_where_there_is_a_display(machine):
    has_vga = any(f["class"] >> 16 == 3 for f in machine.profile["pci"])
    head = machine.memory.read_bytes(0xC0000, 3)
    assert (head[:2] == b"\x55\xAA") == has_vga
    if has_vga:
        rom = machine.memory.read_bytes(0xC0000, head[2] * 512)
        assert sum(rom) % 256 == 0 and rom[0x1E:0x21] == b"IBM"
