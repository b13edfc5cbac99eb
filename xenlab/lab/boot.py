"""One boot of one machine, stage by stage: where Xen, the machine and the
kernel are put together.

:class:`Boot` builds a fresh machine from a profile, builds the kernel (the
``platforms`` hook sorts the drivers), and then runs the stages in order; each
stage either passes or raises :class:`StageFailed` with what a kernel developer
would have seen.  Two boots of one kernel:

* **i86xen** (``native=False``): a multiboot loader puts Xen, dom0's ``unix``
  and its boot archive in memory; Xen's boot stub runs on the CPU; Xen builds
  domain 0 (with two vCPUs); the kernel runs as dom0, every vCPU driven by
  Xen's run loop (:class:`XenRunner`).
* **i86pc** (``native=True``): the loader puts ``unix`` (dboot + kernel) and
  the boot archive in memory; dboot builds page tables and switches to long
  mode on the CPU; the kernel runs on the bare machine (:class:`NativeRunner`:
  the machine's own loop, which answers BIOS calls).

An :class:`Operator` plays the developer at the console: when kmdb's ``[0]>``
prompt shows on the console they watch, they type ``:c``.
"""

from __future__ import annotations

import hashlib
import time

import numpy as np

from ..kernel import Kernel, KCpu, KernelHang, KernelPanic, MachineStopped
from ..kernel.bootadm import boot_archive
from ..kernel.build import build, load_catalog
from ..kernel.image import DBOOT_PADDR, KERNEL_PADDR, build_unix
from ..machine import Machine
from .hooks import HookError
from .stages import STAGE_NAMES, stage_info

UNIX_XEN = "/platform/i86xen/kernel/amd64/unix"
UNIX_PC = "/platform/i86pc/kernel/amd64/unix"
ARCHIVE_XEN = "/platform/i86xen/amd64/boot_archive"
ARCHIVE_PC = "/platform/i86pc/amd64/boot_archive"
KERNEL_FLAGS = "-kd"                 # load kmdb and stop in it before the boot goes on
MBI_ADDR = 0x8000
BSS_SIZES = (0x20000, 0x30000, 0x40000, 0x50000, 0x60000)


class StageFailed(Exception):
    """A stage did not pass: ``stage``, ``kind`` (panic, hang, crash, build,
    xen panic, hook error), one line ``why`` and the full ``panic`` text."""

    def __init__(self, stage: str, kind: str, why: str, panic: str | None = None):
        self.stage, self.kind, self.why, self.panic = stage, kind, why, panic
        super().__init__(f"{stage}: {why}")


# ---------------------------------------------------------------------------
# host runners and the operator
# ---------------------------------------------------------------------------

class Operator:
    """The developer at the console: answers each new kmdb prompt with ``:c``."""

    PROMPT = "> "

    def __init__(self, read, type_keys):
        self.read = read
        self.type_keys = type_keys
        self.seen = 0
        self.answered = 0

    def __call__(self):
        text = self.read()
        if len(text) == self.seen:
            return
        self.seen = len(text)
        prompts = text.count("[0]> ") + text.count("[1]> ")
        if prompts > self.answered:
            self.answered = prompts
            self.type_keys(":c\n")


class XenRunner:
    """Runs one dom0 vCPU under Xen's run loop (what KCpu calls the host)."""

    def __init__(self, boot, vcpu):
        self.boot = boot
        self.vcpu = vcpu

    def __call__(self, budget: int):
        xen = self.boot.xen
        ex = xen.run(budget, vcpu=self.vcpu)
        d = self.vcpu.domain
        if d.shutdown_reason is not None:
            tail = "".join(xen.console_text[-6:]).strip().splitlines()
            raise MachineStopped("domain 0 stopped: " + (tail[0] if tail else "crashed"))
        if self.vcpu.blocked:
            raise KernelHang(f"no progress: vCPU {self.vcpu.vcpu_id} blocked with nothing "
                             "pending")
        self.boot.operator()
        return ex


class NativeRunner:
    """Runs a vCPU on the bare machine (its loop answers BIOS calls)."""

    def __init__(self, boot, cpu: int):
        self.boot = boot
        self.cpu = cpu

    def __call__(self, budget: int):
        ex = self.boot.machine.run_native(self.cpu, budget)
        self.boot.operator()
        return ex


# ---------------------------------------------------------------------------
# what the "installer" put in etc/system for this machine
# ---------------------------------------------------------------------------

def primary_modules(machine) -> list[str]:
    """The modules a Solaris install on this machine force-loads at boot: the
    root nexus, the PCI nexus (npe on PCI Express), ACPI, the PSM, the ISA
    nexus for legacy devices, bridge drivers, the boot disk's driver stack, the
    serial console."""
    df = machine.pci_frame()
    classes = {int(c, 16) >> 8 for c in df["class"]}
    pcie = "MCFG" in getattr(getattr(machine, "firmware", None), "tables", {})
    mods = ["rootnex", "npe" if pcie else "pci", "acpica", "pcplusmp"]
    if getattr(machine, "isa", None):
        mods.append("isa")
    if 0x0604 in classes:
        mods.append("pcieb" if pcie else "pci_pci")
    if 0x0101 in classes:
        mods += ["pci-ide", "ata", "cmdk", "dadk", "strategy", "cmlb"]
    if 0x0106 in classes:
        mods += ["ahci", "sd", "cmlb"]
    if getattr(machine, "uarts", None):
        mods.append("asy")
    return list(dict.fromkeys(mods))


class Variant:
    """What a seed changes (numpy PCG64): Xen's BSS size (so where the modules
    land), the order of the forceload lines (which driver trips first), and
    where the buffer cache sits in dom0's pseudo-physical memory (the
    ``bio_skew`` tunable: the first disk read straddles one of Xen's 2 MiB
    machine chunks ``bio_skew`` pages into it)."""

    def __init__(self, seed: int, machine):
        rng = np.random.Generator(np.random.PCG64([int(seed), 0x6b65726e]))
        self.xen_bss = int(rng.choice(BSS_SIZES))
        mods = primary_modules(machine)
        order = rng.permutation(len(mods))
        self.forceload = [mods[i] for i in order]
        self.bio_skew = int(rng.integers(1, 8))

    @property
    def tunables(self) -> dict:
        return {"bio_skew": self.bio_skew}


# ---------------------------------------------------------------------------
# the boot
# ---------------------------------------------------------------------------

class Boot:
    """Everything one boot builds; run the stages with :meth:`run`."""

    def __init__(self, profile: str = "sun-x4200", memory=None, seed: int = 0,
                 native: bool = False, hooks=None, nr_vcpus: int = 2,
                 xen_debug: bool | None = None):
        self.profile = profile
        self.seed = seed
        self.native = native
        self.hooks = hooks
        self.machine = Machine.from_profile(profile, memory=memory, seed=seed)
        self.variant = Variant(seed, self.machine)
        self.unix = build_unix()
        self.nr_vcpus = max(1, min(nr_vcpus, len(self.machine.vcpus)))
        self.catalog = load_catalog()
        self.kbuild = None
        self.build_error: HookError | None = None
        self.archive = b""
        self.xenboot = None
        self.xen = None
        self.dom0 = None
        self.kernel: Kernel | None = None
        self.passed: list[str] = []
        self.target: str | None = None
        self.stage_seconds: dict[str, float] = {}       # wall time of each stage run
        self.xen_debug = xen_debug
        self.operator = Operator(self.visible_console, self.type_keys)
        self.install_root()

    def install_root(self):
        """The installer's work on the boot disk: the label (MBR, VTOC) and the
        root file system's superblock (read by cmlb and vfs_mountroot)."""
        from ..kernel.intel.autoconf import make_label
        disks = getattr(self.machine, "disks", None)
        if disks:
            disks[0].write(0, make_label())

    # -- the developer's view ----------------------------------------------------------
    def visible_console(self) -> str:
        """What the developer sees: Xen's serial console (with dom0's console_io
        writes), or natively the first serial port."""
        if self.xen is not None:
            return self.xen.console
        return self.machine.console.replace("\r", "")

    def type_keys(self, text: str):
        if self.xen is not None:
            self.xen.serial_input(text)
        elif self.machine.uarts:
            self.machine.uarts[0].feed(text.encode("latin-1"))

    # -- running ------------------------------------------------------------------------
    def run(self, upto: str):
        """Run every stage up to and including ``upto``; raises StageFailed."""
        last = STAGE_NAMES.index(upto)
        if self.target is None:
            self.target = upto
        for name in STAGE_NAMES[:last + 1]:
            if name in self.passed:
                continue
            t0 = time.perf_counter()
            try:
                getattr(self, f"stage_{name}")()
            except StageFailed:
                raise
            except HookError as e:
                raise StageFailed(name, "hook error", str(e)) from e
            except KernelPanic as e:
                raise StageFailed(name, "panic", e.message, e.text) from e
            except KernelHang as e:
                raise StageFailed(name, "hang", self._hang_why(e)) from e
            except MachineStopped as e:
                raise StageFailed(name, "crash", str(e), self.visible_console()) from e
            finally:
                self.stage_seconds[name] = time.perf_counter() - t0
            self.passed.append(name)

    def _hang_why(self, e) -> str:
        lines = [ln for ln in self.visible_console().splitlines() if ln.strip()]
        last = lines[-1].strip() if lines else ""
        return (f"{e}; the boot looks dead: the last line on the console is {last!r}"
                if last else f"{e}; the console shows nothing")

    # -- stage 1: toolchain ------------------------------------------------------------
    def build_kernel(self):
        try:
            placement = {n: self.hooks.call("driver_platform", d)
                         for n, d in self.catalog.drivers.items()}
        except HookError as e:
            self.build_error = e
            placement = {}
        self.kbuild = build(placement, self.catalog)
        from ..kernel.intel.svc import services_text
        self.archive = boot_archive(self.kbuild, self.variant.forceload,
                                    tunables=self.variant.tunables,
                                    files={"etc/svc/services": services_text()})

    def stage_toolchain(self):
        self.build_kernel()
        if self.native:
            self.load_native()
            return
        from ..xen.boot import boot_xen
        flags = tuple(self.hooks.call("gas_options"))
        from .stages.dom0_64 import KERNELS
        unix = self.hooks.call("dom0_kernel")
        self.dom0_bits = KERNELS[unix]
        self.xenboot = boot_xen(
            self.machine,
            [(f"{unix} {unix} {KERNEL_FLAGS}", self.unix.elf_i86xen(pv32=self.dom0_bits == 32)),
             (ARCHIVE_XEN, self.archive)],
            gas_flags=flags, bss_size=self.variant.xen_bss, nr_vcpus=self.nr_vcpus,
            debug=self.debug_build(), lowmem_2g_4g=True)
        self.xen = self.xenboot.xen
        if not self.xenboot.ok:
            raise StageFailed("toolchain", "xen panic",
                              f"(XEN) Panic on CPU 0: {self.xenboot.panic}", self.xen.console)
        self.dom0 = self.xenboot.dom0

    def debug_build(self) -> bool:
        """Which Xen the developer ran: the target stage's (a release build for
        ``foreign_pfn``: "I commented out that feature and rebuilt Xen"), unless
        the boot was told otherwise."""
        if self.xen_debug is not None:
            return bool(self.xen_debug)
        return stage_info(self.target or "toolchain").xen_debug

    def load_native(self):
        """The multiboot loader: unix (dboot + kernel) and the boot archive."""
        from ..xen.boot.multiboot import MB_MAGIC, write_mbi
        mem = self.machine.memory
        mem.write_bytes(DBOOT_PADDR, self.unix.dboot)
        mem.write_bytes(KERNEL_PADDR, self.unix.image)
        mod = (KERNEL_PADDR + len(self.unix.image) + 0xFFF) & ~0xFFF
        mem.write_bytes(mod, self.archive)
        write_mbi(mem, MBI_ADDR, cmdline=f"{UNIX_PC} {KERNEL_FLAGS} -B console=ttya",
                  modules=[(mod, mod + len(self.archive), ARCHIVE_PC)],
                  mmap=[(e.base, e.length, e.type) for e in sorted(self.machine.e820)])
        v = self.machine.vcpus[0]
        v.set("rax", MB_MAGIC)
        v.set("rbx", MBI_ADDR)

    # -- stage 2: platforms ------------------------------------------------------------
    def stage_platforms(self):
        if self.build_error is not None:
            raise self.build_error
        if self.kbuild.errors:
            first = self.kbuild.errors[0].splitlines()
            raise StageFailed("platforms", "build", first[0],
                              "\n\n".join(self.kbuild.errors))
        self.start_kernel()
        self.kernel.enter()
        self.kernel.krtld()

    def start_kernel(self):
        if self.native:
            from ..kernel.i86pc.dboot import dboot
            v = self.machine.vcpus[0]
            dboot(v, self.unix, MBI_ADDR)
            cpus = [KCpu(v, NativeRunner(self, 0), self.unix, pv=False)]
            self.kernel = Kernel(cpus, "i86pc", self.hooks, unix=self.unix)
        else:
            cpus = [KCpu(v.hw, XenRunner(self, v), self.unix, pv=True, cpu_id=v.vcpu_id)
                    for v in self.dom0.vcpus]
            self.kernel = Kernel(cpus, "i86xen", self.hooks, unix=self.unix)

    # -- stage 3: boot_kmdb -------------------------------------------------------------
    def stage_boot_kmdb(self):
        self.kernel.startup_kmdb()

    # -- stage 4: pci_config ------------------------------------------------------------
    def stage_pci_config(self):
        self.kernel.mlsetup()

    # -- stage 5: iopl ------------------------------------------------------------------
    def stage_iopl(self):
        self.kernel.pci_check()
        self.kernel.mp_startup()

    # -- stage 6: foreign_pfn -----------------------------------------------------------
    def stage_foreign_pfn(self):
        self.kernel.startup_vm()
        self.kernel.configure()
        self._attach_failures("foreign_pfn", only=("failed",))

    # -- stage 7: pte_swbits ------------------------------------------------------------
    def stage_pte_swbits(self):
        self.kernel.configure_deferred()
        self._attach_failures("pte_swbits")

    # -- stage 8: dma ------------------------------------------------------------------
    def stage_dma(self):
        ctrls = list(getattr(self.machine, "ide", [])) + list(getattr(self.machine, "ahci", []))
        before = [len(c.transfers) for c in ctrls]
        try:
            self.kernel.dma_setup()
        finally:                        # what the disk controllers moved during the stage
            self.dma_transfers = [(getattr(c, "bdf", ""), t) for c, n in zip(ctrls, before)
                                  for t in c.transfers[n:]]
        self._attach_failures("dma")

    # -- stage 9: lowmem ---------------------------------------------------------------
    def stage_lowmem(self):
        self.kernel.lowmem_setup()
        self._attach_failures("lowmem")

    # -- stage 10: interrupts -----------------------------------------------------------
    def stage_interrupts(self):
        self.kernel.vfs_mountroot()

    # -- stage 11: console -------------------------------------------------------------
    def stage_console(self):
        seen = self.visible_console()
        self.kernel.consconfig()
        after = self.visible_console()[len(seen):]
        if "Hostname:" not in after:
            raise StageFailed(
                "console", "hang",
                self._hang_why("no progress: nothing reached the console after the console "
                               f"hand-over (the kernel's console is now "
                               f"{'+'.join(self.kernel.console_names)})"))

    # -- stage 12: multiuser ------------------------------------------------------------
    def stage_multiuser(self):
        k = self.kernel
        k.multiuser()
        if k.maintenance:
            fmri, why = k.maintenance[0]
            more = f" (and {len(k.maintenance) - 1} more)" if len(k.maintenance) > 1 else ""
            raise StageFailed("multiuser", "maintenance",
                              f"{fmri} failed: {why}{more}; Console login service(s) cannot run",
                              "\n".join(f"{f}: {w}" for f, w in k.maintenance))

    # -- stage 13: dom0_64 --------------------------------------------------------------
    def stage_dom0_64(self):
        k = self.kernel
        if k.plat.name == "i86xen" and k.plat.bits != 64:
            raise StageFailed(
                "dom0_64", "32-bit",
                "this dom0 is the 32-bit PV kernel (/platform/i86xen/kernel/unix, ring 1); "
                "boot the 64-bit one (/platform/i86xen/kernel/amd64/unix)")

    def _attach_failures(self, stage: str, only=None):
        """A driver that could not attach (or set up its DMA) stops the stage."""
        bad = [(d, why) for d, why in self.kernel.attach_failures
               if only is None or d.state in only]
        if bad:
            first = bad[0][1]
            more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
            raise StageFailed(stage, "attach", first + more,
                              "\n".join(f"{d.instname}: {why}" for d, why in bad))

    # -- state ---------------------------------------------------------------------------
    def state_hash(self) -> str:
        """SHA-256 over the machine (memory, devices, vCPUs), Xen's state (frame
        table, domains, vCPUs, console) and the kernel's: equal hashes, equal boots."""
        h = hashlib.sha256(self.machine.state_hash().encode())
        x = self.xen
        if x is not None:
            for a in (x.frametable.owner, x.frametable.count, x.frametable.type):
                h.update(a.tobytes())
            h.update(x.console.encode())
            h.update(bytes(x.conring))
            for d in x.domains.values():
                h.update(d.p2m.tobytes())
                h.update(repr((d.tot_pages, d.shutdown_reason, sorted(d.pirq_to_evtchn.items()),
                               [(c.state, c.notify_vcpu, c.remote_port) for c in d.channels]))
                         .encode())
                for v in d.vcpus:
                    h.update(repr((v.iopl, v.kernel_mode, v.guest_table, v.guest_table_user,
                                   sorted((k, t.address, t.flags) for k, t in v.trap_ctxt.items()),
                                   v.event_addr, v.syscall_addr, v.kernel_sp, v.up,
                                   v.blocked)).encode())
        k = self.kernel
        if k is not None:
            h.update(repr((k.milestones, k.modules, k.pci_mechanism, k.pci_functions,
                           getattr(k.console, "name", None), k.cpus_started)).encode())
        return h.hexdigest()
