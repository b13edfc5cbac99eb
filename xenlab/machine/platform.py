"""Assemble a whole PC from a profile: the builder behind ``Machine.from_profile``.

Order of work, as a PC comes up: memory map, interrupt controllers, the PCI
host with every function and bridge as the firmware left them (BARs assigned,
decoding on), device models behind the functions that have one, the legacy ISA
devices the profile lists, then the firmware's data in the first megabyte and
the ACPI tables.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from . import e820 as E
from .clock import Clock
from .devices.acpipm import AcpiPm
from .devices.ahci import AhciController
from .devices.disk import DiskImage
from .devices.hpet import Hpet
from .devices.ide import AtaDisk, IdeController
from .devices.ioapic import IoApic
from .devices.isa import Floppy82077, I8042, ParallelPort
from .devices.lapic import DM_EXTINT, DM_NMI, LVT_LINT0, LVT_LINT1, SVR, Lapic, LapicWindow
from .devices.pic8259 import PicPair
from .devices.pit8254 import Pit8254
from .devices.rtc import Rtc
from .devices.uart16550 import PciUart, Uart16550
from .firmware import acpi, bda
from .firmware.bios32 import Bios32
from .firmware.memmap import resize
from .irq import InterruptRouter, Override
from .pci import PciFunction, PciHost
from .pci import config as C

ROM_TABLES = 0xF1000            # ACPI tables in the BIOS segment when the map has no ACPI region
ROM_TABLES_END = 0xFF000
RSDP_ADDRESS = 0xF0040


@dataclass
class FirmwareInfo:
    """Where the firmware put things, for tests and for explorers."""
    rsdp: int = 0
    tables: dict = field(default_factory=dict)        # signature -> machine address
    ebda: int = 0
    bios32: Bios32 | None = None

    @property
    def traps(self) -> dict:
        """Machine address -> handler(regs) -> regs, for the native run loop."""
        return dict(self.bios32.traps) if self.bios32 else {}


def _e820(profile):
    return [E.E820Entry(e["base"], e["end"] - e["base"] + 1, e["type"]) for e in profile["e820"]]


def _high_windows(profile):
    """Device windows above 4 GiB that RAM must not cover."""
    out = []
    for f in profile["pci"]:
        for b in f["bars"]:
            if b["base"] >= 1 << 32:
                out.append((b["base"], b["base"] + b["size"]))
        br = f.get("bridge") or {}
        for w in ("mem", "pref"):
            if br.get(w) and br[w][0] >= 1 << 32:
                out.append((br[w][0], br[w][1] + 1))
    return out


def build(machine_cls, profile, memory=None, seed=0):
    from .machine import parse_size

    addr_bits = profile["addr_bits"]
    e820 = _e820(profile)
    if memory is not None:
        e820 = resize(e820, parse_size(memory), avoid=_high_windows(profile), limit=1 << addr_bits)
    ram = sum(e.length for e in e820 if e.type == E.E820_RAM)
    cpus = profile.cpus
    m = machine_cls(ram, ncpus=len(cpus), e820=e820, addr_bits=addr_bits, seed=seed,
                    name=profile.name)
    m.profile = profile
    m.clock = Clock()
    m.notes = list(profile.get("notes", []))
    _interrupts(m, profile)
    _pci(m, profile)
    _isa(m, profile)
    _firmware(m, profile)
    _vcpus(m)
    return m


def _vcpus(m):
    """One vCPU per enabled CPU of the profile; vCPU i owns LAPIC i (and CPUID
    reports that LAPIC's id as its initial APIC ID).  An interrupt
    that becomes deliverable at a LAPIC sets that vCPU's pending-interrupt slot;
    ``Machine.run_native`` acknowledges it on the "irq" exit and injects the vector."""
    from .cpu import Vcpu
    m.vcpus = [Vcpu(m.memory, m.ports, m.mmio, i, apic_id=lap.apic_id)
               for i, lap in enumerate(m.lapics)]

    def pending(cpu):
        m.vcpus[cpu].irq_pending = True
    m.interrupts.on_pending = pending


# -- interrupt controllers ------------------------------------------------------------

def _interrupts(m, profile):
    elcr = 0
    for f in profile["pci"]:
        irq = f.get("interrupt") or {}
        if irq.get("pic_irq") is not None:
            elcr |= 1 << irq["pic_irq"]
    for o in profile["overrides"]:
        if o["trigger"] == "level":
            elcr |= 1 << o["bus_irq"]
    m.pic = PicPair(elcr) if profile["isa"]["pic"] else None
    if m.pic is not None:
        m.pic.attach(m.ports)
        # as a PC BIOS leaves them: vectors 0x08 and 0x70, cascade on IR2, all masked
        for port, base, icw3, mask in ((0x20, 0x08, 0x04, 0xFB), (0xA0, 0x70, 0x02, 0xFF)):
            for a0, v in ((0, 0x11), (1, base), (1, icw3), (1, 0x01), (1, mask)):
                m.pic.io_write(port + a0, 1, v)
    m.ioapics = []
    for io in profile["ioapics"]:
        dev = IoApic(io["id"], io["address"], io["gsi_base"], io["pins"], io["version"])
        m.ioapics.append(dev)
    lap = profile["lapic"]
    m.lapics = [Lapic(i, c["apic_id"], version=lap["version"], clock=m.clock)
                for i, c in enumerate(profile.cpus)]
    for l in m.lapics:
        m.clock.add(l)
    overrides = [Override(o["bus_irq"], o["gsi"], o["polarity"], o["trigger"])
                 for o in profile["overrides"]]
    m.interrupts = InterruptRouter(m.pic, m.ioapics, m.lapics, overrides)
    from .pci.decode import MmioDecoder
    m.decoder = MmioDecoder(m.mmio)
    for dev in m.ioapics:
        size = 0x1000 if dev.address % 0x1000 == 0 else 0x400
        m.decoder.add(dev.address, size, dev, f"ioapic {dev.apic_id}")
    m.lapic_window = LapicWindow(m.lapics, lambda: m.current_cpu)
    m.decoder.add(lap["address"], 0x1000, m.lapic_window, "lapic")
    # the BIOS hands over in virtual wire mode: BSP's LINT0 ExtINT, LINT1 NMI (MP spec §3.6.2.2)
    bsp = m.lapics[0]
    bsp.write_register(SVR, 0x1FF)
    bsp.write_register(LVT_LINT0, DM_EXTINT << 8)
    bsp.write_register(LVT_LINT1, DM_NMI << 8)


# -- PCI -------------------------------------------------------------------------------

def _pci(m, profile):
    hp = profile["pci_host"]
    host = PciHost(m.ports, m.mmio, mechanisms=hp["mechanisms"], addr_bits=m.memory.addr_bits)
    host.decoder = m.decoder
    host.on_intx = m.interrupts.pci_intx
    m.pci = host
    buses = {}
    for r in hp["root_buses"]:
        buses[r["bus"]] = host.add_root_bus(r["bus"], r["last"])
    pending = list(profile["pci"])
    made = {}
    while pending:
        rest = []
        for f in pending:
            if f["bus"] not in buses:
                rest.append(f)
            else:
                fn = _function(m, f)
                host.attach(buses[f["bus"]], f["dev"], f["fn"], fn)
                made[f["bdf"]] = (fn, f)
                if fn.is_bridge:
                    buses[f["bridge"]["secondary"]] = fn.child
        if len(rest) == len(pending):
            raise ValueError(f"pci: bus {rest[0]['bus']:02x} of {rest[0]['bdf']} is unreachable")
        pending = rest
    m.pci_profile = made
    limit = 1 << m.memory.addr_bits
    top = limit
    for bdf, (fn, f) in made.items():
        cmd = C.CMD_MASTER | C.CMD_SERR
        for b in f["bars"]:
            base = b["base"]
            if base + b["size"] > limit:                  # beyond this CPU's address width
                top = (top - b["size"]) & ~(b["size"] - 1)
                m.notes.append(f"{bdf} BAR{b['index']}: {base:#x} is beyond the {m.memory.addr_bits}"
                               f"-bit machine address space; firmware placed it at {top:#x}")
                base = top
            fn.set_bar(b["index"], b["kind"], b["size"], base, b["prefetch"])
            cmd |= C.CMD_IO if b["kind"] == "io" else C.CMD_MEMORY
        if fn.is_bridge:
            cmd |= C.CMD_IO | C.CMD_MEMORY
        fn.config_write(C.COMMAND, 2, cmd)
    for bdf, (fn, f) in made.items():
        host.redecode(fn)
        for bar in fn.bars:
            if bar is not None and bar.note:
                m.notes.append(f"{bdf} BAR{bar.index}: {bar.note}")
    if hp["mcfg"]:
        mc = hp["mcfg"]
        host.enable_ecam(mc["base"], mc["start_bus"], mc["end_bus"])
    for bdf, (fn, f) in made.items():
        irq = f.get("interrupt")
        if irq:
            m.interrupts.route_pci(fn, irq["gsi"], irq["pic_irq"])
    # device models
    m.ide, m.ahci, m.pci_uarts = [], [], []
    for bdf, (fn, f) in made.items():
        if f.get("model") == "ide":
            ctrl = IdeController(m.memory, fn, m.interrupts)
            ctrl.attach_legacy(m.ports)
            ctrl.bdf = bdf
            m.ide.append(ctrl)
        elif f.get("model") == "ahci":
            ctrl = AhciController(m.memory, fn)
            ctrl.bdf = bdf
            m.ahci.append(ctrl)
        elif f.get("model") == "uart":
            m.pci_uarts.append(PciUart(fn, f"pci-{bdf}"))
    m.disks = []
    for i, d in enumerate(profile["disks"]):
        ctrl = next(c for c in m.ide + m.ahci if c.bdf == d["controller"])
        img = DiskImage(d["size"] - d["size"] % 512, seed=(m.seed << 4 | i) & 0xFFFF)
        ctrl.attach_disk(d["channel"], d["drive"], AtaDisk(img, d["model"], f"XL{m.seed:04d}{i:02d}"))
        m.disks.append(img)


def _function(m, f):
    fn = PciFunction(f["vendor"], f["device"], f["class"], revision=f["revision"],
                     header=f["header"], subsystem=tuple(f["subsystem"] or (0, 0)),
                     name=f["name"])
    if f["rom"]:
        fn.set_rom(f["rom"]["size"], f["rom"]["base"])
    irq = f.get("interrupt")
    if irq:
        line = irq["pic_irq"] if irq["pic_irq"] is not None else 0xFF
        fn.set_interrupt("-ABCD".index(irq["pin"]), line)
    for cap in f["capabilities"]:
        if cap == "pm":
            fn.add_capability(C.CAP_PM, 8, bytes([0x03, 0x00, 0x00, 0x00]), bytes([0, 0, 3, 0]))
        elif cap == "msi":
            fn.add_capability(C.CAP_MSI, 14, bytes([0x80, 0x00]) + bytes(10),
                              bytes([0x71, 0]) + b"\xfc\xff\xff\xff" + b"\xff" * 4 + b"\xff\xff")
        elif cap == "pcie":
            port_type = 4 if f["header"] == 1 else 0        # root port / endpoint
            fn.add_capability(C.CAP_PCIE, 0x3C, bytes([0x02 | port_type << 4, 0x00]) + bytes(0x3A))
    if f["header"] == 1:
        br = f["bridge"]
        fn.set_bridge(f["bus"], br["secondary"], br["subordinate"], io=br.get("io"),
                      mem=br.get("mem"), pref=br.get("pref"), subtractive=br["subtractive"])
    return fn


# -- ISA ---------------------------------------------------------------------------------

def _isa(m, profile):
    isa = profile["isa"]
    r = m.interrupts
    m.isa = {}
    if isa["pit"]:
        pit = Pit8254(m.clock, r.isa_line(0))
        pit.attach(m.ports)
        m.clock.add(pit)
        m.isa["pit"] = pit
    if isa["rtc"]:
        start = dt.datetime(profile["year"], 1, 1) + dt.timedelta(
            seconds=int(m.rng.integers(0, 365 * 86400)))
        rtc = Rtc(m.clock, start, r.isa_line(8))
        rtc.attach(m.ports)
        m.isa["rtc"] = rtc
    if isa["i8042"]:
        k = I8042(r.isa_line(1), r.isa_line(12))
        k.attach(m.ports)
        m.isa["i8042"] = k
    if isa["floppy"]:
        f = Floppy82077(r.isa_line(6))
        f.attach(m.ports)
        m.isa["floppy"] = f
    if isa["parallel"]:
        p = ParallelPort(0x378, r.isa_line(7))
        p.attach(m.ports)
        m.isa["parallel"] = p
    m.uarts = []
    for s in profile["serial"]:
        u = Uart16550(s["port"], r.isa_line(s["irq"]), s["name"])
        u.attach(m.ports)
        m.uarts.append(u)
    pm_base = profile["acpi"]["pm_timer_port"] - 8
    m.acpi_pm = AcpiPm(pm_base, m.clock)
    try:
        m.acpi_pm.attach(m.ports)
    except ValueError as e:
        m.notes.append(f"ACPI PM block at {pm_base:#x}: {e}")
    m.sci = r.isa_line(profile["acpi"]["sci_irq"])
    m.hpet = None
    if profile["acpi"]["hpet"] is not None:
        m.hpet = Hpet(m.clock, profile["acpi"]["hpet_id"], router=r)
        base = profile["acpi"]["hpet"]
        m.decoder.add(base, 0x1000 if base % 0x1000 == 0 else 0x400, m.hpet, "hpet")
        m.clock.add(m.hpet)


# -- firmware -------------------------------------------------------------------------------

def _firmware(m, profile):
    info = FirmwareInfo()
    m.firmware = info
    e820 = m.e820
    ram_low = sum(min(e.end, 1 << 20) - e.base for e in e820 if e.type == E.E820_RAM and e.base < 1 << 20)
    if "rtc" in m.isa:
        ext = sum(e.length for e in e820 if e.type == E.E820_RAM and 1 << 20 <= e.base < 1 << 32)
        m.isa["rtc"].set_memory(ram_low >> 10, min(ext, 15 << 20) >> 10,
                                max(ext - (15 << 20), 0) >> 16)
    info.ebda = bda.install(m.memory, e820=e820, serial_ports=[s["port"] for s in profile["serial"]],
                            parallel_ports=[0x378] if profile["isa"]["parallel"] else [],
                            floppy=profile["isa"]["floppy"],
                            bios_date=f"01/01/{profile['year'] % 100:02d}",
                            vga=any(f["class"] >> 16 == 0x03 for f in profile["pci"]))
    info.bios32 = Bios32(m.pci)
    info.bios32.install(m.memory)
    _acpi(m, profile, info)


def _prt_tree(m, profile):
    """_PRT entries for the root bus 0 and one device per bridge below it."""
    by_bus = {}
    for bdf, (fn, f) in m.pci_profile.items():
        by_bus.setdefault(f["bus"], []).append((fn, f))
    counter = [0]

    def entries(bus):
        seen, out = {}, []
        for fn, f in by_bus.get(bus, []):
            irq = f.get("interrupt")
            if not irq or irq["gsi"] is None:
                continue
            key = (f["dev"], "ABCD".index(irq["pin"]))
            if key in seen:
                if seen[key] != irq["gsi"]:
                    m.notes.append(f"{f['bdf']}: INT{irq['pin']} shares device {f['dev']:#x}'s "
                                   f"_PRT entry (GSI {seen[key]}), not GSI {irq['gsi']}")
                continue
            seen[key] = irq["gsi"]
            out.append((f["dev"] << 16 | 0xFFFF, key[1], irq["gsi"]))
        return out

    def bridges(bus):
        out = []
        for fn, f in by_bus.get(bus, []):
            if f["header"] == 1:
                counter[0] += 1
                out.append((f"BR{counter[0]:02X}"[-4:], f["dev"] << 16 | f["fn"],
                            entries(f["bridge"]["secondary"]), bridges(f["bridge"]["secondary"])))
        return out
    return entries(0), bridges(0)


def _acpi(m, profile, info):
    a = profile["acpi"]
    oem, tid = a["oem_id"], a["oem_table_id"]
    mem = m.memory
    region = next((e for e in m.e820 if e.type == E.E820_ACPI and e.end <= 1 << 32
                   and e.length >= 0x4000), None)
    nvs = next((e for e in m.e820 if e.type == E.E820_NVS and e.end <= 1 << 32
                and e.length >= 0x40 + (-e.base) % 64), None)
    cursor = region.base if region else ROM_TABLES
    end = region.end if region else ROM_TABLES_END

    def place(data, align=16):
        nonlocal cursor
        cursor = (cursor + align - 1) & ~(align - 1)
        addr = cursor
        if addr + len(data) > end:
            raise ValueError("ACPI tables do not fit in the firmware's ACPI region")
        mem.write_bytes(addr, data)
        cursor += len(data)
        return addr

    if nvs is not None:
        facs_addr = (nvs.base + 63) & ~63
        mem.write_bytes(facs_addr, acpi.facs())
    else:
        facs_addr = place(acpi.facs(), 64)
    root, brs = _prt_tree(m, profile)
    info.tables["FACS"] = facs_addr
    info.tables["DSDT"] = place(acpi.dsdt(oem, tid, root, brs))
    legacy = bool(profile["serial"]) or profile["isa"]["floppy"] or profile["isa"]["parallel"]
    info.tables["FACP"] = place(acpi.fadt(facs=facs_addr, dsdt=info.tables["DSDT"],
                                          sci_irq=a["sci_irq"], pm_base=a["pm_timer_port"] - 8,
                                          legacy=legacy, i8042=profile["isa"]["i8042"],
                                          oem_id=oem, oem_table_id=tid))
    info.tables["APIC"] = place(acpi.madt(lapic_address=profile["lapic"]["address"],
                                          cpus=profile["cpus"], ioapics=profile["ioapics"],
                                          overrides=profile["overrides"], nmis=profile["lapic_nmi"],
                                          oem_id=oem, oem_table_id=tid))
    entries = ["FACP", "APIC"]
    mc = profile["pci_host"]["mcfg"]
    if mc:
        info.tables["MCFG"] = place(acpi.mcfg(mc["base"], mc["start_bus"], mc["end_bus"], oem, tid))
        entries.append("MCFG")
    if a["hpet"] is not None:
        info.tables["HPET"] = place(acpi.hpet(a["hpet_id"], a["hpet"], oem, tid))
        entries.append("HPET")
    addrs = [info.tables[s] for s in entries]
    info.tables["RSDT"] = place(acpi.rsdt(addrs, oem, tid))
    info.tables["XSDT"] = place(acpi.xsdt(addrs, oem, tid))
    info.rsdp = RSDP_ADDRESS
    mem.write_bytes(RSDP_ADDRESS, acpi.rsdp(oem, info.tables["RSDT"], info.tables["XSDT"]))

