"""The boot-log importer on the real logs and on hand-made variants of other kernels."""

import json
from pathlib import Path

import pytest

from xenlab.cli import main
from xenlab.machine import Machine
from xenlab.machine.dmesg import import_dmesg, parse
from xenlab.machine.profile import profiles_dir, validate

ROOT = Path(__file__).resolve().parents[2]
RAW = ROOT / "datasets" / "reference" / "dmesg"
DATA = Path(__file__).parent / "data"
# facts from datasets-raw/README.md: PCI functions, CPUs, IOAPICs
FACTS = {"sun-x2200m2": (27, 4, 1), "dell-optiplex755": (21, 4, 1),
         "dell-poweredge-r630": (181, 48, 3), "lenovo-thinkpad-t470": (16, 4, 1)}


@pytest.mark.parametrize("name", sorted(FACTS))
def test_real_logs(name):
    doc = import_dmesg((RAW / f"{name}.log").read_text(), name=name)
    prof = validate(doc)
    nfn, ncpu, nio = FACTS[name]
    assert len(prof["pci"]) == nfn and len(prof.cpus) == ncpu and len(prof["ioapics"]) == nio
    # the e820 lines come back exactly
    lines = [l for l in (RAW / f"{name}.log").read_text().splitlines() if "BIOS-e820:" in l]
    assert len(prof["e820"]) == len(lines)
    for e, l in zip(prof["e820"], lines):
        assert f"{e['base']:#018x}-{e['end']:#018x}" in l
    m = Machine.from_profile(prof)
    assert len(m.pci.walk()) == nfn


def test_real_log_details():
    r630 = validate(import_dmesg((RAW / "dell-poweredge-r630.log").read_text(), name="r"))
    assert [io["pins"] for io in r630["ioapics"]] == [24, 24, 24]
    assert [io["address"] for io in r630["ioapics"]] == [0xFEC00000, 0xFEC01000, 0xFEC40000]
    assert r630["cpus"][1]["apic_id"] == 0x20                     # MADT order kept
    assert {r["bus"] for r in r630["pci_host"]["root_buses"]} == {0x00, 0x7F, 0x80, 0xFF}
    assert r630["pci_host"]["mcfg"]["base"] == 0x80000000
    sw = next(f for f in r630["pci"] if f["bdf"] == "07:00.0")    # switch behind 06:00.0
    assert sw["bridge"]["secondary"] == 8 and sw["bridge"]["subordinate"] == 9
    t470 = validate(import_dmesg((RAW / "lenovo-thinkpad-t470.log").read_text(), name="t"))
    assert t470["ioapics"][0]["pins"] == 120
    gpu = next(f for f in t470["pci"] if f["bdf"] == "00:02.0")
    assert [(b["index"], b["kind"], b["size"]) for b in gpu["bars"]] == \
        [(0, "mem64", 16 << 20), (2, "mem64", 256 << 20), (4, "io", 64)]
    assert gpu["bars"][1]["prefetch"]
    opti = validate(import_dmesg((RAW / "dell-optiplex755.log").read_text(), name="o"))
    kt = next(f for f in opti["pci"] if f["bdf"] == "00:03.3")
    assert kt["model"] == "uart" and kt["interrupt"]["gsi"] == 17        # "ttyS4 ... irq = 17"
    sata = next(f for f in opti["pci"] if f["bdf"] == "00:1f.2")
    assert sata["interrupt"]["gsi"] == 18                                 # "ata1 ... bmdma 0xfec0 irq 18"
    assert opti["disks"][0]["controller"] == "00:1f.2"
    hecis = next(f for f in opti["pci"] if f["bdf"] == "00:03.0")
    assert hecis["bars"][0]["base"] == 0xF0200000                         # the later "assigned" wins
    sun = validate(import_dmesg((RAW / "sun-x2200m2.log").read_text(), name="s"))
    assert sun["overrides"][1] == {"bus_irq": 14, "gsi": 14, "polarity": "high", "trigger": "edge"}
    assert not sun["isa"]["floppy"] and sun["isa"]["i8042"]
    assert next(f for f in sun["pci"] if f["bdf"] == "00:06.0")["bridge"]["subtractive"]


def test_old_kernel_variant():
    doc = import_dmesg((DATA / "old-kernel-2.6.log").read_text(), name="oldbox")
    p = validate(doc)
    assert p["e820"][0] == {"base": 0, "end": 0x9F7FF, "type": 1}      # end exclusive in 2.6
    assert p["e820"][-1]["end"] == 0xFFFFFFFF
    assert [c["apic_id"] for c in p.cpus] == [0, 1]                     # disabled one dropped
    assert p["year"] == 2006 and p["machine"].startswith("Acme Corp. Model 1")
    assert p["pci_host"]["mcfg"] == {"base": 0xE0000000, "start_bus": 0, "end_bus": 255}
    gfx = next(f for f in p["pci"] if f["bdf"] == "00:02.0")
    assert [(b["index"], b["kind"], b["size"], b["prefetch"]) for b in gfx["bars"]] == \
        [(0, "mem32", 0x80000, False), (1, "io", 8, False), (2, "mem32", 0x10000000, True)]
    sata = next(f for f in p["pci"] if f["bdf"] == "00:1f.2")
    assert sata["interrupt"] == {"pin": "B", "gsi": 19, "pic_irq": None, "source": "log"}
    nic = next(f for f in p["pci"] if f["bdf"] == "01:00.0")
    assert nic["interrupt"]["gsi"] == 16 and nic["bars"][0]["kind"] == "mem64"
    assert next(f for f in p["pci"] if f["bdf"] == "00:1c.0")["bridge"]["mem"] == [0xFEA00000, 0xFEAFFFFF]
    assert p["isa"] == {"pic": True, "pit": True, "rtc": True, "i8042": True, "floppy": True,
                        "parallel": True}
    assert [s["port"] for s in p["serial"]] == [0x3F8, 0x2F8]
    m = Machine.from_profile(p)
    assert m.ports.read(0x3F4, 1) == 0x80 and m.ports.read(0x64, 1) != 0xFF
    assert len(m.pci.walk()) == 7


def test_new_kernel_variant_crlf_x2apic_bar_syntax():
    doc = import_dmesg((DATA / "new-kernel-6.x.log").read_text(), name="fw13")
    p = validate(doc)
    assert [e["type"] for e in p["e820"]] == [1, 2, 1, 2, 1, 3, 2, 1]
    assert [c["apic_id"] for c in p.cpus] == [0, 2, 4, 6]
    assert [io["gsi_base"] for io in p["ioapics"]] == [0, 24] and p["ioapics"][1]["pins"] == 32
    assert p["overrides"][1]["polarity"] == "low"
    gpu = next(f for f in p["pci"] if f["bdf"] == "02:00.0")
    assert [(b["index"], b["kind"]) for b in gpu["bars"]] == [(0, "mem64"), (2, "io"), (5, "mem32")]
    assert gpu["bars"][0]["base"] == 0x7C10000000 and gpu["rom"]["size"] == 0x20000
    nvme = next(f for f in p["pci"] if f["bdf"] == "01:00.0")
    assert nvme["interrupt"]["gsi"] == 45 and nvme["interrupt"]["source"] == "log"
    m = Machine.from_profile(p, memory="4G")
    assert m.mmio.read(0x90600000, 2) == 0x144D


def test_a_function_without_function_0_is_left_out_with_a_note():
    text = (DATA / "old-kernel-2.6.log").read_text().replace("pci 0000:00:1f.0: found", "x")
    doc = import_dmesg(text)
    assert "00:1f.2" not in {f["bdf"] for f in doc["pci"]}
    assert any("00:1f.2" in n and "function 0" in n for n in doc["notes"])


def test_a_log_without_e820_is_refused_by_name():
    with pytest.raises(ValueError, match="no BIOS-e820 lines"):
        import_dmesg("hello\nworld\n")


def test_parse_ignores_noise():
    r = parse("random line\n[ 1.0] usb 1-1: new high-speed USB device\n# comment\n")
    assert r["e820"] == [] and r["pci"] == {}


def test_cli_import_and_list(tmp_path, capsys, monkeypatch):
    out = tmp_path / "mybox.json"
    assert main(["profiles", "import-dmesg", str(DATA / "old-kernel-2.6.log"), "-o", str(out)]) == 0
    said = capsys.readouterr().out
    assert "wrote" in said and "2 CPUs" in said
    doc = json.loads(out.read_text())
    assert doc["name"] == "mybox" and doc["source"]["file"] == "old-kernel-2.6.log"
    m = Machine.from_profile(out)
    assert m.ncpus == 2
    monkeypatch.setenv("XENLAB_PROFILES", str(tmp_path))
    assert main(["profiles"]) == 0
    listing = capsys.readouterr().out
    assert "mybox" in listing and "Acme Corp" in listing
    bad = tmp_path / "empty.log"
    bad.write_text("nothing here\n")
    assert main(["profiles", "import-dmesg", str(bad)]) == 1
    assert "no BIOS-e820 lines" in capsys.readouterr().err


def test_cli_lists_the_shipped_profiles(capsys):
    assert main(["profiles"]) == 0
    out = capsys.readouterr().out
    for n in ("sun-x4200", "sun-x2200m2", "dell-poweredge-r630"):
        assert n in out
    assert main(["profiles", "show", "qemu-i440fx"]) == 0
    assert '"name": "qemu-i440fx"' in capsys.readouterr().out


@pytest.mark.parametrize("prefix", ["", "[    0.000000] ", "<6>[    0.000000] ",
                                    "[Mon Jun 11 12:00:00 2021] ",
                                    "Jun 11 12:00:00 host kernel: [    0.000000] ",
                                    "2021-06-11T12:00:00+0000 host kernel: "])
def test_line_prefixes(prefix):
    lines = ["BIOS-e820: [mem 0x0000000000000000-0x000000000009fbff] usable",
             "BIOS-e820: [mem 0x0000000000100000-0x000000003fffffff] usable",
             "ACPI: LAPIC (acpi_id[0x00] lapic_id[0x03] enabled)",
             "pci 0000:00:00.0: [8086:1237] type 00 class 0x060000",
             "pci 0000:00:01.0: [8086:7000] type 80 class 0x060100"]
    doc = import_dmesg("\n".join(prefix + l for l in lines))
    p = validate(doc)
    assert len(p["e820"]) == 2 and p.cpus[0]["apic_id"] == 3
    assert [(f["bdf"], f["header"]) for f in p["pci"]] == [("00:00.0", 0), ("00:01.0", 0)]
