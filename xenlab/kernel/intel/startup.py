"""The kernel: one object per boot, its boot phases in the order Solaris ran them.

:class:`Kernel` is common code (``intel``); its platform (``self.plat``: i86pc
or i86xen) supplies what differs.  The phases are methods the boot driver
(``xenlab.lab``) calls one after another; each ends by recording a milestone:

==================  =========================================================
``enter``           ``_start`` ran; start_info / dboot's boot info read; traps
                    installed; the boot console (``bop_printf``) works
``krtld``           the primary modules loaded from the boot archive
``startup_kmdb``    the early console chosen; kmdb loaded; with ``-d`` it stops
                    at its ``[0]>`` prompt until someone types ``:c``
``mlsetup``         ``pci_cfgspace_init``: the PCI configuration mechanism
                    chosen and its accessors installed
``pci_check``       the first configuration cycles: every bus scanned
``mp_startup``      the other CPUs started, each doing its own port I/O
==================  =========================================================

Hooks (the student's functions) are called through ``self.hooks.call(name,
...)``; the lab layer supplies the object and the 2007 defaults.
"""

from __future__ import annotations

import io
import tarfile

from ..image import KERNELBASE, build_unix
from ..kcpu import DEFAULT_BUDGET, KernelFault, KernelHang, KernelPanic, TrapFrame
from . import trap as T
from .cmn_err import CE_CONT, CE_NOTE, CE_PANIC, CE_WARN, MsgBuf, read_msgbuf
from .console import SERIAL_PORTS, SerialConsole, Tee, TextConsole

PCI_MECHANISM_NONE, PCI_MECHANISM_1, PCI_MECHANISM_2 = 0, 1, 2   # illumos pci_cfgspace.h
PCI_FUNCTION_ID = 0xB1                  # PCI BIOS 2.1: AH for every PCI BIOS function
PCI_BIOS_PRESENT = 0x01
PCI_SIGNATURE = 0x20494350              # "PCI " in EDX
MODPATH = ("platform/{plat}/kernel", "kernel")
MODULE_CLASS = {"acpica": "misc", "pcplusmp": "mach", "xpv_psm": "mach", "ppm": "misc",
                "agpgart": "misc", "mc-amd": "drv"}
KMDB_POLL = 20_000                      # kdelay iterations between looks at the console
KMDB_WAIT = 3_000_000                   # instructions kmdb waits for a command


def phase(fn):
    """A boot phase: a load or store of the kernel's own that faults becomes the
    kernel's BAD TRAP panic, as it would for compiled code."""
    import functools

    @functools.wraps(fn)
    def run(self, *a, **kw):
        try:
            return fn(self, *a, **kw)
        except KernelFault as f:
            import traceback
            names = [fr.name for fr in traceback.extract_tb(f.__traceback__)]
            self.fault_panic(f, names[::-1])
    return run


def module_path(name: str) -> str:
    """``drv/rootnex``: the class directory a module lives in, and its name."""
    return f"{MODULE_CLASS.get(name, 'drv')}/{name}"


class CpuInfo:
    """What a per-CPU hook sees: the CPU it runs on, and the calls it may make."""

    def __init__(self, kernel, cpu_id: int):
        self._k = kernel
        self.id = cpu_id
        self.platform = kernel.plat.name

    def physdev_op(self, cmd: int, **fields) -> int:
        """HYPERVISOR_physdev_op(cmd, {fields}) on this CPU (i86xen only)."""
        if self.platform != "i86xen":
            raise RuntimeError("physdev_op is a hypercall: there is no hypervisor on i86pc")
        return self._k.plat.physdev_op(cmd, **fields)

    def __repr__(self):
        return f"<cpu{self.id} {self.platform}>"


class Kernel:
    """The Solaris-like kernel running on ``cpus`` (KCpu objects, boot CPU first)."""

    def __init__(self, cpus, platform: str, hooks, *, unix=None):
        from ..i86pc import I86pc
        from ..i86xen import I86xen
        self.cpus = list(cpus)
        self.curcpu = 0
        self.unix = unix or build_unix()
        self.hooks = hooks
        self.plat = {"i86xen": I86xen, "i86pc": I86pc}[platform](self)
        self.props: dict[str, str] = {}
        self.boot_flags = ""
        self.cmdline = ""
        self.bop = None                 # the boot console (dboot / bootops)
        self.console = None             # the kernel's early console (and kmdb's)
        self.msgbuf: MsgBuf | None = None
        self.milestones: list[str] = []
        self.modules: list[str] = ["unix", "krtld", "genunix", "specfs"]
        self.boot_archive = (0, 0)
        self.pci_mechanism: int | None = None
        self.pci_functions: list[dict] = []
        self.cpus_started = [0]
        self.panicked: KernelPanic | None = None
        self.kmdb_loaded = False
        self._user_result = None
        for kc in self.cpus:
            kc.trap_handler = self.trap
            kc.event_handler = self.intr
            kc.user_return = self.user_return

    # ------------------------------------------------------------------ basics
    @property
    def kcpu(self):
        """The CPU the kernel is running on now."""
        return self.cpus[self.curcpu]

    def sym(self, name: str) -> int:
        return self.unix.sym(name)

    def milestone(self, name: str):
        self.milestones.append(name)

    def reached(self, name: str) -> bool:
        return name in self.milestones

    def on_cpu(self, n: int):
        """Run what follows on CPU ``n`` (``with kernel.on_cpu(1): ...``)."""
        kernel = self

        class _On:
            def __enter__(self):
                self.prev = kernel.curcpu
                kernel.curcpu = n

            def __exit__(self, *exc):
                kernel.curcpu = self.prev
        return _On()

    # ------------------------------------------------------------------ port I/O
    def inb(self, port):
        return self.kcpu.call("inb", port) & 0xFF

    def inw(self, port):
        return self.kcpu.call("inw", port) & 0xFFFF

    def inl(self, port):
        return self.kcpu.call("inl", port) & 0xFFFFFFFF

    def outb(self, port, value):
        self.kcpu.call("outb", port, value)

    def outw(self, port, value):
        self.kcpu.call("outw", port, value)

    def outl(self, port, value):
        self.kcpu.call("outl", port, value)

    # ------------------------------------------------------------------ messages
    def props_from_cmdline(self, cmdline: str):
        """``-kd -B console=ttya,foo=bar``: boot flags and properties."""
        self.cmdline = cmdline
        words = cmdline.split()
        i = 0
        while i < len(words):
            w = words[i]
            if w == "-B" and i + 1 < len(words):
                for kv in words[i + 1].split(","):
                    k, _, v = kv.partition("=")
                    self.props[k] = v
                i += 2
                continue
            if w.startswith("-"):
                self.boot_flags += w[1:]
            i += 1

    def _out(self, text: str, device=None):
        if self.msgbuf is not None:
            self.msgbuf.put(text)
        dev = device or self.console or self.bop
        if dev is not None:
            dev.puts(text)

    def bop_printf(self, text: str):
        """The boot console (before the kernel has its own): dboot's console."""
        self._out(text, self.bop)

    def printf(self, text: str):
        self._out(text)

    def cmn_err(self, level: int, text: str):
        if level == CE_PANIC:
            self.panic(text)
        prefix = {CE_CONT: "", CE_NOTE: "NOTICE: ", CE_WARN: "WARNING: "}[level]
        self._out(prefix + text + ("" if level == CE_CONT else "\n"))

    def panic(self, message: str, details: str = "", trap=None):
        """Print the panic on the console and stop the kernel (raises KernelPanic)."""
        thread = self.plat.cpu_stack(self.curcpu) if self.curcpu else self.sym("kstack")
        text = f"\npanic[cpu{self.curcpu}]/thread={thread:x}: {message}\n{details}"
        if self.panicked is None:
            self.panicked = KernelPanic(message, text, trap)
            try:
                self._out(text)
            except Exception:           # noqa: BLE001 - the console itself may be the problem
                pass
        raise KernelPanic(message, text, trap)

    def bop_panic(self, message: str):
        """A panic before the kernel console exists (dboot, krtld)."""
        self.panic(message)

    @property
    def messages(self) -> str:
        """The message buffer as the kernel left it in guest memory."""
        if self.msgbuf is None:
            return ""
        return read_msgbuf(self.kcpu.read, self.msgbuf.base)

    # ------------------------------------------------------------------ traps
    def trap(self, frame: TrapFrame):
        """Every exception lands here; the kernel handles none of them yet."""
        if frame.from_user and self._user_result is None and self._in_user:
            self._user_result = ("trap", frame)
            return None
        kc = self.kcpu
        cr2 = self.plat.trap_cr2(self.curcpu) if frame.vector == 14 else None
        frame.cr2 = cr2
        addr = cr2 if cr2 is not None else 0
        module = "unix" if self.unix.lookup(frame.rip) else "<unknown>"
        try:
            cr0, cr3, cr4 = (kc.call("getcr0"), kc.call("getcr3"), kc.call("getcr4"))
        except Exception:           # noqa: BLE001 - a register dump must not hide the panic
            cr0 = cr3 = cr4 = None
        details = (T.showregs(frame, addr, cr0, cr2, cr3, cr4) + "\n"
                   + T.stack_names(self.unix, frame.rip, frame.frame_va,
                                   self._return_addresses(frame)))
        self.panic(T.bad_trap_message(frame, addr, module), details, trap=frame)

    def _return_addresses(self, frame, depth: int = 8) -> list[int]:
        """Kernel-text addresses on the interrupted stack, innermost first, up to
        the Python call's return (a stack without frame pointers, read as a
        debugger would)."""
        out = []
        try:
            raw = self.kcpu.read(frame.rsp, 8 * depth)
        except KernelFault:
            return out
        stop = self.sym("kpy_return")
        for i in range(depth):
            w = int.from_bytes(raw[8 * i:8 * i + 8], "little")
            if w == stop:
                break
            if self.unix.base <= w < self.unix.text_end:
                out.append(w)
        return out

    def fault_panic(self, f: KernelFault, functions=()):
        """A fault in the kernel's Python (its 'C code'): the illumos #pf panic."""
        rsp = self.kcpu.reg("rsp")
        vec = f.vector
        label = T.trap_label(vec)
        msg = (f"BAD TRAP: type={vec:x} ({label}) rp={rsp:x} addr={f.va & (2**64 - 1):x} "
               f"occurred in module \"unix\"" +
               (" due to a NULL pointer dereference" if vec == 14 and f.va < 4096 else ""))
        details = (f"\nsched: {label}\nBad kernel fault at addr={f.va & (2**64 - 1):#x}\n"
                   f"the kernel {'wrote' if f.write else 'read'} it; #pf error code "
                   f"{T.bits(f.code, T.PF_BITS)}\n\n"
                   + "".join(f"{rsp:016x} unix:{n} ()\n" for n in functions
                             if not n.startswith("_") and n not in ("run", "read", "write",
                                                                     "translate", "read64")))
        self.panic(msg, details)

    def intr(self):
        """An event upcall (nothing is bound yet in these stages)."""
        return None

    def user_return(self, kind, frame):
        if self._in_user and self._user_result is None:
            self._user_result = (kind, self.kcpu.reg("rbx"))

    _in_user = False

    def user_io_probe(self, port: int = 0x80) -> tuple[str, object]:
        """Run a one-page user process that executes ``inb %dx`` on ``port``:
        ('trap', TrapFrame) if the CPU/hypervisor refused it with #GP, or
        ('syscall', 1) if the IN completed and the process came back."""
        kc = self.kcpu
        text, stack_top = self.plat.user_addresses()
        rsp0 = kc.reg("rsp")
        frame, entry = self.plat.enter_user(text, stack_top, rsp0 - 512)
        self._user_result = None
        self._in_user = True
        kc.set_reg("rdx", port)
        kc.set_reg("rbx", 0)
        try:
            return kc.run_user(frame, entry, lambda: self._user_result, budget=100_000)
        finally:
            self._in_user = False
            self._user_result = None

    # ------------------------------------------------------------------ phase: enter
    @phase
    def enter(self):
        """``_start``: the kernel's first instructions, then early platform setup."""
        self.kcpu.start()
        self.msgbuf = MsgBuf(self.kcpu, self.sym("msgbuf"), 16384)
        self.plat.early_init()
        self.bop = self.plat.boot_console()
        self.set_io_privilege(0)
        self.milestone("enter")

    def set_io_privilege(self, cpu: int):
        """The per-CPU I/O privilege hook (illumos dboot asks Xen for it on dom0)."""
        with self.on_cpu(cpu):
            self.hooks.call("set_io_privilege", CpuInfo(self, cpu))

    # ------------------------------------------------------------------ phase: krtld
    def boot_archive_files(self) -> dict[str, bytes]:
        va, n = self.boot_archive
        if not n:
            self.bop_panic("krtld: no boot archive")
        raw = self.kcpu.read(va, n)
        try:
            tar = tarfile.open(fileobj=io.BytesIO(raw), mode="r:")
            return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}
        except tarfile.TarError as e:
            self.bop_panic(f"krtld: the boot archive is not readable ({e})")

    @phase
    def krtld(self):
        """Load the primary modules (``forceload`` lines of etc/system) from the
        boot archive, searching this platform's module path."""
        files = self.boot_archive_files()
        system = files.get("etc/system", b"").decode()
        wanted = [line.split(":", 1)[1].strip() for line in system.splitlines()
                  if line.startswith("forceload:")]
        dirs = [d.format(plat=self.plat.name) for d in MODPATH]
        for mod in wanted:
            cls, _, name = mod.partition("/")
            found = next((f"{d}/{cls}/amd64/{name}" for d in dirs
                          if f"{d}/{cls}/amd64/{name}" in files), None)
            if found is None:
                self.bop_printf(f"krtld: failed to load {mod}\n")
                self.bop_panic(f"krtld: unable to load primary module {mod}")
            header = files[found].decode(errors="replace")
            if f"platform={self.plat.name}" not in header and "platform=intel" not in header:
                self.bop_printf(f"krtld: {found}: built for another platform\n")
                self.bop_panic(f"krtld: unable to load primary module {mod}")
            self.modules.append(name)
        self.milestone("krtld")

    # ------------------------------------------------------------------ phase: kmdb
    def xen_info(self) -> dict | None:
        """start_info as the kernel read it (i86xen), field -> value; None on i86pc."""
        si = getattr(self.plat, "xen_info", None)
        if si is None:
            return None
        out = {}
        for name in si.dtype.names:
            v = si[name]
            if name in ("magic", "cmd_line"):
                out[name] = bytes(v).split(b"\0")[0].decode("latin-1")
            elif v.dtype.names:
                out[name] = {n: int(v[n]) for n in v.dtype.names}
            else:
                out[name] = int(v)
        return out

    def make_console(self, name: str):
        if name == "text":
            return TextConsole(self)
        if name in SERIAL_PORTS:
            return SerialConsole(self, name)
        if name == "hypervisor":
            if self.plat.name != "i86xen":
                self.bop_panic("console=hypervisor: this kernel is not running on Xen")
            from ..i86xen import HypervisorConsole
            return HypervisorConsole(self)
        self.bop_panic(f"unknown console device {name!r}")

    @phase
    def startup_kmdb(self):
        """Choose the early console (hook), load kmdb, and with ``-d`` stop at
        its prompt until a command arrives on that console."""
        name = self.hooks.call("early_console", self.plat.name, dict(self.props),
                               self.xen_info())
        self.console = self.make_console(name)
        if "k" in self.boot_flags:
            self.bop_printf("Loading kmdb...\n")
            self.kmdb_loaded = True
            self.printf("\nWelcome to kmdb\n")
            self.printf("Loaded modules: [ " + " ".join(self.modules) + " ]\n")
            if "d" in self.boot_flags:
                self.kmdb_prompt()
        self.printf("SunOS Release 5.11 Version xenlab 64-bit\n")
        self.milestone("startup_kmdb")

    def kmdb_prompt(self):
        """``[0]>``: read commands until ``:c``."""
        while True:
            self.printf(f"[{self.curcpu}]> ")
            line = self.kmdb_readline()
            if line.strip() == ":c":
                return
            if line.strip():
                self.printf(f"mdb: '{line.strip()}' is not available at boot; type :c\n")

    def kmdb_readline(self) -> str:
        kc = self.kcpu
        line = ""
        start = kc.instructions
        while True:
            c = self.console.getc()
            if c is None:
                waited = kc.instructions - start
                if waited >= KMDB_WAIT:
                    raise KernelHang(
                        f"no progress: kmdb waited {waited:,} instructions at its prompt "
                        f"and no command arrived on its console ({self.console.name})")
                kc.call("kdelay", KMDB_POLL, budget=4 * KMDB_POLL + 100)
                continue
            ch = chr(c)
            if ch in "\r\n":
                self.printf("\n")
                return line
            self.printf(ch)
            line += ch

    # ------------------------------------------------------------------ phase: mlsetup
    @phase
    def mlsetup(self):
        """mlsetup -> pci_cfgspace_init: how this kernel will reach PCI configuration space."""
        self.pci_cfgspace_init()
        self.milestone("mlsetup")

    def pci_bios_probe(self) -> int:
        """Ask the PCI BIOS (function B101h, PCI_BIOS_PRESENT) which configuration
        mechanisms the chipset has: the i86pc way."""
        kc = self.kcpu
        kc.call("bios_pci_call", regs={"rax": (PCI_FUNCTION_ID << 8) | PCI_BIOS_PRESENT,
                                       "rbx": 0, "rcx": 0, "rdx": 0, "rdi": 0})
        eax, edx = kc.reg("rax"), kc.reg("rdx") & 0xFFFFFFFF
        cf = kc.reg("rflags") & 1
        if cf or (eax >> 8) & 0xFF or edx != PCI_SIGNATURE:
            return PCI_MECHANISM_NONE
        self.pci_last_bus = kc.reg("rcx") & 0xFF
        al = eax & 0xFF
        return PCI_MECHANISM_1 if al & 1 else PCI_MECHANISM_2 if al & 2 else PCI_MECHANISM_NONE

    def pci_cfgspace_init(self):
        mech = self.hooks.call("pci_config_mechanism", self.plat.name, self.pci_bios_probe)
        kc = self.kcpu
        kc.write64(self.sym("pci_bios_cfg_type"), mech)
        self.pci_mechanism = mech
        if mech not in (PCI_MECHANISM_1, PCI_MECHANISM_2):
            self.panic(f"pci_cfgspace_init: no PCI configuration mechanism "
                       f"(pci_bios_cfg_type={mech})")
        which = "mech1" if mech == PCI_MECHANISM_1 else "mech2"
        for op in ("getb", "getw", "getl", "putb", "putw", "putl"):
            kc.write64(self.sym(f"pci_{op}_func"), self.sym(f"pci_{which}_{op}"))

    # ------------------------------------------------------------------ phase: pci_check
    def pci_getl(self, bus, dev, func, reg) -> int:
        return self.kcpu.call("pci_getl", bus, dev, func, reg) & 0xFFFFFFFF

    def pci_getb(self, bus, dev, func, reg) -> int:
        return self.kcpu.call("pci_getb", bus, dev, func, reg) & 0xFF

    @phase
    def pci_check(self):
        """The first configuration cycles: scan bus 0 and every bus behind a
        PCI-to-PCI bridge found on the way (function 0 of each device, then the
        other functions of multi-function devices).  The full enumeration of
        every bus up to pci_bios_maxbus (illumos pci_setup_tree) comes later."""
        kc = self.kcpu
        out = self.sym("hcall_args")
        found = []
        todo, seen = [0], set()
        while todo:
            bus = todo.pop(0)
            if bus in seen or bus > 0xFF:
                continue
            seen.add(bus)
            kc.call("pci_probe_bus", bus, out, budget=20_000)
            ids = kc.read(out, 128)
            for dev in range(32):
                vd = int.from_bytes(ids[4 * dev:4 * dev + 4], "little")
                if vd in (0xFFFFFFFF, 0):
                    continue
                nfunc = 8 if self.pci_getb(bus, dev, 0, 0x0E) & 0x80 else 1
                for fn in range(nfunc):
                    vd = vd if fn == 0 else self.pci_getl(bus, dev, fn, 0)
                    if vd in (0xFFFFFFFF, 0):
                        continue
                    cls = self.pci_getl(bus, dev, fn, 8) >> 8
                    found.append({"bus": bus, "dev": dev, "func": fn, "vendor": vd & 0xFFFF,
                                  "device": vd >> 16, "class": cls})
                    if cls >> 8 == 0x0604:             # PCI-to-PCI bridge: its secondary bus
                        todo.append(self.pci_getb(bus, dev, fn, 0x19))
        self.pci_functions = found
        buses = len({f["bus"] for f in found})
        self.printf(f"pci: {len(found)} functions on {buses} bus{'es' if buses != 1 else ''} "
                    f"(configuration mechanism #{self.pci_mechanism})\n")
        self.milestone("pci_check")

    # ------------------------------------------------------------------ phase: mp_startup
    @phase
    def mp_startup(self):
        """Start the other CPUs; each sets its I/O privilege and reads the host
        bridge's ID through configuration space (its first port I/O)."""
        for n in range(1, len(self.cpus)):
            rc = self.plat.start_cpu(n)
            if rc:
                self.cmn_err(CE_WARN, f"cpu{n}: failed to start ({rc})")
                continue
            with self.on_cpu(n):
                self.kcpu.start()
                self.cpus_started.append(n)
                self.set_io_privilege(n)
                f = self.pci_functions[0] if self.pci_functions else {"bus": 0, "dev": 0,
                                                                       "func": 0}
                vd = self.pci_getl(f["bus"], f["dev"], f["func"], 0)
                self.printf(f"cpu{n}: online; pci {f['bus']:02x}:{f['dev']:02x}.{f['func']} "
                            f"is {vd & 0xFFFF:04x},{vd >> 16:04x}\n")
        self.milestone("mp_startup")


__all__ = ["Kernel", "CpuInfo", "PCI_MECHANISM_1", "PCI_MECHANISM_2", "PCI_MECHANISM_NONE",
           "KERNELBASE", "DEFAULT_BUDGET", "KernelFault", "CE_NOTE", "CE_WARN"]
