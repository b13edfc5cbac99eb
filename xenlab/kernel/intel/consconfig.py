"""consconfig: the console hand-over (illumos consconfig_dacf.c / consplat.c).

Until here the kernel wrote through the early console (dboot's / kmdb's:
under Xen ``console_io``; natively the ``console=`` device).  consconfig picks
the console device the system will use from now on -- the
``consconfig`` hook -- opens it, and retires the early console.  The
common/i86pc code took the boot properties (``output-device``, ``console``,
else the VGA text screen).  Under Xen neither the UART (Xen's own console
port, denied to dom0) nor the VGA text frame (a page of dom0's RAM at that
PFN) reaches anyone: after the hand-over the console is dead.  The i86xen
implementation sends the console to the Xen console (``xencons``, over
``console_io``).
"""

from __future__ import annotations

from .console import SERIAL_PORTS, SerialConsole, Tee, TextConsole
from .phase import phase

CONSOLE_DEVICES = ("text", "ttya", "ttyb", "xencons", "hypervisor")


class Consconfig:
    """The phase; ``self`` is the Kernel."""

    def console_device(self, name: str):
        if name == "text":
            return TextConsole(self)
        if name in SERIAL_PORTS:
            return SerialConsole(self, name)
        if name in ("xencons", "hypervisor"):
            if self.plat.name != "i86xen":
                self.panic(f"consconfig: {name}: this kernel is not running on Xen")
            from ..i86xen import HypervisorConsole
            dev = HypervisorConsole(self)
            dev.name = name
            return dev
        self.panic(f"consconfig: unknown console device {name!r}")

    @phase
    def consconfig(self):
        """Choose the console (hook), open it, retire the early console."""
        choice = self.hooks.call("consconfig", self.plat.name, dict(self.props),
                                 self.xen_info())
        names = [choice] if isinstance(choice, str) else list(choice)
        early = self.console or self.bop
        devs = []
        for n in names:
            if n == "hypervisor" and early is not None and early.name == "hypervisor":
                devs.append(early)                  # the early console kept on
            else:
                devs.append(self.console_device(n))
        new = devs[0] if len(devs) == 1 else Tee(*devs)
        self.handover_at = self.msgbuf.written if self.msgbuf else 0
        self.console = new
        self.bop = None
        self.console_names = names
        self.printf(f"Hostname: {self.props.get('hostname', 'xenlab')}\n")
        self.milestone("consconfig")
