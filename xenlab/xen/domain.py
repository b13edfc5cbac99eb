"""Domains and Xen's per-vCPU state.

A :class:`Domain` is what Xen keeps per guest: id, privilege, page counts, its
P2M as Xen assigned it, the shared_info frame, event channels, PIRQ bindings,
I/O permissions.  A :class:`Vcpu` is Xen's side of one virtual CPU: the
machine vCPU it runs on (``hw``: the CPU's state vector and MMU), whether the
guest is in kernel or user mode, its two page-table roots, the virtual IDT
(trap table), the callbacks, the *virtual* IOPL and I/O bitmap.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import abi


class HwVcpu:
    """A stand-in for a machine vCPU when no CPU is attached: the architectural
    state vector and an MMU over it (what Xen needs to walk guest memory)."""

    def __init__(self, memory, index: int = 0):
        from ..machine import regs as R
        from ..machine.mmu import Mmu
        self.index = index
        self.state = R.new_state()
        self.mmu = Mmu(memory, self.state)

    def __repr__(self):
        return f"<HwVcpu {self.index} (no CPU attached)>"


@dataclass
class TrapInfo:
    vector: int
    flags: int
    cs: int
    address: int

    @property
    def dpl(self) -> int:
        return self.flags & abi.TI_FLAG_DPL_MASK


class Vcpu:
    """Xen's ``struct vcpu`` for a 64-bit PV guest."""

    def __init__(self, domain: "Domain", vcpu_id: int, hw):
        self.domain = domain
        self.vcpu_id = vcpu_id
        self.hw = hw
        self.kernel_mode = True             # TF_kernel_mode
        self.guest_table = 0                # MFN of the kernel-mode L4 (0: none)
        self.guest_table_user = 0           # MFN of the user-mode L4
        self.trap_ctxt: dict[int, TrapInfo] = {}
        self.event_addr = 0
        self.failsafe_addr = 0
        self.syscall_addr = 0
        self.nmi_addr = 0
        self.syscall_disables_events = False
        self.kernel_ss = abi.FLAT_KERNEL_SS
        self.kernel_sp = 0
        self.iopl = 0                       # virtual IOPL (PHYSDEVOP_set_iopl)
        self.iobmp = 0                      # guest VA of the I/O bitmap
        self.iobmp_limit = 0                # ports it covers
        self.fs_base = 0
        self.gs_base_kernel = 0
        self.gs_base_user = 0
        self.ctrlreg0_ts = False            # the guest's virtual CR0.TS
        self.ctrlreg2 = 0
        self.up = vcpu_id == 0
        self.initialised = vcpu_id == 0
        self.blocked = False
        self.polling: list[int] | None = None
        self.virq_to_evtchn = np.zeros(abi.NR_VIRQS, dtype=np.int64)
        self.runstate = abi.RUNSTATE_running if self.up else abi.RUNSTATE_offline
        self.nmi_masked = False
        self.timer_deadline = 0             # ns of Xen system time; 0 = none
        self.periodic_period = 0
        self.trace: list[tuple] = []        # (what, detail) of recent traps, for views

    @property
    def state(self):
        return self.hw.state

    def reg(self, name: str) -> int:
        """A register of the guest by name (rax..r15, rip, rflags, cr3 ...), unsigned."""
        from ..machine import regs as R
        return int(self.hw.state[R.NAMES[name]]) & ((1 << 64) - 1)

    def set_reg(self, name: str, value: int):
        from ..machine import regs as R
        from ..machine.pte import s64
        self.hw.state[R.NAMES[name]] = s64(value)

    def __repr__(self):
        mode = "kernel" if self.kernel_mode else "user"
        return f"<Vcpu d{self.domain.domid}v{self.vcpu_id} {mode} iopl={self.iopl}>"


@dataclass
class Channel:
    """One event-channel port (Xen's ``struct evtchn``)."""
    state: int = abi.EVTCHNSTAT_closed
    notify_vcpu: int = 0
    remote_dom: int = 0          # unbound: who may bind; interdomain: the peer
    remote_port: int = 0
    pirq: int = 0
    virq: int = 0


class Domain:
    """Xen's ``struct domain`` for a PV guest."""

    def __init__(self, xen, domid: int, *, privileged: bool = False):
        self.xen = xen
        self.domid = domid
        self.privileged = privileged
        self.is_initdomain = domid == 0
        # The 32-bit PV privilege model (a compat guest of a 64-bit Xen): the
        # kernel runs in ring 1 with the FLAT_RING1 selectors, enters Xen with
        # int $0x82, and has one page table for kernel and user (no _PAGE_USER
        # rewriting).  The CPU model runs 64-bit code only, so such a guest's
        # code is 64-bit code run at that privilege: see docs/xen.md.
        self.pv32 = False
        self.hypercall_entries = {"syscall": 0, "int82": 0}
        self.tot_pages = 0
        self.max_pages = (1 << 32) - 1
        self.vcpus: list[Vcpu] = []
        self.shared_info_mfn = 0
        self.start_info_va = 0
        self.p2m = np.full(0, -1, dtype=np.int32)   # pfn -> mfn as Xen assigned it (MFNs < 2**28)
        self.channels: list[Channel] = [Channel(state=-1)]   # port 0 is reserved
        self.pirq_to_evtchn: dict[int, int] = {}
        self.pirq_mask: set[int] = set()             # PIRQs awaiting the guest's EOI
        self.iomem_deny: set[int] = set()            # MFNs this domain may not map
        self.iomem_all = privileged                  # iomem_access_permitted everywhere
        self.ioports = np.zeros(65536, dtype=np.bool_)   # admin I/O permission
        self.irq_caps = privileged
        self.vm_assist = 0
        self.shutdown_reason: int | None = None
        self.e820: list | None = None                # XENMEM_set_memory_map
        self.console_out: list[str] = []

    # -- P2M ------------------------------------------------------------------
    def set_p2m(self, pfn: int, mfn: int):
        if pfn >= len(self.p2m):
            grow = max(pfn + 1, 2 * len(self.p2m), 1024)
            new = np.full(grow, -1, dtype=np.int32)
            new[:len(self.p2m)] = self.p2m
            self.p2m = new
        self.p2m[pfn] = mfn

    def pfn_to_mfn(self, pfn: int) -> int:
        return int(self.p2m[pfn]) if 0 <= pfn < len(self.p2m) else -1

    # -- permissions ------------------------------------------------------------
    def iomem_permitted(self, mfn: int) -> bool:
        """iomem_access_permitted(d, mfn, mfn)."""
        return self.iomem_all and mfn not in self.iomem_deny

    def ioports_permitted(self, first: int, last: int) -> bool:
        """ioports_access_permitted(d, first, last)."""
        if first < 0 or last > 0xFFFF or last < first:
            return False
        return bool(self.ioports[first:last + 1].all())

    @property
    def kernel_cs(self) -> int:
        return abi.FLAT_RING1_CS if self.pv32 else abi.FLAT_KERNEL_CS

    @property
    def kernel_ss(self) -> int:
        return abi.FLAT_RING1_SS if self.pv32 else abi.FLAT_KERNEL_SS

    @property
    def kernel_rpl(self) -> int:
        """The ring the guest kernel runs in: 1 (32-bit PV) or 3 (64-bit PV)."""
        return 1 if self.pv32 else 3

    @property
    def vcpu0(self) -> Vcpu:
        return self.vcpus[0]

    def __repr__(self):
        return (f"<Domain {self.domid}{' (privileged)' if self.privileged else ''}: "
                f"{self.tot_pages} pages, {len(self.vcpus)} vcpu(s)>")
