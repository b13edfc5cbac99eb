"""Stage 3, ``boot_kmdb``: Xen loads dom0 and kmdb; dom0 needs a console.

The early console code was i86pc's: VGA text memory at physical 0xB8000 and
the keyboard buffer in the BIOS data area (physical 0x41A).  Under Xen those
physical addresses are *pseudo-physical*: the kernel maps whatever RAM page of
its own mfn_list says frame 0xB8 is, the text goes nowhere and nothing types
into that keyboard buffer.  The boot looks dead.  A domain 0 reads
``start_info`` and writes to Xen's console with
``HYPERVISOR_console_io(CONSOLEIO_write)`` (and reads with CONSOLEIO_read).
"""

from __future__ import annotations

from ...xen.abi import SIF_INITDOMAIN, SIF_PRIVILEGED
from ..hooks import hook

CONSOLES = ("text", "ttya", "ttyb", "hypervisor")


def _valid(name):
    if name not in CONSOLES:
        return f"expected one of {', '.join(repr(c) for c in CONSOLES)}"
    return None


def early_console_fixed(platform, bootprops, xen_info):
    if xen_info is not None and xen_info["flags"] & SIF_INITDOMAIN:
        return "hypervisor"
    return bootprops.get("console", "text")


@hook("early_console", stage="boot_kmdb", reference=early_console_fixed, validate=_valid)
def early_console(platform, bootprops, xen_info):
    """Which device the early kernel and kmdb use as their console.

    ``platform`` is ``"i86pc"`` or ``"i86xen"``; ``bootprops`` the boot
    properties (``-B console=ttya`` gives ``{"console": "ttya"}``);
    ``xen_info`` is start_info as the kernel read it (a dict: ``magic``,
    ``nr_pages``, ``flags`` (SIF_PRIVILEGED, SIF_INITDOMAIN), ``mfn_list``,
    ``mod_start``, ``cmd_line`` ...) or None on i86pc.  Return ``"text"``
    (VGA + BIOS keyboard), ``"ttya"``/``"ttyb"`` (a serial port) or
    ``"hypervisor"`` (Xen's console).  2007 default: i86pc's rule.
    """
    return bootprops.get("console", "text")


__all__ = ["early_console", "early_console_fixed", "SIF_INITDOMAIN", "SIF_PRIVILEGED"]
