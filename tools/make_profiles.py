"""Regenerate the profiles of real machines from their boot-log excerpts.

    python tools/make_profiles.py

Each profile is ``xenlab profiles import-dmesg`` run on
``datasets/reference/dmesg/NAME.log`` (verbatim lines from the public
linuxhw/Dmesg repository; ``NAME.source.txt`` says which file at which commit),
plus the hand-written facts below (model name, year, nominal memory) that the
log states in prose rather than in lines the importer reads.
"""

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from xenlab.machine.dmesg import import_dmesg  # noqa: E402
from xenlab.machine.profile import dumps, validate  # noqa: E402

FACTS = {
    "sun-x2200m2": dict(machine="Sun Fire X2200 M2 (2 x AMD Opteron 2214, NVIDIA MCP55 Pro)",
                        year=2007, memory="16G",
                        description="Sun's 2006-2007 two-socket Opteron server, the hardware "
                                    "generation of the Solaris dom0 bring-up."),
    "dell-optiplex755": dict(machine="Dell OptiPlex 755 (Core 2 Quad Q6600, Intel Q35 + ICH9DO)",
                             year=2007, memory="4G",
                             description="A 2007 business desktop; SATA in IDE mode, AMT "
                                         "serial-over-LAN UART at 00:03.3."),
    "dell-poweredge-r630": dict(machine="Dell PowerEdge R630 (2 x Xeon E5-2680 v3, C610 PCH)",
                                year=2015, memory="128G",
                                description="A 2015 two-socket rack server: 48 CPUs, three "
                                            "IOAPICs, four root buses, AHCI storage."),
    "lenovo-thinkpad-t470": dict(machine="Lenovo ThinkPad T470 20HD (Core i7-7500U, Sunrise Point-LP)",
                                 year=2017, memory="16G",
                                 description="A 2017 UEFI laptop: one 120-pin IOAPIC, NVMe "
                                             "storage (not modelled, so no disk)."),
}


def source_of(name):
    src = {"kind": "dmesg"}
    for line in (ROOT / "datasets/reference/dmesg" / f"{name}.source.txt").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("repo", "path", "commit", "kernel"):
            src[key] = value.strip()
    src["excerpt"] = f"datasets/reference/dmesg/{name}.log"
    return src


def main():
    for name, facts in FACTS.items():
        text = (ROOT / "datasets/reference/dmesg" / f"{name}.log").read_text()
        doc = import_dmesg(text, name=name, source=source_of(name))
        doc.update(facts)
        validate(doc, origin=name)
        out = ROOT / "datasets/profiles" / f"{name}.json"
        out.write_text(dumps(doc))
        print(f"wrote {out.relative_to(ROOT)}: {len(doc['pci'])} PCI functions, "
              f"{len(doc['cpus'])} CPUs")


if __name__ == "__main__":
    main()
