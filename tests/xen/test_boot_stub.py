"""Xen's boot stub on the CPU: the '/' rule of the Solaris gas decides whether
dom0's kernel survives the BSS clear (xenlab.xen.boot)."""

import pytest

from xenlab.asm import disasm
from xenlab.kernel import build_unix
from xenlab.machine import Machine
from xenlab.xen.boot import assemble_head, boot_xen
from xenlab.xen.boot.multiboot import read_mbi, write_mbi


def modules():
    return [("/platform/i86xen/kernel/amd64/unix unix -kd", build_unix().elf_i86xen()),
            ("/platform/i86xen/amd64/boot_archive", bytes(range(256)) * 300)]


def rcx_count(prog):
    for _a, _b, mnem, ops in disasm(prog.text, prog.addresses[".text"]):
        if ops.endswith("rcx"):
            return int(ops.split(",")[0].lstrip("$"), 0)


@pytest.mark.parametrize("bss", [0x20000, 0x60000])
def test_the_count_is_the_bss_in_quadwords_only_with_divide(bss):
    good, bad = assemble_head(("--divide",), bss), assemble_head((), bss)
    assert rcx_count(good) == bss // 8
    assert rcx_count(bad) == bss, "'/ 8' became a comment: the byte count"
    assert bad.slash_comments and bad.slash_comments[0].text.startswith("/ 8")
    assert good.slash_comments == []


def test_without_divide_the_stub_wipes_dom0_and_xen_panics():
    m = Machine.from_profile("qemu-i440fx")
    b = boot_xen(m, modules(), gas_flags=(), bss_size=0x30000)
    assert not b.ok and b.dom0 is None
    assert b.modules_intact() == [False, False]
    assert all(f == bytes(len(f)) for f in b.found), "zeroed by rep stosq"
    assert b.stub_instructions >= 0x30000
    con = b.xen.console
    assert "(XEN) elf_init: not an ELF binary" in con
    assert "(XEN) Panic on CPU 0:\n(XEN) Could not set up DOM0 guest OS\n" in con
    assert 0 not in b.xen.domains


def test_with_divide_xen_builds_dom0_from_the_modules():
    m = Machine.from_profile("qemu-i440fx")
    mods = modules()
    b = boot_xen(m, mods, gas_flags=("--divide",), bss_size=0x30000, nr_vcpus=2)
    assert b.ok and b.modules_intact() == [True, True]
    assert b.dom0.cmdline == "unix -kd"
    assert b.dom0.image.entry == build_unix().sym("_start")
    assert len(b.dom0.vcpus) == 2
    # the stub cleared exactly the BSS: a marker written just past it survives
    s, e = b.bss
    assert b.modules[0][0] == (e + 0xFFF) & ~0xFFF
    # dom0's initrd is the second module, as Xen 3.1 takes it
    si_len = b.dom0.layout.vinitrd_end - b.dom0.layout.vinitrd_start
    assert si_len == len(mods[1][1])


def test_an_unknown_gas_option_is_named():
    with pytest.raises(ValueError, match="gas: unknown option '--frobnicate'"):
        assemble_head(("--frobnicate",))


def test_multiboot_information_round_trips():
    m = Machine("64M")
    write_mbi(m.memory, 0x8000, cmdline="xen.gz console=com1",
              modules=[(0x200000, 0x201000, "unix -kd"), (0x202000, 0x203000, "archive")],
              mem_upper_kb=1234)
    info = read_mbi(m.memory, 0x8000)
    assert info["cmdline"] == "xen.gz console=com1"
    assert info["modules"] == [(0x200000, 0x201000, "unix -kd"), (0x202000, 0x203000, "archive")]
    assert info["mem_upper_kb"] == 1234
