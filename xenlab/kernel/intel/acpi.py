"""ACPI tables as the kernel reads them (what illumos's acpica module finds).

The tables live in machine memory where the firmware put them: the RSDP in
the BIOS area (0xE0000-0xFFFFF) or the EBDA, the RSDT/XSDT, FADT, MADT and
DSDT in the ACPI region.  The reader takes a ``read(paddr, n)`` function --
how the caller maps physical addresses is the whole point: natively they are
machine addresses; under Xen the i86pc way (``psm_map_phys_new`` treating them
as pseudo-physical) finds dom0's RAM instead, and the xpv code maps machine
frames as foreign PFNs.

Parsed: RSDP (ACPI 6.5 §5.2.5.3), RSDT/XSDT (§5.2.7-8), FADT (§5.2.9: SCI,
DSDT), MADT (§5.2.12: local APICs, I/O APICs, interrupt source overrides
with their MPS INTI flags), and from the DSDT's AML (§20) every ``_PRT``
package under ``\\_SB.PCI0`` with the ``_ADR`` of the bridge device it
belongs to.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

RSDP_SIG = b"RSD PTR "
POLARITY = {0: "conform", 1: "high", 3: "low"}      # MPS INTI flags (ACPI Table 5.26)
TRIGGER = {0: "conform", 1: "edge", 3: "level"}


class AcpiError(Exception):
    """The tables are not where they should be (or their checksums are wrong)."""


@dataclass
class IoApic:
    id: int
    address: int
    gsi_base: int


@dataclass
class Override:
    bus_irq: int
    gsi: int
    polarity: str
    trigger: str


@dataclass
class AcpiTables:
    rsdp: int
    tables: dict                                   # signature -> physical address
    lapic_address: int = 0xFEE00000
    lapics: list = field(default_factory=list)     # (acpi id, apic id, enabled)
    ioapics: list = field(default_factory=list)
    overrides: list = field(default_factory=list)
    sci: int = 9
    boot_arch: int = 0                             # FADT IAPC_BOOT_ARCH (bit 1: 8042)
    prt: dict = field(default_factory=dict)        # adr path (tuple) -> [(adr, pin, gsi)]

    def isa_gsi(self, irq: int) -> tuple[int, str, str]:
        """An ISA IRQ's GSI, polarity and trigger (identity, edge, high unless overridden)."""
        for o in self.overrides:
            if o.bus_irq == irq:
                pol = "high" if o.polarity == "conform" else o.polarity
                trig = "edge" if o.trigger == "conform" else o.trigger
                return o.gsi, pol, trig
        return irq, "high", "edge"

    def ioapic_for(self, gsi: int) -> tuple[IoApic, int] | None:
        best = None
        for io in self.ioapics:
            if io.gsi_base <= gsi and (best is None or io.gsi_base > best.gsi_base):
                best = io
        return (best, gsi - best.gsi_base) if best is not None else None

    def pci_gsi(self, path: tuple, dev: int, pin: int) -> int | None:
        """The GSI of INT(pin) of device ``dev`` on the bus below the bridge
        chain ``path`` (``()`` for the root bus): the _PRT of that bus, or the
        bridge swizzle onto the parent bus when it has none (PCI-to-PCI Bridge
        Architecture 1.2 §9.1)."""
        entries = self.prt.get(path)
        if entries:
            for adr, p, gsi in entries:
                if (adr >> 16) == dev and p == pin - 1:
                    return gsi
            return None
        if not path:
            return None
        parent_adr = path[-1]
        swizzled = (pin - 1 + dev) % 4 + 1
        return self.pci_gsi(path[:-1], parent_adr >> 16, swizzled)


def _checksum_ok(raw: bytes) -> bool:
    return sum(raw) & 0xFF == 0


def find_rsdp(read, ebda: int | None = None) -> int:
    """Search the first KiB of the EBDA and 0xE0000-0xFFFFF on 16-byte
    boundaries (ACPI §5.2.5.1)."""
    areas = ([(ebda, 1024)] if ebda else []) + [(0xE0000, 0x20000)]
    for base, n in areas:
        raw = read(base, n)
        for off in range(0, n - 20, 16):
            if raw[off:off + 8] == RSDP_SIG and _checksum_ok(raw[off:off + 20]):
                return base + off
    raise AcpiError("no RSDP in the EBDA or 0xe0000-0xfffff")


def _table(read, pa: int) -> bytes:
    head = read(pa, 36)
    length = struct.unpack_from("<I", head, 4)[0]
    if not 36 <= length <= 1 << 20:
        raise AcpiError(f"table at {pa:#x} has a bad length {length}")
    raw = read(pa, length)
    if not _checksum_ok(raw):
        raise AcpiError(f"{raw[:4].decode('latin-1')} at {pa:#x}: bad checksum")
    return raw


def read_tables(read, ebda: int | None = None) -> AcpiTables:
    rsdp = find_rsdp(read, ebda)
    raw = read(rsdp, 36)
    rev = raw[15]
    rsdt = struct.unpack_from("<I", raw, 16)[0]
    xsdt = struct.unpack_from("<Q", raw, 24)[0] if rev >= 2 else 0
    root = _table(read, xsdt or rsdt)
    width = 8 if xsdt else 4
    entries = [int.from_bytes(root[i:i + width], "little") for i in range(36, len(root), width)]
    t = AcpiTables(rsdp, {"XSDT" if xsdt else "RSDT": xsdt or rsdt})
    for pa in entries:
        sig = read(pa, 4).decode("latin-1")
        t.tables[sig] = pa
    if "APIC" in t.tables:
        _madt(t, _table(read, t.tables["APIC"]))
    if "FACP" in t.tables:
        fadt = _table(read, t.tables["FACP"])
        t.sci = struct.unpack_from("<H", fadt, 46)[0]
        t.boot_arch = struct.unpack_from("<H", fadt, 109)[0] if len(fadt) >= 111 else 0
        dsdt = struct.unpack_from("<I", fadt, 40)[0]
        if len(fadt) >= 148:
            dsdt = struct.unpack_from("<Q", fadt, 140)[0] or dsdt
        t.tables["DSDT"] = dsdt
        t.prt = parse_prt(_table(read, dsdt)[36:])
    return t


def _madt(t: AcpiTables, raw: bytes):
    t.lapic_address = struct.unpack_from("<I", raw, 36)[0]
    off = 44
    while off + 2 <= len(raw):
        typ, ln = raw[off], raw[off + 1]
        if ln < 2:
            break
        if typ == 0:
            acpi_id, apic_id, flags = struct.unpack_from("<BBI", raw, off + 2)
            t.lapics.append((acpi_id, apic_id, bool(flags & 1)))
        elif typ == 1:
            ioid, _, addr, base = struct.unpack_from("<BBII", raw, off + 2)
            t.ioapics.append(IoApic(ioid, addr, base))
        elif typ == 2:
            _, irq, gsi, flags = struct.unpack_from("<BBIH", raw, off + 2)
            t.overrides.append(Override(irq, gsi, POLARITY.get(flags & 3, "conform"),
                                        TRIGGER.get((flags >> 2) & 3, "conform")))
        off += ln


# -- AML: just enough to find the _PRT packages ---------------------------------------

class _Aml:
    def __init__(self, data: bytes):
        self.d = data

    def pkglen(self, i):
        b0 = self.d[i]
        n = b0 >> 6
        if n == 0:
            return b0 & 0x3F, i + 1
        v = b0 & 0x0F
        for k in range(n):
            v |= self.d[i + 1 + k] << (4 + 8 * k)
        return v, i + 1 + n

    def name(self, i):
        segs = []
        while i < len(self.d) and self.d[i] in (0x5C, 0x5E):
            i += 1
        if self.d[i] == 0x2E:
            n, i = 2, i + 1
        elif self.d[i] == 0x2F:
            n, i = self.d[i + 1], i + 2
        elif self.d[i] == 0x00:
            return [], i + 1
        else:
            n = 1
        for _ in range(n):
            segs.append(self.d[i:i + 4].decode("latin-1"))
            i += 4
        return segs, i

    def data(self, i):
        """A data object: (value, next index); packages give lists."""
        op = self.d[i]
        if op == 0x00:
            return 0, i + 1
        if op == 0x01:
            return 1, i + 1
        if op == 0xFF:
            return (1 << 64) - 1, i + 1
        if op == 0x0A:
            return self.d[i + 1], i + 2
        if op == 0x0B:
            return struct.unpack_from("<H", self.d, i + 1)[0], i + 3
        if op == 0x0C:
            return struct.unpack_from("<I", self.d, i + 1)[0], i + 5
        if op == 0x0E:
            return struct.unpack_from("<Q", self.d, i + 1)[0], i + 9
        if op == 0x12:
            ln, j = self.pkglen(i + 1)
            end = i + 1 + ln
            count, j = self.d[j], j + 1
            items = []
            while j < end and len(items) < count:
                v, j = self.data(j)
                items.append(v)
            return items, end
        if op == 0x0D:                                   # string
            end = self.d.index(b"\0", i + 1)
            return self.d[i + 1:end].decode("latin-1"), end + 1
        segs, j = self.name(i)                           # a name reference
        return ".".join(segs), j

    def terms(self, i, end, path, out, adr_stack):
        """Walk a term list; record Name(_PRT) under the current device path."""
        here_adr = None
        prts = []
        while i < end:
            op = self.d[i]
            if op == 0x10:                               # Scope
                ln, j = self.pkglen(i + 1)
                segs, j = self.name(j)
                self.terms(j, i + 1 + ln, path + segs, out, adr_stack)
                i = i + 1 + ln
            elif op == 0x5B and self.d[i + 1] == 0x82:   # Device
                ln, j = self.pkglen(i + 2)
                segs, j = self.name(j)
                self.terms(j, i + 2 + ln, path + segs, out, adr_stack)
                i = i + 2 + ln
            elif op == 0x08:                             # Name
                segs, j = self.name(i + 1)
                v, j = self.data(j)
                if segs and segs[-1] == "_ADR":
                    here_adr = v
                elif segs and segs[-1] == "_PRT" and isinstance(v, list):
                    prts = [(e[0], e[1], e[3]) for e in v if isinstance(e, list) and len(e) == 4]
                i = j
            else:
                break                                    # anything else: not needed here
        out.setdefault("adr", {})[tuple(path)] = here_adr
        if prts:
            out.setdefault("prt", {})[tuple(path)] = prts


def parse_prt(aml: bytes) -> dict:
    """{chain of bridge _ADRs below \\_SB.PCI0: [(adr, pin, gsi)]}; ``()`` is the root bus."""
    raw: dict = {}
    _Aml(aml).terms(0, len(aml), [], raw, [])
    adrs = raw.get("adr", {})
    result = {}
    for path, entries in raw.get("prt", {}).items():
        if len(path) <= 2:
            result[()] = entries                          # \_SB.PCI0: the root bus
            continue
        result[tuple(adrs.get(path[:k]) or 0 for k in range(3, len(path) + 1))] = entries
    return result
