"""Checks for the ``toolchain`` stage: Xen built with --divide, its BSS clear,
the boot modules intact, domain 0 built."""

from __future__ import annotations

from ..asm import disasm
from . import Finding, check
from ._model import boot_of

LAB = "toolchain"


def _xenboot(stage):
    xb = boot_of(stage).xenboot
    if xb is None:
        raise RuntimeError("this boot did not build Xen (a native boot?)")
    return xb


@check(points=1, title="Xen built domain 0 from the kernel the boot loader gave it", lab=LAB)
def toolchain_dom0_built(stage):
    xb = _xenboot(stage)
    ok = xb.dom0 is not None
    found = (f"domain 0 with {xb.dom0.tot_pages} pages" if ok else
             f"Xen panicked: {xb.panic}")
    return Finding(ok, "Xen's domains after __start_xen", "domain 0 exists", found,
                   hint="Xen reads dom0's kernel from the first multiboot module; look at what "
                        "is in memory there after the boot stub ran.")


@check(points=1, title="the Xen build passes --divide to the GNU assembler", lab=LAB)
def toolchain_divide(stage):
    flags = list(_xenboot(stage).gas_flags)
    return Finding("--divide" in flags, "the gas options the build used for head.s",
                   "--divide among them", repr(flags) if flags else "no options",
                   hint="On Solaris, gas treats '/' as a comment unless told otherwise.")


@check(points=2, title="Xen's boot stub clears exactly its BSS", lab=LAB)
def toolchain_bss_clear(stage):
    xb = _xenboot(stage)
    mem = boot_of(stage).machine.memory
    start = xb.program.symbols["start"]
    code = mem.read_bytes(start, xb.program.symbols["__start_xen"] - start)
    count = None
    for _addr, _raw, mnem, ops in disasm(code, start):
        if mnem.startswith("mov") and ops.endswith("rcx"):
            count = int(ops.split(",")[0].lstrip("$"), 0)
    bss = xb.bss[1] - xb.bss[0]
    want = bss // 8
    found = "no count loaded into %rcx" if count is None else \
        f"rep stosq count {count:#x} ({count * 8:#x} bytes)"
    return Finding(count == want, "the rep stosq count in the stub's machine code in memory",
                   f"{want:#x} quadwords = the BSS's {bss:#x} bytes", found,
                   hint="Disassemble the stub: which constant reaches %rcx, and how was it "
                        "written in head.s?")


@check(points=1, title="the boot modules survive Xen's boot stub", lab=LAB)
def toolchain_modules_intact(stage):
    xb = _xenboot(stage)
    intact = xb.modules_intact()
    names = [m[2].split()[0] for m in xb.modules]
    bad = [n for n, ok in zip(names, intact) if not ok]
    return Finding(bool(intact) and not bad, "the module bytes in memory before and after the stub",
                   "unchanged", "all unchanged" if not bad else "overwritten: " + ", ".join(bad),
                   hint="The modules sit right after Xen's BSS.")
