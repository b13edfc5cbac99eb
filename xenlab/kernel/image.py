"""The kernel's ``unix`` files: locore assembled once, packaged per platform.

* ``i86xen``: an ELF64 executable whose one PT_LOAD sits at
  :data:`KERNELBASE`, with the Xen ELF notes a 64-bit PV kernel carries
  (GUEST_OS, XEN_VERSION, LOADER, VIRT_BASE, PADDR_OFFSET, ENTRY,
  HYPERCALL_PAGE; ``xen/include/public/elfnote.h``).  Xen's dom0 builder loads it.
* ``i86pc``: a multiboot-style executable with two PT_LOAD segments: dboot's
  mode-switch code at its physical address, and the same kernel text at
  KERNELBASE, loaded at physical :data:`KERNEL_PADDR`.  The boot loader loads
  both; dboot maps the kernel and enters it.

Both carry a ``.symtab`` with every locore label, so debuggers (kmdb) can name
addresses; :attr:`Unix.symbols` is the same table in Python.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from ..xen import abi
from . import elf

# The kernel's virtual base: the top 2 GiB, where x86-64 kernels are linked
# (the -mcmodel=kernel range).  Xen's dom0 boot region starts here.
KERNELBASE = 0xFFFFFFFF80000000
KERNEL_PADDR = 0x400000          # i86pc: where the boot loader puts the kernel
DBOOT_PADDR = 0x100000           # i86pc: dboot's mode-switch code
SRC = Path(__file__).with_name("src")



@dataclass(frozen=True)
class Unix:
    """The assembled kernel: its bytes, symbols and the two platform files."""

    base: int
    image: bytes                  # text + data, flat from ``base``
    symbols: dict                 # label -> address
    text_end: int                 # first address of .data
    dboot: bytes                  # i86pc mode-switch code at DBOOT_PADDR
    dboot_symbols: dict
    listing: str

    def sym(self, name: str) -> int:
        try:
            return self.symbols[name]
        except KeyError:
            raise KeyError(f"the kernel has no symbol {name!r}") from None

    @property
    def end(self) -> int:
        return self.base + len(self.image)

    def lookup(self, addr: int) -> tuple[str, int] | None:
        """The symbol at or below ``addr`` inside the image, and the offset."""
        if not self.base <= addr < self.end:
            return None
        best = None
        for name, value in self.symbols.items():
            if value <= addr and (best is None or value > best[1]):
                best = (name, value)
        return (best[0], addr - best[1]) if best else None

    def name(self, addr: int) -> str:
        """``unix:pci_mech1_getl+0x1c`` style, or the hex address."""
        hit = self.lookup(addr)
        if hit is None:
            return f"{addr:#x}"
        return f"unix:{hit[0]}" + (f"+{hit[1]:#x}" if hit[1] else "")

    def _elf_symbols(self, extra: dict | None = None) -> dict:
        out = {n: (v, elf.STT_FUNC if v < self.text_end else elf.STT_OBJECT)
               for n, v in self.symbols.items()}
        for n, v in (extra or {}).items():
            out[n] = (v, elf.STT_FUNC)
        return out

    def elf_i86xen(self) -> bytes:
        """``platform/i86xen/kernel/amd64/unix``: a PV kernel image for Xen's loader."""
        notes = b"".join([
            elf.note(abi.XEN_ELFNOTE_GUEST_OS, b"Xen", b"SunOS\0"),
            elf.note(abi.XEN_ELFNOTE_GUEST_VERSION, b"Xen", b"5.11\0"),
            elf.note(abi.XEN_ELFNOTE_XEN_VERSION, b"Xen", b"xen-3.0\0"),
            elf.note(abi.XEN_ELFNOTE_LOADER, b"Xen", b"generic\0"),
            elf.note(abi.XEN_ELFNOTE_VIRT_BASE, b"Xen", self.base.to_bytes(8, "little")),
            elf.note(abi.XEN_ELFNOTE_PADDR_OFFSET, b"Xen", self.base.to_bytes(8, "little")),
            elf.note(abi.XEN_ELFNOTE_ENTRY, b"Xen", self.sym("_start").to_bytes(8, "little")),
            elf.note(abi.XEN_ELFNOTE_HYPERCALL_PAGE, b"Xen",
                     self.sym("hypercall_page").to_bytes(8, "little")),
        ])
        seg = elf.LoadSegment(self.base, self.base - self.base, self.image)
        return elf.write_elf(self.sym("_start"), [seg], notes, self._elf_symbols())

    def elf_i86pc(self) -> bytes:
        """``platform/i86pc/kernel/amd64/unix``: dboot + the kernel, for a multiboot loader."""
        segs = [elf.LoadSegment(DBOOT_PADDR, DBOOT_PADDR, self.dboot, name=".dboot"),
                elf.LoadSegment(self.base, KERNEL_PADDR, self.image)]
        return elf.write_elf(DBOOT_PADDR, segs, b"",
                             self._elf_symbols(self.dboot_symbols))


def _assemble(name: str, base: int):
    from ..asm import assemble
    return assemble((SRC / name).read_text(), base=base, divide=True)


@lru_cache(maxsize=1)
def build_unix() -> Unix:
    """Assemble locore.s and dboot.s (once per process)."""
    p = _assemble("locore.s", KERNELBASE)
    d = _assemble("dboot.s", DBOOT_PADDR)
    if d.addresses[".data"] + len(d.data) > DBOOT_PADDR + 0x1000:
        raise AssertionError("dboot must fit in one page")
    return Unix(KERNELBASE, p.image(), dict(p.symbols), p.addresses[".data"], d.image(),
                dict(d.symbols), p.listing())
