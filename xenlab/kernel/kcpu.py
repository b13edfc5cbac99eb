"""KCpu: the vCPU as the Python kernel uses it.

The kernel's logic is Python, but every touch of the machine is done by the
vCPU at its own privilege:

* **memory**: :meth:`KCpu.read` / :meth:`KCpu.write` translate through the
  vCPU's MMU (its CR3, its CPL: a 64-bit PV kernel runs in ring 3, so user
  access rules apply; CR0.WP), which sets accessed/dirty bits and raises
  :class:`KernelFault` on a page fault, as a load or store instruction would;
* **everything else** (port I/O, device registers, privileged instructions,
  hypercalls, BIOS calls) is a stub in locore.s run by :meth:`KCpu.call`.

How Python gets control back: ``call`` pushes the address of ``kpy_return``
on the guest stack, sets RIP and the argument registers, and asks the *host
runner* (given by whoever assembled the machine: Xen's run loop, or the bare
machine's) to run the vCPU until it stops.  The vCPU stops at breakpoints: on
``kpy_return`` (the stub returned), on the trap entries ``trap_0`` ...
``trap_31`` (Xen bounced an exception to the guest, or the native IDT
delivered one: the kernel's trap handler runs, usually to panic), on
``hypervisor_callback`` (an event upcall: the kernel's event handler runs, then
the vCPU returns through the iret stub), and on ``syscall_entry`` (a user
process came back).  A call that uses up its instruction budget without
returning raises :class:`KernelHang` ("no progress").
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..machine import regs as R
from ..machine.mmu import PageFault
from ..machine.pte import s64, u64

DEFAULT_BUDGET = 2_000_000
ERRCODE_VECTORS = frozenset({8, 10, 11, 12, 13, 14, 17})
RESUME = "resume"
ARG_REGS = ("rdi", "rsi", "rdx", "rcx", "r8", "r9")


class KernelStop(Exception):
    """The kernel cannot go on (a panic, a hang, or the machine stopped it)."""


class KernelPanic(KernelStop):
    """The kernel panicked; ``text`` is what it printed."""

    def __init__(self, message: str, text: str = "", trap=None):
        self.message = message
        self.text = text or message
        self.trap = trap
        super().__init__(message)


class KernelHang(KernelStop):
    """A call ran out of its instruction budget without returning: no progress."""


class MachineStopped(KernelStop):
    """The host stopped running the vCPU: the domain crashed or shut down, the
    CPU triple-faulted or halted with nothing to wake it."""


class KernelFault(Exception):
    """A load or store by the Python kernel faulted in the vCPU's MMU."""

    def __init__(self, va: int, vector: int, code: int, write: bool):
        self.va, self.vector, self.code, self.write = va, vector, code, write
        kind = "#PF" if vector == 14 else f"#{vector}"
        super().__init__(f"{kind} {'writing' if write else 'reading'} {u64(va):#x} "
                         f"(error code {code:#x})")


@dataclass
class TrapFrame:
    """An exception as the kernel's trap handler sees it (illumos ``struct regs``)."""

    vector: int
    err: int | None
    rip: int
    cs: int
    rflags: int
    rsp: int
    ss: int
    regs: dict = field(default_factory=dict)   # every GPR at the time of the trap
    frame_va: int = 0                           # where the frame sits (illumos "rp")
    cr2: int | None = None

    @property
    def from_user(self) -> bool:
        """Did the trap come from user mode?  (Xen: CS RPL 3 with the kernel's
        own CS RPL cleared in the bounce; natively: CPL 3.)"""
        return (self.cs & 3) == 3


class KCpu:
    """One vCPU, its runner and the kernel's symbols."""

    def __init__(self, vcpu, runner, unix, *, pv: bool, cpu_id: int = 0):
        self.vcpu = vcpu
        self.runner = runner
        self.unix = unix
        self.pv = pv
        self.cpu_id = cpu_id
        s = unix.symbols
        self.kpy_return = s["kpy_return"]
        self.kpy_entry = s["kpy_entry"]
        self.trap_entries = {s[f"trap_{n}"]: n for n in range(32)}
        self.callback = s["hypervisor_callback"]
        self.failsafe = s["failsafe_callback"]
        self.syscall = s["syscall_entry"]
        self.intr = s["intr_entry"]
        self.stops = ({self.kpy_return, self.kpy_entry, self.callback, self.failsafe,
                       self.syscall, self.intr} | set(self.trap_entries))
        vcpu.breakpoints |= self.stops
        self.trap_handler = None        # fn(TrapFrame) -> RESUME or raises
        self.event_handler = None       # fn() for an upcall
        self.user_return = None         # fn(kind, frame) for a user process coming back
        self.instructions = 0
        self.calls = 0
        self.log: list[tuple[str, int]] | None = None     # (stub, instructions) when enabled

    # ------------------------------------------------------------------ registers
    @property
    def state(self) -> np.ndarray:
        return self.vcpu.state

    def reg(self, name: str) -> int:
        return u64(int(self.state[R.NAMES[name]]))

    def set_reg(self, name: str, value: int):
        self.state[R.NAMES[name]] = s64(int(value))

    def sym(self, name_or_addr) -> int:
        return self.unix.sym(name_or_addr) if isinstance(name_or_addr, str) else int(name_or_addr)

    # ------------------------------------------------------------------ memory
    def translate(self, va: int, write: bool = False) -> int:
        """Machine address of ``va`` for the kernel, as its next load/store would see it."""
        try:
            return self.vcpu.mmu.translate(va, write=write)
        except PageFault as e:
            raise KernelFault(va, e.vector, e.code, write) from None

    def read(self, va: int, n: int) -> bytes:
        out = bytearray()
        va = u64(va)
        mem = self.vcpu.memory
        while n > 0:
            chunk = min(n, 4096 - (va & 0xFFF))
            ma = self.translate(va)
            if mem.mmio_region(ma >> 12) is not None:
                raise KernelFault(va, 14, 0, False) from ValueError(
                    f"{va:#x} is device memory: read it with ddi_get*, not a memory copy")
            out += mem.read_bytes(ma, chunk)
            va += chunk
            n -= chunk
        return bytes(out)

    def write(self, va: int, data: bytes):
        data = bytes(data)
        va = u64(va)
        mem = self.vcpu.memory
        done = 0
        while done < len(data):
            chunk = min(len(data) - done, 4096 - (va & 0xFFF))
            ma = self.translate(va, write=True)
            if mem.mmio_region(ma >> 12) is not None:
                raise KernelFault(va, 14, 2, True) from ValueError(
                    f"{va:#x} is device memory: write it with ddi_put*, not a memory copy")
            mem.write_bytes(ma, data[done:done + chunk])
            va += chunk
            done += chunk

    def read64(self, va: int) -> int:
        return int.from_bytes(self.read(va, 8), "little")

    def read32(self, va: int) -> int:
        return int.from_bytes(self.read(va, 4), "little")

    def read16(self, va: int) -> int:
        return int.from_bytes(self.read(va, 2), "little")

    def read8(self, va: int) -> int:
        return self.read(va, 1)[0]

    def write64(self, va: int, value: int):
        self.write(va, (value & ((1 << 64) - 1)).to_bytes(8, "little"))

    def write32(self, va: int, value: int):
        self.write(va, (value & 0xFFFFFFFF).to_bytes(4, "little"))

    def write16(self, va: int, value: int):
        self.write(va, (value & 0xFFFF).to_bytes(2, "little"))

    def write8(self, va: int, value: int):
        self.write(va, bytes([value & 0xFF]))

    def read_struct(self, va: int, dtype):
        raw = self.read(va, dtype.itemsize)
        return np.frombuffer(raw, dtype=dtype)[0].copy()

    def write_struct(self, va: int, rec):
        self.write(va, rec.tobytes())

    # ------------------------------------------------------------------ running
    def start(self, budget: int = DEFAULT_BUDGET):
        """Run from the current RIP (the kernel's entry) to ``kpy_entry``."""
        self._run(stop_rip=self.kpy_entry, stop_rsp=None, budget=budget, what="_start")

    def call(self, target, *args, regs: dict | None = None, budget: int = DEFAULT_BUDGET) -> int:
        """Run stub ``target`` (a locore label or an address) with System V
        arguments ``args`` (and any other ``regs``); return %rax (unsigned)."""
        addr = self.sym(target)
        st = self.state
        rsp0 = u64(int(st[R.RSP]))
        rsp = rsp0 - 8
        self.write64(rsp, self.kpy_return)
        st[R.RSP] = s64(rsp)
        for name, value in zip(ARG_REGS, args):
            self.set_reg(name, value)
        for name, value in (regs or {}).items():
            self.set_reg(name, value)
        st[R.RIP] = s64(addr)
        self.calls += 1
        what = target if isinstance(target, str) else self.unix.name(addr)
        self._run(stop_rip=self.kpy_return, stop_rsp=rsp0, budget=budget, what=what)
        return self.reg("rax")

    def hypercall(self, nr: int, *args) -> int:
        """HYPERVISOR_*: %rax = nr, arguments in %rdi %rsi %rdx %r10 %r8; the
        result as a signed number (0, a count, or a negative Xen errno)."""
        regs = {"rax": nr}
        for name, value in zip(("rdi", "rsi", "rdx", "r10", "r8"), args):
            regs[name] = value
        return s64(self.call("hypercall", regs=regs))

    def run_user(self, frame: list[int], entry: int, done, *, budget: int = DEFAULT_BUDGET):
        """Drop to user mode: push ``frame`` (the iret frame the platform built),
        jump to ``entry`` (its return-to-user path) and run until ``done()``
        returns something (the kernel's trap or syscall handler saw the user
        process come back); the kernel stack is then put back as it was."""
        st = self.state
        rsp0 = u64(int(st[R.RSP]))
        rsp = rsp0 - 8 * len(frame)
        self.write(rsp, b"".join((w & ((1 << 64) - 1)).to_bytes(8, "little") for w in frame))
        st[R.RSP] = s64(rsp)
        st[R.RIP] = s64(entry)
        try:
            self._run(stop_rip=None, stop_rsp=None, budget=budget, what="a user process",
                      until=done)
        finally:
            st[R.RSP] = s64(rsp0)
        return done()

    def _run(self, *, stop_rip, stop_rsp, budget: int, what: str, until=None):
        st = self.state
        start = int(st[R.ICOUNT])
        try:
            while True:
                if until is not None and until() is not None:
                    return
                used = int(st[R.ICOUNT]) - start
                left = budget - used
                if left <= 0:
                    rip = u64(int(st[R.RIP]))
                    raise KernelHang(
                        f"no progress: {what} ran {used:,} instructions without returning "
                        f"(RIP {rip:#x} {self.unix.name(rip)})")
                ex = self.runner(left)
                rip = u64(int(st[R.RIP]))
                reason = getattr(ex, "reason", None)
                if reason == "breakpoint" or rip in self.stops:
                    if rip == stop_rip and (stop_rsp is None or
                                            u64(int(st[R.RSP])) == stop_rsp):
                        return
                    self._dispatch(rip)
                elif reason == "budget":
                    continue
                else:
                    raise MachineStopped(f"the vCPU stopped in {what}: {ex!r} at "
                                         f"{self.unix.name(rip)}")
        finally:
            n = int(st[R.ICOUNT]) - start
            self.instructions += n
            if self.log is not None:
                self.log.append((what, n))

    def _dispatch(self, rip: int):
        st = self.state
        if rip in self.trap_entries:
            frame = self.trap_frame(self.trap_entries[rip])
            if self.trap_handler is None:
                raise KernelPanic(f"trap {frame.vector} with no trap handler")
            if self.trap_handler(frame) == RESUME:
                self.iret(frame)
            return
        if rip == self.callback:
            if self.event_handler is not None:
                self.event_handler()
            st[R.RIP] = s64(self.unix.sym("xen_iret"))
            return
        if rip == self.syscall:
            if self.user_return is None:
                raise KernelPanic("syscall from user mode with no handler")
            self.user_return("syscall", None)
            return
        if rip == self.failsafe:
            raise KernelPanic("failsafe callback: Xen could not return to the guest")
        raise KernelPanic(f"stopped at {self.unix.name(rip)} unexpectedly")

    # ------------------------------------------------------------------ traps
    def trap_frame(self, vector: int) -> TrapFrame:
        """Read the exception frame at the stack pointer (Xen's bounce frame:
        RCX, R11, [error code], RIP, CS, RFLAGS, RSP, SS; native: [error code],
        RIP, CS, RFLAGS, RSP, SS)."""
        rsp = self.reg("rsp")
        regs = {n: self.reg(n) for n in R.GPR_NAMES}
        has_err = vector in ERRCODE_VECTORS
        nwords = (2 if self.pv else 0) + (1 if has_err else 0) + 5
        raw = self.read(rsp, 8 * nwords)
        w = [int.from_bytes(raw[8 * i:8 * i + 8], "little") for i in range(nwords)]
        i = 0
        if self.pv:
            regs["rcx"], regs["r11"] = w[0], w[1]
            i = 2
        err = None
        if has_err:
            err, i = w[i] & 0xFFFFFFFF, i + 1
        rip, cs, rflags, sp, ss = w[i:i + 5]
        regs["rsp"] = sp
        return TrapFrame(vector, err, rip, cs & 0xFFFF, rflags, sp, ss & 0xFFFF, regs, rsp)

    def iret(self, frame: TrapFrame):
        """Resume the trapped context through the platform's return path."""
        if self.pv:
            stub = "xen_iret_err" if frame.err is not None else "xen_iret"
        else:
            stub = "native_iret_err" if frame.err is not None else "native_iret"
        self.state[R.RIP] = s64(self.unix.sym(stub))
