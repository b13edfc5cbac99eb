"""Stage 11, ``console``: the console hand-over (consconfig).

The early console (dboot's, then kmdb's) is retired when consconfig opens
the console device the running system uses.  The console code was common
intel code with i86pc's rules: the ``output-device``/``console`` boot
property, else the VGA text screen.  dom0's command line names no console,
so the 2007 code chose ``text``: VGA memory at physical 0xB8000 -- under Xen
a page of dom0's RAM.  (``ttya`` would be no better: the UART at 0x3F8 is
Xen's own console port and denied to dom0.)  After the hand-over nothing
reaches the screen or the serial line: the boot looks dead.

The story's fix: move the platform-specific part of consconfig to i86pc and
i86xen, and on i86xen "always send the Solaris console to the Xen console"
(``xencons``, over ``HYPERVISOR_console_io``), with the early console retired
(keep both and every line appears twice).
"""

from __future__ import annotations

from ...kernel.intel.consconfig import CONSOLE_DEVICES
from ..hooks import hook


def _valid(choice):
    names = [choice] if isinstance(choice, str) else choice
    if not isinstance(names, (list, tuple)) or not names or \
            any(n not in CONSOLE_DEVICES for n in names):
        return (f"expected a console device or a list of them: "
                f"{', '.join(repr(c) for c in CONSOLE_DEVICES)}")
    return None


def consconfig_fixed(platform, bootprops, xen_info):
    if platform == "i86xen":
        return "xencons"
    return bootprops.get("output-device") or bootprops.get("console") or "text"


@hook("consconfig", stage="console", reference=consconfig_fixed, validate=_valid)
def consconfig(platform, bootprops, xen_info):
    """The console device of the running system (or a list: output goes to each).

    ``platform``: ``"i86pc"`` / ``"i86xen"``; ``bootprops``: boot properties
    (``console``, ``output-device`` ...); ``xen_info``: start_info (dict) or
    None.  Devices: ``"text"`` (VGA text), ``"ttya"``/``"ttyb"`` (a UART),
    ``"xencons"`` (the Xen console), ``"hypervisor"`` (keep the early
    console: console_io through the boot console).  2007 default: i86pc's
    rule, ``output-device``, then ``console``, then ``"text"``.
    """
    return bootprops.get("output-device") or bootprops.get("console") or "text"


__all__ = ["consconfig", "consconfig_fixed", "CONSOLE_DEVICES"]
