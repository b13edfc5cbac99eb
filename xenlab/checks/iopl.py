"""Checks for the ``iopl`` stage: every dom0 vCPU may do port I/O in kernel
mode, at virtual IOPL 1, and user processes still may not."""

from __future__ import annotations

from . import Finding, check
from ._model import boot_of, how_far, reached

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
