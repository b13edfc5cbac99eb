"""Loading a dom0 kernel from an ELF64 image with Xen ELF notes (GNU as/ld build it)."""

import shutil
import subprocess

import pytest

from xenlab.machine import Machine
from xenlab.xen import KernelImage, Xen, abi, hypercall_page_bytes

SRC = r"""
.section .note.Xen, "a", @note
.balign 4
.long 4, 6, 6
.asciz "Xen"
.balign 4
.asciz "SunOS"
.balign 4
.long 4, 8, 1
.asciz "Xen"
.balign 4
.quad _start
.long 4, 8, 2
.asciz "Xen"
.balign 4
.quad hypercall_page
.long 4, 8, 3
.asciz "Xen"
.balign 4
.quad 0xffffffff80000000
.text
.globl _start
_start:
    jmp _start
.balign 4096
hypercall_page:
    .fill 4096, 1, 0xcc
"""


@pytest.mark.skipif(shutil.which("as") is None or shutil.which("ld") is None,
                    reason="GNU binutils not installed")
def test_elf_image_with_xen_notes(tmp_path):
    (tmp_path / "k.s").write_text(SRC)
    subprocess.run(["as", "--64", "-o", str(tmp_path / "k.o"), str(tmp_path / "k.s")],
                   check=True)
    subprocess.run(["ld", "-m", "elf_x86_64", "-Ttext=0xffffffff80001000", "-e", "_start",
                    "--section-start=.note.Xen=0xffffffff80000200", "-z", "noexecstack",
                    "-o", str(tmp_path / "k"), str(tmp_path / "k.o")], check=True)
    img = KernelImage.from_elf((tmp_path / "k").read_bytes())
    assert img.guest_os == "SunOS"
    assert img.entry == 0xFFFFFFFF80001000
    assert img.hypercall_page == 0xFFFFFFFF80002000
    assert img.virt_base == 0xFFFFFFFF80000000
    xen = Xen(Machine("128M"))
    d = xen.build_dom0((tmp_path / "k").read_bytes())
    mfn = int(d.p2m[(img.hypercall_page - img.virt_base) >> 12])
    assert xen.memory.read_bytes(mfn << 12, 4096) == hypercall_page_bytes()
    assert d.vcpus[0].reg("rip") == img.entry


def test_not_elf_is_a_clear_error():
    with pytest.raises(ValueError, match="not an ELF image"):
        KernelImage.from_elf(b"MZ\x90\x00garbage")
