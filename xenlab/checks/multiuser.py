"""Checks for the ``multiuser`` stage: ISA drivers attach exactly where a
device is there for dom0; hard-coded physical addresses below 1 MiB are
mapped to those machine frames; the services are online and the console
shows the login prompt."""

from __future__ import annotations

from . import Finding, check
from ._model import boot_of, how_far, reached, walk

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
