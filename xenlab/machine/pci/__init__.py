"""PCI: configuration space, configuration mechanisms #1 and #2, ECAM, bridges, BARs.

``PciHost`` is the host bridge (ports 0xCF8-0xCFF, the mechanism #2 window,
ECAM), ``PciFunction`` one function's configuration space, ``PciBus`` a bus
segment.  The PCI BIOS lives with the firmware (``xenlab.machine.firmware.bios32``).
"""

from .config import Bar, PciFunction
from .host import Ecam, PciBus, PciHost

__all__ = ["Bar", "Ecam", "PciBus", "PciFunction", "PciHost"]
