"""Running a PV vCPU on the machine's CPU: the loop between guest and Xen.

The CPU runs the guest in ring 3 until an exit (``Vcpu.run_native`` serves
MMIO to device frames the guest mapped); Xen then does what its entry code
does for that exit:

==========  =================================================================
syscall     a hypercall from the guest kernel (or a user syscall to bounce)
exception   every exception of the guest (all 32 vectors are intercepted):
            #GP may be an I/O or privileged instruction to emulate, #PF goes
            to the guest's handler with CR2 in vcpu_info, the rest bounce
irq         a hardware interrupt: acknowledge at the LAPIC, hand a
            guest-bound IRQ to its PIRQ event channel, EOI
budget      the instruction budget ran out
breakpoint  a debugger breakpoint: returned to the caller
shutdown    a triple fault in the guest: the domain crashes
==========  =================================================================

Before every resumption pending events are delivered (the upcall).
"""

from __future__ import annotations

from ..machine import regs as R
from . import abi, physdev, traps

NS_PER_INSTRUCTION = 1      # Xen system time advances 1 ns per guest instruction


def setup_hw(xen, v):
    """The machine state of a PV vCPU beyond registers: intercept every
    exception, SYSCALL exits to Xen, Xen's TSS (no I/O bitmap), Xen's GDT page
    with the flat selectors, an empty IDT (so INT n raises #GP(n*8+2))."""
    hw = v.hw
    if hasattr(hw, "intercept"):
        hw.intercept = set(range(32))
    if hasattr(hw, "syscall_exits"):
        hw.syscall_exits = True
    st = hw.state
    st[R.TR_BASE] = _s(abi.DIRECTMAP_VIRT_START + (xen.tss_mfn << 12))
    st[R.TR_LIMIT] = 0x67
    st[R.GDTR_BASE] = _s(gdt_va(v))
    st[R.GDTR_LIMIT] = (abi.FIRST_RESERVED_GDT_ENTRY + 512) * 8 - 1
    st[R.IDTR_BASE] = 0
    st[R.IDTR_LIMIT] = 0


def _s(x):
    from ..machine.pte import s64
    return s64(x)


def gdt_va(v) -> int:
    """GDT_VIRT_START(v): 64 KiB per vCPU in the per-domain area (slot 260)."""
    return abi.PERDOMAIN_VIRT_START + (v.vcpu_id << 16)


def run(xen, v, max_instructions: int = 10**7, stop_at: int | None = None):
    """Run ``v`` until its budget is spent, it blocks, its domain stops, or a
    breakpoint (``stop_at``, or the vCPU's own); returns the last CPU exit."""
    hw = v.hw
    if not hasattr(hw, "run_native"):
        raise RuntimeError("this vCPU has no CPU attached (HwVcpu stand-in); "
                           "build the Xen with a machine whose CPU is available")
    m = xen.machine
    left = int(max_instructions)
    last = None
    bps = None
    if stop_at is not None:
        import numpy as np
        from ..machine.pte import s64
        bps = np.append(getattr(hw, "_bps", np.zeros(0, np.int64)), np.int64(s64(stop_at)))
    _wake_on_interrupt(xen, v)
    traps.resume_guest(xen, v)
    while left > 0 and not v.blocked and v.domain.shutdown_reason is None:
        _irq_line(xen, v)
        ex = hw.run_native(left, bps) if bps is not None else hw.run_native(left)
        last = ex
        left -= int(ex.count or 0)
        xen.system_time_ns += int(ex.count or 0) * NS_PER_INSTRUCTION
        r = ex.reason
        if r == "syscall":
            traps.handle_syscall(xen, v)
        elif r == "exception":
            traps.handle_exception(xen, v, int(ex.vector), int(ex.error_code or 0),
                                   int(ex.cr2 or 0))
        elif r == "irq":
            do_interrupt(xen, v)
            traps.resume_guest(xen, v)
        elif r == "breakpoint":
            break
        elif r == "shutdown":
            traps.domain_crash(xen, v, "triple fault")
        elif r == "budget":
            break
        elif r == "hlt":
            traps.domain_crash(xen, v, "HLT executed in ring 0?")
        else:
            break
        _timers(xen, v)
        if v.blocked:
            _wake_on_interrupt(xen, v)
    return last


def _wake_on_interrupt(xen, v):
    """A blocked vCPU (SCHEDOP_block/poll) wakes when Xen takes a pending
    interrupt that becomes one of its events (or its timer has expired)."""
    if not v.blocked or v.domain.shutdown_reason is not None:
        return
    _timers(xen, v)
    router = getattr(xen.machine, "interrupts", None)
    cpu = getattr(v.hw, "index", 0)
    while v.blocked and router is not None and router.pending(cpu):
        do_interrupt(xen, v)


def _irq_line(xen, v):
    router = getattr(xen.machine, "interrupts", None)
    if router is not None and hasattr(v.hw, "irq_pending"):
        v.hw.irq_pending = router.pending(v.hw.index if hasattr(v.hw, "index") else 0)


def do_interrupt(xen, v):
    """An external interrupt reached the CPU running ``v``: Xen takes it."""
    router = getattr(xen.machine, "interrupts", None)
    cpu = getattr(v.hw, "index", 0)
    if router is None:
        v.hw.irq_pending = False
        return
    vector = router.acknowledge(cpu)
    if vector is not None:
        level = None
        physdev.do_irq(xen, int(vector))
        lapics = getattr(xen.machine, "lapics", None)
        if lapics:
            lapics[cpu].eoi()            # Xen EOIs at once; level lines stay masked
    v.hw.irq_pending = router.pending(cpu)


def _timers(xen, v):
    from .evtchn import send_guest_virq
    now = xen.system_time_ns
    if v.timer_deadline and now >= v.timer_deadline:
        v.timer_deadline = 0
        send_guest_virq(xen, v, abi.VIRQ_TIMER)
    if v.periodic_period:
        nxt = getattr(v, "_periodic_next", 0)
        if now >= nxt:
            v._periodic_next = now + v.periodic_period
            if nxt:
                send_guest_virq(xen, v, abi.VIRQ_TIMER)
