"""Checks for the ``boot_kmdb`` stage: kmdb's prompt on Xen's console, the
kernel's console device, start_info read right."""

from __future__ import annotations

from ..xen.abi import SIF_INITDOMAIN
from . import Finding, check
from ._model import boot_of

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
