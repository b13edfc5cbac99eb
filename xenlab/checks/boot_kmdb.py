"""Checks for the ``boot_kmdb`` stage: kmdb's prompt on Xen's console, the
kernel's console device, start_info read right."""

from __future__ import annotations

from ..xen.abi import SIF_INITDOMAIN
from . import Finding, check, question
from ._model import boot_of, how_far, native_variant, reached, shipped_boot

LAB = "boot_kmdb"


@check(points=2, title="kmdb's prompt appears on Xen's console", lab=LAB)
def boot_kmdb_prompt(stage):
    b = boot_of(stage)
    if b.xen is None:
        raise RuntimeError("this boot has no hypervisor (a native boot?)")
    ring = b.machine.console.replace("\r", "")
    at = ring.find("Welcome to kmdb")
    ok = at >= 0 and "[0]>" in ring[at:]
    tail = [ln for ln in ring.splitlines() if ln.strip()][-1:] or [""]
    return Finding(ok, "what the machine's serial line (Xen's console, COM1) transmitted",
                   "'Welcome to kmdb' followed by the '[0]>' prompt",
                   "both" if ok else f"nothing from kmdb; the last line is {tail[0]!r}",
                   hint="Where do the early console's writes end up in a PV domain?")


@check(points=1, title="the kernel's early console is the hypervisor console", lab=LAB,
       parent="boot_kmdb_prompt")
def boot_kmdb_console_device(stage):
    k = boot_of(stage).kernel
    name = getattr(k.console, "name", None)
    return Finding(name == "hypervisor", "the kernel's console device", "hypervisor",
                   str(name), hint="dom0 writes with HYPERVISOR_console_io(CONSOLEIO_write).")


@check(points=1, title="the kernel read start_info as Xen wrote it", lab=LAB,
       parent="boot_kmdb_prompt")
def boot_kmdb_start_info(stage):
    b = boot_of(stage)
    si = b.kernel.xen_info()
    d = b.dom0
    want = {"nr_pages": d.tot_pages, "mfn_list": d.layout.vphysmap_start,
            "pt_base": d.layout.vpt_start}
    bad = [f"{k}={si[k]:#x} (Xen: {v:#x})" for k, v in want.items() if si[k] != v]
    if not si["flags"] & SIF_INITDOMAIN:
        bad.append("flags lack SIF_INITDOMAIN")
    return Finding(not bad, "the kernel's xen_info against Xen's domain 0",
                   ", ".join(f"{k}={v:#x}" for k, v in want.items()),
                   "equal" if not bad else "; ".join(bad))


@check(points=1, title="the i86pc kernel keeps its own console", lab=LAB,
       parent="boot_kmdb_prompt")
def boot_kmdb_native(stage):
    n = native_variant(stage)
    b = boot_of(n)
    name = getattr(b.kernel.console, "name", None) if b.kernel is not None else None
    want = "ttya"                      # the native boot's -B console=ttya
    ok = reached(n, "boot_kmdb") and name == want
    found = (f"console {name}" if reached(n, "boot_kmdb") else how_far(n))
    return Finding(ok, "the same machine booted natively (i86pc) with your hook",
                   f"kmdb on the boot property's console ({want}), the boot going on",
                   found, hint="On i86pc there is no Xen: the boot properties still decide "
                               "(xen_info is None there).")


# ---------------------------------------------------------------------------
# the lab's questions (labs/03_boot_to_kmdb.ipynb)
# ---------------------------------------------------------------------------

QLAB = "03_boot_to_kmdb"


@question("kmdb_screen_mfn", lab=QLAB, points=1, answer="ANSWER_SCREEN_MFN",
          title="where kmdb's 'screen' really is",
          asks="the machine frame the text console's mapping of physical 0xB8000 reaches",
          looked_at="the 2007 kernel's screen mapping, walked through dom0's page tables",
          hint="::vtop the console's screen address; the last line names pfn and mfn.")
def q_kmdb_screen_mfn(stage):
    b = boot_of(shipped_boot(stage))
    con = b.kernel.console
    con = getattr(con, "consoles", (con,))[0]
    w = b.kernel.cpus[0].vcpu.mmu.walk(con.screen_va)
    if not w.ok:
        raise RuntimeError(f"the screen mapping {con.screen_va:#x} does not walk: {w.fault}")
    return w.maddr >> 12


@question("kmdb_initdomain_flag", lab=QLAB, points=1, answer="ANSWER_INITDOMAIN",
          title="the start_info flag of domain 0",
          asks="the value of the start_info.flags bit that says 'this is the initial domain'",
          looked_at="Xen's SIF_* flags (xen/include/public/xen.h) and dom0's start_info",
          hint="::print start_info flags shows two bits set: one says privileged, the other "
               "initial domain.")
def q_kmdb_initdomain_flag(stage):
    b = boot_of(shipped_boot(stage))
    flags = b.kernel.xen_info()["flags"]
    if not flags & SIF_INITDOMAIN:
        raise RuntimeError(f"dom0's start_info.flags {flags:#x} lack SIF_INITDOMAIN")
    return SIF_INITDOMAIN
