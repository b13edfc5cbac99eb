"""Reading the model for checks: guest memory through dom0's own page tables
(a side-effect-free walk), and the boot's pieces, with messages that say what
is missing."""

from __future__ import annotations


def boot_of(stage):
    b = getattr(stage, "state", None)
    if b is None:
        raise RuntimeError("the stage has not been booted (run lab.boot() first)")
    return b


def guest_read(stage, va: int, n: int) -> bytes:
    """``n`` bytes at kernel address ``va``, walked through the boot CPU's page
    tables the way the MMU would (no accessed bits set, no TLB touched)."""
    k = boot_of(stage).kernel
    vcpu = k.cpus[0].vcpu
    w = vcpu.mmu.walk(va)
    if not w.ok:
        raise RuntimeError(f"{va:#x} is not mapped in the kernel's page tables: {w.fault}")
    return vcpu.memory.read_bytes(w.maddr, n)


def guest_u64(stage, va: int) -> int:
    return int.from_bytes(guest_read(stage, va, 8), "little")


def reached(stage, name: str) -> bool:
    b = getattr(stage, "state", None)
    return b is not None and name in b.passed


def how_far(stage) -> str:
    r = getattr(stage, "result", None)
    if r is None:
        return "the stage was not booted"
    return r.summary()
