"""The kernel's ACPI reader against what the machine was built from: the
MADT's I/O APICs and overrides, and every PCI function's GSI from the DSDT's
_PRT (with the bridge swizzle) against the machine's routing table."""

import pytest

from xenlab.kernel.intel.acpi import AcpiError, parse_prt, read_tables
from xenlab.kernel.intel.psm import IntrSpec
from xenlab.machine import Machine
from xenlab.machine.firmware import acpi as fw
from xenlab.machine.profile import list_profiles, load_profile


def bridge_chain(profile, bus):
    """_ADR of each bridge from the root bus down to ``bus``."""
    up = {f["bridge"]["secondary"]: f for f in profile["pci"] if f.get("bridge")}
    chain = []
    while bus in up:
        f = up[bus]
        chain.append(f["dev"] << 16 | f["fn"])
        bus = f["bus"]
    return tuple(reversed(chain))


@pytest.mark.parametrize("name", list_profiles())
def test_tables_and_interrupt_routes_match_the_machine(name):
    m = Machine.from_profile(name)
    p = load_profile(name)
    t = read_tables(lambda pa, n: m.memory.read_bytes(pa, n))
    assert [(io.id, io.address, io.gsi_base) for io in t.ioapics] == \
        [(io["id"], io["address"], io["gsi_base"]) for io in p["ioapics"]]
    assert [(o.bus_irq, o.gsi) for o in t.overrides] == \
        [(o["bus_irq"], o["gsi"]) for o in p["overrides"]]
    assert t.boot_arch & 2 == (2 if p["isa"]["i8042"] else 0)
    routes = m.irq_routing_frame()
    checked = 0
    for f in p["pci"]:
        irq = f.get("interrupt")
        if not irq or irq["gsi"] is None or f["bus"] not in _reachable(p):
            continue
        spec = IntrSpec(f["bdf"], bus=f["bus"], dev=f["dev"], pin="-ABCD".index(irq["pin"]),
                        bridges=bridge_chain(p, f["bus"]))
        gsi, pol, trig = spec.resolve(t)
        row = routes[routes["source"] == f["bdf"]].iloc[0]
        assert gsi == row["gsi"], f"{f['bdf']}"
        assert (pol, trig) == (row["polarity"], row["trigger"]), f"{f['bdf']}"
        checked += 1
    assert checked or not any(f.get("interrupt") for f in p["pci"])
    for irq in range(16):
        assert t.isa_gsi(irq) == m.interrupts.isa_gsi(irq)


def _reachable(p):
    """Buses under root bus 0 (the DSDT describes \\_SB.PCI0 only)."""
    up = {f["bridge"]["secondary"]: f["bus"] for f in p["pci"] if f.get("bridge")}
    out = set()
    for b in {f["bus"] for f in p["pci"]}:
        x = b
        while x in up:
            x = up[x]
        if x == 0:
            out.add(b)
    return out


def test_prt_packages_nested_in_bridge_devices():
    dsdt = fw.dsdt("XLAB", "TEST", [(0x0001FFFF, 0, 16)],
                   [("BR01", 0x00020000, [(0x0000FFFF, 1, 21)],
                     [("BR02", 0x00030001, [(0x0004FFFF, 3, 23)], [])])])
    prt = parse_prt(dsdt[36:])
    assert prt == {(): [(0x0001FFFF, 0, 16)], (0x00020000,): [(0x0000FFFF, 1, 21)],
                   (0x00020000, 0x00030001): [(0x0004FFFF, 3, 23)]}


def test_no_rsdp_in_ram_is_an_error():
    with pytest.raises(AcpiError, match="no RSDP"):
        read_tables(lambda pa, n: bytes(n))
