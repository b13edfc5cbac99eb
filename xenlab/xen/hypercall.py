"""The hypercall table and the small hypercalls.

``do_hypercall(xen, vcpu, nr, args)`` is what Xen's ``syscall_enter`` path
does for a guest kernel: look the number up in the table, call the handler
with the argument registers (rdi, rsi, rdx, r10, r8 on x86-64), and put the
result in rax.  Handlers take the calling vCPU and integer arguments, read
their argument blocks through :class:`~xenlab.xen.guest.GuestMemory`, and
return 0, a count, or a negative Xen errno.  An :class:`~xenlab.xen.mm.MmError`
raised inside a handler becomes its errno; nothing else is caught, so a
Python exception from a handler is a bug in the model, never a guest's doing.
"""

from __future__ import annotations

from . import abi
from .guest import GuestMemory, addr_ok
from .mm import MmError

_M64 = (1 << 64) - 1

# nr -> (handler, argument count); filled in by register()
TABLE: dict[int, tuple] = {}
STATUS: dict[int, str] = {}


def register(nr: int, nargs: int, status: str = "implemented"):
    def deco(fn):
        TABLE[nr] = (fn, nargs)
        STATUS[nr] = status
        return fn
    return deco


def _signed(v: int) -> int:
    v &= _M64
    return v - (1 << 64) if v >> 63 else v


def do_hypercall(xen, v, nr: int, args: list[int]) -> int:
    args = [(int(a) & _M64) for a in args] + [0] * (6 - len(args))
    entry = TABLE.get(int(nr) & 0xFFFFFFFF)
    prev = xen.current
    xen.current = v
    xen.foreign = None
    try:
        if entry is None:
            rc = -abi.ENOSYS
        else:
            fn, nargs = entry
            try:
                rc = int(fn(xen, v, *args[:nargs]))
            except MmError as e:
                rc = -e.errno
            except _traps.DomainCrash as e:
                _traps.domain_crash(xen, v, str(e))
                rc = -abi.EFAULT          # the domain is dead; nobody reads this
    finally:
        xen.foreign = None
        xen.current = prev
        xen.flush_pending()
    xen.hypercall_log.append((v.domain.domid, v.vcpu_id, int(nr), rc))
    if len(xen.hypercall_log) > 10000:
        del xen.hypercall_log[:5000]
    if xen.check_hook is not None:
        xen.check_hook(xen)
    return rc


def guest(xen, v) -> GuestMemory:
    return GuestMemory(xen, v)


def set_foreigndom(xen, v, domid: int) -> bool:
    """The foreign domain of an MMU hypercall (mm.c set_foreigndom)."""
    d = v.domain
    domid &= 0xFFFF
    if domid == abi.DOMID_SELF:
        xen.foreign = None
        return True
    if domid == d.domid:
        xen.mm.mem_log(f"Dom {d.domid} tried to specify itself as foreign domain")
        return False
    if not d.privileged:
        if domid == abi.DOMID_IO:
            xen.foreign = xen.dom_io
            return True
        xen.mm.mem_log(f"Dom {d.domid} cannot set foreign dom")
        return False
    e = xen.domain(domid)
    if e is None:
        if domid == abi.DOMID_IO:
            e = xen.dom_io
        elif domid == abi.DOMID_XEN:
            e = xen.dom_xen
        else:
            xen.mm.mem_log(f"Unknown domain '{domid}'")
            return False
    xen.foreign = e
    return True


def foreigndom(xen, v):
    return xen.foreign if xen.foreign is not None else v.domain


# ---------------------------------------------------------------------------
# set_trap_table, stack_switch, set_callbacks, fpu_taskswitch, segment bases
# ---------------------------------------------------------------------------

def is_canonical(va: int) -> bool:
    va &= _M64
    return va < (1 << 47) or va >= _M64 - (1 << 47) + 1


@register(abi.HYPERVISOR_set_trap_table, 1)
def do_set_trap_table(xen, v, traps):
    """Install virtual IDT entries from an array ended by address 0."""
    from .domain import TrapInfo
    if traps == 0:
        v.trap_ctxt.clear()
        return 0
    g = guest(xen, v)
    for _ in range(257):
        rec = g.read_struct(traps, abi.trap_info)
        if rec is None:
            return -abi.EFAULT
        if int(rec["address"]) == 0:
            break
        if not is_canonical(int(rec["address"])):
            return -abi.EINVAL        # later Xen: no non-canonical entry points
        cs = int(rec["cs"])
        if cs & 3 == 0:               # fixup_guest_code_selector: never ring 0
            cs |= 3
        v.trap_ctxt[int(rec["vector"])] = TrapInfo(int(rec["vector"]), int(rec["flags"]),
                                                   cs, int(rec["address"]))
        traps += abi.trap_info.itemsize
    return 0


@register(abi.HYPERVISOR_stack_switch, 2)
def do_stack_switch(xen, v, ss, esp):
    v.kernel_ss = (ss & 0xFFFF) | 3
    v.kernel_sp = esp
    return 0


def register_callback(v, ctype: int, address: int, flags: int = 0) -> int:
    if not is_canonical(address):
        return -abi.EINVAL
    if ctype == abi.CALLBACKTYPE_event:
        v.event_addr = address
    elif ctype == abi.CALLBACKTYPE_failsafe:
        v.failsafe_addr = address
    elif ctype == abi.CALLBACKTYPE_syscall:
        v.syscall_addr = address
        v.syscall_disables_events = bool(flags & 1)
    elif ctype == abi.CALLBACKTYPE_nmi:
        v.nmi_addr = address
    else:
        return -abi.EINVAL
    return 0


@register(abi.HYPERVISOR_set_callbacks, 3)
def do_set_callbacks(xen, v, event_address, failsafe_address, syscall_address):
    for t, a in ((abi.CALLBACKTYPE_event, event_address),
                 (abi.CALLBACKTYPE_failsafe, failsafe_address),
                 (abi.CALLBACKTYPE_syscall, syscall_address)):
        rc = register_callback(v, t, a)
        if rc:
            return rc
    return 0


@register(abi.HYPERVISOR_callback_op, 2)
def do_callback_op(xen, v, cmd, arg):
    g = guest(xen, v)
    if cmd == abi.CALLBACKOP_register:
        rec = g.read_struct(arg, abi.callback_register)
        if rec is None:
            return -abi.EFAULT
        return register_callback(v, int(rec["type"]), int(rec["address"]), int(rec["flags"]))
    if cmd == abi.CALLBACKOP_unregister:
        rec = g.read_struct(arg, abi.callback_unregister)
        if rec is None:
            return -abi.EFAULT
        return -abi.EINVAL            # x86-64 Xen 3.1 refuses to unregister any
    return -abi.ENOSYS


@register(abi.HYPERVISOR_fpu_taskswitch, 1)
def do_fpu_taskswitch(xen, v, set_):
    v.ctrlreg0_ts = bool(set_ & 0xFFFFFFFF)
    return 0


@register(abi.HYPERVISOR_set_segment_base, 2)
def do_set_segment_base(xen, v, which, base):
    from ..machine import regs as R
    from ..machine.pte import s64
    which &= 0xFFFFFFFF
    if which == abi.SEGBASE_GS_USER_SEL:
        v.hw.state[R.GS] = base & 0xFFFF
        return 0
    if which not in (abi.SEGBASE_FS, abi.SEGBASE_GS_USER, abi.SEGBASE_GS_KERNEL):
        return -abi.EINVAL
    if not is_canonical(base):
        return -abi.EFAULT           # wrmsr_safe faults on a non-canonical base
    if which == abi.SEGBASE_FS:
        v.fs_base = base
        v.hw.state[R.FS_BASE] = s64(base)
    elif which == abi.SEGBASE_GS_USER:
        v.gs_base_user = base
        if not v.kernel_mode:
            v.hw.state[R.GS_BASE] = s64(base)
    else:
        v.gs_base_kernel = base
        if v.kernel_mode:
            v.hw.state[R.GS_BASE] = s64(base)
    return 0


@register(abi.HYPERVISOR_vm_assist, 2)
def do_vm_assist(xen, v, cmd, type_):
    if type_ > abi.MAX_VMASST_TYPE:
        return -abi.EINVAL
    if cmd == abi.VMASST_CMD_enable:
        v.domain.vm_assist |= 1 << type_
    elif cmd == abi.VMASST_CMD_disable:
        v.domain.vm_assist &= ~(1 << type_)
    else:
        return -abi.ENOSYS
    return 0


# ---------------------------------------------------------------------------
# xen_version
# ---------------------------------------------------------------------------

@register(abi.HYPERVISOR_xen_version, 2)
def do_xen_version(xen, v, cmd, arg):
    g = guest(xen, v)
    cmd &= 0xFFFFFFFF
    if cmd == abi.XENVER_version:
        return (abi.XEN_VERSION_MAJOR << 16) | abi.XEN_VERSION_MINOR
    if cmd == abi.XENVER_pagesize:
        return abi.PAGE_SIZE
    strings = {abi.XENVER_extraversion: (b".0" + (b"-debug" if xen.debug else b""), 16),
               abi.XENVER_capabilities: (b"xen-3.0-x86_64 ", 1024),
               abi.XENVER_changeset: (b"xenlab model of 3.1.0-branched", 64)}
    if cmd in strings:
        s, size = strings[cmd]
        return 0 if g.write(arg, s.ljust(size, b"\0")[:size]) else -abi.EFAULT
    if cmd == abi.XENVER_compile_info:
        blob = b"gcc".ljust(64, b"\0") + b"xenlab".ljust(16, b"\0") + \
            b"model".ljust(32, b"\0") + b"2007-05-08".ljust(32, b"\0")
        return 0 if g.write(arg, blob) else -abi.EFAULT
    if cmd == abi.XENVER_platform_parameters:
        return 0 if g.write_u64(arg, abi.HYPERVISOR_VIRT_START) else -abi.EFAULT
    if cmd == abi.XENVER_get_features:
        raw = g.read(arg, 8)
        if raw is None:
            return -abi.EFAULT
        submap = 0                    # no XENFEAT_* optional features are offered
        return 0 if g.write(arg + 4, submap.to_bytes(4, "little")) else -abi.EFAULT
    return -abi.ENOSYS


# ---------------------------------------------------------------------------
# console_io
# ---------------------------------------------------------------------------

@register(abi.HYPERVISOR_console_io, 3)
def do_console_io(xen, v, cmd, count, buffer):
    if v.domain.domid != 0:
        return -abi.EPERM             # only dom0 may use Xen's console (X31)
    g = guest(xen, v)
    cmd &= 0xFFFFFFFF
    count &= 0xFFFFFFFF
    if cmd == abi.CONSOLEIO_write:
        done = 0
        while done < count:
            n = min(128, count - done)   # guest_console_write copies in chunks of 128
            raw = g.read(buffer + done, n)
            if raw is None:
                return -abi.EFAULT
            xen.guest_console_write(v.domain, raw.decode("latin-1"))
            done += n
        return 0
    if cmd == abi.CONSOLEIO_read:
        n = min(count, len(xen.console_input))
        data = bytes(xen.console_input[:n])
        if n and not g.write(buffer, data):
            return -abi.EFAULT
        del xen.console_input[:n]
        return n
    return -abi.ENOSYS


# ---------------------------------------------------------------------------
# sched_op, sched_op_compat
# ---------------------------------------------------------------------------

def domain_shutdown(xen, d, reason: int):
    d.shutdown_reason = reason
    names = {0: "poweroff", 1: "reboot", 2: "suspend", 3: "crash"}
    if d.domid == 0:
        xen.printk(f"Domain 0 shutdown: {names.get(reason, reason)}")
        xen.shutdown = (0, reason)
    for vc in d.vcpus:
        vc.blocked = True


@register(abi.HYPERVISOR_sched_op, 2)
def do_sched_op(xen, v, cmd, arg):
    from .evtchn import local_events_need_delivery
    g = guest(xen, v)
    cmd &= 0xFFFFFFFF
    if cmd == abi.SCHEDOP_yield:
        return 0
    if cmd == abi.SCHEDOP_block:
        xen.write_vcpu_info(v.domain, v.vcpu_id, "evtchn_upcall_mask", 0)
        if not local_events_need_delivery(xen, v):
            v.blocked = True
            v.runstate = abi.RUNSTATE_blocked
        return 0
    if cmd == abi.SCHEDOP_shutdown:
        rec = g.read_struct(arg, abi.sched_shutdown)
        if rec is None:
            return -abi.EFAULT
        domain_shutdown(xen, v.domain, int(rec["reason"]))
        return 0
    if cmd == abi.SCHEDOP_poll:
        rec = g.read_struct(arg, abi.sched_poll)
        if rec is None:
            return -abi.EFAULT
        from .evtchn import do_poll
        return do_poll(xen, v, int(rec["ports"]), int(rec["nr_ports"]), int(rec["timeout"]))
    if cmd == abi.SCHEDOP_remote_shutdown:
        rec = g.read_struct(arg, abi.sched_remote_shutdown)
        if rec is None:
            return -abi.EFAULT
        if not v.domain.privileged:
            return -abi.EPERM
        d = xen.domain(int(rec["domain_id"]))
        if d is None:
            return -abi.ESRCH
        domain_shutdown(xen, d, int(rec["reason"]))
        return 0
    return -abi.ENOSYS


@register(abi.HYPERVISOR_sched_op_compat, 2)
def do_sched_op_compat(xen, v, cmd, arg):
    """The old form: SCHEDOP_shutdown takes the reason itself, not a pointer."""
    if (cmd & 0xFFFFFFFF) == abi.SCHEDOP_shutdown:
        domain_shutdown(xen, v.domain, arg & 0xFFFFFFFF)
        return 0
    if (cmd & 0xFFFFFFFF) in (abi.SCHEDOP_yield, abi.SCHEDOP_block):
        return do_sched_op(xen, v, cmd, arg)
    return -abi.ENOSYS


# ---------------------------------------------------------------------------
# vcpu_op (the basics)
# ---------------------------------------------------------------------------

@register(abi.HYPERVISOR_vcpu_op, 3)
def do_vcpu_op(xen, v, cmd, vcpuid, arg):
    d = v.domain
    vcpuid &= 0xFFFFFFFF
    if vcpuid >= len(d.vcpus):
        return -abi.EINVAL if vcpuid >= abi.MAX_VIRT_CPUS else -abi.ENOENT
    t = d.vcpus[vcpuid]
    g = guest(xen, v)
    cmd &= 0xFFFFFFFF
    if cmd == abi.VCPUOP_is_up:
        return int(t.up)
    if cmd == abi.VCPUOP_up:
        if not t.initialised:
            return -abi.EINVAL
        t.up = True
        t.runstate = abi.RUNSTATE_runnable
        return 0
    if cmd == abi.VCPUOP_down:
        t.up = False
        t.runstate = abi.RUNSTATE_offline
        return 0
    if cmd == abi.VCPUOP_initialise:
        ctx = g.read_struct(arg, abi.vcpu_guest_context)
        if ctx is None:
            return -abi.EFAULT
        if t.initialised:
            return -abi.EEXIST
        return boot_vcpu(xen, t, ctx)
    if cmd == abi.VCPUOP_get_runstate_info:
        import numpy as np
        rec = np.zeros((), dtype=abi.vcpu_runstate_info)
        rec["state"] = t.runstate
        rec["state_entry_time"] = xen.system_time_ns
        return 0 if g.write_struct(arg, rec) else -abi.EFAULT
    if cmd in (abi.VCPUOP_set_periodic_timer, abi.VCPUOP_stop_periodic_timer,
               abi.VCPUOP_set_singleshot_timer, abi.VCPUOP_stop_singleshot_timer):
        if cmd == abi.VCPUOP_set_periodic_timer:
            raw = g.read(arg, 8)
            if raw is None:
                return -abi.EFAULT
            period = int.from_bytes(raw, "little")
            if period < 1_000_000:        # MILLISECS(1)
                return -abi.EINVAL
            t.periodic_period = period
        elif cmd == abi.VCPUOP_stop_periodic_timer:
            t.periodic_period = 0
        elif cmd == abi.VCPUOP_set_singleshot_timer:
            raw = g.read(arg, 16)
            if raw is None:
                return -abi.EFAULT
            t.timer_deadline = int.from_bytes(raw[:8], "little")
        else:
            t.timer_deadline = 0
        return 0
    return -abi.ENOSYS


def boot_vcpu(xen, t, ctx) -> int:
    """arch_set_info_guest for a 64-bit PV vCPU: registers, virtual IDT,
    callbacks, kernel stack, segment bases, and the two page-table roots
    (ctrlreg[3] the kernel's, ctrlreg[1] the user's, as MFN << 12)."""
    from ..machine import regs as R
    from ..machine.pte import s64
    from .domain import TrapInfo
    from .mmuops import load_cr3
    mm = xen.mm
    for addr in (int(ctx["event_callback_eip"]), int(ctx["failsafe_callback_eip"]),
                 int(ctx["syscall_callback_eip"]), int(ctx["user_regs"]["rip"])):
        if not is_canonical(addr):
            return -abi.EINVAL
    kmfn = (int(ctx["ctrlreg"][3]) & abi.PADDR_MASK) >> 12
    umfn = (int(ctx["ctrlreg"][1]) & abi.PADDR_MASK) >> 12
    if not mm.get_page_and_type(kmfn, t.domain, abi.PGT_root_page_table):
        return -abi.EINVAL
    if umfn and not mm.get_page_and_type(umfn, t.domain, abi.PGT_root_page_table):
        mm.put_page_and_type(kmfn)
        return -abi.EINVAL
    t.guest_table, t.guest_table_user = kmfn, umfn
    t.kernel_mode = bool(int(ctx["flags"]) & abi.VGCF_in_kernel) or not umfn
    st = t.hw.state
    regs = ctx["user_regs"]
    for name in ("r15", "r14", "r13", "r12", "rbp", "rbx", "r11", "r10", "r9", "r8", "rax",
                 "rcx", "rdx", "rsi", "rdi", "rsp"):
        st[R.NAMES[name]] = s64(int(regs[name]))
    st[R.RIP] = s64(int(regs["rip"]))
    st[R.RFLAGS] = (int(regs["rflags"]) & ~(R.FLAG_IOPL | R.FLAG_VM)) | R.FLAG_IF | \
        R.FLAGS_FIXED
    st[R.CS] = int(regs["cs"]) | 3
    st[R.SS] = int(regs["ss"]) | 3
    t.trap_ctxt = {i: TrapInfo(i, int(e["flags"]), int(e["cs"]) | 3, int(e["address"]))
                   for i, e in enumerate(ctx["trap_ctxt"]) if int(e["address"])}
    t.kernel_ss, t.kernel_sp = int(ctx["kernel_ss"]) | 3, int(ctx["kernel_sp"])
    t.event_addr = int(ctx["event_callback_eip"])
    t.failsafe_addr = int(ctx["failsafe_callback_eip"])
    t.syscall_addr = int(ctx["syscall_callback_eip"])
    t.syscall_disables_events = bool(int(ctx["flags"]) & abi.VGCF_syscall_disables_events)
    t.fs_base, t.gs_base_kernel = int(ctx["fs_base"]), int(ctx["gs_base_kernel"])
    t.gs_base_user = int(ctx["gs_base_user"])
    st[R.FS_BASE] = s64(t.fs_base)
    st[R.GS_BASE] = s64(t.gs_base_kernel if t.kernel_mode else t.gs_base_user)
    load_cr3(xen, t)
    t.initialised = True
    xen.update_vcpu_time(t)
    return 0


@register(abi.HYPERVISOR_set_timer_op, 1)
def do_set_timer_op(xen, v, timeout):
    v.timer_deadline = timeout
    return 0


# Register the other modules' handlers.
from . import evtchn as _evtchn    # noqa: E402,F401
from . import memory_op as _memory_op    # noqa: E402,F401
from . import mmuops as _mmuops    # noqa: E402,F401
from . import physdev as _physdev    # noqa: E402,F401
from . import traps as _traps    # noqa: E402,F401


@register(abi.HYPERVISOR_multicall, 2)
def do_multicall(xen, v, call_list, nr_calls):
    """Run several hypercalls; each entry's result field gets its return value."""
    import numpy as np
    g = guest(xen, v)
    for i in range(nr_calls & 0xFFFFFFFF):
        va = call_list + 64 * i
        ent = g.read_struct(va, abi.multicall_entry)
        if ent is None:
            return -abi.EFAULT
        op = int(ent["op"])
        if op == abi.HYPERVISOR_multicall or op == abi.HYPERVISOR_iret:
            rc = -abi.EINVAL              # no nesting, no iret inside a batch
        else:
            entry = TABLE.get(op)
            if entry is None:
                rc = -abi.ENOSYS
            else:
                fn, nargs = entry
                try:
                    rc = int(fn(xen, v, *[int(a) for a in ent["args"][:nargs]]))
                except MmError as e:
                    rc = -e.errno
        if not g.write_u64(va + 8, rc & _M64):
            return -abi.EFAULT
    return 0
