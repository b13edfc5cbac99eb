"""Adapters over a machine built from a profile (Machine.from_profile)."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from xenlab.viz import (MachineRegions, MachineRoutes, MemoryMapView, RoutingView,
                        firmware_regions, join_routes)
from xenlab.viz.adapters.platform import machine_routes

RAW = Path("/work/shared/datasets-raw/sun-x2200m2")


@pytest.fixture(scope="module")
def machine():
    """A shipped profile if there is one, else one imported from a real boot log."""
    from xenlab.machine import Machine
    from xenlab.machine.profile import list_profiles
    profiles = list_profiles()
    if profiles:
        name = "sun-x4200" if "sun-x4200" in profiles else profiles[0]
        return Machine.from_profile(name, memory="8G", seed=1)
    from xenlab.machine.dmesg import import_dmesg
    from xenlab.machine.profile import validate
    if not RAW.exists():
        pytest.skip(f"no profile in datasets/profiles and no boot log at {RAW}")
    text = "".join((RAW / f).read_text(errors="replace")
                   for f in ("e820.txt", "madt.txt", "pci.txt", "other.txt"))
    return Machine.from_profile(validate(import_dmesg(text, name="x2200")), memory="8G",
                                seed=1)


def test_routes_follow_the_platform_frame(machine):
    raw = machine.irq_routing_frame()
    v = RoutingView(MachineRoutes(machine))
    f = v.frame
    assert len(f) == len(raw)
    assert f["gsi"].tolist() == raw["gsi"].tolist()
    assert f["ioapic_pin"].tolist() == raw["ioapic_pin"].tolist()
    pci = raw["kind"] == "pci"
    assert f.loc[pci.to_numpy(), "bdf"].tolist() == raw.loc[pci, "source"].tolist()
    assert f.loc[~pci.to_numpy(), "device"].tolist() == raw.loc[~pci, "source"].tolist()
    over = f["override"].notna().to_numpy()
    assert over.tolist() == (raw["override"].astype(bool) & ~pci).tolist()
    # the bare machine's IOAPIC entries are masked: nothing is delivered yet
    assert f["vector"].isna().all() and not f["routed"].any()


def program_rte(machine, gsi, vector):
    """Unmask GSI's redirection entry the way a kernel does: IOREGSEL, then IOWIN."""
    io, pin = machine.interrupts.ioapic_for(gsi)
    machine.mmio.write(io.address, 4, 0x10 + 2 * pin)       # IOREGSEL: IOREDTBL[pin] low
    machine.mmio.write(io.address + 0x10, 4, vector)         # IOWIN: vector, unmasked


def test_vector_and_layers_complete_a_route(machine):
    first = machine_routes(machine).dropna(subset=["gsi"]).iloc[0]
    dev, gsi = first["device"], int(first["gsi"])
    program_rte(machine, gsi, 0x31)
    xen = pd.DataFrame({"gsi": [gsi], "pirq": [gsi], "evtchn": [7]})
    kernel = pd.DataFrame({"evtchn": [7], "handler": ["drv_intr"]})
    v = RoutingView(MachineRoutes(machine, xen, lambda: kernel))
    r = v.frame[v.frame["gsi"] == gsi].iloc[0]
    assert r["device"] == dev and r["vector"] == 0x31
    assert r["pirq"] == gsi and r["evtchn"] == 7 and r["handler"] == "drv_intr" and r["routed"]
    assert v.frame["routed"].sum() == (v.frame["gsi"] == gsi).sum()
    program_rte(machine, gsi, 0x31 | (1 << 16))                # masked again
    assert v.refresh().frame["vector"].isna().all()


def test_join_routes_needs_a_shared_key():
    base = pd.DataFrame({"device": ["a"], "gsi": [3]})
    with pytest.raises(ValueError, match="shares no key"):
        join_routes(base, pd.DataFrame({"port": [1]}))
    out = join_routes(base, pd.DataFrame({"gsi": [3, 3], "pirq": [9, 10]}))
    assert out["pirq"].tolist() == [9]              # first match wins


def test_firmware_tables_are_where_their_signatures_are(machine):
    fw = firmware_regions(machine)
    assert len(fw) >= 6
    for r in fw.itertuples():
        sig = r.label.split()[-1]
        want = b"RSD PTR " if sig == "RSDP" else sig.encode()
        assert machine.memory.read_bytes(r.start, len(want)) == want, r
    v = MemoryMapView(MachineRegions(machine))
    assert "ACPI APIC" in set(v.at(machine.firmware.tables["APIC"])["label"])
    rsdp = v.at(machine.firmware.rsdp)
    assert {"ACPI RSDP", "system BIOS (RSDP search area)"} <= set(rsdp["label"])
    mmio = v.frame[v.frame["kind"] == "mmio"]
    assert len(mmio) == len(machine.mmio.frame())
