"""A hypothesis fuzzer: random (often malformed) hypercalls from dom0.

After every call the invariant checker runs (the fixture's check hook) and
the result must be 0, a count, or one of Xen's negative errno values."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xenlab.xen import abi

from .guestlib import boot

CALLS = [abi.HYPERVISOR_mmu_update, abi.HYPERVISOR_mmuext_op, abi.HYPERVISOR_update_va_mapping,
         abi.HYPERVISOR_update_va_mapping_otherdomain, abi.HYPERVISOR_memory_op,
         abi.HYPERVISOR_event_channel_op, abi.HYPERVISOR_physdev_op,
         abi.HYPERVISOR_set_trap_table, abi.HYPERVISOR_console_io, abi.HYPERVISOR_xen_version,
         abi.HYPERVISOR_vcpu_op, abi.HYPERVISOR_set_segment_base, abi.HYPERVISOR_set_callbacks,
         abi.HYPERVISOR_stack_switch, abi.HYPERVISOR_fpu_taskswitch, abi.HYPERVISOR_sched_op,
         abi.HYPERVISOR_event_channel_op_compat, abi.HYPERVISOR_physdev_op_compat,
         abi.HYPERVISOR_vm_assist, abi.HYPERVISOR_callback_op, 11, 40]
FLAGS = [0x1, 0x2, 0x4, 0x20, 0x40, 0x80, 0x100, 0x200, 0x400, 0x800, 1 << 52, 1 << 63]

_XEN = None


def fresh():
    return boot("128M")


def frames(xen, g):
    d = g.d
    lay = d.layout
    l4 = g.v.guest_table
    first = int(d.p2m[0])
    return [l4, first, first + 1, first + ((lay.vpt_start - lay.v_start) >> 12) + 1,
            int(d.p2m[((lay.v_end - lay.v_start) >> 12) + 3]),
            int(d.p2m[((lay.v_end - lay.v_start) >> 12) + 4]),
            xen.idle_l4, int(xen.m2p.chunks[0]), 0xB8, 0x9F, 0xFEC00, 0x7000, d.shared_info_mfn,
            int(xen.heap.free_blocks()[0][0]) if xen.heap.avail() else 1]


word = st.one_of(st.integers(0, 8), st.integers(0, 2**64 - 1), st.sampled_from(
    [abi.DOMID_SELF, abi.DOMID_IO, abi.DOMID_XEN, 1 << 63, abi.HYPERVISOR_VIRT_START]))


@st.composite
def calls(draw):
    nr = draw(st.sampled_from(CALLS))
    sub = draw(st.integers(0, 16))
    kind = draw(st.sampled_from(["block", "entries", "null", "xen", "wild"]))
    frame_i = draw(st.integers(0, 13))
    idx = draw(st.integers(0, 511))
    flags = draw(st.lists(st.sampled_from(FLAGS), max_size=5))
    target_i = draw(st.integers(0, 13))
    count = draw(st.integers(0, 4))
    blob = draw(st.binary(min_size=0, max_size=96))
    extra = draw(st.lists(word, min_size=3, max_size=3))
    return nr, sub, kind, frame_i, idx, flags, target_i, count, blob, extra


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(calls(), min_size=1, max_size=12))
def test_random_hypercalls_keep_invariants(seq):
    run_sequence(seq)


@pytest.mark.slow
@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(calls(), min_size=1, max_size=20))
def test_random_hypercalls_keep_invariants_long(seq):
    run_sequence(seq)


def run_sequence(seq):
    xen, g = fresh()
    fr = frames(xen, g)
    root = g.v.guest_table
    for nr, sub, kind, fi, idx, flags, ti, count, blob, extra in seq:
        g.reset()
        f = 0
        for b in flags:
            f |= b
        entry = (fr[ti] << 12) | f
        ptr = (fr[fi] << 12) + 8 * idx
        if kind == "entries":
            if nr == abi.HYPERVISOR_mmuext_op:
                arr = np.zeros(max(count, 1), dtype=abi.mmuext_op)
                arr["cmd"] = sub
                arr["arg1"] = fr[fi]
                arg = g.put(arr)
            else:
                arr = np.zeros(max(count, 1), dtype=abi.mmu_update)
                arr["ptr"] = ptr | (sub & 1)
                arr["val"] = entry & (2**64 - 1)
                arg = g.put(arr)
        elif kind == "block":
            arg = g.put(blob.ljust(96, b"\0"))
        elif kind == "null":
            arg = 0
        elif kind == "xen":
            arg = abi.HYPERVISOR_VIRT_START + 0x1000
        else:
            arg = extra[0]
        if nr in (abi.HYPERVISOR_mmu_update, abi.HYPERVISOR_mmuext_op):
            args = (arg, count, g.put(b"\0" * 8) if sub & 2 else 0,
                    [abi.DOMID_SELF, abi.DOMID_IO, abi.DOMID_XEN, 0, 3][sub % 5])
        elif nr in (abi.HYPERVISOR_update_va_mapping,
                    abi.HYPERVISOR_update_va_mapping_otherdomain):
            va = [g.scratch + 0x40000, g.d.layout.vpt_start, abi.HYPERVISOR_VIRT_START,
                  0x1000, extra[1]][sub % 5]
            args = (va, entry & (2**64 - 1), extra[2] & 7, [abi.DOMID_SELF, abi.DOMID_IO, 0][sub % 3])
        else:
            args = (sub, arg, extra[1], extra[2])
        rc = g.call(nr, *args)
        assert rc >= 0 or -rc in abi.ERRNO_NAMES, (nr, args, rc)
        if g.v.guest_table != root:
            break                 # the guest switched to other page tables: our
                                  # scratch memory may be gone; Xen is still checked
