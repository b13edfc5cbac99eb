"""The unix files: ELF structure (read back with pyelftools), Xen notes, symbols,
and dboot's mode switch written in encodings that mean the same in 32-bit mode."""

import io

import capstone
from elftools.elf.elffile import ELFFile

from xenlab.kernel import KERNELBASE, build_unix
from xenlab.kernel.elf import elf_symbols
from xenlab.kernel.image import DBOOT_PADDR, KERNEL_PADDR
from xenlab.xen import KernelImage, abi


def test_i86xen_unix_is_a_pv_kernel_for_xens_loader():
    u = build_unix()
    img = KernelImage.from_elf(u.elf_i86xen())
    assert img.entry == u.sym("_start")
    assert img.virt_base == KERNELBASE
    assert img.hypercall_page == u.sym("hypercall_page") == KERNELBASE
    assert img.guest_os == "SunOS" and img.loader == "generic"
    assert img.segments[0].vaddr == KERNELBASE and img.segments[0].data == u.image
    assert img.notes[abi.XEN_ELFNOTE_PADDR_OFFSET] == KERNELBASE.to_bytes(8, "little")


def test_symbols_travel_in_the_elf():
    u = build_unix()
    syms = elf_symbols(u.elf_i86xen())
    for name in ("_start", "kpy_return", "trap_13", "pci_mech1_getl", "msgbuf", "boot_info"):
        assert syms[name] == u.sym(name)
    assert u.name(u.sym("pci_mech1_getl") + 5) == "unix:pci_mech1_getl+0x5"
    assert u.lookup(KERNELBASE - 1) is None


def test_i86pc_unix_has_dboot_and_the_kernel_at_their_physical_addresses():
    u = build_unix()
    elf = ELFFile(io.BytesIO(u.elf_i86pc()))
    loads = [s for s in elf.iter_segments() if s["p_type"] == "PT_LOAD"]
    assert [(s["p_vaddr"], s["p_paddr"]) for s in loads] == [(DBOOT_PADDR, DBOOT_PADDR),
                                                            (KERNELBASE, KERNEL_PADDR)]
    assert elf["e_entry"] == DBOOT_PADDR
    assert loads[1].data() == u.image


def test_dboot_32bit_part_decodes_the_same_in_both_modes():
    u = build_unix()
    d = u.dboot_symbols
    code = u.dboot[:d["dboot_long"] - DBOOT_PADDR]
    out = {}
    for mode in (capstone.CS_MODE_32, capstone.CS_MODE_64):
        md = capstone.Cs(capstone.CS_ARCH_X86, mode)
        out[mode] = [(i.address, i.size, i.mnemonic) for i in md.disasm(code, DBOOT_PADDR)]
    assert out[capstone.CS_MODE_32] == out[capstone.CS_MODE_64]
    assert sum(i[1] for i in out[capstone.CS_MODE_32]) == len(code)
    assert not any(0x40 <= b <= 0x4F for b in code[:1])        # no REX prefix at the entry
    mnems = [m for _, _, m in out[capstone.CS_MODE_32]]
    assert mnems[0] == "lgdt" and "wrmsr" in mnems and mnems[-1] in ("ljmp", "jmp")


def test_the_kernel_text_is_assembled_in_divide_mode_with_no_slash_lost():
    from xenlab.asm import assemble
    from xenlab.kernel.image import SRC
    for name in ("locore.s", "dboot.s"):
        p = assemble((SRC / name).read_text(), divide=False)
        assert p.slash_comments == [], f"{name} must not depend on --divide"
