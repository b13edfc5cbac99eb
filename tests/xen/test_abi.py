"""The ABI: structure layouts against the reference document and against gcc,
and numbers spot-checked against shared/reference/xen-pv-abi.md."""

import shutil
import subprocess

import pytest

from xenlab.xen import abi

# (struct, total size, {field: offset}) as tabulated in xen-pv-abi.md (x86-64, X31)
REFERENCE = [
    ("start_info", 1152, {"magic": 0, "nr_pages": 32, "shared_info": 40, "flags": 48,
                          "store_mfn": 56, "store_evtchn": 64, "console_domU_mfn": 72,
                          "console_domU_evtchn": 80, "console_dom0_info_off": 72,
                          "console_dom0_info_size": 76, "pt_base": 88, "nr_pt_frames": 96,
                          "mfn_list": 104, "mod_start": 112, "mod_len": 120, "cmd_line": 128}),
    ("vcpu_info", 64, {"evtchn_upcall_pending": 0, "evtchn_upcall_mask": 1,
                       "evtchn_pending_sel": 8, "arch": 16, "time": 32}),
    ("vcpu_time_info", 32, {"version": 0, "pad0": 4, "tsc_timestamp": 8, "system_time": 16,
                            "tsc_to_system_mul": 24, "tsc_shift": 28, "pad1": 29}),
    ("shared_info", 3368, {"vcpu_info": 0, "evtchn_pending": 2048, "evtchn_mask": 2560,
                           "wc_version": 3072, "wc_sec": 3076, "wc_nsec": 3080, "arch": 3088}),
    ("arch_shared_info", 280, {"max_pfn": 0, "pfn_to_mfn_frame_list_list": 8,
                               "nmi_reason": 16, "pad": 24}),
    ("mmu_update", 16, {"ptr": 0, "val": 8}),
    ("mmuext_op", 24, {"cmd": 0, "arg1": 8, "arg2": 16}),
    ("xen_memory_reservation", 32, {"extent_start": 0, "nr_extents": 8, "extent_order": 16,
                                    "address_bits": 20, "domid": 24}),
    ("xen_memory_exchange", 72, {"in": 0, "out": 32, "nr_exchanged": 64}),
    ("xen_machphys_mfn_list", 24, {"max_extents": 0, "extent_start": 8, "nr_extents": 16}),
    ("xen_add_to_physmap", 24, {"domid": 0, "space": 4, "idx": 8, "gpfn": 16}),
    ("xen_memory_map", 16, {"nr_entries": 0, "buffer": 8}),
    ("xen_machphys_mapping", 24, {"v_start": 0, "v_end": 8, "max_mfn": 16}),
    ("evtchn_alloc_unbound", 8, {"dom": 0, "remote_dom": 2, "port": 4}),
    ("evtchn_bind_interdomain", 12, {"remote_dom": 0, "remote_port": 4, "local_port": 8}),
    ("evtchn_bind_virq", 12, {"virq": 0, "vcpu": 4, "port": 8}),
    ("evtchn_bind_pirq", 12, {"pirq": 0, "flags": 4, "port": 8}),
    ("evtchn_bind_ipi", 8, {"vcpu": 0, "port": 4}),
    ("evtchn_close", 4, {"port": 0}), ("evtchn_send", 4, {"port": 0}),
    ("evtchn_unmask", 4, {"port": 0}),
    ("evtchn_status", 24, {"dom": 0, "port": 4, "status": 8, "vcpu": 12, "u_dom": 16}),
    ("evtchn_bind_vcpu", 8, {"port": 0, "vcpu": 4}),
    ("evtchn_reset", 2, {"dom": 0}),
    ("evtchn_op", 28, {"cmd": 0, "u": 4}),
    ("physdev_set_iopl", 4, {"iopl": 0}), ("physdev_eoi", 4, {"irq": 0}),
    ("physdev_irq_status_query", 8, {"irq": 0, "flags": 4}),
    ("physdev_set_iobitmap", 16, {"bitmap": 0, "nr_ports": 8}),
    ("physdev_apic", 16, {"apic_physbase": 0, "reg": 8, "value": 12}),
    ("physdev_irq", 8, {"irq": 0, "vector": 4}),
    ("physdev_op", 24, {"cmd": 0, "u": 8}),
    ("sched_shutdown", 4, {"reason": 0}),
    ("sched_poll", 24, {"ports": 0, "nr_ports": 8, "timeout": 16}),
    ("trap_info", 16, {"vector": 0, "flags": 1, "cs": 2, "address": 8}),
    ("multicall_entry", 64, {"op": 0, "result": 8, "args": 16}),
]


@pytest.mark.parametrize("name,size,fields", REFERENCE, ids=[r[0] for r in REFERENCE])
def test_layout_matches_reference(name, size, fields):
    dt = abi.STRUCTS[name]
    assert dt.itemsize == size
    for f, off in fields.items():
        assert dt.fields[f][1] == off, f"{name}.{f}"


# Our own C declarations of the documented layouts; gcc computes the offsets.
C_SOURCE = r"""
#include <stdio.h>
#include <stddef.h>
#include <stdint.h>
typedef uint16_t domid_t;
struct start_info { char magic[32]; unsigned long nr_pages, shared_info; uint32_t flags;
  unsigned long store_mfn; uint32_t store_evtchn;
  union { struct { unsigned long mfn; uint32_t evtchn; } domU;
          struct { uint32_t info_off, info_size; } dom0; } console;
  unsigned long pt_base, nr_pt_frames, mfn_list, mod_start, mod_len; int8_t cmd_line[1024]; };
struct vcpu_time_info { uint32_t version, pad0; uint64_t tsc_timestamp, system_time;
  uint32_t tsc_to_system_mul; int8_t tsc_shift; int8_t pad1[3]; };
struct arch_vcpu_info { unsigned long cr2, pad; };
struct vcpu_info { uint8_t evtchn_upcall_pending, evtchn_upcall_mask;
  unsigned long evtchn_pending_sel; struct arch_vcpu_info arch; struct vcpu_time_info time; };
struct arch_shared_info { unsigned long max_pfn, pfn_to_mfn_frame_list_list, nmi_reason;
  uint64_t pad[32]; };
struct shared_info { struct vcpu_info vcpu_info[32]; unsigned long evtchn_pending[64];
  unsigned long evtchn_mask[64]; uint32_t wc_version, wc_sec, wc_nsec;
  struct arch_shared_info arch; };
struct mmuext_op { unsigned int cmd; union { unsigned long mfn, linear_addr; } arg1;
  union { unsigned int nr_ents; void *vcpumask; } arg2; };
struct xen_memory_reservation { unsigned long *extent_start; unsigned long nr_extents;
  unsigned int extent_order, address_bits; domid_t domid; };
struct xen_memory_exchange { struct xen_memory_reservation in, out; unsigned long nr_exchanged; };
struct xen_machphys_mfn_list { unsigned int max_extents; unsigned long *extent_start;
  unsigned int nr_extents; };
struct evtchn_status { domid_t dom; uint32_t port; uint32_t status, vcpu;
  union { struct { domid_t dom; } unbound; struct { domid_t dom; uint32_t port; } interdomain;
          uint32_t pirq, virq; } u; };
struct physdev_apic { unsigned long apic_physbase; uint32_t reg, value; };
struct physdev_op { uint32_t cmd; union { struct physdev_apic apic; } u; };
struct evtchn_op { uint32_t cmd; union { struct evtchn_status status; } u; };
struct trap_info { uint8_t vector, flags; uint16_t cs; unsigned long address; };
struct sched_poll { uint32_t *ports; unsigned int nr_ports; uint64_t timeout; };
struct cpu_user_regs { uint64_t r15, r14, r13, r12, rbp, rbx, r11, r10, r9, r8, rax, rcx,
  rdx, rsi, rdi; uint32_t error_code, entry_vector; uint64_t rip; uint16_t cs, _pad0[1];
  uint8_t saved_upcall_mask; uint8_t _pad1[3]; uint64_t rflags, rsp;
  uint16_t ss, _pad2[3]; uint16_t es, _pad3[3]; uint16_t ds, _pad4[3];
  uint16_t fs, _pad5[3]; uint16_t gs, _pad6[3]; };
struct vcpu_guest_context { struct { char x[512]; } fpu_ctxt; unsigned long flags;
  struct cpu_user_regs user_regs; struct trap_info trap_ctxt[256];
  unsigned long ldt_base, ldt_ents; unsigned long gdt_frames[16], gdt_ents;
  unsigned long kernel_ss, kernel_sp; unsigned long ctrlreg[8]; unsigned long debugreg[8];
  unsigned long event_callback_eip, failsafe_callback_eip, syscall_callback_eip;
  unsigned long vm_assist; uint64_t fs_base, gs_base_kernel, gs_base_user; };
#define P(s, f) printf(#s " " #f " %zu\n", offsetof(struct s, f))
#define S(s) printf(#s " SIZE %zu\n", sizeof(struct s))
int main(void) {
  S(start_info); P(start_info, nr_pages); P(start_info, flags); P(start_info, store_evtchn);
  P(start_info, console); P(start_info, pt_base); P(start_info, cmd_line);
  S(vcpu_info); P(vcpu_info, evtchn_pending_sel); P(vcpu_info, time); S(vcpu_time_info);
  P(vcpu_time_info, tsc_shift); S(shared_info); P(shared_info, evtchn_pending);
  P(shared_info, evtchn_mask); P(shared_info, wc_version); P(shared_info, arch);
  S(mmuext_op); P(mmuext_op, arg1); P(mmuext_op, arg2);
  S(xen_memory_reservation); P(xen_memory_reservation, address_bits);
  P(xen_memory_reservation, domid); S(xen_memory_exchange); P(xen_memory_exchange, out);
  P(xen_memory_exchange, nr_exchanged); S(xen_machphys_mfn_list);
  P(xen_machphys_mfn_list, nr_extents); S(evtchn_status); P(evtchn_status, u);
  S(physdev_op); P(physdev_op, u); S(evtchn_op); P(evtchn_op, u);
  S(trap_info); P(trap_info, address); S(sched_poll); P(sched_poll, timeout);
  S(cpu_user_regs); P(cpu_user_regs, rip); P(cpu_user_regs, cs);
  P(cpu_user_regs, saved_upcall_mask); P(cpu_user_regs, rflags); P(cpu_user_regs, ss);
  P(cpu_user_regs, gs); S(vcpu_guest_context); P(vcpu_guest_context, user_regs);
  P(vcpu_guest_context, trap_ctxt); P(vcpu_guest_context, gdt_frames);
  P(vcpu_guest_context, kernel_sp); P(vcpu_guest_context, ctrlreg);
  P(vcpu_guest_context, event_callback_eip); P(vcpu_guest_context, vm_assist);
  P(vcpu_guest_context, gs_base_user);
  return 0; }
"""

ALIASES = {("start_info", "console"): "console_domU_mfn", ("evtchn_status", "u"): "u_dom"}


@pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc not installed")
def test_layout_matches_gcc(tmp_path):
    src = tmp_path / "layout.c"
    src.write_text(C_SOURCE)
    exe = tmp_path / "layout"
    subprocess.run(["gcc", "-O0", "-o", str(exe), str(src)], check=True)
    out = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout
    n = 0
    for line in out.splitlines():
        struct, field, value = line.split()
        dt = abi.STRUCTS[struct]
        if field == "SIZE":
            assert dt.itemsize == int(value), struct
        else:
            f = ALIASES.get((struct, field), field)
            assert dt.fields[f][1] == int(value), f"{struct}.{field}"
        n += 1
    assert n > 30


def test_numbers_spot_checks():
    assert abi.HYPERVISOR_mmu_update == 1 and abi.HYPERVISOR_physdev_op == 33
    assert abi.HYPERVISOR_kexec_op == 37 and abi.HYPERVISOR_iret == 23
    assert abi.MMUEXT_NEW_USER_BASEPTR == 15 and abi.PHYSDEVOP_set_iopl == 6
    assert abi.XENMEM_exchange == 11 and abi.EVTCHNOP_unmask == 9
    assert abi.DOMID_IO == 0x7FF1 and abi.NR_EVENT_CHANNELS == 4096
    assert abi.PGT_writable_page == 7 << 29 and abi.PGC_allocated == 1 << 31
    assert abi.FLAT_KERNEL_CS == 0xE033 and abi.FLAT_KERNEL_SS == 0xE02B
    assert abi.EINVAL == 22 and abi.ENOSYS == 38 and abi.ERESTART == 85
    assert abi.disallow_masks(debug=False)[1] == 0x080
    assert abi.disallow_masks(debug=True)[1] == 0x880
    assert abi.disallow_masks(debug=True)[2] == 0x180
    assert abi.get_pte_flags((1 << 63) | (1 << 52) | 0x67) == (1 << 23) | (1 << 12) | 0x67
