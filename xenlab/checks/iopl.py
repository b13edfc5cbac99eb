"""Checks for the ``iopl`` stage: every dom0 vCPU may do port I/O in kernel
mode, at virtual IOPL 1, and user processes still may not."""

from __future__ import annotations

from . import Finding, check, question
from ._model import boot_of, how_far, native_reached, reached, shipped_boot

LAB = "iopl"


@check(points=1, title="every vCPU gets through its first port I/O", lab=LAB)
def iopl_reached(stage):
    ok = reached(stage, "iopl")
    return Finding(ok, "how far the boot went",
                   "pci_check's configuration cycles and every CPU's own port I/O done",
                   how_far(stage),
                   hint="Under Xen the kernel runs in ring 3 with IOPL 0: who decides whether "
                        "an OUT may happen?")


@check(points=2, title="Xen gives every dom0 vCPU virtual IOPL 1", lab=LAB, parent="iopl_reached")
def iopl_every_vcpu(stage):
    d = boot_of(stage).dom0
    iopls = [v.iopl for v in d.vcpus]
    return Finding(all(i == 1 for i in iopls), "each dom0 vCPU's virtual IOPL in Xen",
                   "1 on every vCPU (illumos asks for 1)",
                   ", ".join(f"vcpu{i}: {x}" for i, x in enumerate(iopls)),
                   hint="Xen keeps the IOPL per vCPU; and what does IOPL 3 allow?")


@check(points=2, title="dom0's user processes still cannot do port I/O", lab=LAB,
       parent="iopl_reached")
def iopl_user_refused(stage):
    k = boot_of(stage).kernel
    kind, what = k.user_io_probe(0x80)
    ok = kind == "trap" and what.vector == 13
    found = (f"#GP at {what.rip:#x} in user mode" if ok else
             "the IN completed in user mode" if kind == "syscall" else f"{kind}: {what}")
    return Finding(ok, "a user process executing 'inb %dx, %al' on port 0x80",
                   "#GP (a user process needs IOPL 3)", found,
                   hint="Xen's guest_io_okay: kernel mode needs IOPL >= 1, user mode 3.")


@check(points=1, title="the i86pc kernel still boots with your hook", lab=LAB,
       parent="iopl_reached")
def iopl_native(stage):
    return native_reached(stage, "iopl",
                          "the native boot through pci_check and mp_startup",
                          hint="On i86pc there is no hypervisor to ask, and a ring-0 kernel may do "
                               "port I/O anyway: look at cpu.platform.", hooks="hook")


# ---------------------------------------------------------------------------
# the lab's questions (labs/05_io_privilege.ipynb)
# ---------------------------------------------------------------------------

QLAB = "05_io_privilege"


def _gp(stage):
    k = boot_of(shipped_boot(stage)).kernel
    p = k.panicked
    if p is None or p.trap is None or p.trap.vector != 13:
        raise RuntimeError("the 2007 boot of this variant did not stop on a #GP")
    return p.trap


@question("iopl_port", lab=QLAB, points=1, answer="ANSWER_PORT",
          title="the port of the faulting OUT",
          asks="the I/O port the faulting instruction writes",
          looked_at="the faulting instruction and %rdx in the 2007 boot's trap frame",
          hint="<rip::dis shows 'outl %eax,%dx'; $r shows %rdx.")
def q_iopl_port(stage):
    return int(_gp(stage).regs["rdx"]) & 0xFFFF


@question("iopl_cpl", lab=QLAB, points=1, answer="ANSWER_CPL",
          title="the ring dom0's kernel runs in",
          asks="the current privilege level (CPL) of dom0's kernel code",
          looked_at="the CPL of dom0's boot vCPU in the 2007 boot (the CPU's state)",
          hint="::cpuregs prints cpl; a 64-bit PV kernel shares a ring with its processes.")
def q_iopl_cpl(stage):
    from ..machine import regs as R
    return int(boot_of(shipped_boot(stage)).kernel.cpus[0].vcpu.state[R.CPL])


@question("iopl_min", lab=QLAB, points=1, answer="ANSWER_MIN_IOPL",
          title="the virtual IOPL Xen wants for kernel port I/O",
          asks="the smallest virtual IOPL with which Xen emulates a dom0 kernel's IN/OUT",
          looked_at="Xen's guest_io_okay rule (xen/arch/x86/traps.c in Xen 3.1), asked for "
                    "IOPL 0 to 3 in guest kernel mode",
          hint="Xen compares the vCPU's virtual IOPL with what kernel mode needs; user mode "
               "needs 3.")
def q_iopl_min(stage):
    from types import SimpleNamespace

    from ..xen.traps import guest_io_okay
    b = boot_of(shipped_boot(stage))
    port = _gp(stage).regs["rdx"] & 0xFFFF
    for iopl in range(4):
        v = SimpleNamespace(iopl=iopl, kernel_mode=True, iobmp_limit=0, iobmp=0)
        if guest_io_okay(b.xen, v, port, 4):
            return iopl
    raise RuntimeError("no virtual IOPL lets the kernel do port I/O")
