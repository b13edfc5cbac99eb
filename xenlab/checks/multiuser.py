"""Checks for the ``multiuser`` stage: ISA drivers attach exactly where a
device is there for dom0; hard-coded physical addresses below 1 MiB are
mapped to those machine frames; the services are online and the console
shows the login prompt."""

from __future__ import annotations

from . import Finding, check, question
from ._model import boot_of, how_far, native_reached, reached, shipped_boot, shipped_dom0, walk

LAB = "multiuser"


@check(points=1, title="console login:", lab=LAB)
def multiuser_reached(stage):
    b = boot_of(stage)
    ok = reached(stage, "multiuser") and b.visible_console().rstrip().endswith("console login:")
    return Finding(ok, "how far the boot went and the console's last line",
                   "every service online and 'console login:' on the console", how_far(stage),
                   hint="svcs -xv: which start method failed, and why?")


def _dom0_can_reach(b, port: int) -> bool:
    """Is the port decoded by a device, and may dom0 reach it?"""
    owner = b.machine.ports.owner
    if not owner[port]:
        return False
    d = b.dom0
    return d is None or d.ioports_permitted(port, port)


@check(points=2, title="ISA drivers attach where the device is there (for dom0)", lab=LAB)
def multiuser_isa(stage):
    b = boot_of(stage)
    k = b.kernel
    nodes = getattr(k, "isa_nodes", None)
    if nodes is None:
        raise RuntimeError("the ISA nexus has not run")
    wrong = [f"{dev.driver}@{dev.port:#x} {state}" for dev, state in nodes
             if (state == "attached") != _dom0_can_reach(b, dev.status_port)]
    present = sum(1 for dev, s in nodes if s == "attached")
    return Finding(not wrong, "each ISA node's state against the machine's ports and Xen's I/O "
                              "permissions for dom0",
                   "attached exactly when a device decodes the port and dom0 may use it",
                   f"{present} attached, {len(nodes) - present} not; all right" if not wrong
                   else "; ".join(wrong),
                   hint="An absent device's registers read 0xff.")


@check(points=2, title="hard-coded physical addresses below 1 MiB map those machine frames",
       lab=LAB)
def multiuser_low_mappings(stage):
    k = boot_of(stage).kernel
    low = [(pa, va) for pa, pfn, va, n in getattr(k, "phys_maps", []) if pa < (1 << 20)]
    bad = []
    for pa, va in low:
        w = walk(stage, va & ~0xFFF)
        if not w.ok or (w.maddr >> 12) != (pa >> 12):
            bad.append(f"{pa:#x} -> {(w.maddr >> 12) if w.ok else 'unmapped'}")
    return Finding(bool(low) and not bad,
                   "psm_map_phys_new's mappings of the first MiB (BIOS data area, ROM, tables)",
                   "each maps machine frame paddr >> 12 (MFNs 0-255)",
                   f"{len(low)} mappings, all right" if low and not bad else
                   ("; ".join(bad[:3]) or "no mappings below 1 MiB"),
                   hint="Under Xen 'physical' 0xF0000 is a pseudo-physical frame of dom0.")


@check(points=1, title="every service is online", lab=LAB)
def multiuser_services(stage):
    k = boot_of(stage).kernel
    svcs = getattr(k, "services", {})
    bad = [f for f, s in svcs.items() if s != "online"]
    return Finding(bool(svcs) and not bad, "svc.startd's services", "all online",
                   f"{len(svcs)} online" if not bad else ", ".join(bad))


@check(points=1, title="the i86pc kernel still reaches multi-user with your hooks", lab=LAB,
       parent="multiuser_reached")
def multiuser_native(stage):
    return native_reached(stage, "multiuser",
                          "the native boot at 'console login:' with every service online",
                          hint="On i86pc a physical address is the machine address; "
                               "look at platform.")


# ---------------------------------------------------------------------------
# the lab's questions (labs/11_console_multiuser.ipynb)
# ---------------------------------------------------------------------------

QLAB = "11_console_multiuser"
BIOS_SCAN_PFN = 0xE0000 >> 12    # where the ACPI RSDP search of the BIOS area starts (ACPI 5.2.5.1)


@question("multiuser_absent_port", lab=QLAB, points=1, answer="ANSWER_ABSENT_PORT",
          title="the first ISA device that is not there for dom0",
          asks="the base I/O port of the first ISA device (in the nexus's order) that dom0 "
               "cannot reach: no device decodes it, or Xen keeps it",
          looked_at="your machine's ISA nodes against its ports and Xen's I/O permissions "
                    "for dom0",
          hint="The 2007 console (or ::msgbuf) names the driver that waited for a device.")
def q_multiuser_absent_port(stage):
    b = boot_of(shipped_boot(stage, fixed=True))
    for dev, state in getattr(b.kernel, "isa_nodes", None) or []:
        if state != "attached":
            return int(dev.port)
    raise RuntimeError("every ISA device of this variant is there for dom0")


@question("multiuser_bios_mfn", lab=QLAB, points=1, answer="ANSWER_BIOS_MFN",
          title="the machine frame the 2007 code maps for physical 0xE0000",
          asks="the machine frame the 2007 psm_map_phys_new maps when asked for physical "
               "0xE0000 (the BIOS area ACPI's RSDP is searched in)",
          looked_at="dom0's physical-to-machine table (mfn_list) in the 2007 boot of your "
                    "variant: the 2007 code takes the address for a PFN of dom0's",
          hint="0xe0::pfntomfn, or ::vtop of the mapping's address.")
def q_multiuser_bios_mfn(stage):
    d = shipped_dom0(stage)
    return d.pfn_to_mfn(BIOS_SCAN_PFN)
