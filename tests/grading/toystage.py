"""A tiny, honest stage for the grading tests (registered only by the tests).

"toy_console" boots a bare machine far enough to print a banner: the kernel maps
its data page through a 4-level page table, writes the banner into it through the
MMU, then finds its console UART and sends the banner out of it, byte by byte, with
port writes.  Two hooks:

- ``toy_make_pte(mfn)``: the PTE that maps the data page.  The 2007 code forgets
  the present bit, so the first store faults (#PF, not-present write).
- ``toy_console_port(inb, outb)``: the base I/O port of the console UART.  The
  2007 code hard-codes COM1 (0x3F8); the seed puts this machine's UART at 0x2F8,
  0x3E8 or 0x2E8, so the banner goes nowhere.  The fix probes the UART's scratch
  register (base + 7) at the legacy bases.

Checks read the model: the page walk of the kernel's VA, the bytes in the data
frame, and what the UART device received.  Same seed => same machine.
"""

from __future__ import annotations

from dataclasses import dataclass

from xenlab.checks import Finding, check
from xenlab.lab.hooks import SPECS, Hooks, hook
from xenlab.machine import Machine
from xenlab.machine import regs as R
from xenlab.machine.mmu import Mmu, PageFault
from xenlab.machine.pte import PTE_P, PTE_RW, make_pte

LAB = "toy_console"
BANNER = b"SunOS Release 5.11 Version xen-toy 64-bit\n"
UART_BASES = (0x2F8, 0x3E8, 0x2E8)         # never COM1: the 2007 guess always misses
LEGACY_BASES = (0x3F8, 0x2F8, 0x3E8, 0x2E8)
PML4, PDPT, PD, PT = 0x100, 0x101, 0x102, 0x103     # page-table frames (MFNs)
UART_SCR = 7                                          # 16550 scratch register offset


def variant(seed: int) -> dict:
    """What the seed chooses: the data frame, the kernel VA and the UART's base."""
    import numpy as np
    rng = np.random.Generator(np.random.PCG64(seed))
    return {"data_mfn": int(rng.integers(0x200, 0x4000)),
            "kva": 0xFFFF_8000_0000_0000 + (int(rng.integers(1, 512)) << 21)
                   + (int(rng.integers(0, 512)) << 12),
            "uart": UART_BASES[int(rng.integers(0, len(UART_BASES)))]}


# -- hooks --------------------------------------------------------------------------------

def _pte_ok(value):
    if not isinstance(value, int) or value < 0 or value >= 1 << 63:
        return "a PTE is a non-negative int below 2**63"
    return None


def _port_ok(value):
    if not isinstance(value, int) or not 0 <= value <= 0xFFF8:
        return "an I/O port base is an int in 0..0xFFF8"
    return None


def reference_make_pte(mfn):
    return make_pte(mfn, PTE_P, PTE_RW)


@hook("toy_make_pte", stage=LAB, reference=reference_make_pte, validate=_pte_ok)
def toy_make_pte(mfn):
    """The page-table entry mapping frame ``mfn`` for kernel reads and writes.
    Return an int; may call ``make_pte(frame, *flags)`` and use the PTE_* bits."""
    return make_pte(mfn, PTE_RW)


def reference_console_port(inb, outb):
    for base in LEGACY_BASES:
        outb(base + UART_SCR, 0x5A)
        if inb(base + UART_SCR) == 0x5A:
            return base
    return LEGACY_BASES[0]


@hook("toy_console_port", stage=LAB, reference=reference_console_port, validate=_port_ok)
def toy_console_port(inb, outb):
    """The base port of the console UART.  ``inb(port)`` reads a byte and
    ``outb(port, value)`` writes one; a UART's scratch register is at base + 7."""
    return 0x3F8


# -- the model ----------------------------------------------------------------------------

class ToyUart:
    """Enough of a 16550 for a console: THR (base + 0) and the scratch register."""

    def __init__(self, base):
        self.base, self.scratch, self.sent = base, 0, bytearray()

    def io_read(self, port, size):
        return self.scratch if port - self.base == UART_SCR else 0x60   # LSR-ish: THR empty

    def io_write(self, port, size, value):
        if port - self.base == 0:
            self.sent.append(value & 0xFF)
        elif port - self.base == UART_SCR:
            self.scratch = value & 0xFF


@dataclass
class Result:
    reached: str = "none"
    failed: str | None = None
    why: str = ""


class ToyStage:
    """``ToyStage("toy_console", seed=..., memory=...)``: .hooks, .boot(), .result."""

    STEPS = ("map", "console")

    def __init__(self, name=LAB, *, profile="toy", memory="64M", seed=0):
        if name != LAB:
            raise ValueError(f"ToyStage has one stage, {LAB!r}, not {name!r}")
        self.name, self.profile, self.memory, self.seed = name, profile, memory, int(seed)
        self.hooks = Hooks()
        self.answers = {}
        self.machine = None
        self.result = Result()

    def boot(self):
        """A fresh machine every time; runs the steps until one fails."""
        v = variant(self.seed)
        self.kva, self.data_mfn = v["kva"], v["data_mfn"]
        m = self.machine = Machine(self.memory, seed=self.seed, name="toy")
        self.uart = ToyUart(v["uart"])
        m.ports.claim(v["uart"], 8, self.uart, "uart")
        mem = m.memory
        self.mmu = mmu = Mmu(mem)
        kva = self.kva
        for table, nxt, shift in ((PML4, PDPT, 39), (PDPT, PD, 30), (PD, PT, 21)):
            mem.write64((table << 12) + 8 * ((kva >> shift) & 511), make_pte(nxt, PTE_P, PTE_RW))
        mmu.write_cr4(R.CR4_PAE | R.CR4_PGE)
        mmu.write_efer(R.EFER_LME | R.EFER_NXE)
        mmu.write_cr0(R.CR0_PE | R.CR0_PG | R.CR0_WP)
        self.result = res = Result()
        # step 1: map the data page and write the banner into it
        pte = self.hooks.call("toy_make_pte", self.data_mfn)
        mem.write64((PT << 12) + 8 * ((kva >> 12) & 511), pte)
        mmu.write_cr3(PML4 << 12)
        try:
            maddr = mmu.translate(kva, write=True)
        except PageFault as f:
            res.failed, res.why = "map", f"BAD TRAP: type=e (#pf Page fault) addr={kva:#x}: {f}"
            return res
        mem.write_bytes(maddr, BANNER)
        res.reached = "map"
        # step 2: the console
        port = self.hooks.call("toy_console_port", lambda p: m.ports.read(p, 1),
                               lambda p, val: m.ports.write(p, 1, val))
        for b in mem.read_bytes(maddr, len(BANNER)):
            m.ports.write(port, 1, b)
        if not self.uart.sent:
            res.failed, res.why = "console", f"no console output (wrote to port {port:#x})"
            return res
        res.reached = "console"
        return res

    def walk(self):
        return self.mmu.walk(self.kva)


# -- checks -------------------------------------------------------------------------------

@check(points=1, title="The missing bit of the 2007 PTE", lab=LAB)
def toy_missing_bit(stage):
    default = SPECS["toy_make_pte"].default(0x1234)
    missing = [b for b in range(12) if (reference_make_pte(0x1234) >> b) & 1 and not (default >> b) & 1]
    ans = stage.answers.get("missing_bit")
    return Finding(ans in missing, "which bit the 2007 make_pte leaves out that a walk needs",
                   f"bit {missing}", f"your answer {ans!r}",
                   hint="Walk the kernel VA: which level stops, and which flag is clear?")


@check(points=2, title="The kernel's data page is mapped", lab=LAB)
def toy_mapped(stage):
    w = stage.mmu.walk(stage.kva)
    ok = w.ok and w.maddr >> 12 == stage.data_mfn and any("RW" in s.flags for s in w.steps[-1:])
    return Finding(ok, f"the page walk of {stage.kva:#x}",
                   f"present and writable, to frame {stage.data_mfn:#x}",
                   f"frame {w.maddr >> 12:#x}" if w.ok else str(w.fault),
                   hint="The PTE needs the present bit (PTE_P).")


@check(points=1, title="The banner is in the data page", lab=LAB, parent="toy_mapped")
def toy_banner(stage):
    got = stage.machine.memory.read_bytes(stage.data_mfn << 12, len(BANNER))
    return Finding(got == BANNER, f"frame {stage.data_mfn:#x}", repr(BANNER[:20]), repr(got[:20]))


@check(points=2, title="The banner came out of the console UART", lab=LAB, parent="toy_mapped")
def toy_console(stage):
    sent = bytes(stage.uart.sent)
    return Finding(sent == BANNER, f"what the UART at {stage.uart.base:#x} received",
                   repr(BANNER[:24]), repr(sent[:24]) if sent else "nothing",
                   hint="Probe the legacy bases with the scratch register.")


@check(points=2, title="The console works on another machine", lab=LAB, parent="toy_mapped",
       hidden=True)
def toy_console_hidden(stage):
    return toy_console(stage)
