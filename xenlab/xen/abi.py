"""Xen's paravirtual x86-64 ABI: hypercall numbers, commands, flags and structures.

Every number here is a fact read from Xen's public headers as of Xen 3.1
(tag ``3.1.0-branched``, May 2007), collected with their header names in
``shared/reference/xen-pv-abi.md``.  Names are the headers' names without
leading underscores (``__HYPERVISOR_mmu_update`` -> ``HYPERVISOR_mmu_update``).

Structures are numpy structured dtypes with the x86-64 offsets and sizes, so a
hypercall handler reads a guest's argument block with
``np.frombuffer(raw, dtype=abi.mmu_update)``; ``tests/xen/test_abi.py`` checks
every offset against the reference document and against gcc.
"""

from __future__ import annotations

import numpy as np

# ---------------------------------------------------------------------------
# Hypercall numbers -- xen/include/public/xen.h (X31)
# ---------------------------------------------------------------------------
HYPERVISOR_set_trap_table = 0
HYPERVISOR_mmu_update = 1
HYPERVISOR_set_gdt = 2
HYPERVISOR_stack_switch = 3
HYPERVISOR_set_callbacks = 4
HYPERVISOR_fpu_taskswitch = 5
HYPERVISOR_sched_op_compat = 6
HYPERVISOR_platform_op = 7          # dom0_op before interface 0x00030204
HYPERVISOR_set_debugreg = 8
HYPERVISOR_get_debugreg = 9
HYPERVISOR_update_descriptor = 10
HYPERVISOR_memory_op = 12
HYPERVISOR_multicall = 13
HYPERVISOR_update_va_mapping = 14
HYPERVISOR_set_timer_op = 15
HYPERVISOR_event_channel_op_compat = 16
HYPERVISOR_xen_version = 17
HYPERVISOR_console_io = 18
HYPERVISOR_physdev_op_compat = 19
HYPERVISOR_grant_table_op = 20
HYPERVISOR_vm_assist = 21
HYPERVISOR_update_va_mapping_otherdomain = 22
HYPERVISOR_iret = 23
HYPERVISOR_vcpu_op = 24
HYPERVISOR_set_segment_base = 25
HYPERVISOR_mmuext_op = 26
HYPERVISOR_acm_op = 27
HYPERVISOR_nmi_op = 28
HYPERVISOR_sched_op = 29
HYPERVISOR_callback_op = 30
HYPERVISOR_xenoprof_op = 31
HYPERVISOR_event_channel_op = 32
HYPERVISOR_physdev_op = 33
HYPERVISOR_hvm_op = 34
HYPERVISOR_sysctl = 35
HYPERVISOR_domctl = 36
HYPERVISOR_kexec_op = 37
NR_hypercalls = 64                  # xen/include/asm-x86/config.h: table size

HYPERCALL_NAMES = {v: k[len("HYPERVISOR_"):] for k, v in dict(globals()).items()
                   if k.startswith("HYPERVISOR_")}

# ---------------------------------------------------------------------------
# mmu_update / mmuext_op / update_va_mapping -- xen/include/public/xen.h
# ---------------------------------------------------------------------------
MMU_NORMAL_PT_UPDATE = 0
MMU_MACHPHYS_UPDATE = 1

MMUEXT_PIN_L1_TABLE = 0
MMUEXT_PIN_L2_TABLE = 1
MMUEXT_PIN_L3_TABLE = 2
MMUEXT_PIN_L4_TABLE = 3
MMUEXT_UNPIN_TABLE = 4
MMUEXT_NEW_BASEPTR = 5
MMUEXT_TLB_FLUSH_LOCAL = 6
MMUEXT_INVLPG_LOCAL = 7
MMUEXT_TLB_FLUSH_MULTI = 8
MMUEXT_INVLPG_MULTI = 9
MMUEXT_TLB_FLUSH_ALL = 10
MMUEXT_INVLPG_ALL = 11
MMUEXT_FLUSH_CACHE = 12
MMUEXT_SET_LDT = 13
MMUEXT_NEW_USER_BASEPTR = 15

UVMF_NONE = 0
UVMF_TLB_FLUSH = 1
UVMF_INVLPG = 2
UVMF_FLUSHTYPE_MASK = 3
UVMF_MULTI = 0
UVMF_LOCAL = 0
UVMF_ALL = 4

VMASST_CMD_enable = 0
VMASST_CMD_disable = 1
VMASST_TYPE_4gb_segments = 0
VMASST_TYPE_4gb_segments_notify = 1
VMASST_TYPE_writable_pagetables = 2
VMASST_TYPE_pae_extended_cr3 = 3
MAX_VMASST_TYPE = 3

CONSOLEIO_write = 0
CONSOLEIO_read = 1

# ---------------------------------------------------------------------------
# Domain ids -- xen/include/public/xen.h (domid_t is uint16)
# ---------------------------------------------------------------------------
DOMID_FIRST_RESERVED = 0x7FF0
DOMID_SELF = 0x7FF0
DOMID_IO = 0x7FF1
DOMID_XEN = 0x7FF2

# ---------------------------------------------------------------------------
# start_info flags -- xen/include/public/xen.h
# ---------------------------------------------------------------------------
SIF_PRIVILEGED = 1 << 0
SIF_INITDOMAIN = 1 << 1
MAX_GUEST_CMDLINE = 1024

# ---------------------------------------------------------------------------
# physdev_op -- xen/include/public/physdev.h (X31)
# ---------------------------------------------------------------------------
PHYSDEVOP_IRQ_UNMASK_NOTIFY = 4
PHYSDEVOP_irq_status_query = 5
PHYSDEVOP_set_iopl = 6
PHYSDEVOP_set_iobitmap = 7
PHYSDEVOP_apic_read = 8
PHYSDEVOP_apic_write = 9
PHYSDEVOP_alloc_irq_vector = 10
PHYSDEVOP_free_irq_vector = 11
PHYSDEVOP_eoi = 12
# The all-capitals aliases of the same header.
PHYSDEVOP_IRQ_STATUS_QUERY = PHYSDEVOP_irq_status_query
PHYSDEVOP_SET_IOPL = PHYSDEVOP_set_iopl
PHYSDEVOP_SET_IOBITMAP = PHYSDEVOP_set_iobitmap
PHYSDEVOP_APIC_READ = PHYSDEVOP_apic_read
PHYSDEVOP_APIC_WRITE = PHYSDEVOP_apic_write
PHYSDEVOP_ASSIGN_VECTOR = PHYSDEVOP_alloc_irq_vector
PHYSDEVOP_FREE_VECTOR = PHYSDEVOP_free_irq_vector
XENIRQSTAT_needs_eoi = 1 << 0
XENIRQSTAT_shared = 1 << 1
PHYSDEVOP_IRQ_NEEDS_UNMASK_NOTIFY = XENIRQSTAT_needs_eoi
PHYSDEVOP_IRQ_SHARED = XENIRQSTAT_shared

# ---------------------------------------------------------------------------
# Event channels -- xen/include/public/event_channel.h, VIRQs from xen.h
# ---------------------------------------------------------------------------
EVTCHNOP_bind_interdomain = 0
EVTCHNOP_bind_virq = 1
EVTCHNOP_bind_pirq = 2
EVTCHNOP_close = 3
EVTCHNOP_send = 4
EVTCHNOP_status = 5
EVTCHNOP_alloc_unbound = 6
EVTCHNOP_bind_ipi = 7
EVTCHNOP_bind_vcpu = 8
EVTCHNOP_unmask = 9
EVTCHNOP_reset = 10
BIND_PIRQ__WILL_SHARE = 1

EVTCHNSTAT_closed = 0
EVTCHNSTAT_unbound = 1
EVTCHNSTAT_interdomain = 2
EVTCHNSTAT_pirq = 3
EVTCHNSTAT_virq = 4
EVTCHNSTAT_ipi = 5

NR_EVENT_CHANNELS = 8 * 8 * 64      # sizeof(long)**2 * 64 on x86-64 = 4096

VIRQ_TIMER = 0
VIRQ_DEBUG = 1
VIRQ_CONSOLE = 2
VIRQ_DOM_EXC = 3
VIRQ_TBUF = 4
VIRQ_DEBUGGER = 6
VIRQ_XENOPROF = 7
VIRQ_CON_RING = 8
VIRQ_ARCH_0 = 16
NR_VIRQS = 24
GLOBAL_VIRQS = frozenset({VIRQ_CONSOLE, VIRQ_DOM_EXC, VIRQ_TBUF, VIRQ_DEBUGGER,
                          VIRQ_CON_RING})

# ---------------------------------------------------------------------------
# Memory ops -- xen/include/public/memory.h (X31)
# ---------------------------------------------------------------------------
XENMEM_increase_reservation = 0
XENMEM_decrease_reservation = 1
XENMEM_maximum_ram_page = 2
XENMEM_current_reservation = 3
XENMEM_maximum_reservation = 4
XENMEM_machphys_mfn_list = 5
XENMEM_populate_physmap = 6
XENMEM_add_to_physmap = 7
XENMEM_translate_gpfn_list = 8
XENMEM_memory_map = 9
XENMEM_machine_memory_map = 10
XENMEM_exchange = 11
XENMEM_machphys_mapping = 12
XENMEM_set_memory_map = 13
XENMEM_maximum_gpfn = 14
XENMAPSPACE_shared_info = 0
XENMAPSPACE_grant_table = 1
START_EXTENT_SHIFT = 4              # xen/common/memory.c: cmd bits above the op

# ---------------------------------------------------------------------------
# Scheduler, shutdown -- xen/include/public/sched.h; vcpu ops -- vcpu.h
# ---------------------------------------------------------------------------
SCHEDOP_yield = 0
SCHEDOP_block = 1
SCHEDOP_shutdown = 2
SCHEDOP_poll = 3
SCHEDOP_remote_shutdown = 4
SHUTDOWN_poweroff = 0
SHUTDOWN_reboot = 1
SHUTDOWN_suspend = 2
SHUTDOWN_crash = 3

VCPUOP_initialise = 0
VCPUOP_up = 1
VCPUOP_down = 2
VCPUOP_is_up = 3
VCPUOP_get_runstate_info = 4
VCPUOP_register_runstate_memory_area = 5
VCPUOP_set_periodic_timer = 6
VCPUOP_stop_periodic_timer = 7
VCPUOP_set_singleshot_timer = 8
VCPUOP_stop_singleshot_timer = 9
VCPUOP_register_vcpu_info = 10
RUNSTATE_running = 0
RUNSTATE_runnable = 1
RUNSTATE_blocked = 2
RUNSTATE_offline = 3

# ---------------------------------------------------------------------------
# xen_version -- xen/include/public/version.h
# ---------------------------------------------------------------------------
XENVER_version = 0
XENVER_extraversion = 1
XENVER_compile_info = 2
XENVER_capabilities = 3
XENVER_changeset = 4
XENVER_platform_parameters = 5
XENVER_get_features = 6
XENVER_pagesize = 7
XEN_VERSION_MAJOR = 3
XEN_VERSION_MINOR = 1

# ---------------------------------------------------------------------------
# Callbacks -- xen/include/public/callback.h; segment bases -- xen-x86_64.h
# ---------------------------------------------------------------------------
CALLBACKTYPE_event = 0
CALLBACKTYPE_failsafe = 1
CALLBACKTYPE_syscall = 2
CALLBACKTYPE_sysenter = 3
CALLBACKTYPE_nmi = 4
CALLBACKOP_register = 0
CALLBACKOP_unregister = 1

SEGBASE_FS = 0
SEGBASE_GS_USER = 1
SEGBASE_GS_KERNEL = 2
SEGBASE_GS_USER_SEL = 3

VGCF_in_syscall = 1 << 8            # xen-x86_64.h: iret frame flag
TI_FLAG_DPL_MASK = 3                # arch-x86/xen.h trap_info.flags bits 0-1
TI_FLAG_IF = 1 << 2                 # bit 2: clear the event mask on entry

# ---------------------------------------------------------------------------
# x86-64 PV layout and selectors -- arch-x86/xen-x86_64.h, asm-x86/config.h
# ---------------------------------------------------------------------------
HYPERVISOR_VIRT_START = 0xFFFF800000000000
HYPERVISOR_VIRT_END = 0xFFFF880000000000
MACH2PHYS_VIRT_START = 0xFFFF800000000000
MACH2PHYS_VIRT_END = 0xFFFF804000000000
ROOT_PAGETABLE_FIRST_XEN_SLOT = 256
ROOT_PAGETABLE_LAST_XEN_SLOT = 271
L4_SLOT_RO_MPT = 256                # config.h layout comment
L4_SLOT_LINEAR_PT = 258
L4_SLOT_PERDOMAIN = 260
L4_SLOT_DIRECTMAP = 262
PERDOMAIN_VIRT_START = 0xFFFF820000000000   # slot 260
DIRECTMAP_VIRT_START = 0xFFFF830000000000   # slot 262

FLAT_RING3_CS32 = 0xE023
FLAT_RING3_CS64 = 0xE033
FLAT_RING3_DS32 = 0xE02B
FLAT_RING3_DS64 = 0x0000
FLAT_RING3_SS32 = 0xE02B
FLAT_RING3_SS64 = 0xE02B
FLAT_KERNEL_CS64 = FLAT_RING3_CS64
FLAT_KERNEL_DS64 = FLAT_RING3_DS64
FLAT_KERNEL_SS64 = FLAT_RING3_SS64
FLAT_KERNEL_CS = FLAT_KERNEL_CS64
FLAT_KERNEL_DS = FLAT_KERNEL_DS64
FLAT_KERNEL_SS = FLAT_KERNEL_SS64
FLAT_USER_CS = FLAT_RING3_CS64
FLAT_USER_SS = FLAT_RING3_SS64
FIRST_RESERVED_GDT_PAGE = 14
FIRST_RESERVED_GDT_ENTRY = FIRST_RESERVED_GDT_PAGE * 512
MAX_VIRT_CPUS = 32

INVALID_M2P_ENTRY = -1              # asm-x86/mm.h: ~0UL (int64 -1 here)

# ---------------------------------------------------------------------------
# Frame-table type and count words -- xen/include/asm-x86/mm.h (X31, internal)
# ---------------------------------------------------------------------------
PGT_none = 0 << 29
PGT_l1_page_table = 1 << 29
PGT_l2_page_table = 2 << 29
PGT_l3_page_table = 3 << 29
PGT_l4_page_table = 4 << 29
PGT_gdt_page = 5 << 29
PGT_ldt_page = 6 << 29
PGT_writable_page = 7 << 29
PGT_type_mask = 7 << 29
PGT_pinned = 1 << 28
PGT_validated = 1 << 27
PGT_pae_xen_l2 = 1 << 26
PGT_count_mask = (1 << 16) - 1
PGT_root_page_table = PGT_l4_page_table

PGC_allocated = 1 << 31
PGC_out_of_sync = 1 << 30
PGC_page_table = 1 << 29
PGC_count_mask = (1 << 29) - 1

PGT_NAMES = {PGT_none: "none", PGT_l1_page_table: "L1", PGT_l2_page_table: "L2",
             PGT_l3_page_table: "L3", PGT_l4_page_table: "L4", PGT_gdt_page: "gdt",
             PGT_ldt_page: "ldt", PGT_writable_page: "writable"}

# ---------------------------------------------------------------------------
# PTE flag words and disallow masks -- asm-x86/page.h, asm-x86/x86_64/page.h
# Xen works on a 24-bit flag word: bits 0-11 are PTE bits 0-11, bits 12-23 are
# PTE bits 52-63 (get_pte_flags).
# ---------------------------------------------------------------------------
_PAGE_PRESENT = 0x001
_PAGE_RW = 0x002
_PAGE_USER = 0x004
_PAGE_PWT = 0x008
_PAGE_PCD = 0x010
_PAGE_ACCESSED = 0x020
_PAGE_DIRTY = 0x040
_PAGE_PSE = 0x080
_PAGE_PAT = 0x080
_PAGE_GLOBAL = 0x100
_PAGE_AVAIL0 = 0x200
_PAGE_AVAIL1 = 0x400
_PAGE_AVAIL2 = 0x800
_PAGE_AVAIL = 0xE00
_PAGE_NX_BIT = 1 << 23              # flag-word bit 23 = PTE bit 63
_PAGE_GUEST_KERNEL = 1 << 12        # flag-word bit 12 = PTE bit 52
# Debug builds only (asm-x86/page.h, #ifndef NDEBUG): grant mappings are
# marked with AVL bit 2 (PTE bit 11), and guests may not set it themselves.
_PAGE_GNTTAB_DEBUG = _PAGE_AVAIL2
BASE_DISALLOW_MASK = 0xFF800180     # & ~_PAGE_NX when the CPU has NX
PADDR_BITS = 40                     # asm-x86/config.h (x86_64)
PADDR_MASK = (1 << PADDR_BITS) - 1
PAGE_SHIFT = 12
PAGE_SIZE = 1 << PAGE_SHIFT

# L1 protection the dom0 builder uses (domain_build.c, x86_64)
L1_PROT = _PAGE_PRESENT | _PAGE_RW | _PAGE_ACCESSED | _PAGE_USER
L2_PROT = _PAGE_PRESENT | _PAGE_RW | _PAGE_ACCESSED | _PAGE_DIRTY | _PAGE_USER
L3_PROT = L2_PROT
L4_PROT = L2_PROT
PAGE_HYPERVISOR = _PAGE_PRESENT | _PAGE_RW | _PAGE_ACCESSED | _PAGE_DIRTY


def get_pte_flags(pte: int) -> int:
    """The 24-bit flag word of a PTE (bits 0-11 and 52-63), as Xen computes it."""
    pte &= (1 << 64) - 1
    return ((pte >> 40) & ~0xFFF) | (pte & 0xFFF)


def put_pte_flags(flags: int) -> int:
    """The PTE bits of a 24-bit flag word (inverse of :func:`get_pte_flags`)."""
    return ((flags & ~0xFFF) << 40) | (flags & 0xFFF)


def disallow_masks(debug: bool, nx: bool = True) -> dict[int, int]:
    """Flag-word masks that Xen refuses per page-table level (1-4).

    L1 allows G (user mappings are made global by Xen itself) and, in a debug
    build, forbids ``_PAGE_GNTTAB`` (AVL bit 11).  L2-L4 forbid PSE and G.
    """
    base = BASE_DISALLOW_MASK & ~(_PAGE_NX_BIT if nx else 0) & 0xFFFFFF
    l1 = (base | (_PAGE_GNTTAB_DEBUG if debug else 0)) & ~_PAGE_GLOBAL
    return {1: l1, 2: base, 3: base, 4: base}


# ---------------------------------------------------------------------------
# Error numbers -- xen/include/xen/errno.h (Linux numbering)
# ---------------------------------------------------------------------------
EPERM = 1
ENOENT = 2
ESRCH = 3
EINTR = 4
EIO = 5
ENXIO = 6
E2BIG = 7
ENOEXEC = 8
EBADF = 9
ECHILD = 10
EAGAIN = 11
EWOULDBLOCK = EAGAIN
ENOMEM = 12
EACCES = 13
EFAULT = 14
ENOTBLK = 15
EBUSY = 16
EEXIST = 17
EXDEV = 18
ENODEV = 19
ENOTDIR = 20
EISDIR = 21
EINVAL = 22
ENFILE = 23
EMFILE = 24
ENOTTY = 25
ETXTBSY = 26
EFBIG = 27
ENOSPC = 28
ESPIPE = 29
EROFS = 30
EMLINK = 31
EPIPE = 32
EDOM = 33
ERANGE = 34
EDEADLK = 35
ENAMETOOLONG = 36
ENOLCK = 37
ENOSYS = 38
ENOTEMPTY = 39
ELOOP = 40
ENOMSG = 42
EIDRM = 43
ENODATA = 61
ETIME = 62
EOVERFLOW = 75
EILSEQ = 84
ERESTART = 85
EUSERS = 87
ENOTSOCK = 88
EOPNOTSUPP = 95
EADDRINUSE = 98
EADDRNOTAVAIL = 99
ENOBUFS = 105
EISCONN = 106
ENOTCONN = 107
ETIMEDOUT = 110
ECONNREFUSED = 111

ERRNO_NAMES = {v: k for k, v in dict(globals()).items()
               if k.isupper() and k.startswith("E") and isinstance(v, int)
               and k not in ("EWOULDBLOCK",) and 0 < v < 200}


def errno_name(rc: int) -> str:
    """'-EINVAL' for -22, 'ok' for 0, the number otherwise."""
    if rc >= 0:
        return "ok" if rc == 0 else str(rc)
    return "-" + ERRNO_NAMES.get(-rc, str(-rc))


# ---------------------------------------------------------------------------
# Structures (x86-64 layouts)
# ---------------------------------------------------------------------------

def _struct(name: str, size: int, fields: list[tuple]):
    """A structured dtype from (name, format, offset) triples with an exact size."""
    names = [f[0] for f in fields]
    formats = [f[1] for f in fields]
    offsets = [f[2] for f in fields]
    dt = np.dtype({"names": names, "formats": formats, "offsets": offsets,
                   "itemsize": size})
    STRUCTS[name] = dt
    return dt


STRUCTS: dict[str, np.dtype] = {}

# xen.h
start_info = _struct("start_info", 1152, [
    ("magic", "S32", 0), ("nr_pages", "<u8", 32), ("shared_info", "<u8", 40),
    ("flags", "<u4", 48), ("store_mfn", "<u8", 56), ("store_evtchn", "<u4", 64),
    ("console_domU_mfn", "<u8", 72), ("console_domU_evtchn", "<u4", 80),
    ("console_dom0_info_off", "<u4", 72), ("console_dom0_info_size", "<u4", 76),
    ("pt_base", "<u8", 88), ("nr_pt_frames", "<u8", 96), ("mfn_list", "<u8", 104),
    ("mod_start", "<u8", 112), ("mod_len", "<u8", 120), ("cmd_line", "S1024", 128),
])
vcpu_time_info = _struct("vcpu_time_info", 32, [
    ("version", "<u4", 0), ("pad0", "<u4", 4), ("tsc_timestamp", "<u8", 8),
    ("system_time", "<u8", 16), ("tsc_to_system_mul", "<u4", 24),
    ("tsc_shift", "i1", 28), ("pad1", "V3", 29),
])
arch_vcpu_info = _struct("arch_vcpu_info", 16, [("cr2", "<u8", 0), ("pad", "<u8", 8)])
vcpu_info = _struct("vcpu_info", 64, [
    ("evtchn_upcall_pending", "u1", 0), ("evtchn_upcall_mask", "u1", 1),
    ("evtchn_pending_sel", "<u8", 8), ("arch", arch_vcpu_info, 16),
    ("time", vcpu_time_info, 32),
])
arch_shared_info = _struct("arch_shared_info", 280, [
    ("max_pfn", "<u8", 0), ("pfn_to_mfn_frame_list_list", "<u8", 8),
    ("nmi_reason", "<u8", 16), ("pad", ("<u8", 32), 24),
])
shared_info = _struct("shared_info", 3368, [
    ("vcpu_info", (vcpu_info, MAX_VIRT_CPUS), 0),
    ("evtchn_pending", ("<u8", 64), 2048), ("evtchn_mask", ("<u8", 64), 2560),
    ("wc_version", "<u4", 3072), ("wc_sec", "<u4", 3076), ("wc_nsec", "<u4", 3080),
    ("arch", arch_shared_info, 3088),
])
mmu_update = _struct("mmu_update", 16, [("ptr", "<u8", 0), ("val", "<u8", 8)])
mmuext_op = _struct("mmuext_op", 24, [
    ("cmd", "<u4", 0), ("arg1", "<u8", 8), ("arg2", "<u8", 16),
])
trap_info = _struct("trap_info", 16, [
    ("vector", "u1", 0), ("flags", "u1", 1), ("cs", "<u2", 2), ("address", "<u8", 8),
])
multicall_entry = _struct("multicall_entry", 64, [
    ("op", "<u8", 0), ("result", "<u8", 8), ("args", ("<u8", 6), 16),
])
iret_context = _struct("iret_context", 72, [
    ("rax", "<u8", 0), ("r11", "<u8", 8), ("rcx", "<u8", 16), ("flags", "<u8", 24),
    ("rip", "<u8", 32), ("cs", "<u8", 40), ("rflags", "<u8", 48), ("rsp", "<u8", 56),
    ("ss", "<u8", 64),
])
callback_register = _struct("callback_register", 16, [
    ("type", "<u2", 0), ("flags", "<u2", 2), ("address", "<u8", 8),
])
callback_unregister = _struct("callback_unregister", 2, [("type", "<u2", 0)])
# memory.h
xen_memory_reservation = _struct("xen_memory_reservation", 32, [
    ("extent_start", "<u8", 0), ("nr_extents", "<u8", 8), ("extent_order", "<u4", 16),
    ("address_bits", "<u4", 20), ("domid", "<u2", 24),
])
xen_memory_exchange = _struct("xen_memory_exchange", 72, [
    ("in", xen_memory_reservation, 0), ("out", xen_memory_reservation, 32),
    ("nr_exchanged", "<u8", 64),
])
xen_machphys_mfn_list = _struct("xen_machphys_mfn_list", 24, [
    ("max_extents", "<u4", 0), ("extent_start", "<u8", 8), ("nr_extents", "<u4", 16),
])
xen_add_to_physmap = _struct("xen_add_to_physmap", 24, [
    ("domid", "<u2", 0), ("space", "<u4", 4), ("idx", "<u8", 8), ("gpfn", "<u8", 16),
])
xen_memory_map = _struct("xen_memory_map", 16, [
    ("nr_entries", "<u4", 0), ("buffer", "<u8", 8),
])
xen_machphys_mapping = _struct("xen_machphys_mapping", 24, [
    ("v_start", "<u8", 0), ("v_end", "<u8", 8), ("max_mfn", "<u8", 16),
])
e820entry = _struct("e820entry", 20, [   # packed (asm-x86/e820.h)
    ("addr", "<u8", 0), ("size", "<u8", 8), ("type", "<u4", 16),
])
# event_channel.h
evtchn_alloc_unbound = _struct("evtchn_alloc_unbound", 8, [
    ("dom", "<u2", 0), ("remote_dom", "<u2", 2), ("port", "<u4", 4)])
evtchn_bind_interdomain = _struct("evtchn_bind_interdomain", 12, [
    ("remote_dom", "<u2", 0), ("remote_port", "<u4", 4), ("local_port", "<u4", 8)])
evtchn_bind_virq = _struct("evtchn_bind_virq", 12, [
    ("virq", "<u4", 0), ("vcpu", "<u4", 4), ("port", "<u4", 8)])
evtchn_bind_pirq = _struct("evtchn_bind_pirq", 12, [
    ("pirq", "<u4", 0), ("flags", "<u4", 4), ("port", "<u4", 8)])
evtchn_bind_ipi = _struct("evtchn_bind_ipi", 8, [("vcpu", "<u4", 0), ("port", "<u4", 4)])
evtchn_close = _struct("evtchn_close", 4, [("port", "<u4", 0)])
evtchn_send = _struct("evtchn_send", 4, [("port", "<u4", 0)])
evtchn_unmask = _struct("evtchn_unmask", 4, [("port", "<u4", 0)])
evtchn_status = _struct("evtchn_status", 24, [
    ("dom", "<u2", 0), ("port", "<u4", 4), ("status", "<u4", 8), ("vcpu", "<u4", 12),
    ("u_dom", "<u2", 16), ("u_port", "<u4", 20), ("u_pirq", "<u4", 16),
    ("u_virq", "<u4", 16)])
evtchn_bind_vcpu = _struct("evtchn_bind_vcpu", 8, [("port", "<u4", 0), ("vcpu", "<u4", 4)])
evtchn_reset = _struct("evtchn_reset", 2, [("dom", "<u2", 0)])
evtchn_op = _struct("evtchn_op", 28, [("cmd", "<u4", 0), ("u", "V24", 4)])
# physdev.h
physdev_eoi = _struct("physdev_eoi", 4, [("irq", "<u4", 0)])
physdev_irq_status_query = _struct("physdev_irq_status_query", 8, [
    ("irq", "<u4", 0), ("flags", "<u4", 4)])
physdev_set_iopl = _struct("physdev_set_iopl", 4, [("iopl", "<u4", 0)])
physdev_set_iobitmap = _struct("physdev_set_iobitmap", 16, [
    ("bitmap", "<u8", 0), ("nr_ports", "<u4", 8)])
physdev_apic = _struct("physdev_apic", 16, [
    ("apic_physbase", "<u8", 0), ("reg", "<u4", 8), ("value", "<u4", 12)])
physdev_irq = _struct("physdev_irq", 8, [("irq", "<u4", 0), ("vector", "<u4", 4)])
physdev_op = _struct("physdev_op", 24, [("cmd", "<u4", 0), ("u", "V16", 8)])
# sched.h
sched_shutdown = _struct("sched_shutdown", 4, [("reason", "<u4", 0)])
sched_poll = _struct("sched_poll", 24, [
    ("ports", "<u8", 0), ("nr_ports", "<u4", 8), ("timeout", "<u8", 16)])
sched_remote_shutdown = _struct("sched_remote_shutdown", 8, [
    ("domain_id", "<u2", 0), ("reason", "<u4", 4)])
# arch-x86/xen-x86_64.h: the saved register frame (Xen-private fields included)
cpu_user_regs = _struct("cpu_user_regs", 200, [
    (name, "<u8", 8 * i) for i, name in enumerate(
        ("r15", "r14", "r13", "r12", "rbp", "rbx", "r11", "r10", "r9", "r8", "rax", "rcx",
         "rdx", "rsi", "rdi"))] + [
    ("error_code", "<u4", 120), ("entry_vector", "<u4", 124), ("rip", "<u8", 128),
    ("cs", "<u2", 136), ("saved_upcall_mask", "u1", 140), ("rflags", "<u8", 144),
    ("rsp", "<u8", 152), ("ss", "<u2", 160), ("es", "<u2", 168), ("ds", "<u2", 176),
    ("fs", "<u2", 184), ("gs", "<u2", 192)])
# arch-x86/xen.h (x86-64): the context VCPUOP_initialise takes
VGCF_i387_valid = 1 << 0
VGCF_in_kernel = 1 << 2
VGCF_failsafe_disables_events = 1 << 3
VGCF_syscall_disables_events = 1 << 4
VGCF_online = 1 << 5
vcpu_guest_context = _struct("vcpu_guest_context", 5168, [
    ("fpu_ctxt", "V512", 0), ("flags", "<u8", 512), ("user_regs", cpu_user_regs, 520),
    ("trap_ctxt", (trap_info, 256), 720), ("ldt_base", "<u8", 4816), ("ldt_ents", "<u8", 4824),
    ("gdt_frames", ("<u8", 16), 4832), ("gdt_ents", "<u8", 4960), ("kernel_ss", "<u8", 4968),
    ("kernel_sp", "<u8", 4976), ("ctrlreg", ("<u8", 8), 4984), ("debugreg", ("<u8", 8), 5048),
    ("event_callback_eip", "<u8", 5112), ("failsafe_callback_eip", "<u8", 5120),
    ("syscall_callback_eip", "<u8", 5128), ("vm_assist", "<u8", 5136),
    ("fs_base", "<u8", 5144), ("gs_base_kernel", "<u8", 5152), ("gs_base_user", "<u8", 5160)])
# vcpu.h
vcpu_runstate_info = _struct("vcpu_runstate_info", 48, [
    ("state", "<i4", 0), ("state_entry_time", "<u8", 8), ("time", ("<u8", 4), 16)])
vcpu_register_vcpu_info = _struct("vcpu_register_vcpu_info", 16, [
    ("mfn", "<u8", 0), ("offset", "<u4", 8), ("rsvd", "<u4", 12)])
# version.h
xen_feature_info = _struct("xen_feature_info", 8, [
    ("submap_idx", "<u4", 0), ("submap", "<u4", 4)])
xen_platform_parameters = _struct("xen_platform_parameters", 8, [("virt_start", "<u8", 0)])
# io/console.h (a domU console page)
xencons_interface = _struct("xencons_interface", 3088, [
    ("in", "S1024", 0), ("out", "S2048", 1024), ("in_cons", "<u4", 3072),
    ("in_prod", "<u4", 3076), ("out_cons", "<u4", 3080), ("out_prod", "<u4", 3084)])

# Xen ELF notes -- xen/include/public/elfnote.h
XEN_ELFNOTE_INFO = 0
XEN_ELFNOTE_ENTRY = 1
XEN_ELFNOTE_HYPERCALL_PAGE = 2
XEN_ELFNOTE_VIRT_BASE = 3
XEN_ELFNOTE_PADDR_OFFSET = 4
XEN_ELFNOTE_XEN_VERSION = 5
XEN_ELFNOTE_GUEST_OS = 6
XEN_ELFNOTE_GUEST_VERSION = 7
XEN_ELFNOTE_LOADER = 8
XEN_ELFNOTE_PAE_MODE = 9
XEN_ELFNOTE_FEATURES = 10
XEN_ELFNOTE_BSD_SYMTAB = 11
