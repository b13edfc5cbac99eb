"""Test helpers: a dom0 running the kernel under Xen, or the kernel on the bare
machine, without the lab's stage runner (hooks given as plain functions)."""

from __future__ import annotations

from xenlab.kernel import KCpu, Kernel, build_unix
from xenlab.kernel.bootadm import boot_archive
from xenlab.kernel.build import build, load_catalog
from xenlab.kernel.image import DBOOT_PADDR, KERNEL_PADDR
from xenlab.machine import Machine
from xenlab.xen import KernelImage, Xen, abi
from xenlab.xen.boot.multiboot import MB_MAGIC, write_mbi

PRIMARY = ["rootnex", "pci", "isa", "acpica", "pcplusmp", "ata", "cmdk"]


class FnHooks:
    """The kernel's view of hooks: ``call(name, *args)``."""

    def __init__(self, **fns):
        self.fns = fns
        self.calls = []

    def call(self, name, *args):
        self.calls.append(name)
        return self.fns[name](*args)


def fixed_hooks(**over):
    fns = dict(set_io_privilege=lambda cpu: (cpu.physdev_op(abi.PHYSDEVOP_set_iopl, iopl=1)
                                             if cpu.platform == "i86xen" else None),
               early_console=lambda plat, props, si: ("hypervisor" if si is not None
                                                      else props.get("console", "text")),
               pci_config_mechanism=lambda plat, probe: 1 if plat == "i86xen" else probe())
    fns.update(over)
    return FnHooks(**fns)


def archive(placement=None, forceload=PRIMARY):
    cat = load_catalog()
    if placement is None:
        placement = {n: ("both" if d.platform_specific else "intel")
                     for n, d in cat.drivers.items()}
    return boot_archive(build(placement, cat), forceload)


class Typist:
    """Answers kmdb's prompt on whatever console the test watches."""

    def __init__(self, read, type_keys):
        self.read, self.type_keys, self.done = read, type_keys, 0

    def __call__(self):
        n = self.read().count("[0]> ")
        if n > self.done:
            self.done = n
            self.type_keys(":c\n")


def xen_kernel(profile="qemu-i440fx", memory=None, hooks=None, nr_vcpus=2, cmdline="-kd",
               initrd=None):
    """(machine, xen, dom0, kernel) with the kernel not yet entered."""
    u = build_unix()
    m = Machine.from_profile(profile, memory=memory)
    xen = Xen(m)
    d = xen.build_dom0(KernelImage.from_elf(u.elf_i86xen()), cmdline=cmdline,
                       initrd=archive() if initrd is None else initrd, nr_vcpus=nr_vcpus)
    typist = Typist(lambda: xen.console, xen.serial_input)

    def runner(v):
        def run(budget):
            ex = xen.run(budget, vcpu=v)
            typist()
            return ex
        return run

    cpus = [KCpu(v.hw, runner(v), u, pv=True, cpu_id=v.vcpu_id) for v in d.vcpus]
    return m, xen, d, Kernel(cpus, "i86xen", hooks or fixed_hooks())


def native_kernel(profile="qemu-i440fx", memory="1G", hooks=None, cmdline="-kd -B console=ttya",
                  initrd=None):
    """(machine, kernel) after dboot, with the kernel not yet entered."""
    from xenlab.kernel.i86pc.dboot import dboot
    u = build_unix()
    m = Machine.from_profile(profile, memory=memory)
    arch = archive() if initrd is None else initrd
    mem = m.memory
    mem.write_bytes(DBOOT_PADDR, u.dboot)
    mem.write_bytes(KERNEL_PADDR, u.image)
    mod = (KERNEL_PADDR + len(u.image) + 0xFFF) & ~0xFFF
    mem.write_bytes(mod, arch)
    write_mbi(mem, 0x8000, cmdline=f"unix {cmdline}", modules=[(mod, mod + len(arch), "archive")])
    v = m.vcpus[0]
    v.set("rax", MB_MAGIC)
    dboot(v, u, 0x8000)
    typist = Typist(lambda: m.console, lambda s: m.uarts[0].feed(s.encode()))

    def run(budget):
        ex = m.run_native(0, budget)
        typist()
        return ex

    return m, Kernel([KCpu(v, run, u, pv=False)], "i86pc", hooks or fixed_hooks())
