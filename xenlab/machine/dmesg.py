"""Build a machine profile from a Linux boot log (``dmesg``).

The importer reads what Linux prints while it discovers a PC and ignores
everything else, so any boot log works: kernels from 2.6 to 6.x, with or
without timestamps, with syslog prefixes, CRLF line ends.  It understands:

- the firmware memory map: ``BIOS-e820: [mem 0x...-0x...] usable`` and the
  older ``BIOS-e820: 0000000000000000 - 000000000009fc00 (usable)``;
- the MADT: ``ACPI: LAPIC (acpi_id[..] lapic_id[..] enabled)``, ``X2APIC``,
  ``IOAPIC (id[..] address[..] gsi_base[..])``, ``IOAPIC[0]: apic_id 8,
  version 32, address 0x.., GSI 0-23``, ``INT_SRC_OVR``, ``LAPIC_NMI``;
  the CPU count from ``Allowing N CPUs, M hotplug CPUs`` or ``Brought up N CPUs``
  and APIC ids from SRAT lines when no LAPIC lines were printed;
- PCI: ``pci 0000:00:1f.2: [8086:2920] type 00 class 0x01018f`` (and the older
  ``type 0 class 0x000101``), BARs as ``reg 0x10: [mem ...]``, ``reg 10: [io ...]``,
  ``BAR 0 [mem ...]`` (6.x) or ``reg 10 32bit mmio: [0x...-0x...]`` (2.6.2x),
  later ``BAR n: assigned [...]`` lines, ``PCI bridge to [bus 05-06]``, ``bridge
  window [...]``, root buses, MMCONFIG, interrupt links, and per-device IRQ hints
  (``PCI INT A -> GSI 16``, ``irq 18``, ``ataN: ... bmdma 0x... irq 18``);
- ISA: ``ttyS0 at I/O 0x3f8 (irq = 4``, i8042, floppy, parport, rtc_cmos lines;
  DMI for the machine name, HPET and PM timer lines for ACPI.

What the log does not say (interrupt pins, GSIs of devices that printed none,
APIC ids on kernels that print no LAPIC lines) is filled in the way firmware
usually does it and marked so in the profile (``"source": "swizzle"``, notes).
"""

from __future__ import annotations

import re

# prefixes to drop: "<6>", a syslog/journal "... host kernel: ", then "[    0.000000]" or
# dmesg -T's "[Mon Jun 11 12:00:00 2021]"
_TS = re.compile(r"^(?:<\d+>)?(?:.*?\bkernel:\s*)?(?:\[\s*[\d.]+\]\s*|\[[A-Z][a-z]{2} [^\]]*\d{4}\]\s*)?")
_HEX = r"(?:0x)?([0-9a-fA-F]+)"
E820_NEW = re.compile(r"(?:BIOS-e820|e820|Xen):\s*\[mem\s+0x([0-9a-f]+)-0x([0-9a-f]+)\]\s+(.+?)\s*$", re.I)
E820_OLD = re.compile(r"BIOS-e820:\s+([0-9a-f]{8,16})\s*-\s*([0-9a-f]{8,16})\s+\((.+?)\)", re.I)
LAPIC = re.compile(r"ACPI: LAPIC \(acpi_id\[0x([0-9a-f]+)\] lapic_id\[0x([0-9a-f]+)\] (enabled|disabled)\)", re.I)
X2APIC = re.compile(r"ACPI: X2APIC \(apic_id\[0x([0-9a-f]+)\] uid\[0x([0-9a-f]+)\] (enabled|disabled)\)", re.I)
IOAPIC_MADT = re.compile(r"ACPI: IOAPIC \(id\[0x([0-9a-f]+)\] address\[0x([0-9a-f]+)\] gsi_base\[(\d+)\]\)", re.I)
IOAPIC_LINE = re.compile(r"IOAPIC\[(\d+)\]: apic_id (\d+), version (\d+), address 0x([0-9a-f]+), GSI (\d+)-(\d+)", re.I)
OVR = re.compile(r"INT_SRC_OVR \(bus (\d+) bus_irq (\d+) global_irq (\d+) (\w+) (\w+)\)")
NMI = re.compile(r"LAPIC_NMI \(acpi_id\[0x([0-9a-f]+)\] (\w+) (\w+) lint\[0x([0-9a-f]+)\]\)", re.I)
ALLOWING = re.compile(r"Allowing (\d+) CPUs?, (\d+) hotplug")
BROUGHT = re.compile(r"(?:Brought up (?:\d+ nodes?, )?(\d+) CPUs|Total of (\d+) processors activated)")
SRAT = re.compile(r"SRAT: PXM (\d+) -> APIC 0x([0-9a-f]+) -> Node (\d+)", re.I)
LAPIC_ADDR = re.compile(r"Local APIC address 0x([0-9a-f]+)", re.I)
DMI = re.compile(r"DMI: (.+?)(?:, BIOS (.+))?$")
BIOS_DATE = re.compile(r"(\d{2})/(\d{2})/(\d{4})")
HPET = re.compile(r"ACPI: HPET id: 0x([0-9a-f]+) base: 0x([0-9a-f]+)", re.I)
PMTMR = re.compile(r"PM-Timer IO Port: 0x([0-9a-f]+)", re.I)
RSDP = re.compile(r"ACPI: RSDP (?:0x)?([0-9A-Fa-f]+) [0-9A-Fa-f]+ \(v(\d+)\s+(.{0,6})\)?")
MMCFG = re.compile(r"MMCONFIG for (?:domain [0-9a-f]+ )?\[bus ([0-9a-f]+)-([0-9a-f]+)\] at \[mem 0x([0-9a-f]+)-", re.I)
MMCFG_OLD = re.compile(r"MCFG configuration \d+: base ([0-9a-f]+) segment \d+ buses (\d+) - (\d+)", re.I)
BDF = r"(?:[0-9a-f]{4}:)?([0-9a-f]{2}):([0-9a-f]{2})\.([0-7])"
PCI_DEV = re.compile(r"pci " + BDF + r": \[([0-9a-f]{4}):([0-9a-f]{4})\] type ([0-9a-f]+) class 0x([0-9a-f]+)", re.I)
PCI_DEV_OLD = re.compile(r"PCI: Found " + BDF + r" \[([0-9a-f]{4})/([0-9a-f]{4})\] ([0-9a-f]{6}) ([0-9a-f]{2})", re.I)
PCI_DEV_FOUND = re.compile(r"pci " + BDF + r": found \[([0-9a-f]{4}):([0-9a-f]{4})\] class (?:0x)?([0-9a-f]{6}) header type ([0-9a-f]{2})", re.I)
PCI_REG = re.compile(r"pci " + BDF + r": (?:reg (?:0x)?([0-9a-f]+)|BAR (\d+)|ROM)(?::)? \[(io|mem)\s+0x([0-9a-f]+)(?:-0x([0-9a-f]+))?([^\]]*)\]", re.I)
PCI_REG_OLD = re.compile(r"pci " + BDF + r": reg (?:0x)?([0-9a-f]+) (io port|32bit mmio|64bit mmio|32bit mmio pref|64bit mmio pref): \[0x([0-9a-f]+)-0x([0-9a-f]+)\]", re.I)
PCI_ASSIGNED = re.compile(r"pci " + BDF + r": BAR (\d+): assigned \[(io|mem)\s+0x([0-9a-f]+)-0x([0-9a-f]+)([^\]]*)\]", re.I)
BRIDGE_TO = re.compile(r"pci " + BDF + r": PCI bridge to \[bus ([0-9a-f]{2})(?:-([0-9a-f]{2}))?\](.*)", re.I)
BRIDGE_WIN = re.compile(r"pci " + BDF + r":\s+bridge window \[(io|mem)\s+0x([0-9a-f]+)-0x([0-9a-f]+)([^\]]*)\](.*)", re.I)
BRIDGE_WIN_OLD = re.compile(r"pci " + BDF + r":\s+bridge (io port|32bit mmio|64bit mmio pref|32bit mmio pref): \[0x([0-9a-f]+)-0x([0-9a-f]+)\]", re.I)
ROOT_BUS = re.compile(r"(?:PCI Root Bridge \[\w+\] \((?:domain [0-9a-f]+ )?\[bus ([0-9a-f]{2})(?:-([0-9a-f]{2}))?\]\)|PCI host bridge to bus (?:[0-9a-f]{4}:)?([0-9a-f]{2}))", re.I)
LINK = re.compile(r"PCI Interrupt Link \[(\w+)\] \(IRQs([^)]*)\)(.*)")
INT_GSI = re.compile(BDF + r": PCI INT ([A-D])(?: \([^)]*\))? -> GSI (\d+)", re.I)
DEV_IRQ = re.compile(BDF + r": irq (\d+)\b", re.I)
TTY = re.compile(r"(?:" + BDF + r": )?(ttyS\d+) at I/O 0x([0-9a-f]+) \(irq = (\d+)", re.I)
ATA = re.compile(r"ata\d+: \w+ max \S+ cmd 0x([0-9a-f]+) ctl 0x([0-9a-f]+) bmdma 0x([0-9a-f]+) irq (\d+)", re.I)
TYPE_WORDS = [("acpi data", 3), ("acpi nvs", 4), ("nvs", 4), ("unusable", 5), ("persistent", 7),
              ("usable", 1), ("system ram", 1), ("reserved", 2)]


def _e820_type(text):
    t = text.lower().strip()
    m = re.search(r"type (\d+)", t)
    if m:
        return int(m.group(1))
    for word, v in TYPE_WORDS:
        if t.startswith(word):
            return v
    return 2


def _bdf(m, i=1):
    return f"{m.group(i)}:{m.group(i + 1)}.{m.group(i + 2)}".lower()


def _pow2_size(lo, hi):
    size = hi - lo + 1
    p = 1
    while p < size:
        p <<= 1
    return p


def _polarity(word):
    return {"high": "high", "low": "low"}.get(word, "conform")


def _trigger(word):
    return {"edge": "edge", "level": "level"}.get(word, "conform")


def parse(text: str) -> dict:
    """Everything the importer recognises in ``text``, as plain dicts and lists."""
    r = {"e820": [], "lapics": [], "ioapics": {}, "overrides": {}, "nmis": [], "allowing": None,
         "brought": None, "srat": [], "pci": {}, "order": [], "bars": {}, "bridges": {},
         "windows": {}, "roots": [], "links": {}, "gsi_hint": {}, "irq_hint": {}, "tty": [],
         "ata": [], "dmi": None, "bios_year": None, "hpet": None, "pmtmr": None, "rsdp": None,
         "mcfg": None, "lapic_addr": None, "i8042": None, "floppy": False, "parallel": False,
         "rtc": False, "notes": []}
    e820_done = False
    for raw in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        line = _TS.sub("", raw.rstrip(), count=1)
        if not line or line.startswith("#"):
            continue
        m = E820_NEW.search(line) or E820_OLD.search(line)
        if m and ("BIOS-e820" in line or line.startswith("Xen:")) and not e820_done:
            lo, hi = int(m.group(1), 16), int(m.group(2), 16)
            if m.re is E820_OLD:
                hi -= 1                                   # old format: end exclusive
            r["e820"].append((lo, hi, _e820_type(m.group(3))))
            continue
        if "user-defined physical RAM map" in line:
            e820_done = True
        if (m := LAPIC.search(line)):
            r["lapics"].append((int(m.group(1), 16), int(m.group(2), 16), m.group(3) == "enabled"))
        elif (m := X2APIC.search(line)):
            r["lapics"].append((int(m.group(2), 16), int(m.group(1), 16), m.group(3) == "enabled"))
        elif (m := IOAPIC_MADT.search(line)):
            io = r["ioapics"].setdefault(int(m.group(1), 16), {})
            io.update(address=int(m.group(2), 16), gsi_base=int(m.group(3)))
        elif (m := IOAPIC_LINE.search(line)):
            io = r["ioapics"].setdefault(int(m.group(2)), {})
            io.update(version=int(m.group(3)), address=int(m.group(4), 16),
                      gsi_base=int(m.group(5)), pins=int(m.group(6)) - int(m.group(5)) + 1)
        elif (m := OVR.search(line)):
            r["overrides"][int(m.group(2))] = (int(m.group(3)), _polarity(m.group(4)),
                                               _trigger(m.group(5)))
        elif (m := NMI.search(line)):
            r["nmis"].append((int(m.group(1), 16), _polarity(m.group(2)), _trigger(m.group(3)),
                              int(m.group(4), 16)))
        elif (m := ALLOWING.search(line)):
            r["allowing"] = (int(m.group(1)), int(m.group(2)))
        elif (m := BROUGHT.search(line)):
            r["brought"] = int(m.group(1) or m.group(2))
        elif (m := SRAT.search(line)):
            r["srat"].append(int(m.group(2), 16))
        elif (m := LAPIC_ADDR.search(line)):
            r["lapic_addr"] = int(m.group(1), 16)
        elif (m := HPET.search(line)):
            r["hpet"] = (int(m.group(1), 16), int(m.group(2), 16))
        elif (m := PMTMR.search(line)):
            r["pmtmr"] = int(m.group(1), 16)
        elif (m := RSDP.search(line)):
            r["rsdp"] = m.group(3).strip() if m.group(3) else None
        elif (m := MMCFG.search(line)):
            r["mcfg"] = (int(m.group(3), 16), int(m.group(1), 16), int(m.group(2), 16))
        elif (m := MMCFG_OLD.search(line)):
            r["mcfg"] = (int(m.group(1), 16), int(m.group(2)), int(m.group(3)))
        elif line.startswith("DMI: ") and (m := DMI.search(line)):
            r["dmi"] = re.sub(r"\s+", " ", m.group(1)).strip(" /")
            if m.group(2) and (d := BIOS_DATE.search(m.group(2))):
                r["bios_year"] = int(d.group(3))
        elif (m := PCI_DEV.search(line)) or (m := PCI_DEV_OLD.search(line)) or (
                m := PCI_DEV_FOUND.search(line)):
            bdf = _bdf(m)
            if m.re is PCI_DEV:
                cls, header = int(m.group(7), 16), int(m.group(6), 16) & 0x7F
            else:
                cls, header = int(m.group(6), 16), int(m.group(7), 16) & 0x7F
            if bdf not in r["pci"]:
                r["order"].append(bdf)
            r["pci"][bdf] = {"vendor": int(m.group(4), 16), "device": int(m.group(5), 16),
                             "class": cls, "header": header}
        elif "quirk" in line and "reg" in line:
            continue                                     # legacy IDE quirk: not real BARs
        elif (m := PCI_ASSIGNED.search(line)):
            _bar(r, _bdf(m), int(m.group(4)), m.group(5), int(m.group(6), 16),
                 int(m.group(7), 16), m.group(8), assigned=True)
        elif (m := PCI_REG.search(line)):
            bdf = _bdf(m)
            if m.group(4):
                reg = int(m.group(4), 16)
                idx = 6 if reg in (0x30, 0x38) else (reg - 0x10) // 4
            elif m.group(5):
                idx = int(m.group(5))
            else:
                idx = 6                                  # ROM
            lo = int(m.group(7), 16)
            hi = int(m.group(8), 16) if m.group(8) else lo
            _bar(r, bdf, idx, m.group(6), lo, hi, m.group(9))
        elif (m := PCI_REG_OLD.search(line)):
            reg = int(m.group(4), 16)
            kind = m.group(5)
            idx = 6 if reg in (0x30, 0x38) else (reg - 0x10) // 4
            flags = (" 64bit" if "64bit" in kind else "") + (" pref" if "pref" in kind else "")
            _bar(r, _bdf(m), idx, "io" if kind.startswith("io") else "mem", int(m.group(6), 16),
                 int(m.group(7), 16), flags)
        elif (m := BRIDGE_TO.search(line)):
            sec = int(m.group(4), 16)
            sub = int(m.group(5), 16) if m.group(5) else sec
            r["bridges"][_bdf(m)] = (sec, sub, "subtractive" in m.group(6))
        elif (m := BRIDGE_WIN.search(line)):
            if "window]" in line or "add_size" in line or "subtractive" in (m.group(8) or ""):
                continue                                 # the parent's windows, or sizing notes
            lo, hi = int(m.group(5), 16), int(m.group(6), 16)
            if lo > hi:
                continue
            kind = "io" if m.group(4) == "io" else ("pref" if "pref" in m.group(7) else "mem")
            r["windows"].setdefault(_bdf(m), {})[kind] = [lo, hi]
        elif (m := BRIDGE_WIN_OLD.search(line)):
            kind = "io" if m.group(4).startswith("io") else ("pref" if "pref" in m.group(4) else "mem")
            r["windows"].setdefault(_bdf(m), {})[kind] = [int(m.group(5), 16), int(m.group(6), 16)]
        elif (m := ROOT_BUS.search(line)):
            if m.group(1):
                first = int(m.group(1), 16)
                last = int(m.group(2), 16) if m.group(2) else first
                r["roots"] = [x for x in r["roots"] if x[0] != first] + [(first, last)]
            elif not any(x[0] == int(m.group(3), 16) for x in r["roots"]):
                r["roots"].append((int(m.group(3), 16), int(m.group(3), 16)))
        elif (m := LINK.search(line)):
            cur = re.search(r"\*(\d+)", m.group(2) + m.group(3))
            if cur and "disabled" not in m.group(3) and int(cur.group(1)) > 0:
                r["links"][m.group(1)] = int(cur.group(1))
        elif (m := INT_GSI.search(line)):
            r["gsi_hint"][_bdf(m)] = ("ABCD".index(m.group(4)) + 1, int(m.group(5)))
        elif (m := TTY.search(line)):
            bdf = _bdf(m) if m.group(1) else None
            r["tty"].append((bdf, m.group(4), int(m.group(5), 16), int(m.group(6))))
        elif (m := ATA.search(line)):
            r["ata"].append((int(m.group(3), 16), int(m.group(4))))
        elif (m := DEV_IRQ.search(line)):
            r["irq_hint"].setdefault(_bdf(m), int(m.group(4)))
        if "serio: i8042 KBD port" in line or "PNP: PS/2 Controller" in line:
            r["i8042"] = True
        elif "i8042: No controller found" in line or "i8042: Can't read CTR" in line:
            r["i8042"] = False if r["i8042"] is None else r["i8042"]
        if re.search(r"Floppy drive\(s\)|FDC \d is a|PNP0700", line):
            r["floppy"] = True
        if re.search(r"parport\d: PC-style at|PNP0400|PNP0401", line):
            r["parallel"] = True
        if re.search(r"rtc_cmos|PNP0b00|RTC time", line, re.I):
            r["rtc"] = True
    return r


def _bar(r, bdf, idx, space, lo, hi, flags, assigned=False):
    bars = r["bars"].setdefault(bdf, {})
    if 13 <= idx <= 15:                                 # bridge windows (resource 13-15)
        kind = {13: "io", 14: "mem", 15: "pref"}[idx]
        r["windows"].setdefault(bdf, {})[kind] = [lo, hi]
        return
    if idx > 6 or idx < 0:
        return
    size = _pow2_size(lo, hi)
    if space == "io":
        kind = "io"
        size = max(size, 4)
    else:
        kind = "mem64" if "64bit" in flags else "mem32"
        size = max(size, 16)
    if idx == 6:
        bars["rom"] = {"base": lo, "size": max(size, 2048)}
        return
    if assigned and idx in bars and bars[idx]["kind"] != kind and kind != "mem64":
        kind = bars[idx]["kind"]
    bars[idx] = {"index": idx, "kind": kind, "base": lo, "size": size,
                 "prefetch": "pref" in flags}


def _class_has_pin(cls):
    """Bridges, host/memory controllers, system peripherals and uncore functions
    usually have no INTx pin; storage, network, display, USB, audio... do."""
    return (cls >> 16) not in (0x06, 0x05, 0x08, 0x11, 0xFF, 0x00)


def build_profile(r: dict, *, name: str, source: dict | None = None) -> dict:
    """Turn ``parse`` output into a profile document."""
    notes = []
    doc = {"schema": 1, "name": name, "machine": r["dmi"] or "unknown machine",
           "year": r["bios_year"] or 2007, "synthetic": False,
           "description": f"imported from a Linux boot log by xenlab profiles import-dmesg",
           "source": dict(source or {"kind": "dmesg"})}
    doc["source"].setdefault("kind", "dmesg")
    if "path" not in doc["source"]:
        doc["source"].setdefault("file", "unknown")
    # memory map
    e = sorted(set(r["e820"]))
    if not e:
        raise ValueError("no BIOS-e820 lines in the log: cannot build a memory map")
    doc["e820"] = [{"base": f"{lo:#x}", "end": f"{hi:#x}",
                    "type": {1: "usable", 2: "reserved", 3: "ACPI data", 4: "ACPI NVS",
                             5: "unusable", 7: "persistent"}.get(t, t)} for lo, hi, t in e]
    ram = sum(hi - lo + 1 for lo, hi, t in e if t == 1)
    doc["memory"] = f"{round(ram / 2**30)}G" if ram >= 2**30 else f"{ram >> 20}M"
    # CPUs
    enabled = [(a, l) for a, l, en in r["lapics"] if en and l != 0xFF]
    if enabled:
        cpus = [{"apic_id": l, "acpi_id": a} for a, l in enabled]
    else:
        n = None
        if r["allowing"]:
            n = r["allowing"][0] - r["allowing"][1]
        n = n or r["brought"] or 1
        ids = list(dict.fromkeys(r["srat"]))[:n] if len(set(r["srat"])) >= n else list(range(n))
        cpus = [{"apic_id": x, "acpi_id": i + 1} for i, x in enumerate(ids)]
        notes.append(f"the log lists no LAPIC entries: {n} CPUs with APIC ids "
                     + ("from SRAT" if len(set(r["srat"])) >= n else "0.." + str(n - 1) + " (assumed)"))
    doc["cpus"] = cpus
    if r["lapic_addr"]:
        doc["lapic"] = {"address": f"{r['lapic_addr']:#x}"}
    doc["lapic_nmi"] = [{"acpi_id": a, "lint": lint, "polarity": p, "trigger": t}
                        for a, p, t, lint in dict.fromkeys(r["nmis"])]
    if len(doc["lapic_nmi"]) > 8 and len({x["lint"] for x in doc["lapic_nmi"]}) == 1:
        x = doc["lapic_nmi"][0]
        doc["lapic_nmi"] = [dict(x, acpi_id=0xFF)]     # one entry for all processors
    # IOAPICs
    ioapics = []
    for apic_id, io in sorted(r["ioapics"].items(), key=lambda kv: kv[1].get("gsi_base", 0)):
        ioapics.append({"id": apic_id, "address": f"{io.get('address', 0xFEC00000):#x}",
                        "gsi_base": io.get("gsi_base", 0), "pins": io.get("pins", 24),
                        "version": io.get("version", 0x20)})
    if not ioapics:
        ioapics = [{"id": len(cpus), "address": "0xfec00000", "gsi_base": 0, "pins": 24,
                    "version": 0x20}]
        notes.append("no IOAPIC lines: one IOAPIC at 0xfec00000 assumed")
    doc["ioapics"] = ioapics
    doc["overrides"] = [{"bus_irq": irq, "gsi": g, "polarity": p, "trigger": t}
                        for irq, (g, p, t) in sorted(r["overrides"].items())]
    # PCI
    roots = sorted(set(r["roots"])) or [(0, 255)]
    host = {"mechanisms": [1], "root_buses": [{"bus": a, "last": b} for a, b in roots],
            "links": r["links"]}
    if r["mcfg"]:
        host["mcfg"] = {"base": f"{r['mcfg'][0]:#x}", "start_bus": r["mcfg"][1],
                        "end_bus": r["mcfg"][2]}
    doc["pci_host"] = host
    gsi_ranges = [(io["gsi_base"], io["gsi_base"] + io["pins"] - 1) for io in ioapics]
    funcs = []
    bridges_by_sec = {}
    for bdf, br in r["bridges"].items():
        bridges_by_sec[br[0]] = bdf
    ata_irq = {}
    for bm, irq in r["ata"]:
        ata_irq[bm & ~0xF] = irq
    for bdf in r["order"]:
        d = r["pci"][bdf]
        bus, dev, fn = int(bdf[:2], 16), int(bdf[3:5], 16), int(bdf[6])
        f = {"bdf": bdf, "vendor": f"{d['vendor']:#06x}", "device": f"{d['device']:#06x}",
             "class": f"{d['class']:#08x}", "header": d["header"] if d["header"] in (0, 1) else 0}
        bars = r["bars"].get(bdf, {})
        nbars = 6 if f["header"] == 0 else 2
        blist, used = [], set()
        for idx in sorted(k for k in bars if isinstance(k, int)):
            b = bars[idx]
            span = {idx, idx + 1} if b["kind"] == "mem64" else {idx}
            if max(span) >= nbars or span & used:
                continue
            if b["kind"] == "mem32" and b["base"] + b["size"] > 2**32:
                b = dict(b, kind="mem64")
            if b["base"] % b["size"]:
                b = dict(b, base=b["base"] - b["base"] % b["size"])
            used |= span
            blist.append({"index": idx, "kind": b["kind"], "base": f"{b['base']:#x}",
                          "size": b["size"], **({"prefetch": True} if b["prefetch"] else {})})
        if blist:
            f["bars"] = blist
        if "rom" in bars:
            rb = bars["rom"]
            f["rom"] = {"base": f"{rb['base'] - rb['base'] % rb['size']:#x}", "size": rb["size"]}
        if f["header"] == 1:
            sec, sub, subtr = r["bridges"].get(bdf, (None, None, False))
            if sec is None:
                notes.append(f"{bdf}: bridge without a 'PCI bridge to' line; left out")
                continue
            br = {"secondary": sec, "subordinate": sub}
            br.update(r["windows"].get(bdf, {}))
            for k in ("io", "mem", "pref"):
                if k in br:
                    br[k] = [f"{br[k][0]:#x}", f"{br[k][1]:#x}"]
            if subtr:
                br["subtractive"] = True
            f["bridge"] = br
        if (d["class"] >> 8) == 0x0101 and any(b["index"] == 4 and b["kind"] == "io" for b in blist):
            f["model"] = "ide"
        if (d["class"] >> 8) == 0x0106 and any(b["index"] == 5 and b["kind"] != "io" for b in blist):
            f["model"] = "ahci"
        if (d["class"] >> 8) == 0x0700 and any(b["index"] == 0 and b["kind"] == "io" and b["size"] == 8
                                                for b in blist):
            f["model"] = "uart"
        funcs.append(f)
    # drop functions whose bus cannot be reached (bridge lines missing from a partial log)
    reach = {a for a, _ in roots} | {f["bridge"]["secondary"] for f in funcs if "bridge" in f}
    kept = [f for f in funcs if int(f["bdf"][:2], 16) in reach]
    for f in funcs:
        if f not in kept:
            notes.append(f"{f['bdf']}: on a bus no bridge in the log leads to; left out")
    have = {(f["bdf"][:5], int(f["bdf"][6])) for f in kept}
    for f in kept:
        if int(f["bdf"][6]) and (f["bdf"][:5], 0) not in have:
            notes.append(f"{f['bdf']}: no function 0 in the log, so no scan would find it; left out")
    kept = [f for f in kept if int(f["bdf"][6]) == 0 or (f["bdf"][:5], 0) in have]
    # interrupts: the log's word where it has one, else the usual swizzle
    parent = {f["bridge"]["secondary"]: f for f in kept if "bridge" in f}
    bar_io = {}
    for f in kept:
        for b in f.get("bars", []):
            if b["kind"] == "io":
                bar_io[int(b["base"], 16) & ~0xF] = f["bdf"]
    hints = dict(r["irq_hint"])
    for bm, irq in ata_irq.items():
        if bm in bar_io:
            hints.setdefault(bar_io[bm], irq)
    for bdf, _, port, irq in r["tty"]:
        if bdf:
            hints.setdefault(bdf, irq)
    taken = {}                                             # (bus, dev, pin) -> gsi

    def choose_pin(f, gsi, pin=None):
        """A pin for ``f`` whose (device, pin) _PRT entry can carry ``gsi``."""
        b, d = f["bdf"][:2], int(f["bdf"][3:5], 16)
        order = ([pin] if pin else []) + ([1 + (gsi - 16 - d) % 4] if 16 <= gsi < 24 else []) + [1, 2, 3, 4]
        for p in order:
            if taken.get((b, d, p), gsi) == gsi:
                taken[(b, d, p)] = gsi
                return p
        return order[0]

    def swizzled_gsi(f, pin):
        p, cur = pin - 1, f
        while int(cur["bdf"][:2], 16) in parent:
            p = (p + int(cur["bdf"][3:5], 16)) % 4              # PCI-to-PCI bridge spec §9.1
            cur = parent[int(cur["bdf"][:2], 16)]
        return 16 + (p + int(cur["bdf"][3:5], 16)) % 4

    plans = []
    for f in kept:
        cls = int(f["class"], 16)
        bdf = f["bdf"]
        native_ide = (cls >> 8) == 0x0101 and cls & 0x05
        if bdf in r["gsi_hint"]:
            plans.append((f, r["gsi_hint"][bdf][0], r["gsi_hint"][bdf][1], "log"))
        elif bdf in hints and (hints[bdf] >= 16 or native_ide):
            plans.append((f, None, hints[bdf], "log"))
        elif _class_has_pin(cls) and "bridge" not in f and not (
                (cls >> 8) == 0x0101 and not native_ide):
            plans.append((f, 1 + int(bdf[6]) % 4, None, "swizzle"))
    plans.sort(key=lambda x: x[3] != "log")                  # the log's facts first
    for f, pin, gsi, how in plans:
        if gsi is None:
            gsi = swizzled_gsi(f, pin)
            if not any(lo <= gsi <= hi for lo, hi in gsi_ranges):
                continue
            b, d = f["bdf"][:2], int(f["bdf"][3:5], 16)
            if taken.get((b, d, pin), gsi) != gsi:               # a logged function owns it
                gsi = taken[(b, d, pin)]
            taken[(b, d, pin)] = gsi
        else:
            pin = choose_pin(f, gsi, pin)
        pic = None
        if 16 <= gsi < 24:
            pic = r["links"].get(f"LNK{'ABCDEFGH'[gsi - 16]}")
            if pic is not None and pic > 15:
                pic = None
        elif gsi < 16:
            pic = gsi
        f["interrupt"] = {"pin": "-ABCD"[pin], "gsi": gsi, "pic_irq": pic, "source": how}
    doc["pci"] = kept
    doc["isa"] = {"pic": True, "pit": True, "rtc": True,
                  "i8042": bool(r["i8042"]), "floppy": r["floppy"], "parallel": r["parallel"]}
    serial, seen = [], set()
    for bdf, name_, port, irq in r["tty"]:
        if bdf is None and port < 0x400 and port not in seen:
            seen.add(port)
            serial.append({"port": f"{port:#x}", "irq": irq, "name": name_})
    doc["serial"] = sorted(serial, key=lambda s: s["name"])
    acpi = {"oem_id": (r["rsdp"] or "XENLAB")[:6]}
    if r["pmtmr"]:
        acpi["pm_timer_port"] = f"{r['pmtmr']:#x}"
    if r["hpet"]:
        acpi["hpet"], acpi["hpet_id"] = f"{r['hpet'][1]:#x}", f"{r['hpet'][0]:#x}"
    doc["acpi"] = acpi
    ide = [f for f in kept if f.get("model") == "ide"]
    if ide:
        first_ata = bar_io.get(r["ata"][0][0] & ~0xF) if r["ata"] else None
        ctl = first_ata if any(f["bdf"] == first_ata for f in ide) else ide[0]["bdf"]
        doc["disks"] = [{"controller": ctl, "channel": 0, "drive": 0, "size": "16G"}]
    elif (ahci := [f for f in kept if f.get("model") == "ahci"]):
        doc["disks"] = [{"controller": ahci[-1]["bdf"], "channel": 0, "drive": 0, "size": "16G"}]
    doc["notes"] = notes
    return doc


def import_dmesg(text: str, *, name: str = "imported", source: dict | None = None) -> dict:
    """A profile document for the machine that printed ``text``."""
    return build_profile(parse(text), name=name, source=source)
