"""``addr/fmt``, ``addr?fmt``, ``value=fmt`` against memory read another way."""

import struct

import capstone
import pytest

from .oracle import sym, vread


def test_K_J_X_x_B_read_guest_memory(k_any, any_stage):
    base = sym(any_stage, "msgbuf")
    raw = vread(any_stage, base, 32)
    q = struct.unpack("<4Q", raw)
    d = struct.unpack("<8I", raw)
    w = struct.unpack("<16H", raw)
    assert k_any.cmd("msgbuf,4/K").data == list(q)
    assert k_any.cmd("msgbuf,4/J").data == list(q)
    assert k_any.cmd("msgbuf,8/X").data == list(d)
    assert k_any.cmd("msgbuf,0t16/x").data == list(w)
    assert k_any.cmd("msgbuf,0t32/B").data == list(raw)
    assert k_any.cmd("msgbuf/4X").data == list(d[:4])         # a repeat inside the format
    assert k_any.cmd("msgbuf/XxB").data == [d[0], w[2], raw[6]]


def test_text_layout_is_mdbs(kx, xen_stage):
    base = sym(xen_stage, "msgbuf")
    magic = struct.unpack("<I", vread(xen_stage, base, 4))[0]
    text = kx.run("msgbuf/X")
    assert text.splitlines() == ["msgbuf:", f"msgbuf:         {magic:x}"]
    text = kx.run("msgbuf+8,2/K")
    first = text.splitlines()
    assert first[0] == "msgbuf+8:" and first[1].startswith("msgbuf+8:")


def test_signed_unsigned_octal_and_decimal(k_any, any_stage):
    base = sym(any_stage, "pci_bios_cfg_type")
    raw = vread(any_stage, base, 8)
    (u64,) = struct.unpack("<Q", raw)
    (s64,) = struct.unpack("<q", raw)
    (s32,) = struct.unpack("<i", raw[:4])
    (s16,) = struct.unpack("<h", raw[:2])
    r = k_any.cmd("pci_bios_cfg_type/E")
    assert r.data == [u64] and r.text.split()[-1] == str(u64)
    assert k_any.cmd("pci_bios_cfg_type/e").text.split()[-1] == str(s64)
    assert k_any.cmd("pci_bios_cfg_type/D").text.split()[-1] == str(s32)
    assert k_any.cmd("pci_bios_cfg_type/d").text.split()[-1] == str(s16)
    assert k_any.cmd("pci_bios_cfg_type/U").text.split()[-1] == str(u64 & 0xFFFFFFFF)
    assert k_any.cmd("pci_bios_cfg_type/O").text.split()[-1] in (f"0{u64 & 0xFFFFFFFF:o}", "0")
    assert k_any.cmd("pci_bios_cfg_type/b").text.split()[-1] in (f"0{raw[0]:o}", "0")


def test_question_mark_reads_the_object_file_not_memory(kx, xen_stage):
    """pci_bios_cfg_type is -1 in unix as linked; the running kernel stored the
    mechanism it chose (1) -- but only after mlsetup, so here both are checked
    against their own source."""
    unix = xen_stage.kernel.unix
    a = unix.sym("pci_bios_cfg_type")
    file_val = int.from_bytes(unix.image[a - unix.base:a - unix.base + 8], "little")
    mem_val = int.from_bytes(vread(xen_stage, a, 8), "little")
    assert kx.cmd("pci_bios_cfg_type?J").data == [file_val]
    assert kx.cmd("pci_bios_cfg_type/J").data == [mem_val]
    b = unix.sym("boot_info")              # 0 in the file, start_info's address in memory
    assert kx.cmd("boot_info?K").data == [0]
    assert kx.cmd("boot_info/K").data == [int.from_bytes(vread(xen_stage, b, 8), "little")]
    assert kx.cmd("boot_info/K").data != [0]


def test_string_and_symbol_formats(k_any, any_stage):
    base = sym(any_stage, "msgbuf") + 32
    raw = vread(any_stage, base, 200)
    want = raw.split(b"\0")[0][:100].decode("latin-1")
    got = k_any.cmd("msgbuf+0t32/s").data[0]
    assert got.startswith(want)
    # /p names a pointer: boot_info holds a pointer outside the image (start_info / dboot's
    # info) so it prints in hex; kpy_return's address names itself
    assert k_any.cmd("kpy_return=p").text.strip() == "kpy_return"
    assert k_any.cmd("kpy_return+1=a").text.strip() == "kpy_return+1"
    assert k_any.cmd("pci_mech1_addr+0t12=a").text.strip() == "pci_mech1_addr+0xc"


def test_instruction_format_matches_capstone(k_any, any_stage):
    a = sym(any_stage, "pci_mech1_addr")
    code = vread(any_stage, a, 64)
    md = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
    md.syntax = capstone.CS_OPT_SYNTAX_ATT
    want = [(i.address, i.mnemonic) for i in md.disasm(code, a)][:5]
    r = k_any.cmd("pci_mech1_addr,5/i")
    assert [(x.addr, x.mnemonic) for x in r.data] == want
    assert r.text.splitlines()[1].startswith("pci_mech1_addr:")


def test_equals_formats_values():
    from xenlab.kmdb.formats import format_value
    assert format_value(0x10, "D", None)[0].strip() == "16"
    assert format_value(0x10, "X", None)[0].strip() == "10"
    assert format_value(0xFFFFFFFF, "D", None)[0].strip() == "-1"
    assert format_value(0xFFFFFFFF, "U", None)[0].strip() == str(0xFFFFFFFF)
    assert format_value(8, "o", None)[0].strip() == "010"
    assert format_value(0x41, "c", None)[0].strip() == "A"
    assert format_value(5, "R", None)[0].strip() == "101"


def test_enter_repeats_the_last_format_at_the_next_address(k_any, any_stage):
    base = sym(any_stage, "msgbuf")
    d = struct.unpack("<4I", vread(any_stage, base, 16))
    assert k_any.cmd("msgbuf,2/X").data == list(d[:2])
    assert k_any.cmd("").data == list(d[2:4])


@pytest.mark.parametrize("cmd, fragment", [
    ("700000000000/K", "failed to read 8 bytes at 0x700000000000: no mapping for address"),
    ("0x8000000000000000/X", "non-canonical address"),
    ("msgbuf/Z", "writes memory"),
    ("msgbuf/y!", "invalid format character"),
    ("0?X", "not in the object file"),
    ("msgbuf,0t5000/X", "too large"),
])
def test_bad_reads_are_one_liners(k_any, cmd, fragment):
    r = k_any.cmd(cmd)
    assert not r.ok and r.error.startswith("mdb: ") and fragment in r.error
    assert "\n" not in r.error and "internal error" not in r.error
