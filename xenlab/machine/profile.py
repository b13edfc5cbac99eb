"""Machine profiles: what a PC has, as a JSON document, and its loader.

A profile describes one machine (real or modelled): CPUs and their APIC ids,
the firmware's E820 map, IOAPICs and ACPI interrupt source overrides, the PCI
topology with IDs, classes, BARs, interrupt routing and bridges, the legacy ISA
devices, serial ports and disks.  The format is documented in docs/profiles.md
and as a JSON Schema in ``datasets/profiles/profile.schema.json``.

``load_profile(name_or_path)`` reads and validates one; every error names the
field, e.g. ``pci[3].bars[0].size: expected a power of two, got 3000``.
Numbers may be JSON integers or strings ("0xfec00000", "4096"); sizes may be
strings like "16G".
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

E820_TYPES = {"usable": 1, "reserved": 2, "ACPI data": 3, "ACPI NVS": 4, "unusable": 5,
              "persistent": 7}
E820_NAMES = {v: k for k, v in E820_TYPES.items()}
BAR_KINDS = ("io", "mem32", "mem64")
MODELS = ("ide", "ahci", "uart")
ISA_DEVICES = ("pic", "pit", "rtc", "i8042", "floppy", "parallel")
POLARITIES = ("conform", "high", "low")
TRIGGERS = ("conform", "edge", "level")
_BDF = re.compile(r"^(?:([0-9a-fA-F]{4}):)?([0-9a-fA-F]{2}):([0-9a-fA-F]{2})\.([0-7])$")
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?\s*$", re.I)


def profiles_dir() -> Path:
    """Where the shipped profiles live (``$XENLAB_PROFILES`` overrides)."""
    env = os.environ.get("XENLAB_PROFILES")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "datasets" / "profiles"


class ProfileError(ValueError):
    """A profile that does not describe a buildable machine; the message names the field."""


@dataclass
class Profile:
    """A validated profile: the normalised document plus where it came from."""

    name: str
    doc: dict
    path: Path | None = None
    warnings: list[str] = field(default_factory=list)

    def __getitem__(self, key):
        return self.doc[key]

    def get(self, key, default=None):
        return self.doc.get(key, default)

    @property
    def cpus(self):
        return [c for c in self.doc["cpus"] if c["enabled"]]

    @property
    def pci(self):
        return self.doc["pci"]

    def summary(self) -> dict:
        from .e820 import E820_RAM
        ram = sum(e["end"] - e["base"] + 1 for e in self.doc["e820"] if e["type"] == E820_RAM)
        src = self.doc["source"]
        where = ("synthetic" if self.doc.get("synthetic") else
                 f"{src.get('repo', '')} {str(src.get('commit', ''))[:8]}".strip())
        return {"name": self.name, "machine": self.doc["machine"], "year": self.doc["year"],
                "cpus": len(self.cpus), "memory": _fmt_size(ram),
                "pci_functions": len(self.doc["pci"]), "source": where}


def _fmt_size(n):
    for unit, shift in (("T", 40), ("G", 30), ("M", 20), ("K", 10)):
        if n >= 1 << shift:
            return f"{n / (1 << shift):.1f}{unit}"
    return str(n)


# -- field checkers: each takes (value, path) and returns the normalised value ------

class _Checker:
    def __init__(self):
        self.errors: list[str] = []

    def fail(self, path, msg):
        self.errors.append(f"{path}: {msg}")
        return None

    def int_(self, v, path, lo=None, hi=None):
        if isinstance(v, bool):
            return self.fail(path, f"expected an integer, got {v!r}")
        if isinstance(v, str):
            try:
                v = int(v, 0)
            except ValueError:
                return self.fail(path, f"expected an integer (e.g. 42 or \"0x2a\"), got {v!r}")
        if not isinstance(v, int):
            return self.fail(path, f"expected an integer, got {v!r}")
        if lo is not None and v < lo or hi is not None and v > hi:
            return self.fail(path, f"expected a value in [{lo:#x}, {hi:#x}], got {v:#x}"
                             if hi is not None and hi > 255 else
                             f"expected a value in [{lo}, {hi}], got {v}")
        return v

    def size(self, v, path):
        if isinstance(v, str):
            m = _SIZE.match(v)
            if m:
                n, unit = float(m.group(1)), m.group(2).upper()
                return int(n * (1 << {"": 0, "K": 10, "M": 20, "G": 30, "T": 40}[unit]))
            if v.startswith("0x"):
                return self.int_(v, path, 1)
            return self.fail(path, f"expected a size like \"16G\" or a byte count, got {v!r}")
        return self.int_(v, path, 1)

    def str_(self, v, path):
        if not isinstance(v, str):
            return self.fail(path, f"expected a string, got {v!r}")
        return v

    def bool_(self, v, path):
        if not isinstance(v, bool):
            return self.fail(path, f"expected true or false, got {v!r}")
        return v

    def choice(self, v, path, choices):
        if v not in choices:
            return self.fail(path, f"expected one of {', '.join(map(str, choices))}, got {v!r}")
        return v

    def list_(self, v, path):
        if not isinstance(v, list):
            self.fail(path, f"expected a list, got {type(v).__name__}")
            return []
        return v

    def obj(self, v, path):
        if not isinstance(v, dict):
            self.fail(path, f"expected an object, got {type(v).__name__}")
            return {}
        return v

    def required(self, d, key, path):
        if key not in d:
            self.fail(f"{path}.{key}" if path else key, "missing (required)")
            return False
        return True


def parse_bdf(text):
    m = _BDF.match(str(text))
    if not m:
        return None
    return int(m.group(2), 16), int(m.group(3), 16), int(m.group(4))


def validate(doc: dict, *, origin: str = "profile") -> Profile:
    """Check ``doc`` and return the normalised ``Profile``; raise ``ProfileError``
    listing every bad field."""
    c = _Checker()
    if not isinstance(doc, dict):
        raise ProfileError(f"{origin}: expected a JSON object at the top level")
    out: dict = {}
    for key in ("name", "machine", "year", "source", "cpus", "e820", "pci"):
        c.required(doc, key, "")
    name = doc.get("name", "unnamed")
    if "name" in doc and (not isinstance(name, str) or not _NAME.match(name)):
        c.fail("name", f"expected lower-case letters, digits, '.', '-' or '_', got {name!r}")
    out["name"] = name
    out["schema"] = c.int_(doc.get("schema", 1), "schema", 1, 1)
    out["machine"] = c.str_(doc.get("machine", ""), "machine")
    out["year"] = c.int_(doc.get("year", 2007), "year", 1981, 2100)
    out["description"] = c.str_(doc.get("description", ""), "description")
    out["synthetic"] = c.bool_(doc.get("synthetic", False), "synthetic")
    src = c.obj(doc.get("source", {}), "source")
    out["source"] = {k: v for k, v in src.items()}
    if not out["synthetic"] and not ("path" in src or "file" in src):
        c.fail("source", "needs 'path' (with 'repo' and 'commit') or 'file': a profile of a "
                         "real machine cites the log it came from")
    out["memory"] = c.size(doc["memory"], "memory") if "memory" in doc else None
    out["addr_bits"] = c.int_(doc.get("addr_bits", 40), "addr_bits", 32, 40)

    # CPUs --------------------------------------------------------------------------
    cpus = []
    for i, cpu in enumerate(c.list_(doc.get("cpus", []), "cpus")):
        p = f"cpus[{i}]"
        cpu = c.obj(cpu, p)
        if not c.required(cpu, "apic_id", p):
            continue
        cpus.append({"apic_id": c.int_(cpu["apic_id"], f"{p}.apic_id", 0, 254),
                     "acpi_id": c.int_(cpu.get("acpi_id", i), f"{p}.acpi_id", 0, 255),
                     "enabled": c.bool_(cpu.get("enabled", True), f"{p}.enabled")})
    ids = [x["apic_id"] for x in cpus if x["enabled"]]
    if "cpus" in doc and not ids:
        c.fail("cpus", "expected at least one enabled CPU")
    dup = {x for x in ids if ids.count(x) > 1}
    if dup:
        c.fail("cpus", f"APIC id {min(dup)} is used by more than one enabled CPU")
    out["cpus"] = cpus
    lap = c.obj(doc.get("lapic", {}), "lapic")
    out["lapic"] = {"address": c.int_(lap.get("address", 0xFEE00000), "lapic.address", 0, 2**32 - 1),
                    "version": c.int_(lap.get("version", 0x00050014), "lapic.version", 0, 2**32 - 1)}
    nmis = []
    for i, n in enumerate(c.list_(doc.get("lapic_nmi", []), "lapic_nmi")):
        p = f"lapic_nmi[{i}]"
        n = c.obj(n, p)
        nmis.append({"acpi_id": c.int_(n.get("acpi_id", 0xFF), f"{p}.acpi_id", 0, 255),
                     "lint": c.int_(n.get("lint", 1), f"{p}.lint", 0, 1),
                     "polarity": c.choice(n.get("polarity", "conform"), f"{p}.polarity", POLARITIES),
                     "trigger": c.choice(n.get("trigger", "conform"), f"{p}.trigger", TRIGGERS)})
    out["lapic_nmi"] = nmis

    # E820 ----------------------------------------------------------------------------
    e820 = []
    for i, e in enumerate(c.list_(doc.get("e820", []), "e820")):
        p = f"e820[{i}]"
        e = c.obj(e, p)
        if not c.required(e, "base", p):
            continue
        base = c.int_(e["base"], f"{p}.base", 0, 2**52)
        if "end" in e:
            end = c.int_(e["end"], f"{p}.end", 0, 2**52)
        elif "length" in e:
            ln = c.size(e["length"], f"{p}.length")
            end = None if base is None or ln is None else base + ln - 1
        else:
            c.fail(p, "needs 'end' (last byte, inclusive, as Linux prints it) or 'length'")
            continue
        t = e.get("type", "usable")
        t = E820_TYPES.get(t, t) if isinstance(t, str) else t
        t = c.int_(t, f"{p}.type", 1, 0xFFFF) if not isinstance(t, str) else c.fail(
            f"{p}.type", f"expected one of {', '.join(E820_TYPES)} or a number, got {t!r}")
        if base is None or end is None:
            continue
        if end < base:
            c.fail(f"{p}.end", f"{end:#x} is below base {base:#x}")
            continue
        e820.append({"base": base, "end": end, "type": t})
    e820.sort(key=lambda x: x["base"])
    for a, b in zip(e820, e820[1:]):
        if b["base"] <= a["end"]:
            c.fail("e820", f"entries [{a['base']:#x}-{a['end']:#x}] and "
                           f"[{b['base']:#x}-{b['end']:#x}] overlap")
    if "e820" in doc and not any(x["type"] == 1 for x in e820):
        c.fail("e820", "no usable RAM")
    out["e820"] = e820

    # IOAPICs and overrides -------------------------------------------------------------
    ioapics = []
    for i, io in enumerate(c.list_(doc.get("ioapics", []), "ioapics")):
        p = f"ioapics[{i}]"
        io = c.obj(io, p)
        for k in ("id", "address", "gsi_base"):
            c.required(io, k, p)
        addr = c.int_(io.get("address", 0xFEC00000), f"{p}.address", 0, 2**32 - 1)
        if addr is not None and addr & 0x3FF:
            c.fail(f"{p}.address", f"{addr:#x} is not 1 KiB aligned")
        ioapics.append({"id": c.int_(io.get("id", i), f"{p}.id", 0, 255), "address": addr,
                        "gsi_base": c.int_(io.get("gsi_base", 0), f"{p}.gsi_base", 0, 4096),
                        "pins": c.int_(io.get("pins", 24), f"{p}.pins", 1, 240),
                        "version": c.int_(io.get("version", 0x20), f"{p}.version", 0, 255)})
    rng = sorted((x["gsi_base"], x["gsi_base"] + x["pins"] - 1, i) for i, x in enumerate(ioapics)
                 if x["gsi_base"] is not None and x["pins"] is not None)
    for a, b in zip(rng, rng[1:]):
        if b[0] <= a[1]:
            c.fail(f"ioapics[{b[2]}].gsi_base", f"GSIs {b[0]}.. overlap ioapics[{a[2]}] "
                                               f"(GSI {a[0]}-{a[1]})")
    out["ioapics"] = ioapics

    def gsi_ok(g):
        return not ioapics or any(lo <= g <= hi for lo, hi, _ in rng)

    ovr = []
    for i, o in enumerate(c.list_(doc.get("overrides", []), "overrides")):
        p = f"overrides[{i}]"
        o = c.obj(o, p)
        for k in ("bus_irq", "gsi"):
            c.required(o, k, p)
        g = c.int_(o.get("gsi", 0), f"{p}.gsi", 0, 4096)
        if g is not None and not gsi_ok(g):
            c.fail(f"{p}.gsi", f"GSI {g} is on no IOAPIC")
        ovr.append({"bus_irq": c.int_(o.get("bus_irq", 0), f"{p}.bus_irq", 0, 15), "gsi": g,
                    "polarity": c.choice(o.get("polarity", "conform"), f"{p}.polarity", POLARITIES),
                    "trigger": c.choice(o.get("trigger", "conform"), f"{p}.trigger", TRIGGERS)})
    out["overrides"] = ovr

    # PCI host ------------------------------------------------------------------------
    host = c.obj(doc.get("pci_host", {}), "pci_host")
    mech = c.list_(host.get("mechanisms", [1]), "pci_host.mechanisms")
    for i, m in enumerate(mech):
        c.choice(m, f"pci_host.mechanisms[{i}]", (1, 2))
    roots = []
    for i, r in enumerate(c.list_(host.get("root_buses", [{"bus": 0, "last": 255}]),
                                  "pci_host.root_buses")):
        p = f"pci_host.root_buses[{i}]"
        r = c.obj(r, p)
        b = c.int_(r.get("bus", 0), f"{p}.bus", 0, 255)
        roots.append({"bus": b, "last": c.int_(r.get("last", b), f"{p}.last", 0, 255)})
    mcfg = host.get("mcfg")
    if mcfg is not None:
        mcfg = c.obj(mcfg, "pci_host.mcfg")
        mcfg = {"base": c.int_(mcfg.get("base"), "pci_host.mcfg.base", 0, 2**40),
                "start_bus": c.int_(mcfg.get("start_bus", 0), "pci_host.mcfg.start_bus", 0, 255),
                "end_bus": c.int_(mcfg.get("end_bus", 255), "pci_host.mcfg.end_bus", 0, 255)}
        if mcfg["base"] is not None and mcfg["base"] & 0xFFFFF:
            c.fail("pci_host.mcfg.base", f"{mcfg['base']:#x} is not 1 MiB aligned")
    links = {}
    for k, v in c.obj(host.get("links", {}), "pci_host.links").items():
        links[k] = c.int_(v, f"pci_host.links.{k}", 0, 255)
    out["pci_host"] = {"mechanisms": sorted(set(m for m in mech if m in (1, 2))) or [1],
                       "root_buses": roots, "mcfg": mcfg, "links": links}

    # PCI functions -------------------------------------------------------------------
    funcs, seen = [], {}
    for i, f in enumerate(c.list_(doc.get("pci", []), "pci")):
        p = f"pci[{i}]"
        f = c.obj(f, p)
        for k in ("bdf", "vendor", "device", "class"):
            c.required(f, k, p)
        bdf = parse_bdf(f.get("bdf", ""))
        if bdf is None:
            c.fail(f"{p}.bdf", f"expected bus:device.function like \"00:1f.2\", got {f.get('bdf')!r}")
            continue
        if bdf in seen:
            c.fail(f"{p}.bdf", f"{f['bdf']} is also pci[{seen[bdf]}]")
        seen[bdf] = i
        header = c.int_(f.get("header", 0), f"{p}.header", 0, 1)
        g = {"bdf": f"{bdf[0]:02x}:{bdf[1]:02x}.{bdf[2]}", "bus": bdf[0], "dev": bdf[1],
             "fn": bdf[2], "vendor": c.int_(f.get("vendor", 0), f"{p}.vendor", 0, 0xFFFE),
             "device": c.int_(f.get("device", 0), f"{p}.device", 0, 0xFFFF),
             "class": c.int_(f.get("class", 0), f"{p}.class", 0, 0xFFFFFF),
             "revision": c.int_(f.get("revision", 0), f"{p}.revision", 0, 255),
             "header": header, "name": c.str_(f.get("name", ""), f"{p}.name")}
        sub = f.get("subsystem")
        g["subsystem"] = [c.int_(x, f"{p}.subsystem[{j}]", 0, 0xFFFF)
                          for j, x in enumerate(c.list_(sub, f"{p}.subsystem"))] if sub else None
        bars, used = [], set()
        nbars = 6 if header == 0 else 2
        for j, b in enumerate(c.list_(f.get("bars", []), f"{p}.bars")):
            q = f"{p}.bars[{j}]"
            b = c.obj(b, q)
            for k in ("index", "kind", "base", "size"):
                c.required(b, k, q)
            idx = c.int_(b.get("index", 0), f"{q}.index", 0, nbars - 1)
            kind = c.choice(b.get("kind"), f"{q}.kind", BAR_KINDS)
            size = c.int_(b.get("size", 0), f"{q}.size", 1, 2**40)
            base = c.int_(b.get("base", 0), f"{q}.base", 0, 2**52)
            if size is not None and size & (size - 1):
                c.fail(f"{q}.size", f"expected a power of two, got {size}")
            elif size is not None and kind is not None and size < (4 if kind == "io" else 16):
                c.fail(f"{q}.size", f"expected at least {4 if kind == 'io' else 16} for "
                                    f"{kind}, got {size}")
            elif size is not None and base is not None and base % size:
                c.fail(f"{q}.base", f"{base:#x} is not aligned to its size {size:#x}")
            if kind == "io" and base is not None and size is not None and base + size > 0x10000:
                c.fail(f"{q}.base", f"I/O BAR {base:#x}+{size:#x} is beyond the 64 KiB port space")
            if kind == "mem32" and base is not None and size is not None and base + size > 2**32:
                c.fail(f"{q}.base", f"32-bit BAR {base:#x} is above 4 GiB (use kind mem64)")
            if idx is not None:
                span = {idx, idx + 1} if kind == "mem64" else {idx}
                if kind == "mem64" and idx + 1 >= nbars:
                    c.fail(f"{q}.index", f"a 64-bit BAR at index {idx} needs index {idx + 1} too")
                if span & used:
                    c.fail(f"{q}.index", f"BAR register {idx} is already used")
                used |= span
            bars.append({"index": idx, "kind": kind, "base": base, "size": size,
                         "prefetch": c.bool_(b.get("prefetch", False), f"{q}.prefetch")})
        g["bars"] = bars
        rom = f.get("rom")
        if rom is not None:
            rom = c.obj(rom, f"{p}.rom")
            rs = c.int_(rom.get("size", 0), f"{p}.rom.size", 2048, 2**24)
            if rs is not None and rs & (rs - 1):
                c.fail(f"{p}.rom.size", f"expected a power of two, got {rs}")
            rom = {"base": c.int_(rom.get("base", 0), f"{p}.rom.base", 0, 2**32 - 1), "size": rs}
        g["rom"] = rom
        irq = f.get("interrupt")
        if irq is not None:
            irq = c.obj(irq, f"{p}.interrupt")
            pin = c.choice(irq.get("pin", "A"), f"{p}.interrupt.pin", ("A", "B", "C", "D"))
            gsi = irq.get("gsi")
            if gsi is not None:
                gsi = c.int_(gsi, f"{p}.interrupt.gsi", 0, 4096)
                if gsi is not None and not gsi_ok(gsi):
                    c.fail(f"{p}.interrupt.gsi", f"GSI {gsi} is on no IOAPIC")
            pic = irq.get("pic_irq")
            if pic is not None:
                pic = c.int_(pic, f"{p}.interrupt.pic_irq", 0, 15)
            irq = {"pin": pin, "gsi": gsi, "pic_irq": pic,
                   "source": c.str_(irq.get("source", "profile"), f"{p}.interrupt.source")}
        g["interrupt"] = irq
        br = f.get("bridge")
        if header == 1:
            br = c.obj(br or {}, f"{p}.bridge")
            sec = c.int_(br.get("secondary", 0), f"{p}.bridge.secondary", 1, 255)
            sub_ = c.int_(br.get("subordinate", sec), f"{p}.bridge.subordinate", 1, 255)
            if sec is not None and sec <= bdf[0]:
                c.fail(f"{p}.bridge.secondary", f"bus {sec:#04x} is not below the bridge's own "
                                                f"bus {bdf[0]:#04x}")
            if sec is not None and sub_ is not None and sub_ < sec:
                c.fail(f"{p}.bridge.subordinate", f"{sub_:#04x} is below secondary {sec:#04x}")
            wins = {}
            for w in ("io", "mem", "pref"):
                v = br.get(w)
                if v is not None:
                    v = c.list_(v, f"{p}.bridge.{w}")
                    if len(v) != 2:
                        c.fail(f"{p}.bridge.{w}", "expected [base, limit]")
                        v = None
                    else:
                        v = [c.int_(v[0], f"{p}.bridge.{w}[0]", 0, 2**52),
                             c.int_(v[1], f"{p}.bridge.{w}[1]", 0, 2**52)]
                wins[w] = v
            br = {"secondary": sec, "subordinate": sub_, **wins,
                  "subtractive": c.bool_(br.get("subtractive", False), f"{p}.bridge.subtractive")}
        elif br is not None:
            c.fail(f"{p}.bridge", "only a function with header 1 is a bridge")
            br = None
        g["bridge"] = br
        caps = c.list_(f.get("capabilities", ["pm"]), f"{p}.capabilities")
        for j, cap in enumerate(caps):
            c.choice(cap, f"{p}.capabilities[{j}]", ("pm", "msi", "pcie"))
        g["capabilities"] = list(caps)
        model = f.get("model")
        if model is not None:
            c.choice(model, f"{p}.model", MODELS)
            if model == "ide" and g["class"] is not None and g["class"] >> 8 != 0x0101:
                c.fail(f"{p}.model", f"an IDE model needs class 0x0101xx, got {g['class']:#08x}")
            if model == "ahci" and not any(b["index"] == 5 and b["kind"] != "io" for b in bars):
                c.fail(f"{p}.model", "an AHCI controller needs its registers in memory BAR 5")
            if model == "uart" and not any(b["index"] == 0 and b["kind"] == "io" for b in bars):
                c.fail(f"{p}.model", "a PCI UART needs an I/O BAR 0")
        g["model"] = model
        funcs.append(g)
    out["pci"] = funcs

    # topology: every bus is a root bus or some bridge's secondary ------------------------
    root_nums = {r["bus"] for r in roots if r["bus"] is not None}
    secondaries = {}
    for i, g in enumerate(funcs):
        if g["bridge"] and g["bridge"]["secondary"] is not None:
            s = g["bridge"]["secondary"]
            if s in secondaries or s in root_nums:
                c.fail(f"pci[{i}].bridge.secondary", f"bus {s:#04x} is already "
                       + ("a root bus" if s in root_nums else f"behind {secondaries[s]}"))
            secondaries[s] = g["bdf"]
    present = {(g["bus"], g["dev"], g["fn"]) for g in funcs}
    for i, g in enumerate(funcs):
        if g["bus"] not in root_nums and g["bus"] not in secondaries:
            c.fail(f"pci[{i}].bdf", f"bus {g['bus']:02x} is neither a root bus "
                                    f"(pci_host.root_buses) nor behind a bridge")
        if g["fn"] and (g["bus"], g["dev"], 0) not in present:
            c.fail(f"pci[{i}].bdf", f"function {g['fn']} without function 0 on "
                                    f"{g['bus']:02x}:{g['dev']:02x}")

    # ISA, serial, ACPI, disks ----------------------------------------------------------
    isa = c.obj(doc.get("isa", {}), "isa")
    out["isa"] = {k: c.bool_(isa.get(k, k in ("pic", "pit", "rtc")), f"isa.{k}") for k in ISA_DEVICES}
    for k in isa:
        if k not in ISA_DEVICES:
            c.fail(f"isa.{k}", f"unknown ISA device (known: {', '.join(ISA_DEVICES)})")
    serial = []
    for i, s in enumerate(c.list_(doc.get("serial", []), "serial")):
        p = f"serial[{i}]"
        s = c.obj(s, p)
        c.required(s, "port", p)
        serial.append({"port": c.int_(s.get("port", 0x3F8), f"{p}.port", 0, 0xFFF8),
                       "irq": c.int_(s.get("irq", 4), f"{p}.irq", 0, 15),
                       "name": c.str_(s.get("name", f"ttyS{i}"), f"{p}.name")})
    out["serial"] = serial
    acpi = c.obj(doc.get("acpi", {}), "acpi")
    out["acpi"] = {
        "oem_id": c.str_(acpi.get("oem_id", "XENLAB"), "acpi.oem_id")[:6],
        "oem_table_id": c.str_(acpi.get("oem_table_id", "XLPC"), "acpi.oem_table_id")[:8],
        "pm_timer_port": c.int_(acpi.get("pm_timer_port", 0x408), "acpi.pm_timer_port", 0x10, 0xFFFC),
        "sci_irq": c.int_(acpi.get("sci_irq", 9), "acpi.sci_irq", 0, 15),
        "hpet": c.int_(acpi["hpet"], "acpi.hpet", 0, 2**32 - 1) if acpi.get("hpet") is not None else None,
        "hpet_id": c.int_(acpi.get("hpet_id", 0x8086A201), "acpi.hpet_id", 0, 2**32 - 1),
    }
    disks = []
    ide_fns = {g["bdf"]: g for g in funcs if g.get("model") in ("ide", "ahci")}
    for i, d in enumerate(c.list_(doc.get("disks", []), "disks")):
        p = f"disks[{i}]"
        d = c.obj(d, p)
        ctl = d.get("controller")
        b = parse_bdf(ctl or "")
        key = f"{b[0]:02x}:{b[1]:02x}.{b[2]}" if b else None
        if key not in ide_fns:
            c.fail(f"{p}.controller", f"{ctl!r} is not a PCI function with model \"ide\" or \"ahci\"")
        ahci = key in ide_fns and ide_fns[key].get("model") == "ahci"
        disks.append({"controller": key,
                      "channel": c.int_(d.get("channel", 0), f"{p}.channel", 0, 5 if ahci else 1),
                      "drive": c.int_(d.get("drive", 0), f"{p}.drive", 0, 0 if ahci else 1),
                      "size": c.size(d.get("size", "8G"), f"{p}.size"),
                      "model": c.str_(d.get("model", "XENLAB VIRTUAL DISK"), f"{p}.model")})
    out["disks"] = disks
    out["notes"] = [c.str_(n, f"notes[{i}]") for i, n in enumerate(c.list_(doc.get("notes", []), "notes"))]
    if c.errors:
        raise ProfileError(f"{origin} is not a valid profile:\n  " + "\n  ".join(c.errors))
    return Profile(name, out)


def load_profile(name_or_path) -> Profile:
    """Load a profile by name (from ``datasets/profiles``) or from a JSON file path."""
    p = Path(name_or_path)
    if not p.suffix and not p.exists():
        p = profiles_dir() / f"{name_or_path}.json"
        if not p.exists():
            raise ProfileError(f"no profile named {name_or_path!r}; known profiles: "
                               f"{', '.join(list_profiles()) or 'none'}")
    try:
        doc = json.loads(p.read_text())
    except FileNotFoundError:
        raise ProfileError(f"{p}: no such profile file") from None
    except json.JSONDecodeError as e:
        raise ProfileError(f"{p}: not JSON: {e}") from None
    prof = validate(doc, origin=str(p))
    prof.path = p
    return prof


def list_profiles() -> list[str]:
    d = profiles_dir()
    return sorted(x.stem for x in d.glob("*.json") if not x.name.endswith(".schema.json"))


def dumps(doc: dict) -> str:
    """A profile as JSON that reads well: one line per list entry."""
    lines = ["{"]
    items = list(doc.items())
    for i, (k, v) in enumerate(items):
        end = "," if i < len(items) - 1 else ""
        if isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
            body = ",\n".join("  " + json.dumps(x) for x in v)
            lines.append(f" {json.dumps(k)}: [\n{body}\n ]{end}")
        else:
            lines.append(f" {json.dumps(k)}: {json.dumps(v)}{end}")
    lines.append("}")
    return "\n".join(lines) + "\n"
