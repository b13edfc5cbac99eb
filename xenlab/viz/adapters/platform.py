"""Sources over the platform (``Machine.from_profile``): interrupt routes, firmware tables.

:class:`MachineRoutes` turns ``m.irq_routing_frame()`` (device -> pin -> PIC
IRQ / IOAPIC pin / GSI) into the routing view's columns, reads the vector each
IOAPIC redirection entry delivers (when unmasked), and joins *layers* on top:
frames from the hypervisor (PIRQ, event channel) and the kernel (handler),
each matched on a column both share.
"""

from __future__ import annotations

import pandas as pd

from ..irq import ROUTE_COLUMNS

# Intel 82093AA I/O APIC datasheet §3.2.4: redirection entry bits.
RTE_VECTOR = 0xFF
RTE_MASKED = 1 << 16
JOIN_KEYS = ("bdf", "device", "gsi", "isa_irq", "pirq", "evtchn", "vector")


def _now(x):
    return x() if callable(x) else x


def ioapic_vector(machine, gsi):
    """The vector the IOAPIC entry for ``gsi`` delivers, or None (masked or no IOAPIC)."""
    router = getattr(machine, "interrupts", None)
    if router is None or gsi is None or pd.isna(gsi):
        return None
    io, pin = router.ioapic_for(int(gsi))
    if io is None:
        return None
    lo = io.read_register(0x10 + 2 * pin)        # IOREDTBL[pin], low dword
    return None if lo & RTE_MASKED else lo & RTE_VECTOR


def machine_routes(machine) -> pd.DataFrame:
    """The platform's interrupt sources in the routing view's columns."""
    raw = machine.irq_routing_frame()
    models = {}
    if hasattr(machine, "pci_frame"):
        pf = machine.pci_frame()
        models = {r.bdf: (r.model or f"pci {r.vendor}:{r.device}") for r in pf.itertuples()}
    rows = []
    for r in raw.itertuples(index=False):
        pci = r.kind == "pci"
        gsi = None if pd.isna(r.gsi) else int(r.gsi)
        pic = None if pd.isna(r.pic_irq) else int(r.pic_irq)
        rows.append({
            "device": models.get(r.source, r.source) if pci else r.source,
            "bdf": r.source if pci else None,
            "intx": str(r.pin).rstrip("#") if pci else None,
            "isa_irq": None if pci else pic,
            "override": (f"ISA IRQ {pic} -> GSI {gsi} ({r.polarity}, {r.trigger})"
                         if bool(r.override) and not pci
                         else None),
            "ioapic": None if pd.isna(r.ioapic) else int(r.ioapic),
            "ioapic_pin": None if pd.isna(r.ioapic_pin) else int(r.ioapic_pin),
            "gsi": gsi, "trigger": r.trigger, "polarity": r.polarity,
            "vector": ioapic_vector(machine, gsi),
        })
    return pd.DataFrame(rows, columns=[c for c in ROUTE_COLUMNS if c not in
                                       ("pirq", "evtchn", "handler")])


def join_routes(base: pd.DataFrame, layer: pd.DataFrame) -> pd.DataFrame:
    """Add a layer's columns to ``base``, matching rows on the first of
    JOIN_KEYS both frames have; a layer's non-missing values win."""
    layer = pd.DataFrame(layer)
    keys = [k for k in JOIN_KEYS if k in base and k in layer]
    if not keys:
        raise ValueError(f"routes layer with columns {list(layer.columns)} shares no key "
                         f"with the routes ({', '.join(JOIN_KEYS)})")
    key = keys[0]
    out = base.copy()
    add = [c for c in layer.columns if c != key]
    idx = {}
    for i, v in enumerate(layer[key]):
        idx.setdefault(v, i)
    for c in add:
        if c not in out:
            out[c] = None
        out[c] = out[c].astype(object)
        vals = layer[c].tolist()
        for i, k in enumerate(out[key]):
            j = idx.get(k)
            if j is not None and not _missing(vals[j]):
                out.at[i, c] = vals[j]
    return out


def _missing(v) -> bool:
    return v is None or (not isinstance(v, str) and pd.isna(v))


class MachineRoutes:
    """Interrupt routes of a built machine, with optional layers joined on top.

    ``layers``: DataFrames (or callables returning them) from higher layers,
    e.g. Xen's PIRQ/event-channel bindings (columns gsi, pirq, evtchn) and the
    kernel's handlers (columns evtchn or vector, handler).
    """

    def __init__(self, machine, *layers, name: str | None = None):
        self.machine = machine
        self.layers = layers
        self.name = name or getattr(machine, "name", "machine")

    def routes(self) -> pd.DataFrame:
        df = machine_routes(self.machine)
        for layer in self.layers:
            df = join_routes(df, _now(layer))
        return df


def firmware_regions(machine) -> pd.DataFrame:
    """Where the firmware put its tables (RSDP, RSDT/XSDT, MADT, ...), as regions.

    Lengths come from the tables themselves: an ACPI system description
    table's header holds its length at offset 4; the RSDP of ACPI 2.0+ is 36
    bytes (ACPI 6.x §5.2.5.3, §5.2.6).
    """
    info = getattr(machine, "firmware", None)
    rows = []
    if info is None:
        return pd.DataFrame(columns=["start", "end", "kind", "label"])
    mem = machine.memory
    if getattr(info, "rsdp", 0):
        rows.append((info.rsdp, info.rsdp + 36, "RSDP"))
    for sig, addr in sorted(getattr(info, "tables", {}).items(), key=lambda kv: kv[1]):
        length = mem.read32(addr + 4)
        if not 0 < length <= 1 << 20:
            length = 64
        rows.append((addr, addr + length, sig))
    return pd.DataFrame([{"start": s, "end": e, "kind": "firmware", "label": f"ACPI {lab}"}
                         for s, e, lab in rows], columns=["start", "end", "kind", "label"])
