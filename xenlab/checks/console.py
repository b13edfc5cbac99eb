"""Checks for the ``console`` stage: after the hand-over the console is the
Xen console, and every message reaches Xen's console exactly once."""

from __future__ import annotations

from . import Finding, check, question
from ._model import boot_of, how_far, native_reached, reached, shipped_dom0

LAB = "console"


@check(points=1, title="messages reach the console after the hand-over", lab=LAB)
def console_reached(stage):
    ok = reached(stage, "console")
    return Finding(ok, "how far the boot went",
                   "'Hostname:' on the developer's console after consconfig", how_far(stage),
                   hint="Under Xen, whose are the UART at 0x3F8 and the VGA text frame?")


@check(points=2, title="the kernel's console is the Xen console", lab=LAB)
def console_device(stage):
    k = boot_of(stage).kernel
    names = getattr(k, "console_names", [])
    ok = names == ["xencons"] and k.bop is None
    return Finding(ok, "the console device(s) consconfig opened, and the early console",
                   "xencons alone; the early (boot) console retired",
                   f"{'+'.join(names) or 'none'}; early console "
                   f"{'retired' if k.bop is None else 'still on'}",
                   hint="illumos i86xen consconfig: always the Xen console.")


@check(points=2, title="each message after the hand-over appears once on Xen's console",
       lab=LAB)
def console_once(stage):
    b = boot_of(stage)
    k = b.kernel
    text = k.messages[k.handover_at:] if hasattr(k, "handover_at") else ""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    out = "".join(b.dom0.console_out)
    counts = {ln: out.count(ln) for ln in lines}
    bad = {ln: n for ln, n in counts.items() if n != 1}
    return Finding(bool(lines) and not bad,
                   "the kernel's messages since the hand-over (message buffer) in what dom0 "
                   "wrote to Xen's console", "each exactly once",
                   f"{len(lines)} lines, each once" if lines and not bad else
                   ("; ".join(f"{ln!r} x{n}" for ln, n in list(bad.items())[:2])
                    or "no lines"),
                   hint="Is the early console still writing too?")


@check(points=1, title="the i86pc kernel still finds its console with your hook", lab=LAB,
       parent="console_reached")
def console_native(stage):
    return native_reached(stage, "console",
                          "the native boot's messages reach its console after the hand-over",
                          hint="A PC has no Xen console: i86pc keeps its own rule "
                               "(boot properties, then the text screen).", hooks="hook")


# ---------------------------------------------------------------------------
# the lab's questions (labs/11_console_multiuser.ipynb)
# ---------------------------------------------------------------------------

QLAB = "11_console_multiuser"
VGA_TEXT_PFN = 0xB8000 >> 12     # the colour text screen's frame on a PC (IBM VGA reference)


@question("console_text_mfn", lab=QLAB, points=1, answer="ANSWER_TEXT_MFN",
          title="the machine frame the 2007 'text' console wrote to",
          asks="the machine frame behind dom0's 'physical' address 0xB8000, where the 2007 "
               "console code put the VGA text screen",
          looked_at="dom0's physical-to-machine table (mfn_list) in the 2007 boot of your "
                    "variant",
          hint="0xb8::pfntomfn in kmdb: under Xen a 'physical' frame is a frame of dom0's RAM.")
def q_console_text_mfn(stage):
    d = shipped_dom0(stage)
    return d.pfn_to_mfn(VGA_TEXT_PFN)
