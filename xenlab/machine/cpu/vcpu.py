"""The Python face of a vCPU: state, registers by name, run loop and exits.

``Vcpu(memory, ports, mmio, index)`` owns one state vector (regs.py layout
plus the CPU's slots), shares it with an :class:`~xenlab.machine.mmu.Mmu`
(``vcpu.mmu``: same state, same TLB), and runs the jitted loop with
:meth:`Vcpu.run` (raw exits, like KVM_RUN) or :meth:`Vcpu.run_native` (port
and MMIO exits handed to the machine's buses, every other exit returned).
"""

from __future__ import annotations

import weakref

import numpy as np

from .. import regs as R
from ..memory import HEADROOM, META_CAP, META_CODE_WRITES, META_USED
from ..mmio import MmioBus
from ..mmu import Mmu
from ..ports import PortBus
from ..pte import s64, u64
from . import slots as S
from .entry import entry_block
from .cache import C_CODEW, C_FP, C_MEM_GEN, C_SOP, DEFAULT_CODE_PAGES, new_cc

EXIT_NAMES = S.EXIT_NAMES
MASKS = {1: 0xFF, 2: 0xFFFF, 4: 0xFFFFFFFF}     # a port access's size -> its value's bits
_ERROR_CODE_VECTORS = {8, 10, 11, 12, 13, 14, 17, 21, 29, 30}


class CodeCache:
    """Decoded instructions per physical page, shared by every vCPU of one memory
    (layout in cache.py)."""

    def __init__(self, memory, npages: int = DEFAULT_CODE_PAGES):
        from ._kernels import FP
        self.memory = memory
        self.npages = npages
        self.cc = new_cc(npages)
        self.cc[C_MEM_GEN] = memory.generation
        self.cc[C_CODEW] = memory.arrays[5][META_CODE_WRITES]
        self.cc[C_FP:C_FP + len(FP)] = FP
        self.page_of_slot = np.zeros(0, dtype=np.int32)
        self._tuple = None
        self._seen = None

    def arrays(self):
        """``(cc, page_of_slot)`` for the kernels (the latter grown with the memory pool)."""
        if self.memory.arrays is self._seen:
            return self._tuple
        self._seen = self.memory.arrays
        cap = len(self.memory.arrays[4])
        if len(self.page_of_slot) < cap:
            pos = np.zeros(cap, dtype=np.int32)
            pos[:len(self.page_of_slot)] = self.page_of_slot
            self.page_of_slot = pos
            self._tuple = None
        if self._tuple is None:
            self._tuple = (self.cc, self.page_of_slot)
        return self._tuple

    @property
    def cached_pages(self) -> int:
        sop = int(self.cc[C_SOP])
        return int((self.cc[sop:sop + self.npages] != 0).sum())


_CACHES: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def code_cache(memory) -> CodeCache:
    """The code cache shared by all vCPUs on ``memory``."""
    c = _CACHES.get(memory)
    if c is None:
        c = _CACHES[memory] = CodeCache(memory)
    return c


class _TrackedSet(set):
    """A set that tells its owner when it changes."""

    def __init__(self, items, on_change):
        super().__init__(items)
        self._on_change = on_change

    def _changed(self):
        self._on_change(self)

    def add(self, x):
        super().add(x)
        self._changed()

    def discard(self, x):
        super().discard(x)
        self._changed()

    def remove(self, x):
        super().remove(x)
        self._changed()

    def clear(self):
        super().clear()
        self._changed()

    def update(self, *a):
        super().update(*a)
        self._changed()

    def difference_update(self, *a):
        super().difference_update(*a)
        self._changed()

    def pop(self):
        x = super().pop()
        self._changed()
        return x

    def __ior__(self, o):
        super().__ior__(o)
        self._changed()
        return self

    def __isub__(self, o):
        super().__isub__(o)
        self._changed()
        return self


class Exit:
    """Why ``run`` returned, with the details of that exit.

    ``reason`` is a name from :data:`EXIT_NAMES`.  io: ``port size write value
    string rep``; mmio: ``addr size write value va``; exception: ``vector
    error_code cr2 rip``; breakpoint: ``rip`` (and ``vector`` 3 for an INT3);
    shutdown/internal: ``code``.  ``count``: instructions executed in the call.
    """

    __slots__ = ("reason", "port", "addr", "size", "write", "value", "string", "rep",
                 "va", "vector", "error_code", "cr2", "rip", "code", "count")

    def __init__(self, code: int, xi: list, rip: int):
        self.reason = EXIT_NAMES[code]
        self.count = xi[S.XI_COUNT]
        self.rip = rip
        self.port = self.addr = self.size = self.write = self.value = None
        self.string = self.rep = self.va = self.vector = self.error_code = None
        self.cr2 = self.code = None
        if code in (S.EXIT_IO, S.EXIT_MMIO):
            self.size, self.write = xi[S.XI_B], bool(xi[S.XI_C])
            self.value = xi[S.XI_D] if self.write else None
            if code == S.EXIT_IO:
                self.port, self.string, self.rep = xi[S.XI_A], bool(xi[S.XI_E]), bool(xi[S.XI_F])
            else:
                self.addr, self.va = xi[S.XI_A], u64(xi[S.XI_E])
        elif code in (S.EXIT_EXCEPTION, S.EXIT_BREAKPOINT):
            if code == S.EXIT_EXCEPTION or xi[S.XI_A] == 3 and xi[S.XI_E] == rip:
                self.vector = xi[S.XI_A]
            if code == S.EXIT_EXCEPTION:
                self.error_code = xi[S.XI_B] if xi[S.XI_B] >= 0 else None
                self.cr2 = u64(xi[S.XI_C]) if self.vector == 14 else None
        elif code in (S.EXIT_SHUTDOWN, S.EXIT_INTERNAL):
            self.code = xi[S.XI_A]

    def __repr__(self):
        keys = [k for k in self.__slots__ if k != "reason" and getattr(self, k) is not None]
        body = " ".join(f"{k}={getattr(self, k):#x}" if isinstance(getattr(self, k), int)
                        and not isinstance(getattr(self, k), bool) else f"{k}={getattr(self, k)}"
                        for k in keys)
        return f"<Exit {self.reason} {body}>"


class Registers:
    """Registers by lower-case name: ``vcpu.regs.rax``, ``vcpu.regs["cr3"] = ...``.

    Values read as unsigned 64-bit ints.  Writes to cr0/cr3/cr4/efer go
    through the MMU, so they flush the TLB as the instruction would.
    """

    def __init__(self, vcpu):
        object.__setattr__(self, "_vcpu", vcpu)

    def __getitem__(self, name):
        return self._vcpu.get(name)

    def __setitem__(self, name, value):
        self._vcpu.set(name, value)

    def __getattr__(self, name):
        if name.startswith("_"):      # (copy and pickle probe for these before _vcpu exists)
            raise AttributeError(name)
        try:
            return self._vcpu.get(name)
        except KeyError as e:
            raise AttributeError(str(e)) from None

    def __setattr__(self, name, value):
        self._vcpu.set(name, value)

    def as_dict(self, names=None) -> dict:
        names = names or (R.GPR_NAMES + ("rip", "rflags"))
        return {n: self._vcpu.get(n) for n in names}

    def __repr__(self):
        return " ".join(f"{k}={v:#x}" for k, v in self.as_dict().items())


REG_NAMES = tuple(R.NAMES)


class Vcpu:
    """One virtual CPU on a machine's memory, port bus and MMIO bus."""

    def __init__(self, memory, ports: PortBus | None = None, mmio: MmioBus | None = None,
                 index: int = 0, *, code_pages: int | None = None, apic_id: int | None = None):
        from ._kernels import run_entry   # compiles or loads the kernels, once per process
        self._run_entry = run_entry
        self._entries: dict = {}             # id(breakpoint array) -> its entry block
        self._stops = (None, {})             # (self._bps, {stop_at: breakpoints with it})
        self.memory = memory
        self.ports = ports if ports is not None else PortBus()
        self.mmio = mmio if mmio is not None else MmioBus(memory)
        self.index = index
        st = R.new_state()
        # No real mode: a vCPU starts as a boot loader leaves it (flat 32-bit
        # protected mode, paging off), ready to enter long mode.
        st[R.CR0] |= R.CR0_PE
        st[R.CSBASE_MODE] = R.MODE_LEGACY32
        st[S.CUR_EXC] = -1
        st[S.BP_SKIP] = -1
        st[S.APIC_BASE] = 0xFEE00000 | (1 << 11) | ((1 << 8) if index == 0 else 0)
        self.apic_id = index if apic_id is None else int(apic_id)
        if not 0 <= self.apic_id <= 0xFF:
            raise ValueError(f"apic_id={apic_id}: an xAPIC id is 0..255")
        st[S.APIC_ID] = self.apic_id
        st[S.MEM_GEN_SEEN] = memory.generation
        self.state = st
        self.mmu = Mmu(memory, st)
        self.tlb = self.mmu.tlb
        if code_pages is not None and memory not in _CACHES:
            _CACHES[memory] = CodeCache(memory, code_pages)
        self.cache = code_cache(memory)
        self.regs = Registers(self)
        self._bps = np.zeros(0, dtype=np.int64)
        self._breakpoints = _TrackedSet((), self._sync_bps)
        self._intercept = _TrackedSet((), self._sync_intercept)
        self.last_exit: Exit | None = None

    @property
    def xi(self) -> np.ndarray:
        """The exit details: a view of the state (a property, so a copied vCPU's
        view is of its own state)."""
        return self.state[S.XI:S.XI + S.NEXIT]

    # -- registers --------------------------------------------------------------------
    def get(self, name: str) -> int:
        name = name.lower()
        if name not in R.NAMES:
            raise KeyError(f"no register {name!r}; names are {', '.join(REG_NAMES)}")
        return u64(int(self.state[R.NAMES[name]]))

    def set(self, name: str, value: int):
        name = name.lower()
        if name not in R.NAMES:
            raise KeyError(f"no register {name!r}; names are {', '.join(REG_NAMES)}")
        v = s64(int(value))
        if name == "cr0":
            self.mmu.write_cr0(v)
        elif name == "cr3":
            self.mmu.write_cr3(v)
        elif name == "cr4":
            self.mmu.write_cr4(v)
        elif name == "efer":
            self.mmu.write_efer(v)
        else:
            if name == "rflags":
                self.state[S.LF_KIND] = 0
                v |= R.FLAGS_FIXED
            if name == "cpl" and not 0 <= v <= 3:
                raise ValueError(f"cpl={value}: privilege levels are 0..3")
            self.state[R.NAMES[name]] = v

    def __getitem__(self, name):
        return self.get(name)

    def __setitem__(self, name, value):
        self.set(name, value)

    # -- switches -------------------------------------------------------------------
    @property
    def breakpoints(self) -> set:
        """Linear addresses where the vCPU exits ("breakpoint") before executing."""
        return self._breakpoints

    @breakpoints.setter
    def breakpoints(self, items):
        self._breakpoints = _TrackedSet((u64(int(a)) for a in items), self._sync_bps)
        self._sync_bps(self._breakpoints)

    def _sync_bps(self, s):
        self._bps = np.array(sorted(s64(int(a)) for a in s), dtype=np.int64)

    @property
    def intercept(self) -> set:
        """Vectors (0-255) that exit ("exception") instead of going through the IDT."""
        return self._intercept

    @intercept.setter
    def intercept(self, vectors):
        if isinstance(vectors, (int, np.integer)):
            vectors = [v for v in range(256) if (int(vectors) >> v) & 1]
        self._intercept = _TrackedSet(vectors, self._sync_intercept)
        self._sync_intercept(self._intercept)

    def _sync_intercept(self, s):
        words = [0, 0, 0, 0]
        for v in s:
            if not 0 <= int(v) <= 255:
                raise ValueError(f"vector {v}: interrupt vectors are 0..255")
            words[int(v) >> 6] |= 1 << (int(v) & 63)
        for i in range(4):
            self.state[S.INTERCEPT0 + i] = s64(words[i])

    def _option(self, bit, on=None):
        if on is None:
            return bool(self.state[S.OPTIONS] & bit)
        if on:
            self.state[S.OPTIONS] |= bit
        else:
            self.state[S.OPTIONS] &= ~bit

    @property
    def syscall_exits(self) -> bool:
        """SYSCALL exits ("syscall") to the hypervisor instead of entering LSTAR."""
        return self._option(S.OPT_SYSCALL_EXIT)

    @syscall_exits.setter
    def syscall_exits(self, on: bool):
        self._option(S.OPT_SYSCALL_EXIT, bool(on))

    @property
    def io_exit_all(self) -> bool:
        """Exit for every port access, not only for ports a device claimed."""
        return self._option(S.OPT_IO_EXIT_ALL)

    @io_exit_all.setter
    def io_exit_all(self, on: bool):
        self._option(S.OPT_IO_EXIT_ALL, bool(on))

    @property
    def irq_pending(self) -> bool:
        """Set by the interrupt controller model while an interrupt waits."""
        return bool(self.state[S.IRQ_PENDING])

    @irq_pending.setter
    def irq_pending(self, on: bool):
        self.state[S.IRQ_PENDING] = 1 if on else 0

    # -- events -------------------------------------------------------------------------
    def inject_exception(self, vector: int, error_code: int | None = None):
        """Deliver exception ``vector`` through the IDT before the next instruction
        (never intercepted).  Vectors that push an error code get ``error_code``
        (0 if None); a #PF uses the current CR2."""
        if not 0 <= vector <= 31:
            raise ValueError(f"vector {vector}: exceptions are vectors 0..31")
        if vector in _ERROR_CODE_VECTORS:
            err = 0 if error_code is None else int(error_code)
        else:
            if error_code is not None:
                raise ValueError(f"vector {vector} pushes no error code (got {error_code})")
            err = -1
        self.state[S.PEND_EVENT] = (S.EV_EXCEPTION << 8) | vector
        self.state[S.PEND_ERROR] = err

    def inject_interrupt(self, vector: int):
        """Deliver external interrupt ``vector`` through the IDT before the next
        instruction (the caller has checked RFLAGS.IF, e.g. after an "irq" exit)."""
        if not 0 <= vector <= 255:
            raise ValueError(f"vector {vector}: interrupt vectors are 0..255")
        self.state[S.PEND_EVENT] = (S.EV_INTERRUPT << 8) | vector
        self.state[S.PEND_ERROR] = -1

    def complete(self, value: int):
        """Supply the value of a pending port or MMIO read; the next run finishes
        the instruction with it (without this, the read returns all ones)."""
        if not self.state[S.X_PENDING]:
            raise RuntimeError("no port or MMIO read is waiting for a value")
        self.state[self.state[S.XI + S.XI_SLOT]] = s64(int(value))

    # -- running ------------------------------------------------------------------------
    def _entry_address(self, bps) -> int:
        """The address of the entry block for a run with breakpoints ``bps``
        (entry.py), rebuilt when any array it points at was replaced.  Blocks
        are kept per breakpoint array, so stubs called in turn (each with its
        own stop address) do not rebuild them."""
        arrays = self.memory.arrays
        cc, pos = self.cache.arrays()
        e = self._entries.get(id(bps))
        if (e is not None and e[0] is arrays and e[1] is pos and e[2] is bps
                and e[3] is self.ports.owner):
            return e[5]
        keep = (arrays[0], arrays[1], arrays[4], arrays[5], arrays[6], self.state,
                self.tlb, cc, pos, self.ports.owner, bps)
        blk = entry_block(keep)
        # drop blocks of a replaced pool: they would keep the old arrays alive
        self._entries = {k: x for k, x in self._entries.items()
                         if x[0] is arrays and x[1] is pos and len(self._entries) < 64}
        self._entries[id(bps)] = (arrays, pos, bps, self.ports.owner, (keep, blk),
                                  int(blk.ctypes.data))
        return self._entries[id(bps)][5]

    def __getstate__(self):
        # a copy (a lab's snapshot) builds its own entry block: this one points
        # at the original's arrays
        d = dict(self.__dict__)
        d["_entries"] = {}
        d["_stops"] = (None, {})
        return d

    def _run_raw(self, budget: int, bps=None) -> int:
        bps = self._bps if bps is None else bps
        while True:
            code = self._run_entry(self._entry_address(bps), budget, 0, 0)
            if code != S.EXIT_POOL:
                return int(code)
            budget -= int(self.xi[S.XI_COUNT])
            self.memory.reserve(max(HEADROOM, self.memory.capacity_frames))

    def run(self, max_instructions: int = 10**9) -> Exit:
        """Run until an exit (at most ``max_instructions``) and return it."""
        code = self._run_raw(int(max_instructions))
        self.last_exit = Exit(code, self.xi.tolist(), u64(int(self.state[R.RIP])))
        return self.last_exit

    def run_native(self, max_instructions: int = 10**9, bps=None) -> Exit:
        """Run, serving port exits from ``self.ports`` and MMIO exits from
        ``self.mmio``; return at any other exit.  ``count`` is every
        instruction executed in the call (across the exits served).

        The loop is the round trip of every port access a Python device
        serves, so it is kept lean: the entry block is looked up again only
        when the memory pool was replaced."""
        left = int(max_instructions)
        total = 0
        xi = self.xi
        details = self.state[S.XI:S.XI + S.XI_SLOT + 1].tolist
        st = self.state
        ports, mmio = self.ports, self.mmio
        route = ports._route
        bps = self._bps if bps is None else bps
        run_entry = self._run_entry
        mem = self.memory
        addr = self._entry_address(bps)
        seen = mem.arrays
        value = supplied = 0                  # a read's value goes in with the next call
        while True:
            code = run_entry(addr, left, value, supplied)
            supplied = 0
            x = details()
            n = x[S.XI_COUNT]
            left -= n
            total += n
            if code == S.EXIT_IO:
                dev = route.get(x[S.XI_A] | x[S.XI_B] << 16) if ports.trace is None else None
                if dev is None:                   # not one device's: the bus sorts it out
                    if x[S.XI_C]:
                        ports.write(x[S.XI_A], x[S.XI_B], x[S.XI_D])
                    else:
                        value, supplied = ports.read(x[S.XI_A], x[S.XI_B]), 1
                elif x[S.XI_C]:
                    dev.io_write(x[S.XI_A], x[S.XI_B], x[S.XI_D])
                else:
                    value = int(dev.io_read(x[S.XI_A], x[S.XI_B])) & MASKS[x[S.XI_B]]
                    supplied = 1
            elif code == S.EXIT_MMIO:
                if x[S.XI_C]:
                    mmio.write(x[S.XI_A], x[S.XI_B], x[S.XI_D])
                else:
                    value, supplied = s64(mmio.read(x[S.XI_A], x[S.XI_B])), 1
            elif code == S.EXIT_POOL:
                self.memory.reserve(max(HEADROOM, self.memory.capacity_frames))
            else:
                xi[S.XI_COUNT] = total
                self.last_exit = Exit(code, xi.tolist(), u64(int(st[R.RIP])))
                return self.last_exit
            if mem.arrays is not seen:        # the pool grew (a device's DMA, say)
                addr = self._entry_address(bps)
                seen = mem.arrays
            if left <= 0:
                if supplied:
                    st[x[S.XI_SLOT]] = value
                code = self._run_raw(0, bps)
                xi[S.XI_COUNT] = total
                self.last_exit = Exit(code, xi.tolist(), u64(int(st[R.RIP])))
                return self.last_exit

    def call(self, rip: int, regs: dict | None = None, *, stop_at: int,
             max_instructions: int = 100_000) -> Exit:
        """Run a stub: set ``regs``, jump to ``rip`` at the current privilege, and
        run (serving I/O like :meth:`run_native`) until RIP reaches ``stop_at``.

        Returns the exit: ``reason == "breakpoint"`` and ``rip == stop_at`` when
        the stub finished; anything else (an exception exit, a "syscall" exit,
        "budget") stops the call early with the state as the exit left it.
        """
        if regs:
            for k, v in regs.items():
                self.set(k, v)
        self.state[R.RIP] = s64(int(rip))
        stop = s64(int(stop_at))
        if self._stops[0] is not self._bps:
            self._stops = (self._bps, {})
        bps = self._stops[1].get(stop)
        if bps is None:
            bps = self._bps if stop in self._bps else np.append(self._bps, np.int64(stop))
            if len(self._stops[1]) < 64:
                self._stops[1][stop] = bps
        return self.run_native(max_instructions, bps)

    # -- modes ----------------------------------------------------------------------------
    def set_long_mode(self, cr3: int, *, cpl: int = 0, nxe: bool = True, wp: bool = True,
                      sce: bool = True, pge: bool = False):
        """Put the vCPU straight into 64-bit mode with paging from ``cr3`` (what a
        boot stub does with MOV CR4/CR3/EFER/CR0 and a far jump), at ``cpl``."""
        st = self.state
        self.mmu.write_cr4(R.CR4_PAE | (R.CR4_PGE if pge else 0))
        self.mmu.write_efer(R.EFER_LME | (R.EFER_NXE if nxe else 0) | (R.EFER_SCE if sce else 0))
        self.mmu.write_cr3(cr3)
        self.mmu.write_cr0(R.CR0_PE | R.CR0_PG | R.CR0_ET | (R.CR0_WP if wp else 0))
        st[R.CSBASE_MODE] = R.MODE_LONG64
        st[R.CPL] = cpl
        st[R.CS] = 0x33 if cpl == 3 else 0x10 | cpl
        st[R.SS] = 0x2B if cpl == 3 else 0x18 | cpl

    def __repr__(self):
        return f"<Vcpu {self.index} rip={self.get('rip'):#x} cpl={self.get('cpl')}>"
