"""Booting Xen the way the machine does: a boot loader, Xen's boot stub on the
CPU, then Xen's C code (the rest of ``xenlab.xen``).

This is the ``toolchain`` stage's ground.  Xen's boot stub (``head.s``) is
assembled with the options the build used, like any source file of the
hypervisor; on Solaris in 2007 the GNU assembler treated ``/`` as a comment
unless given ``--divide`` (see docs/asm.md), and ``head.s`` computes the size
of the BSS clear as ``(__bss_end - __bss_start) / 8``.

:func:`boot_xen`:

1. assembles ``head.s`` with the given gas flags;
2. acts as the boot loader (multiboot): Xen's image at 1 MiB, the modules (dom0's
   kernel and its boot archive) right after Xen's BSS, the multiboot information
   at 0x8000; hands over in 64-bit mode with the low 64 MiB identity-mapped
   (``head.s`` is 64-bit code: the 32-bit entry of real Xen is not modelled);
3. runs the stub on vCPU 0 until ``__start_xen``;
4. does what ``__start_xen`` does with the modules: reads the multiboot pointer
   the stub saved, reads module 0 from machine memory as dom0's kernel and
   module 1 as its initrd, and builds domain 0; a module that is no longer an
   ELF image ends in Xen's panic "Could not set up DOM0 guest OS".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .multiboot import MB_MAGIC, read_mbi, write_mbi

XEN_BASE = 0x100000                 # Xen's image: 1 MiB
MBI_ADDR = 0x8000                   # where the loader puts the multiboot information
BOOT_TABLES = 0x70000               # the loader's identity map for the 64-bit hand-over
GAS_FLAGS = ("--divide",)
HEAD_S = Path(__file__).with_name("head.s")


@dataclass
class XenBoot:
    """What happened at boot: the assembled stub, where things were loaded,
    the hypervisor and dom0 (or Xen's panic)."""

    gas_flags: tuple
    program: object                 # xenlab.asm Program of head.s
    bss: tuple[int, int]            # [__bss_start, __bss_end)
    modules: list                   # [(start, end, string)] as loaded
    loaded: list                    # the bytes the loader put there
    found: list = field(default_factory=list)     # the bytes Xen found there after the stub
    xen: object = None
    dom0: object = None
    panic: str | None = None
    stub_instructions: int = 0

    @property
    def ok(self) -> bool:
        return self.panic is None and self.dom0 is not None

    @property
    def bss_qwords(self) -> int:
        """The count the stub gave ``rep stosq`` (read from the assembled bytes)."""
        return int(self.program.symbols["BSS_QWORDS"])

    def modules_intact(self) -> list[bool]:
        return [a == b for a, b in zip(self.loaded, self.found)]


def assemble_head(gas_flags=(), bss_size: int = 0x40000):
    """Assemble Xen's boot stub as the build would with these gas flags."""
    from ...asm import assemble
    bad = [f for f in gas_flags if f not in GAS_FLAGS]
    if bad:
        raise ValueError(f"gas: unknown option {bad[0]!r} (this gas knows: "
                         f"{', '.join(GAS_FLAGS)})")
    src = f".set XEN_BSS_SIZE, {bss_size:#x}\n" + HEAD_S.read_text()
    return assemble(src, base=XEN_BASE, divide="--divide" in gas_flags)


def _mem_upper_kb(machine) -> int:
    for e in machine.e820:
        if e.type == 1 and e.base <= 0x100000 < e.end:
            return (e.end - 0x100000) >> 10
    return 0


def boot_xen(machine, modules: list[tuple[str, bytes]], *, gas_flags=(), bss_size=0x40000,
             xen_cmdline: str = "console=com1 com1=9600,8n1", nr_vcpus: int = 1,
             **xen_kwargs) -> XenBoot:
    """Boot Xen on ``machine`` with ``modules`` [(string, bytes)]: dom0's
    kernel first, then its initrd.  Returns a :class:`XenBoot`."""
    from ...machine import regs as R
    from ...machine.snippet import identity_map
    from .. import KernelImage, Xen
    prog = assemble_head(tuple(gas_flags), bss_size)
    mem = machine.memory
    image = prog.image()
    mem.write_bytes(XEN_BASE, image)
    bss = (prog.symbols["__bss_start"], prog.symbols["__bss_end"])
    addr = (bss[1] + 0xFFF) & ~0xFFF
    placed, loaded = [], []
    for string, data in modules:
        mem.write_bytes(addr, data)
        placed.append((addr, addr + len(data), string))
        loaded.append(bytes(data))
        addr = (addr + len(data) + 0xFFF) & ~0xFFF
    write_mbi(mem, MBI_ADDR, cmdline=f"/boot/xen.gz {xen_cmdline}", modules=placed,
              mem_upper_kb=_mem_upper_kb(machine))
    boot = XenBoot(tuple(gas_flags), prog, bss, placed, loaded)
    # the boot loader's hand-over, then the stub on the CPU
    v = machine.vcpus[0]
    cr3 = identity_map(mem, 64 << 20, tables=BOOT_TABLES)
    v.set_long_mode(cr3)
    v.set("rax", MB_MAGIC)
    stop = prog.symbols["__start_xen"]
    ex = v.call(prog.symbols["start"], {"rbx": MBI_ADDR}, stop_at=stop,
                max_instructions=max(4 * bss_size, 1_000_000))
    boot.stub_instructions = int(ex.count or 0)
    if not (ex.reason == "breakpoint" and ex.rip == stop):
        raise RuntimeError(f"Xen's boot stub did not reach __start_xen: {ex!r}")
    v.state[R.RIP] = 0
    # __start_xen: the C code
    mbi = mem.read32(prog.symbols["multiboot_ptr"])
    info = read_mbi(mem, mbi)
    boot.found = [mem.read_bytes(s, e - s) for s, e, _ in info["modules"]]
    xen = Xen(machine, **xen_kwargs)
    boot.xen = xen
    xen.printk(f"Command line: {info['cmdline'].partition(' ')[2]}")
    xen.printk(f"Multiboot: {len(info['modules'])} module(s) at "
               + ", ".join(f"{s:#x}-{e:#x}" for s, e, _ in info["modules"]))
    if not info["modules"]:
        return _panic(boot, "Require at least one Multiboot module")
    try:
        kernel = KernelImage.from_elf(boot.found[0])
    except ValueError:
        xen.printk("elf_init: not an ELF binary")
        return _panic(boot, "Could not set up DOM0 guest OS")
    dom0_cmdline = info["modules"][0][2].partition(" ")[2]
    initrd = boot.found[1] if len(boot.found) > 1 else b""
    boot.dom0 = xen.build_dom0(kernel, cmdline=dom0_cmdline, initrd=initrd, nr_vcpus=nr_vcpus)
    return boot


def _panic(boot: XenBoot, message: str) -> XenBoot:
    """Xen's panic() (drivers/char/console.c): the message between two rows of stars."""
    x = boot.xen
    x.printk("")
    x.printk("****************************************")
    x.printk("Panic on CPU 0:")
    x.printk(message)
    x.printk("****************************************")
    x.printk("")
    x.printk("Reboot in five seconds...")
    boot.panic = message
    return boot


__all__ = ["boot_xen", "XenBoot", "assemble_head", "XEN_BASE", "GAS_FLAGS"]
