"""Profiles: the shipped ones are valid (by our loader and by the JSON Schema),
and bad ones are refused with the field named."""

import copy
import json

import pytest

from xenlab.machine.profile import (ProfileError, list_profiles, load_profile, profiles_dir,
                                    validate)

SHIPPED = list_profiles()


def raw(name):
    return json.loads((profiles_dir() / f"{name}.json").read_text())


def test_at_least_six_profiles_four_real_and_sun_x4200():
    assert len(SHIPPED) >= 6 and "sun-x4200" in SHIPPED
    real = [n for n in SHIPPED if not load_profile(n)["synthetic"]]
    assert len(real) >= 4
    for n in real:
        src = load_profile(n)["source"]
        assert src["repo"] == "linuxhw/Dmesg" and len(src["commit"]) == 40 and src["path"]
    x = load_profile("sun-x4200")
    assert x["synthetic"] and "SYNTHETIC" in x["description"]


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_profile_matches_the_json_schema(name):
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((profiles_dir() / "profile.schema.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(raw(name))


def test_schema_rejects_what_the_loader_rejects():
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((profiles_dir() / "profile.schema.json").read_text())
    doc = raw("qemu-i440fx")
    doc["pci"][5]["bars"][0]["kind"] = "mem16"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(schema).validate(doc)
    with pytest.raises(ProfileError, match=r"pci\[5\]\.bars\[0\]\.kind: expected one of io, mem32, mem64"):
        validate(doc)


def broken(mutate):
    doc = raw("qemu-i440fx")
    mutate(doc)
    with pytest.raises(ProfileError) as e:
        validate(doc)
    return str(e.value)


def test_error_names_the_field_power_of_two():
    def m(d):
        d["pci"][3]["bars"] = [{"index": 0, "kind": "mem32", "base": 0xFE000000, "size": 3000}]
    assert "pci[3].bars[0].size: expected a power of two, got 3000" in broken(m)


@pytest.mark.parametrize("mutate,message", [
    (lambda d: d.pop("cpus"), "cpus: missing (required)"),
    (lambda d: d["cpus"].append({"apic_id": 0}), "cpus: APIC id 0 is used by more than one"),
    (lambda d: d["e820"][0].update(end="0xa0000"), "e820: entries"),
    (lambda d: d["pci"][5]["bars"][0].update(base="0xfebc1000"), "pci[5].bars[0].base: 0xfebc1000 is not aligned"),
    (lambda d: d["pci"][5].update(bdf="00:03"), "pci[5].bdf: expected bus:device.function"),
    (lambda d: d["pci"][5].update(bdf="07:00.0"), "pci[5].bdf: bus 07 is neither a root bus"),
    (lambda d: d["pci"][5]["interrupt"].update(gsi=99), "pci[5].interrupt.gsi: GSI 99 is on no IOAPIC"),
    (lambda d: d["pci"][5]["interrupt"].update(pin="E"), "pci[5].interrupt.pin: expected one of A, B, C, D"),
    (lambda d: d["overrides"][0].update(bus_irq=16), "overrides[0].bus_irq: expected a value in [0, 15], got 16"),
    (lambda d: d["ioapics"][0].update(address="0xfec00100"), "ioapics[0].address: 0xfec00100 is not 1 KiB aligned"),
    (lambda d: d["disks"][0].update(controller="00:03.0"), "disks[0].controller: '00:03.0' is not a PCI function"),
    (lambda d: d["isa"].update(gameport=True), "isa.gameport: unknown ISA device"),
    (lambda d: d.update(year="soon"), "year: expected an integer"),
    (lambda d: d["pci"][4].update(model="ide"), "pci[4].model: an IDE model needs class 0x0101xx"),
    (lambda d: d["pci"][2].update(bdf="00:07.1"), "pci[2].bdf: function 1 without function 0"),
])
def test_errors_name_the_bad_field(mutate, message):
    assert message in broken(mutate)


def test_all_errors_are_reported_at_once():
    def m(d):
        d["cpus"][0]["apic_id"] = "x"
        d["pci"][5]["bars"][0]["size"] = 3000
    msg = broken(m)
    assert "cpus[0].apic_id" in msg and "pci[5].bars[0].size" in msg


def test_unknown_profile_lists_the_known_ones():
    with pytest.raises(ProfileError, match="no profile named 'nope'; known profiles: .*sun-x4200"):
        load_profile("nope")


def test_bad_json_file_is_named(tmp_path):
    p = tmp_path / "x.json"
    p.write_text("{nope")
    with pytest.raises(ProfileError, match="x.json: not JSON"):
        load_profile(p)
