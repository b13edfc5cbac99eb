"""Checks for the ``dom0_64`` stage: the same kernel as a 64-bit PV dom0 --
ring 3, Xen-rewritten PTEs, hypercalls by SYSCALL, a separate user page
table -- through multi-user."""

from __future__ import annotations

from ..machine import regs as R
from ..xen.abi import _PAGE_USER
from . import Finding, check, question
from ._model import boot_of, how_far, leaf_entry, reached, shipped_boot, shipped_dom0

LAB = "dom0_64"


@check(points=1, title="the 64-bit dom0 reaches multi-user", lab=LAB)
def dom0_64_reached(stage):
    ok = reached(stage, "dom0_64")
    return Finding(ok, "how far the boot went", "every stage passed by the 64-bit kernel",
                   how_far(stage), hint="Which kernel does the boot loader hand Xen?")


@check(points=1, title="the kernel runs in ring 3", lab=LAB)
def dom0_64_ring(stage):
    b = boot_of(stage)
    v = b.dom0.vcpus[0]
    cpl = int(v.hw.state[R.CPL])
    ok = not b.dom0.pv32 and cpl == 3 and v.kernel_mode
    return Finding(ok, "dom0 vCPU 0's CPL in kernel mode, and Xen's domain",
                   "CPL 3, a 64-bit PV domain", f"CPL {cpl}, {'32' if b.dom0.pv32 else '64'}-bit PV")


@check(points=1, title="Xen set U/S and _PAGE_GUEST_KERNEL in the kernel's PTEs", lab=LAB)
def dom0_64_ptes(stage):
    k = boot_of(stage).kernel
    entries = [leaf_entry(stage, va) for va, m in k.hat.maps.items() if m.kind == "kmem"]
    entries = [e for e in entries if e is not None]
    ok = bool(entries) and all(e & _PAGE_USER and e >> 52 & 1 for e in entries)
    return Finding(ok, "the kernel-memory PTEs as they are in the page tables",
                   "U/S (bit 2) and bit 52 (_PAGE_GUEST_KERNEL) on every one -- the kernel "
                   "wrote neither", f"{sum(1 for e in entries if e & _PAGE_USER)} of "
                   f"{len(entries)} with U/S, {sum(1 for e in entries if e >> 52 & 1)} with bit 52")


@check(points=1, title="hypercalls enter by SYSCALL, not int $0x82", lab=LAB)
def dom0_64_hypercalls(stage):
    e = boot_of(stage).dom0.hypercall_entries
    ok = e["syscall"] > 0 and e["int82"] == 0
    return Finding(ok, "how dom0's hypercalls entered Xen",
                   "through the SYSCALL in the hypercall page",
                   f"syscall {e['syscall']}, int $0x82 {e['int82']}")


@check(points=1, title="user processes run on their own page table", lab=LAB)
def dom0_64_user_table(stage):
    b = boot_of(stage)
    k = b.kernel
    kind, _ = k.user_io_probe(0x80)
    v = b.dom0.vcpus[0]
    ok = kind == "trap" and v.guest_table_user not in (0, v.guest_table)
    return Finding(ok, "the vCPU's user base pointer after a user process ran",
                   "MMUEXT_NEW_USER_BASEPTR set a root other than the kernel's",
                   f"kernel root {v.guest_table:#x}, user root {v.guest_table_user:#x}; "
                   f"the process's inb: {kind}")


# ---------------------------------------------------------------------------
# the lab's questions (labs/12_dom0_64.ipynb)
# ---------------------------------------------------------------------------

QLAB = "12_dom0_64"


def _vcpu0(boot):
    return boot_of(boot).dom0.vcpus[0]


def _cpuregs(boot) -> dict:
    """What kmdb's ``::cpuregs`` shows of dom0's boot vCPU (a read, no side effects)."""
    st = _vcpu0(boot).hw.state
    return {"cpl": int(st[R.CPL]), "cs": int(st[R.CS]) & 0xFFFF, "cr3": int(st[R.CR3])}


@question("dom0_64_cpl32", lab=QLAB, points=1, answer="ANSWER_CPL32",
          title="the ring the 32-bit dom0 kernel runs in",
          asks="the CPL of the 32-bit PV kernel",
          looked_at="dom0's boot vCPU in the 2007 (32-bit) boot of your variant",
          hint="::cpuregs prints cpl on its last line.")
def q_dom0_64_cpl32(stage):
    return _cpuregs(shipped_boot(stage))["cpl"]


@question("dom0_64_cs32", lab=QLAB, points=1, answer="ANSWER_CS32",
          title="the 32-bit kernel's code selector",
          asks="the %cs selector of the 32-bit PV kernel",
          looked_at="dom0's boot vCPU's CS in the 2007 (32-bit) boot of your variant",
          hint="::cpuregs shows %cs among the segment registers; it is one of Xen's FLAT_ "
               "selectors.")
def q_dom0_64_cs32(stage):
    return _cpuregs(shipped_boot(stage))["cs"]


@question("dom0_64_root", lab=QLAB, points=1, answer="ANSWER_ROOT",
          title="where the kernel's top-level page table lives",
          asks="the machine frame number of the 32-bit kernel's top-level page table",
          looked_at="%cr3 of dom0's boot vCPU in the 2007 (32-bit) boot of your variant",
          hint="%cr3 is a machine address: a frame number is the address >> 12.")
def q_dom0_64_root(stage):
    return _cpuregs(shipped_boot(stage))["cr3"] >> 12


@question("dom0_64_int82", lab=QLAB, points=1, answer="ANSWER_INT82",
          title="hypercalls by int $0x82",
          asks="how many of dom0's hypercalls entered Xen through int $0x82",
          looked_at="Xen's count of dom0's hypercall entries in the 2007 (32-bit) boot",
          hint="lab.dom0.hypercall_entries: Xen's view of the domain.")
def q_dom0_64_int82(stage):
    return int(shipped_dom0(stage).hypercall_entries["int82"])


@question("dom0_64_cs64", lab=QLAB, points=1, answer="ANSWER_CS64",
          title="the 64-bit kernel's code selector",
          asks="the %cs selector of the 64-bit PV kernel",
          looked_at="dom0's boot vCPU's CS in your variant booted with the 64-bit kernel",
          hint="::cpuregs after the fixed boot; its low two bits are the ring.")
def q_dom0_64_cs64(stage):
    return _cpuregs(shipped_boot(stage, fixed=True))["cs"]
