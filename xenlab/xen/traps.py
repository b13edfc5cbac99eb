"""How a 64-bit PV guest enters and leaves Xen: hypercalls by SYSCALL, traps
and interrupts bounced into the guest kernel, and the emulation of privileged
and I/O instructions.

- A guest **kernel** executes ``syscall`` in the hypercall page; Xen dispatches
  on RAX with arguments in RDI, RSI, RDX, R10, R8 and returns to RCX with the
  result in RAX (``syscall_enter`` in x86_64/entry.S).  A guest **user** process's
  ``syscall`` is bounced to the kernel's syscall callback.
- Every exception of the guest goes to Xen first.  A #GP with error code 0 may
  be a privileged or I/O instruction Xen emulates (``emulate_privileged_op``,
  traps.c); otherwise the exception is **bounced**: Xen builds an exception
  frame on the guest kernel's stack and resumes at the handler from the
  guest's trap table (``create_bounce_frame``).  With no handler, the domain
  crashes.
- Before resuming a guest, Xen delivers pending events: if
  ``evtchn_upcall_pending`` is set and ``evtchn_upcall_mask`` is clear it
  bounces to the event callback with events masked.

The I/O rule (``guest_io_okay``, Xen 3.1): a guest kernel may do port I/O if
its virtual IOPL is at least **1**, a guest user process if it is **3**;
otherwise the I/O bitmap registered with PHYSDEVOP_set_iobitmap decides.
Then Xen's own permission (``ioports_access_permitted``) decides whether the
access reaches the port or reads as all ones.
"""

from __future__ import annotations

from ..machine import regs as R
from ..machine.pte import PF_WR, s64
from . import abi
from .guest import GuestMemory
from .hypercall import register

_M64 = (1 << 64) - 1
TBF_EXCEPTION = 1
TBF_EXCEPTION_ERRCODE = 2
TBF_INTERRUPT = 8
TRAP_gp_fault = 13
TRAP_page_fault = 14
TRAP_int3 = 3
ERRCODE_VECTORS = frozenset({8, 10, 11, 12, 13, 14, 17})
HYPERCALL_ARGS = (R.RDI, R.RSI, R.RDX, R.R10, R.R8, R.R9)
MSR_EFER = 0xC0000080
MSR_FS_BASE = 0xC0000100
MSR_GS_BASE = 0xC0000101
MSR_SHADOW_GS_BASE = 0xC0000102
MSR_STATE = {0xC0000081: R.STAR, 0xC0000082: R.LSTAR, 0xC0000083: R.CSTAR,
             0xC0000084: R.SFMASK}


class DomainCrash(Exception):
    """A guest did something Xen answers by crashing the domain."""


# ---------------------------------------------------------------------------
# guest mode and bounce frames
# ---------------------------------------------------------------------------

def toggle_guest_mode(xen, v):
    """Switch between the guest kernel's and user's page tables and GS bases."""
    from .mmuops import load_cr3
    v.kernel_mode = not v.kernel_mode
    st = v.hw.state
    st[R.GS_BASE] = s64(v.gs_base_kernel if v.kernel_mode else v.gs_base_user)
    load_cr3(xen, v)


def domain_crash(xen, v, why: str):
    d = v.domain
    xen.printk(f"domain_crash_sync called from entry.S: {why}")
    xen.printk(f"Domain {d.domid} (vcpu#{v.vcpu_id}) crashed on cpu#0:")
    st = v.hw.state
    xen.printk(f"RIP:    {abi.FLAT_KERNEL_CS:04x}:[<{int(st[R.RIP]) & _M64:016x}>]")
    xen.printk(f"RSP:    {int(st[R.RSP]) & _M64:016x}   RFLAGS: {int(st[R.RFLAGS]) & _M64:016x}")
    if d.domid == 0:
        xen.printk("Domain 0 crashed: rebooting machine in 5 seconds.")
        xen.shutdown = (0, abi.SHUTDOWN_crash)
    d.shutdown_reason = abi.SHUTDOWN_crash
    d.crash_reason = why
    for t in d.vcpus:
        t.blocked = True


def create_bounce_frame(xen, v, eip: int, flags: int, error_code: int = 0):
    """Push an x86-64 PV exception frame on the guest kernel stack and resume
    at ``eip`` in kernel mode.  Frame, from the new RSP up: RCX, R11,
    [error code], RIP, CS (saved upcall mask in bits 32-39), RFLAGS (IF = the
    events were unmasked), RSP, SS."""
    st = v.hw.state
    d = v.domain
    saved_cs = int(st[R.CS]) & 0xFFFF
    saved_rsp = int(st[R.RSP]) & _M64
    saved_ss = int(st[R.SS]) & 0xFFFF
    if not v.kernel_mode:
        toggle_guest_mode(xen, v)
        rsp = v.kernel_sp
    else:
        rsp = saved_rsp
        saved_cs &= ~3                 # tells the guest: interrupted kernel context
    rsp &= ~0xF & _M64
    if abi.HYPERVISOR_VIRT_START <= rsp < abi.HYPERVISOR_VIRT_END + 60:
        raise DomainCrash(f"bounce frame at {rsp:#x} inside Xen's area")
    mask = xen.read_vcpu_info(d, v.vcpu_id, "evtchn_upcall_mask")
    if flags & TBF_INTERRUPT:
        xen.write_vcpu_info(d, v.vcpu_id, "evtchn_upcall_mask", 1)
    rflags = int(st[R.RFLAGS]) & _M64 & ~R.FLAG_IF
    if not mask:
        rflags |= R.FLAG_IF
    words = [int(st[R.RIP]) & _M64, saved_cs | (mask << 32), rflags, saved_rsp, saved_ss]
    if flags & TBF_EXCEPTION_ERRCODE:
        words = [error_code & 0xFFFFFFFF] + words
    words = [int(st[R.RCX]) & _M64, int(st[R.R11]) & _M64] + words
    rsp -= 8 * len(words)
    data = b"".join(w.to_bytes(8, "little") for w in words)
    if not GuestMemory(xen, v).write(rsp, data):
        raise DomainCrash(f"fault writing the bounce frame at {rsp:#x}")
    if eip == 0:
        raise DomainCrash("no handler (null trap bounce)")
    st[R.RFLAGS] = rflags & ~(R.FLAG_AC | R.FLAG_VM | R.FLAG_RF | R.FLAG_NT | R.FLAG_TF) \
        | R.FLAG_IF | R.FLAGS_FIXED
    st[R.SS] = abi.FLAT_KERNEL_SS
    st[R.RSP] = s64(rsp)
    st[R.CS] = abi.FLAT_KERNEL_CS
    st[R.RIP] = s64(eip)
    st[R.CPL] = 3


def do_guest_trap(xen, v, trapnr: int, error_code: int | None):
    """Bounce exception ``trapnr`` to the handler in the guest's trap table."""
    ti = v.trap_ctxt.get(trapnr)
    flags = TBF_EXCEPTION
    if error_code is not None:
        flags |= TBF_EXCEPTION_ERRCODE
    if ti is None or ti.address == 0:
        xen.printk(f"Unhandled {TRAP_NAMES.get(trapnr, 'exception')} fault/trap [#{trapnr}] "
                   f"in domain {v.domain.domid} on VCPU {v.vcpu_id} "
                   f"[ec={(error_code or 0):04x}]")
        raise DomainCrash(f"unhandled trap {trapnr}")
    if ti.flags & abi.TI_FLAG_IF:
        flags |= TBF_INTERRUPT
    v.trace.append(("trap", trapnr, error_code, int(v.hw.state[R.RIP]) & _M64))
    create_bounce_frame(xen, v, ti.address, flags, error_code or 0)


TRAP_NAMES = {0: "divide error", 1: "debug", 3: "int3", 4: "overflow", 5: "bounds",
              6: "invalid opcode", 7: "device not available", 8: "double fault",
              10: "invalid TSS", 11: "segment not present", 12: "stack error",
              13: "general protection", 14: "page fault", 16: "coprocessor error",
              17: "alignment check", 19: "simd error"}


def propagate_page_fault(xen, v, addr: int, error_code: int):
    """The guest's own #PF: its CR2 goes in vcpu_info.arch.cr2, then the bounce."""
    v.ctrlreg2 = addr & _M64
    xen.write_machine(xen.shared_info_addr(v.domain, "arch", v.vcpu_id),
                      (addr & _M64).to_bytes(8, "little"))
    do_guest_trap(xen, v, TRAP_page_fault, error_code)


def deliver_events(xen, v):
    """test_guest_events: make the upcall if one is due."""
    d = v.domain
    if d.shutdown_reason is not None:
        return
    if xen.read_vcpu_info(d, v.vcpu_id, "evtchn_upcall_mask"):
        return
    if not xen.read_vcpu_info(d, v.vcpu_id, "evtchn_upcall_pending"):
        return
    v.trace.append(("upcall", 0, None, int(v.hw.state[R.RIP]) & _M64))
    create_bounce_frame(xen, v, v.event_addr, TBF_INTERRUPT)


def resume_guest(xen, v):
    """Everything Xen does on the way back to a guest (events first)."""
    try:
        deliver_events(xen, v)
    except DomainCrash as e:
        domain_crash(xen, v, str(e))


# ---------------------------------------------------------------------------
# entries from the CPU
# ---------------------------------------------------------------------------

def handle_syscall(xen, v):
    """The guest executed SYSCALL (hardware left the return RIP in RCX and
    RFLAGS in R11)."""
    st = v.hw.state
    ret_rip, ret_flags = int(st[R.RCX]) & _M64, int(st[R.R11]) & _M64
    st[R.RIP] = s64(ret_rip)
    st[R.RFLAGS] = s64((ret_flags & ~(R.FLAG_IOPL | R.FLAG_NT | R.FLAG_VM))
                       | R.FLAG_IF | R.FLAGS_FIXED)
    try:
        if not v.kernel_mode:
            flags = TBF_INTERRUPT if v.syscall_disables_events else 0
            create_bounce_frame(xen, v, v.syscall_addr, flags)
        else:
            nr = int(st[R.RAX]) & _M64
            args = [int(st[r]) & _M64 for r in HYPERCALL_ARGS]
            v.regs_replaced = False
            rc = xen.hypercall(v, nr, *args[:5]) if nr < abi.NR_hypercalls \
                else -abi.ENOSYS
            st[R.RAX] = s64(rc)
            if xen.debug and not getattr(v, "regs_replaced", False):
                clobber_args(v, nr)
    except DomainCrash as e:
        domain_crash(xen, v, str(e))
        return
    resume_guest(xen, v)


DEBUG_CLOBBER = 0xDEADBEEFDEADF00D


def clobber_args(v, nr: int):
    """Debug builds deliberately corrupt the argument registers a hypercall
    used, so a guest that relies on them surviving breaks early (the value and
    rule of Xen's debug hypercall path)."""
    from .hypercall import TABLE
    entry = TABLE.get(nr)
    if entry is None:
        return
    for reg in HYPERCALL_ARGS[:entry[1]]:
        v.hw.state[reg] = s64(DEBUG_CLOBBER)


def handle_exception(xen, v, vector: int, error_code: int = 0, cr2: int = 0):
    """An exception of the guest reached Xen (RIP at the faulting instruction)."""
    try:
        if vector == TRAP_gp_fault:
            do_general_protection(xen, v, error_code)
        elif vector == TRAP_page_fault:
            propagate_page_fault(xen, v, cr2, error_code)
        elif vector in (TRAP_int3, 4):
            do_guest_trap(xen, v, vector, None)
        else:
            do_guest_trap(xen, v, vector, error_code if vector in ERRCODE_VECTORS else None)
    except DomainCrash as e:
        domain_crash(xen, v, str(e))
        return
    resume_guest(xen, v)


def do_general_protection(xen, v, error_code: int):
    st = v.hw.state
    if (error_code & 3) == 2:
        # INT n through a DPL-0 (or absent) IDT entry: the vector is in the code
        vector = error_code >> 3
        ti = v.trap_ctxt.get(vector)
        if ti is not None and ti.dpl >= (1 if v.kernel_mode else 3):
            st[R.RIP] = s64((int(st[R.RIP]) + 2) & _M64)
            do_guest_trap(xen, v, vector, None)
            return
    if error_code == 0:
        r = emulate_privileged_op(xen, v)
        if r == EMUL_DONE or r == EMUL_FAULTED:
            return
    do_guest_trap(xen, v, TRAP_gp_fault, error_code)


# ---------------------------------------------------------------------------
# emulate_privileged_op
# ---------------------------------------------------------------------------

EMUL_FAIL = 0        # not emulated: #GP goes to the guest
EMUL_DONE = 1        # emulated, RIP advanced
EMUL_FAULTED = 2     # emulation hit a guest #PF, already propagated


def guest_io_okay(xen, v, port: int, nbytes: int) -> bool:
    """X31 guest_io_okay: virtual IOPL (kernel needs >= 1, user 3), else the bitmap."""
    if v.iopl >= (1 if v.kernel_mode else 3):
        return True
    if v.iobmp_limit > port + nbytes:
        user = not v.kernel_mode
        if user:
            toggle_guest_mode(xen, v)         # the bitmap is a kernel address
        raw = GuestMemory(xen, v).read(v.iobmp + (port >> 3), 2)
        if raw is None:
            raw1 = GuestMemory(xen, v).read(v.iobmp + (port >> 3), 1)
            raw = (raw1 or b"\xff") + b"\xff"
        if user:
            toggle_guest_mode(xen, v)
        mask = int.from_bytes(raw, "little")
        if mask & (((1 << nbytes) - 1) << (port & 7)) == 0:
            return True
    return False


def admin_io_okay(xen, v, port: int, nbytes: int) -> bool:
    return v.domain.ioports_permitted(port, port + nbytes - 1)


def _port_in(xen, v, port, n) -> int:
    if admin_io_okay(xen, v, port, n):
        return int(xen.machine.ports.read(port, n)) & ((1 << (8 * n)) - 1)
    return (1 << (8 * n)) - 1


def _port_out(xen, v, port, n, value):
    if admin_io_okay(xen, v, port, n):
        xen.machine.ports.write(port, n, value & ((1 << (8 * n)) - 1))


def emulate_privileged_op(xen, v) -> int:
    st = v.hw.state
    g = GuestMemory(xen, v)
    rip = int(st[R.RIP]) & _M64
    code = g.read(rip, 15)
    if code is None:
        # fetch fault: read what we can
        code = b""
        for i in range(15):
            b = g.read(rip + i, 1)
            if b is None:
                break
            code += b
        if not code:
            propagate_page_fault(xen, v, rip, 0)
            return EMUL_FAULTED
    i = 0
    op_bytes, ad_bytes = 4, 8
    rep = lock = False
    rex = 0
    seg = None
    while i < len(code):
        b = code[i]
        if b == 0x66:
            op_bytes = 2
        elif b == 0x67:
            ad_bytes = 4
        elif b in (0x2E, 0x3E, 0x26, 0x36):
            seg = None
        elif b == 0x64:
            seg = "fs"
        elif b == 0x65:
            seg = "gs"
        elif b == 0xF0:
            lock = True
        elif b in (0xF2, 0xF3):
            rep = True
        elif 0x40 <= b <= 0x4F:
            rex = b
            i += 1
            break
        else:
            break
        i += 1
    if i >= len(code):
        return EMUL_FAIL
    if rex & 8:
        op_bytes = 4                      # no 64-bit I/O
    opcode = code[i]
    i += 1
    if opcode == 0x0F:
        return _twobyte(xen, v, code, i, rex, lock, rip)
    if lock:
        return EMUL_FAIL
    if 0x6C <= opcode <= 0x6F:
        return _string_io(xen, v, opcode, op_bytes, ad_bytes, rep, seg, rip + i)
    if opcode in (0xE4, 0xE5, 0xEC, 0xED, 0xE6, 0xE7, 0xEE, 0xEF):
        n = 1 if opcode & 1 == 0 else op_bytes
        if opcode in (0xE4, 0xE5, 0xE6, 0xE7):
            if i >= len(code):
                return EMUL_FAIL
            port = code[i]
            i += 1
        else:
            port = int(st[R.RDX]) & 0xFFFF
        if not guest_io_okay(xen, v, port, n):
            return EMUL_FAIL
        if opcode in (0xE4, 0xE5, 0xEC, 0xED):
            val = _port_in(xen, v, port, n)
            rax = int(st[R.RAX]) & _M64
            if n == 4:
                rax = val                 # 32-bit result zero-extends
            else:
                m = (1 << (8 * n)) - 1
                rax = (rax & ~m) | val
            st[R.RAX] = s64(rax)
        else:
            _port_out(xen, v, port, n, int(st[R.RAX]) & 0xFFFFFFFF)
        v.trace.append(("io", port, n, rip))
        st[R.RIP] = s64(rip + i)
        return EMUL_DONE
    if opcode in (0xFA, 0xFB):
        # CLI/STI: allowed with enough virtual IOPL, and then do nothing
        # (Xen 3.1 deliberately does not touch the event mask here).
        if v.iopl < (1 if v.kernel_mode else 3):
            return EMUL_FAIL
        st[R.RIP] = s64(rip + i)
        return EMUL_DONE
    return EMUL_FAIL


def _string_io(xen, v, opcode, op_bytes, ad_bytes, rep, seg, next_rip) -> int:
    st = v.hw.state
    g = GuestMemory(xen, v)
    n = 1 if opcode in (0x6C, 0x6E) else op_bytes
    amask = _M64 if ad_bytes == 8 else 0xFFFFFFFF
    port = int(st[R.RDX]) & 0xFFFF
    base = 0
    if opcode in (0x6E, 0x6F):                # OUTS reads DS:rSI (override allowed)
        if seg == "fs":
            base = v.fs_base
        elif seg == "gs":
            base = v.gs_base_kernel if v.kernel_mode else v.gs_base_user
    step = -n if int(st[R.RFLAGS]) & R.FLAG_DF else n
    if rep and (int(st[R.RCX]) & amask) == 0:
        st[R.RIP] = s64(next_rip)
        return EMUL_DONE
    while True:
        if not guest_io_okay(xen, v, port, n):
            return EMUL_FAIL
        if opcode in (0x6C, 0x6D):
            di = int(st[R.RDI]) & amask
            data = _port_in(xen, v, port, n)
            if not g.write(di, data.to_bytes(n, "little")):
                propagate_page_fault(xen, v, di, PF_WR)
                return EMUL_FAULTED
            st[R.RDI] = s64((int(st[R.RDI]) & ~amask) | ((di + step) & amask))
        else:
            si = int(st[R.RSI]) & amask
            raw = g.read((base + si) & _M64, n)
            if raw is None:
                propagate_page_fault(xen, v, (base + si) & _M64, 0)
                return EMUL_FAULTED
            _port_out(xen, v, port, n, int.from_bytes(raw, "little"))
            st[R.RSI] = s64((int(st[R.RSI]) & ~amask) | ((si + step) & amask))
        if not rep:
            break
        rcx = ((int(st[R.RCX]) & amask) - 1) & amask
        st[R.RCX] = s64((int(st[R.RCX]) & ~amask) | rcx)
        if rcx == 0:
            break
    v.trace.append(("io-string", port, n, int(st[R.RIP]) & _M64))
    st[R.RIP] = s64(next_rip)
    return EMUL_DONE


def _twobyte(xen, v, code, i, rex, lock, rip) -> int:
    """Privileged two-byte opcodes, from the guest kernel only."""
    st = v.hw.state
    if not v.kernel_mode or i >= len(code):
        return EMUL_FAIL
    op = code[i]
    i += 1
    if lock and (op & ~3) != 0x20:
        return EMUL_FAIL
    if op == 0x06:                            # CLTS
        v.ctrlreg0_ts = False
    elif op == 0x09:                          # WBINVD: ignored
        pass
    elif op in (0x20, 0x22):                  # MOV CRn <-> reg
        if i >= len(code):
            return EMUL_FAIL
        modrm = code[i]
        i += 1
        crn = ((modrm >> 3) & 7) + ((rex & 4) << 1) + (8 if lock else 0)
        reg = (modrm & 7) + ((rex & 1) << 3)
        real_cr4 = int(st[R.CR4]) & ~(R.CR4_PGE | R.CR4_PSE)
        if op == 0x20:
            if crn == 0:
                val = (int(st[R.CR0]) & ~R.CR0_TS) | (R.CR0_TS if v.ctrlreg0_ts else 0)
            elif crn == 2:
                val = v.ctrlreg2
            elif crn == 3:
                val = v.guest_table << 12
            elif crn == 4:
                val = real_cr4
            else:
                return EMUL_FAIL
            st[reg] = s64(val)
        else:
            val = int(st[reg]) & _M64
            if crn == 0:
                if (val ^ int(st[R.CR0])) & ~R.CR0_TS & 0xFFFFFFFF:
                    xen.printk("Attempt to change unmodifiable CR0 flags.") if xen.debug else None
                    return EMUL_FAIL
                v.ctrlreg0_ts = bool(val & R.CR0_TS)
            elif crn == 2:
                v.ctrlreg2 = val
                xen.write_machine(xen.shared_info_addr(v.domain, "arch", v.vcpu_id),
                                  val.to_bytes(8, "little"))
            elif crn == 3:
                from .mmuops import new_guest_cr3
                if not new_guest_cr3(xen, v, (val & abi.PADDR_MASK) >> 12):
                    return EMUL_FAIL
            elif crn == 4:
                if val != real_cr4:
                    xen.printk("Attempt to change CR4 flags.") if xen.debug else None
                    return EMUL_FAIL
            else:
                return EMUL_FAIL
    elif op == 0x30:                          # WRMSR
        msr = int(st[R.RCX]) & 0xFFFFFFFF
        val = ((int(st[R.RDX]) & 0xFFFFFFFF) << 32) | (int(st[R.RAX]) & 0xFFFFFFFF)
        from .hypercall import is_canonical
        if msr in (MSR_FS_BASE, MSR_GS_BASE, MSR_SHADOW_GS_BASE):
            if not is_canonical(val):
                return EMUL_FAIL
            if msr == MSR_FS_BASE:
                v.fs_base = val
                st[R.FS_BASE] = s64(val)
            elif msr == MSR_GS_BASE:
                v.gs_base_kernel = val
                st[R.GS_BASE] = s64(val)
            else:
                v.gs_base_user = val
        # any other MSR write is silently dropped
    elif op == 0x32:                          # RDMSR
        msr = int(st[R.RCX]) & 0xFFFFFFFF
        if msr == MSR_FS_BASE:
            val = v.fs_base
        elif msr == MSR_GS_BASE:
            val = v.gs_base_kernel
        elif msr == MSR_SHADOW_GS_BASE:
            val = v.gs_base_user
        elif msr == MSR_EFER:
            val = int(st[R.EFER]) & _M64
        elif msr in MSR_STATE:
            val = int(st[MSR_STATE[msr]]) & _M64
        else:
            return EMUL_FAIL                  # rdmsr_safe faulted: no such MSR here
        st[R.RAX] = val & 0xFFFFFFFF
        st[R.RDX] = (val >> 32) & 0xFFFFFFFF
    else:
        return EMUL_FAIL
    v.trace.append(("priv", op, None, rip))
    st[R.RIP] = s64(rip + i)
    return EMUL_DONE


# ---------------------------------------------------------------------------
# HYPERVISOR_iret
# ---------------------------------------------------------------------------

@register(abi.HYPERVISOR_iret, 0)
def do_iret(xen, v):
    """Return from an exception or upcall: the frame is at the guest's RSP
    (RAX, R11, RCX pushed by the hypercall page, then flags, RIP, CS, RFLAGS,
    RSP, SS)."""
    st = v.hw.state
    g = GuestMemory(xen, v)
    rec = g.read_struct(int(st[R.RSP]) & _M64, abi.iret_context)
    if rec is None:
        raise _CrashFromHypercall("Fault while reading IRET context from guest stack")
    if int(rec["cs"]) & 3 == 3:
        if v.guest_table_user == 0:
            raise _CrashFromHypercall("Guest switching to user mode with no user page tables")
        toggle_guest_mode(xen, v)
    st[R.RIP] = s64(int(rec["rip"]))
    st[R.CS] = (int(rec["cs"]) | 3) & 0xFFFF
    st[R.RFLAGS] = s64((int(rec["rflags"]) & ~(R.FLAG_IOPL | R.FLAG_VM)) | R.FLAG_IF
                       | R.FLAGS_FIXED)
    st[R.RSP] = s64(int(rec["rsp"]))
    st[R.SS] = (int(rec["ss"]) | 3) & 0xFFFF
    if not int(rec["flags"]) & abi.VGCF_in_syscall:
        st[R.R11] = s64(int(rec["r11"]))
        st[R.RCX] = s64(int(rec["rcx"]))
    v.nmi_masked = False
    xen.write_vcpu_info(v.domain, v.vcpu_id, "evtchn_upcall_mask",
                        0 if int(rec["rflags"]) & R.FLAG_IF else 1)
    v.regs_replaced = True
    return s64(int(rec["rax"]))


class _CrashFromHypercall(DomainCrash):
    pass
