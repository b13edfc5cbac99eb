"""Multi-user: the ISA devices, the firmware tables, the services, the login.

Mixed into :class:`xenlab.kernel.Kernel`.  The ``multiuser`` phase:

1. the isa nexus finds its devices (i86pc: from the BIOS data area and the
   FADT; i86xen: the standard PC set) and each leaf driver probes (the
   ``isa_probe`` hook) and attaches;
2. acpica initialises from the tables it finds through ``psm_map_phys_new``
   (the RSDP in the BIOS area), and the BIOS identification (the date at
   0xFFFF5, the video BIOS at 0xC0000 that xsvc maps for X) is read the same way;
3. svc.startd starts the services listed on the root file system; each
   start method checks what it needs; one that fails sends the system to
   maintenance mode ("Console login service(s) cannot run");
4. otherwise the console shows ``console login:``.
"""

from __future__ import annotations

from .acpi import AcpiError, read_tables
from .ddi import DdiFailure
from .isa import STANDARD, Io, attach_isa, i86pc_enumerate, responds
from .phase import phase

SERVICES = (
    "svc:/system/filesystem/root:default",
    "svc:/system/filesystem/usr:default",
    "svc:/system/device/local:default",
    "svc:/system/power:default",
    "svc:/network/physical:default",
    "svc:/system/console-login:default",
)
METHOD = {"system/device/local": "/lib/svc/method/devices-local",
          "system/power": "/lib/svc/method/svc-power",
          "system/filesystem/root": "/lib/svc/method/fs-root",
          "system/filesystem/usr": "/lib/svc/method/fs-usr",
          "network/physical": "/lib/svc/method/net-physical",
          "system/console-login": "/lib/svc/method/console-login"}


def services_text() -> bytes:
    """The service list an installer puts on the root file system."""
    return ("".join(s + "\n" for s in SERVICES)).encode()


class Multiuser:
    """The phase; ``self`` is the Kernel."""

    def isa_configure(self):
        devs = i86pc_enumerate(self) if not self.plat.pv else list(STANDARD)
        self.isa_nodes = []
        io = Io(self)
        for dev in devs:
            present = self.hooks.call("isa_probe", dev, io)
            if not present:
                self.isa_nodes.append((dev, "absent"))
                continue
            line = attach_isa(self, dev)
            self.isa_nodes.append((dev, "attached"))
            self.printf(line + "\n")

    def firmware_info(self):
        """acpica and the BIOS identification, through psm_map_phys_new."""
        try:
            self.acpica = read_tables(self.phys_read, None)
        except (AcpiError, DdiFailure) as e:
            self.acpica = None
            self.cmn_err(2, f"acpica: cannot find the ACPI tables: {e}")
        try:
            self.bios_date = self.phys_read(0xFFFF5, 8).decode("latin-1")
            self.video_bios = self.phys_read(0xC0000, 2)
        except DdiFailure as e:
            self.bios_date, self.video_bios = "", b""
            self.cmn_err(2, f"xsvc: {e}")

    def service_list(self) -> list[str]:
        if self.rootdisk is None:
            files = getattr(self, "_archive_files", None) or self.boot_archive_files()
            raw = files.get("etc/svc/services", b"")
        else:
            dip, drv, disk = self.rootdisk
            va = self.bufcache
            drv.read(self, dip, disk, self.label["svc_lba"], 8, va, interrupt=True)
            raw = self.kcpu.read(va, 4096).split(b"\0")[0]
        return [ln.strip() for ln in raw.decode("latin-1").splitlines() if ln.strip()]

    def start_service(self, fmri: str) -> str | None:
        """Run a service's start method: None, or why it failed."""
        name = fmri.split(":/", 1)[1].rsplit(":", 1)[0]
        if name == "system/filesystem/root" and not getattr(self, "root_path", None):
            return "no root file system"
        if name == "system/device/local":
            for dev, state in getattr(self, "isa_nodes", []):
                if state == "attached" and not responds(self, dev):
                    return (f"devfsadm: {dev.driver} at port {dev.port:#x} does not respond "
                            f"(its status register reads 0xff)")
        if name == "system/power":
            if self.acpica is None or "FACP" not in self.acpica.tables:
                return "acpi: no FADT: cannot set up the power button or shutdown"
        if name == "system/console-login" and self.console is None:
            return "no console"
        return None

    @phase
    def multiuser(self):
        self.isa_configure()
        self.firmware_info()
        self.services = {}
        failed = []
        for fmri in self.service_list():
            why = self.start_service(fmri)
            self.services[fmri] = "online" if why is None else "maintenance"
            if why is not None:
                name = fmri.split(":/", 1)[1].rsplit(":", 1)[0]
                self.printf(f"svc.startd[7]: {fmri}: Method \"{METHOD.get(name, name)} start\" "
                            f"failed with exit status 95. ({why})\n")
                self.printf(f"svc.startd[7]: {name}:default failed fatally: transitioned to "
                            f"maintenance (see 'svcs -xv' for details)\n")
                failed.append((fmri, why))
        self.maintenance = failed
        if failed:
            self.printf("Requesting System Maintenance Mode\n"
                        "(See /lib/svc/share/README for more information.)\n"
                        "Console login service(s) cannot run\n")
            return
        host = self.props.get("hostname", "xenlab")
        self.printf(f"\n{host} console login: ")
        self.milestone("multiuser")
