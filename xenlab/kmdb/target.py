"""What the debugger looks at: the live model behind a Stage, a Boot or a kernel.

A :class:`Target` reads the model the way a debugger reads a stopped machine,
and never changes it:

* **symbols** come from the kernel's ``unix`` (the table its ``.symtab`` carries);
* **registers** are each vCPU's architectural state vector;
* **virtual memory** is read by walking the guest's own page tables from the
  vCPU's CR3 in machine memory -- a side-effect-free walk written here (no
  accessed/dirty bits, no TLB fills, no device reads), so inspecting a boot
  leaves its state hash unchanged;
* under Xen, the **P2M** is the kernel's ``mfn_list`` (found through
  ``start_info``) and the **M2P** is the table Xen maps read-only into every
  PV guest at ``MACH2PHYS_VIRT_START`` -- both read through the guest's page
  tables, as kmdb running inside dom0 reads them.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

from ..machine import regs as R
from ..machine.pte import PTE_P, PTE_PS, u64
from .errors import MdbError, ReadError

PAGE = 4096
ADDR_MASK = 0x000FFFFFFFFFF000        # PTE bits 51:12, the frame address (SDM Vol. 3 §4.5)
LEVEL_NAMES = {4: "PML4E", 3: "PDPTE", 2: "PDE", 1: "PTE"}
SEGMENTS = ("cs", "ds", "es", "fs", "gs", "ss")
CONTROL = ("cr0", "cr2", "cr3", "cr4", "efer", "cpl")


# ---------------------------------------------------------------------------
# symbols
# ---------------------------------------------------------------------------

class Symbols:
    """The kernel's symbol table, sorted for address lookups."""

    def __init__(self, unix):
        self.unix = unix
        self.by_name = dict(unix.symbols)
        first: dict[int, str] = {}
        for name, addr in unix.symbols.items():
            # of several labels on one address the last one in the source names what
            # follows (``user_text: user_io_probe:``, ``kstack_top: cpu_stacks:``)
            first[int(addr)] = name
        self.addrs = sorted(first)
        self.names = [first[a] for a in self.addrs]
        self.base = unix.base
        self.end = unix.end
        self.text_end = unix.text_end

    def addr(self, name: str) -> int:
        if "`" in name:                              # mdb's module`symbol
            mod, _, name = name.partition("`")
            if mod not in ("unix", "genunix", ""):
                raise MdbError(f"failed to dereference symbol: unknown module '{mod}'")
        try:
            return int(self.by_name[name])
        except KeyError:
            raise MdbError(f"failed to dereference symbol: unknown symbol name '{name}'") \
                from None

    def has(self, name: str) -> bool:
        return name.rpartition("`")[2] in self.by_name

    def lookup(self, addr: int) -> tuple[str, int] | None:
        """(symbol, offset) for an address inside the kernel image, else None."""
        if not self.base <= addr < self.end:
            return None
        i = bisect.bisect_right(self.addrs, addr) - 1
        if i < 0:
            return None
        return self.names[i], addr - self.addrs[i]

    def size(self, name: str) -> int:
        """Bytes to the next symbol (or the end of text / the image)."""
        a = self.addr(name)
        i = bisect.bisect_right(self.addrs, a)
        nxt = self.addrs[i] if i < len(self.addrs) else self.end
        if a < self.text_end < nxt:
            nxt = self.text_end
        return nxt - a

    def is_text(self, addr: int) -> bool:
        return self.base <= addr < self.text_end

    @staticmethod
    def label(text: str) -> str:
        """``text:`` padded to the next tab stop (at least column 16), as mdb lines up."""
        text += ":"
        return text.ljust(max(16, (len(text) // 8 + 1) * 8))

    def fmt(self, addr: int, *, plain_hex: bool = False) -> str:
        """``pci_mech1_getl+0x1c`` (mdb's %a), or the address in hex."""
        hit = self.lookup(addr)
        if hit is None:
            return f"{addr:x}" if plain_hex else f"{addr:#x}"
        name, off = hit
        # mdb writes small offsets as a digit and the rest in hex: +8, +0xc, +0x10
        return name + ("" if not off else f"+{off}" if off < 10 else f"+{off:#x}")


# ---------------------------------------------------------------------------
# page-table walks
# ---------------------------------------------------------------------------

@dataclass
class Level:
    """One paging-structure entry on the way to a translation."""

    level: int
    name: str
    index: int
    table: int            # machine address of the table (its frame << 12)
    entry: int            # machine address of the entry
    raw: int

    @property
    def present(self) -> bool:
        return bool(self.raw & PTE_P)

    @property
    def frame(self) -> int:
        """The frame number the entry holds (a machine frame: PV page tables hold MFNs)."""
        return (self.raw & ADDR_MASK) >> 12


@dataclass
class Translation:
    """A virtual address walked through the guest's page tables."""

    va: int
    levels: list[Level] = field(default_factory=list)
    ma: int | None = None             # machine address, None if not mapped
    page_size: int = PAGE
    why: str | None = None            # why there is no translation
    paging: bool = True

    @property
    def ok(self) -> bool:
        return self.ma is not None


def canonical(va: int) -> bool:
    top = va >> 47
    return top == 0 or top == (1 << 17) - 1


# ---------------------------------------------------------------------------
# the target
# ---------------------------------------------------------------------------

class Target:
    """The model behind a ``Stage`` (booted), a ``Boot``, a ``Kernel`` or a ``KCpu``."""

    def __init__(self, obj):
        self.stage = self._boot = self._kernel = self._kcpu = None
        kind = type(obj).__name__
        if kind == "Stage":
            self.stage = obj
        elif kind == "Boot":
            self._boot = obj
        elif kind == "Kernel":
            self._kernel = obj
        elif kind == "KCpu":
            self._kcpu = obj
        else:
            raise TypeError(f"kmdb attaches to a Stage, Boot, Kernel or KCpu, not {kind}")

    # -- what we are attached to ------------------------------------------------------
    @property
    def boot(self):
        """The live Boot (a Stage's current one), or None for a bare kernel target."""
        if self.stage is not None:
            b = self.stage.state
            if b is None:
                raise MdbError(f"stage '{self.stage.name}' has not been booted: "
                               "run .boot() first")
            return b
        return self._boot

    @property
    def kernel(self):
        if self._kernel is not None:
            return self._kernel
        b = self.boot
        return b.kernel if b is not None else None

    @property
    def cpus(self) -> list:
        """The kernel's KCpu objects (boot CPU first); empty before the kernel exists."""
        if self._kcpu is not None:
            return [self._kcpu]
        k = self.kernel
        return list(k.cpus) if k is not None else []

    @property
    def unix(self):
        if self._kcpu is not None:
            return self._kcpu.unix
        k = self.kernel
        if k is not None:
            return k.unix
        b = self.boot
        return b.unix if b is not None else None

    @property
    def symbols(self) -> Symbols:
        u = self.unix
        if u is None:
            raise MdbError("no kernel symbols")
        cached = getattr(self, "_syms", None)
        if cached is None or cached.unix is not u:
            self._syms = Symbols(u)
        return self._syms

    @property
    def xen(self):
        b = self.boot
        return getattr(b, "xen", None) if b is not None else None

    @property
    def dom0(self):
        b = self.boot
        return getattr(b, "dom0", None) if b is not None else None

    @property
    def memory(self):
        return self.hw(0).memory

    @property
    def pv(self) -> bool:
        """Is the kernel a paravirtualised guest (i86xen)?"""
        if self._kcpu is not None:
            return bool(self._kcpu.pv)
        k = self.kernel
        if k is not None:
            return k.plat.name == "i86xen"
        b = self.boot
        return bool(b is not None and not b.native)

    @property
    def platform(self) -> str:
        return "i86xen" if self.pv else "i86pc"

    def ncpus(self) -> int:
        return max(1, len(self.cpus))

    def hw(self, cpu: int):
        """The machine vCPU (state vector, memory, breakpoints) of kernel CPU ``cpu``."""
        cpus = self.cpus
        if cpus:
            if not 0 <= cpu < len(cpus):
                raise MdbError(f"invalid cpu id {cpu}: this kernel has CPUs 0-{len(cpus) - 1}")
            return cpus[cpu].vcpu
        b = self.boot
        if b is None:
            raise MdbError("no CPU to look at")
        if self.dom0 is not None:
            return self.dom0.vcpus[cpu].hw
        return b.machine.vcpus[cpu]

    # -- registers ------------------------------------------------------------------------
    def regs(self, cpu: int) -> dict[str, int]:
        """Every register of vCPU ``cpu`` by name, unsigned (RFLAGS with its
        arithmetic flags worked out)."""
        st = self.hw(cpu).state
        out = {n: u64(int(st[i])) for i, n in enumerate(R.GPR_NAMES)}
        out["rip"] = u64(int(st[R.RIP]))
        out["rflags"] = self._rflags(st)
        for n in SEGMENTS:
            out[n] = int(st[R.NAMES[n]]) & 0xFFFF
        for n in CONTROL:
            out[n] = u64(int(st[R.NAMES[n]]))
        out["fs_base"] = u64(int(st[R.FS_BASE]))
        out["gs_base"] = u64(int(st[R.GS_BASE]))
        return out

    @staticmethod
    def _rflags(st) -> int:
        from ..machine.cpu import slots as S
        if int(st[S.LF_KIND]) != 0:             # the CPU keeps arithmetic flags lazily
            from ..machine.cpu.flags import get_flags
            return u64(int(get_flags(st)))
        return u64(int(st[R.RFLAGS]))

    # -- machine memory ---------------------------------------------------------------------
    def mread(self, ma: int, n: int) -> bytes:
        """``n`` bytes of machine memory (never a device register)."""
        mem = self.memory
        out = bytearray()
        a = ma
        while len(out) < n:
            chunk = min(n - len(out), PAGE - (a & 0xFFF))
            mfn = a >> 12
            try:
                if mem.mmio_region(mfn) is not None:
                    raise ReadError(n, ma, f"device memory (mfn {mfn:#x}): reading it "
                                    "would touch the device", "machine address")
                out += mem.read_bytes(a, chunk)
            except ReadError:
                raise
            except Exception:                                   # noqa: BLE001
                raise ReadError(n, ma, "no such machine address", "machine address") \
                    from None
            a += chunk
        return bytes(out)

    def mread64(self, ma: int) -> int:
        return int.from_bytes(self.mread(ma, 8), "little")

    # -- page tables ---------------------------------------------------------------------
    def walk(self, va: int, cpu: int = 0, cr3: int | None = None) -> Translation:
        """Walk ``va`` through the page tables ``cr3`` (default: the vCPU's)."""
        va = u64(va)
        st = self.hw(self.address_space(cpu)).state
        t = Translation(va)
        if not int(st[R.CR0]) & R.CR0_PG:
            t.paging, t.ma = False, va
            return t
        if not int(st[R.EFER]) & R.EFER_LMA:
            raise MdbError("the vCPU is not in long mode: only 4-level paging is walked")
        if not canonical(va):
            t.why = "non-canonical address"
            return t
        table = (u64(int(st[R.CR3])) if cr3 is None else cr3) & ADDR_MASK
        for level in (4, 3, 2, 1):
            shift = 12 + 9 * (level - 1)
            idx = (va >> shift) & 511
            ea = table + 8 * idx
            raw = self.mread64(ea)
            t.levels.append(Level(level, LEVEL_NAMES[level], idx, table, ea, raw))
            if not raw & PTE_P:
                t.why = "no mapping for address"
                return t
            if level in (3, 2) and raw & PTE_PS:
                size = 1 << shift
                t.page_size = size
                t.ma = (raw & ADDR_MASK & ~(size - 1)) | (va & (size - 1))
                return t
            table = raw & ADDR_MASK
        t.ma = table | (va & 0xFFF)
        return t

    def address_space(self, cpu: int) -> int:
        """The CPU whose page tables a read on ``cpu`` uses: its own, or the boot
        CPU's while ``cpu`` has none yet (not started)."""
        if cpu == 0:
            return 0
        st = self.hw(cpu).state
        if int(st[R.CR0]) & R.CR0_PG and int(st[R.CR3]):
            return cpu
        return 0

    def translate(self, va: int, cpu: int = 0, n: int = 1) -> int:
        t = self.walk(va, cpu)
        if not t.ok:
            raise ReadError(n, u64(va), t.why or "no mapping for address")
        return t.ma

    def vread(self, va: int, n: int, cpu: int = 0) -> bytes:
        """``n`` bytes of the guest's virtual memory as vCPU ``cpu`` sees it."""
        va = u64(va)
        out = bytearray()
        a = va
        while len(out) < n:
            chunk = min(n - len(out), PAGE - (a & 0xFFF))
            t = self.walk(a, cpu)
            if not t.ok:
                raise ReadError(n, va, t.why or "no mapping for address")
            try:
                out += self.mread(t.ma, chunk)
            except ReadError as e:
                raise ReadError(n, va, e.why) from None
            a = u64(a + chunk)
        return bytes(out)

    def vread64(self, va: int, cpu: int = 0) -> int:
        return int.from_bytes(self.vread(va, 8, cpu), "little")

    def fread(self, addr: int, n: int) -> bytes:
        """``n`` bytes of the kernel's object file (``unix`` as linked), mdb's ``?``."""
        u = self.unix
        if u is None or not u.base <= addr or addr + n > u.end:
            raise ReadError(n, addr, "address is not in the object file (unix)")
        off = addr - u.base
        return bytes(u.image[off:off + n])

    # -- Xen views (i86xen) -------------------------------------------------------------
    def need_xen(self, what: str, frames: bool = False):
        if not self.pv:
            why = (": a physical frame is the machine frame" if frames else
                   ": there is no hypervisor")
            raise MdbError(f"{what}: this kernel is i86pc on bare metal{why}")

    def start_info_va(self, cpu: int = 0) -> int:
        """``start_info``'s address: the pointer ``_start`` saved in ``boot_info``."""
        self.need_xen("start_info")
        return self.vread64(self.symbols.addr("boot_info"), cpu)

    def start_info(self, cpu: int = 0):
        import numpy as np

        from ..xen import abi
        raw = self.vread(self.start_info_va(cpu), abi.start_info.itemsize, cpu)
        return np.frombuffer(raw, dtype=abi.start_info)[0]

    def mfn_list(self, cpu: int = 0) -> tuple[int, int]:
        """(virtual address, entries) of the kernel's P2M list, from start_info."""
        si = self.start_info(cpu)
        return int(si["mfn_list"]), int(si["nr_pages"])

    def pfn_to_mfn(self, pfn: int, cpu: int = 0) -> int:
        va, n = self.mfn_list(cpu)
        if not 0 <= pfn < n:
            raise MdbError(f"pfn {pfn:#x} is beyond this domain's mfn_list "
                           f"({n:#x} entries)")
        return self.vread64(va + 8 * pfn, cpu)

    def mfn_to_pfn(self, mfn: int, cpu: int = 0) -> int:
        from ..xen import abi
        self.need_xen("machine_to_phys_mapping", frames=True)
        va = abi.MACH2PHYS_VIRT_START + 8 * mfn
        if mfn < 0 or va >= abi.MACH2PHYS_VIRT_END:
            raise MdbError(f"mfn {mfn:#x} is beyond the M2P table")
        try:
            return self.vread64(va, cpu)
        except ReadError:
            raise MdbError(f"mfn {mfn:#x}: no M2P entry (the machine frame is beyond "
                           "what Xen's machine_to_phys_mapping covers)") from None

    def shared_info_va(self) -> int:
        self.need_xen("shared_info")
        k = self.kernel
        va = getattr(getattr(k, "plat", None), "shared_info_va", 0) if k else 0
        if not va:
            raise MdbError("the kernel has not mapped shared_info yet")
        return int(va)

    # -- the kernel's own state ------------------------------------------------------------
    def panic(self):
        """The kernel's recorded panic (a KernelPanic) or None."""
        k = self.kernel
        return getattr(k, "panicked", None) if k is not None else None
