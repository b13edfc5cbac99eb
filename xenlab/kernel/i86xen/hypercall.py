"""HYPERVISOR_* wrappers: argument blocks in the kernel's memory, the call
through the hypercall page (x86-64 PV ABI), Xen's result (negative errno on
failure).  Numbers and structures come from ``xenlab.xen.abi`` (Xen's public
headers), the only part of the hypervisor package a guest may use."""

from __future__ import annotations

import numpy as np

from ...xen import abi

ARGS_SIZE = 2048        # lower half of hcall_args; the upper half holds console text


class Hypervisor:
    """The hypercalls one kernel CPU makes."""

    def __init__(self, kernel):
        self.k = kernel
        self.args = kernel.sym("hcall_args")
        self.log: list[tuple[int, str, int]] = []      # (cpu, hypercall, result)

    @property
    def kcpu(self):
        """The CPU the kernel is running on now: hypercalls act on that vCPU."""
        return self.k.kcpu

    def _put(self, rec, offset: int = 0) -> int:
        raw = rec.tobytes() if hasattr(rec, "tobytes") else bytes(rec)
        if offset + len(raw) > ARGS_SIZE:
            raise ValueError(f"hypercall argument of {len(raw)} bytes does not fit")
        va = self.args + offset
        self.kcpu.write(va, raw)
        return va

    def call(self, nr: int, *args) -> int:
        rc = self.kcpu.hypercall(nr, *args)
        self.log.append((self.kcpu.cpu_id, abi.HYPERCALL_NAMES.get(nr, str(nr)), rc))
        return rc

    # -- the calls the kernel makes --------------------------------------------
    def xen_version(self, cmd: int = abi.XENVER_version) -> int:
        return self.call(abi.HYPERVISOR_xen_version, cmd, 0)

    def console_write(self, buf_va: int, n: int) -> int:
        return self.call(abi.HYPERVISOR_console_io, abi.CONSOLEIO_write, n, buf_va)

    def console_read(self, buf_va: int, n: int) -> int:
        return self.call(abi.HYPERVISOR_console_io, abi.CONSOLEIO_read, n, buf_va)

    def set_trap_table(self, table_va: int) -> int:
        return self.call(abi.HYPERVISOR_set_trap_table, table_va)

    def set_callbacks(self, event: int, failsafe: int, syscall: int) -> int:
        return self.call(abi.HYPERVISOR_set_callbacks, event, failsafe, syscall)

    def stack_switch(self, ss: int, sp: int) -> int:
        return self.call(abi.HYPERVISOR_stack_switch, ss, sp)

    def update_va_mapping(self, va: int, pte: int, flags: int = abi.UVMF_INVLPG) -> int:
        return self.call(abi.HYPERVISOR_update_va_mapping, va, pte, flags)

    def mmuext_op(self, cmd: int, arg1: int = 0, arg2: int = 0) -> int:
        op = np.zeros((), dtype=abi.mmuext_op)
        op["cmd"] = cmd
        op["arg1"] = arg1
        op["arg2"] = arg2
        return self.call(abi.HYPERVISOR_mmuext_op, self._put(op), 1, 0, abi.DOMID_SELF)

    def physdev_op(self, cmd: int, rec) -> int:
        return self.call(abi.HYPERVISOR_physdev_op, cmd, self._put(rec))

    def vcpu_op(self, cmd: int, vcpu: int, rec=None, va: int | None = None) -> int:
        arg = va if va is not None else (self._put(rec) if rec is not None else 0)
        return self.call(abi.HYPERVISOR_vcpu_op, cmd, vcpu, arg)

    def sched_yield(self) -> int:
        return self.call(abi.HYPERVISOR_sched_op, abi.SCHEDOP_yield, 0)
