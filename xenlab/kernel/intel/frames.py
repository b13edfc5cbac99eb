"""pandas views of the kernel's own records (for labs, views and explorers).

Mixed into :class:`xenlab.kernel.Kernel`.  Each reads what the kernel keeps
(its device tree, the HAT's mappings, its DMA allocations, its interrupt
table); none touches the machine.
"""

from __future__ import annotations


class Frames:
    """``self`` is the Kernel."""

    def devinfo_frame(self):
        """Every device node: path, driver instance, state and why."""
        import pandas as pd
        rows = []
        for dip in getattr(self, "devinfo", None).walk() if getattr(self, "devinfo", None) else []:
            if dip.parent is None:
                continue
            f = dip.pci
            rows.append({"path": dip.path, "name": dip.name, "driver": dip.driver,
                         "instance": dip.instname if dip.driver else None, "state": dip.state,
                         "bdf": f.bdf if f is not None else None,
                         "class": f"{f.class_code:06x}" if f is not None else None,
                         "why": dip.why})
        return pd.DataFrame(rows, columns=["path", "name", "driver", "instance", "state", "bdf",
                                           "class", "why"])

    def mappings_frame(self):
        """Every mapping the HAT made: VA, the PFN asked for, the frame in the
        PTE, kind (kmem, dma, device), foreign, the entry and its AVL field."""
        import pandas as pd
        from .hat import PFN_IS_FOREIGN_MFN, PT_PADDR, PT_SOFTWARE
        hat = getattr(self, "hat", None)
        rows = [{"va": m.va, "pfn": m.pfn & ~PFN_IS_FOREIGN_MFN, "foreign": m.foreign,
                 "frame": (m.pte & PT_PADDR) >> 12, "kind": m.kind, "pte": m.pte,
                 "avl": m.pte & PT_SOFTWARE}
                for m in (hat.maps.values() if hat is not None else [])]
        return pd.DataFrame(rows, columns=["va", "pfn", "foreign", "frame", "kind", "pte", "avl"])

    def dma_frame(self):
        """Every DMA allocation: owner, VA, pages, their PFNs and machine
        frames, contiguity asked for, the device's address limit."""
        import pandas as pd
        rows = []
        for m in getattr(self, "dma_allocations", []):
            frames = [self.plat.pfn_to_frame(p) for p in m.pfns]
            rows.append({"owner": m.owner, "va": m.va, "pages": len(m.pfns), "pfns": m.pfns,
                         "mfns": frames, "contig": m.contig, "addr_hi": m.attr.addr_hi,
                         "below_limit": all((f << 12) <= m.attr.addr_hi for f in frames),
                         "machine_contiguous": all(b == a + 1
                                                   for a, b in zip(frames, frames[1:]))})
        return pd.DataFrame(rows, columns=["owner", "va", "pages", "pfns", "mfns", "contig",
                                           "addr_hi", "below_limit", "machine_contiguous"])

    def intr_frame(self):
        """The interrupt table: each source, where it arrives, its handlers,
        how many came (a routing view's kernel layer: join on ``evtchn`` or
        ``vector``)."""
        import pandas as pd
        rows = []
        for (kind, where), rec in getattr(self, "intrs", {}).items():
            s = rec.spec
            src = (f"IRQ{s.isa_irq}" if s.isa_irq is not None else
                   f"{s.bus:02x}:{s.dev:02x} INT{'?ABCD'[s.pin]}#" if s.bus is not None else
                   s.name)
            rows.append({"name": s.name, "source": src,
                         "vector": where if kind == "vector" else None,
                         "evtchn": where if kind == "evtchn" else None,
                         "pirq": self.plat.port_pirq.get(where) if kind == "evtchn" and
                         hasattr(self.plat, "port_pirq") else None,
                         "handler": ", ".join(d.instname if d is not None else "clock"
                                              for d, _ in rec.handlers),
                         "count": rec.count, "spurious": rec.spurious,
                         "disabled": rec.disabled})
        return pd.DataFrame(rows, columns=["name", "source", "vector", "evtchn", "pirq",
                                           "handler", "count", "spurious", "disabled"])
