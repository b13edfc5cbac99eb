"""The PTE decoder: live edits, what the hardware then does, Xen-style verdicts."""

import errno

import pytest

from xenlab.machine import regs as R
from xenlab.machine.pte import (PTE_AVL0, PTE_NX, PTE_P, PTE_RW, PTE_US, u64)
from xenlab.viz import MachinePageTables, PteDecoder, Verdict, probe_translation

from ..machine import refwalk
from .conftest import KBASE


def ref(memory, st, va, write=False, user=False, fetch=False):
    """(maddr, None) or (None, error code) from the independent reference walker."""
    try:
        maddr, _ = refwalk.translate(memory, cr0=int(st[R.CR0]), cr3=int(st[R.CR3]),
                                     cr4=int(st[R.CR4]), efer=int(st[R.EFER]), va=va,
                                     write=write, user=user, fetch=fetch)
        return maddr, None
    except refwalk.Fault as f:
        return None, f.code


KINDS = {"read": {}, "write": {"write": True}, "fetch": {"fetch": True},
         "user read": {"user": True}, "user write": {"user": True, "write": True},
         "user fetch": {"user": True, "fetch": True}}


def assert_probe_matches_reference(df, memory, st, va):
    for row in df.itertuples(index=False):
        maddr, code = ref(memory, st, va, **KINDS[row.access])
        if maddr is None:
            assert row.fault == "#PF" and int(row.error_code) == code, row
        else:
            assert row.fault == "" and int(row.maddr) == maddr, row


def leaf_of(tree, va):
    return tree["mmu"].walk(va).steps[-1].entry_maddr


@pytest.mark.parametrize("bit", [0, 1, 2, 63])
def test_flipping_a_bit_writes_memory_and_probe_matches_the_reference(tree, bit):
    m, mmu = tree["memory"], tree["mmu"]
    va = KBASE + 4 * 4096 + 0x10
    d = PteDecoder(MachinePageTables(mmu=mmu), leaf_of(tree, va), va=va)
    before = m.read64(d.entry_maddr)
    v = d.toggle(bit)
    assert v.ok
    assert m.read64(d.entry_maddr) == before ^ (1 << bit) == d.value
    assert_probe_matches_reference(d.outcome, m, mmu.state, va)
    assert d.bit_buttons[bit].value == bool(d.value >> bit & 1)


def test_clear_present_shows_not_present_faults(tree):
    va = KBASE + 0x3000
    d = PteDecoder(MachinePageTables(mmu=tree["mmu"]), leaf_of(tree, va), va=va)
    d.toggle(0)
    codes = dict(zip(d.outcome["access"], d.outcome["error_code"]))
    assert codes == {"read": 0, "write": 2, "fetch": 16, "user read": 4, "user write": 6,
                     "user fetch": 20}
    assert "#PF error code 0x6" in d.outcome_html.value


def test_stale_tlb_until_invlpg(tree):
    mmu = tree["mmu"]
    va = KBASE + 0x5000
    good = mmu.translate(va, write=True)           # the TLB now caches a writable mapping
    d = PteDecoder(MachinePageTables(mmu=mmu), leaf_of(tree, va), va=va)
    d.toggle(1)                                     # clear RW
    w = d.outcome.set_index("access").loc["write"]
    assert w["fault"] == "#PF" and int(w["error_code"]) == 3     # P|W: protection
    assert int(w["tlb_maddr"]) == good and bool(w["stale"])
    assert "STALE" in d.outcome_html.value
    assert mmu.translate(va, write=True) == good   # the CPU really still writes
    d.invlpg_button.click()
    w = d.outcome.set_index("access").loc["write"]
    assert w.isna()["tlb_maddr"] and not w["stale"]
    with pytest.raises(Exception, match="#PF"):
        mmu.translate(va, write=True)


def test_no_tlb_without_a_vcpu(tree):
    va = KBASE + 0x6000
    src = MachinePageTables(tree["memory"], tree["cr3"])
    d = PteDecoder(src, leaf_of(tree, va), va=va)
    assert d.outcome["tlb_maddr"].isna().all()
    assert d.invlpg_button.layout.display == "none"


def test_fields_and_frame_edit(tree):
    va = KBASE + 0x7000
    d = PteDecoder(MachinePageTables(mmu=tree["mmu"]), leaf_of(tree, va), va=va)
    f = d.frame.set_index("name")
    assert f.loc["frame", "value"] == tree["frames"][KBASE + 0x7000]
    assert f.loc["P", "value"] == 1 and f.loc["US", "value"] == 0
    d.addr_text.value = "0x4242"                    # typing a frame number
    assert (d.value >> 12) == 0x4242 and d.value & 0xFFF == d.history[-1]["old"] & 0xFFF
    assert tree["mmu"].walk(va).maddr == 0x4242000
    d.raw_text.value = f"{0x99000 | PTE_P | PTE_RW | PTE_US:#x}"
    assert tree["memory"].read64(d.entry_maddr) == 0x99000 | PTE_P | PTE_RW | PTE_US
    assert [h["new"] for h in d.history] == [d.history[0]["new"], d.value]


def test_bit_button_click_is_a_write(tree):
    va = KBASE
    d = PteDecoder(MachinePageTables(mmu=tree["mmu"]), leaf_of(tree, va), va=va)
    d.bit_buttons[2].value = True                   # what a click does
    assert d.value & PTE_US and tree["memory"].read64(d.entry_maddr) & PTE_US
    assert "accepted" in d.verdict_html.value


def test_upper_levels_name_bit7_ps(tree):
    va = 0x40_0000
    src = MachinePageTables(mmu=tree["mmu"])
    pde = tree["mmu"].walk(va).steps[-1]
    d = PteDecoder(src, pde.entry_maddr, level=2, va=va)
    assert d.bit_buttons[7].description == "PS" and d.bit_buttons[7].value
    d.toggle(7)                                     # the 2 MiB page becomes a table pointer
    assert tree["mmu"].walk(va).page_size == 4096 or not tree["mmu"].walk(va).ok


class XenLikePtes:
    """An honest stand-in for the PV adapter: real machine memory and a real
    walk, with a validating write that refuses what a debug Xen refused (a
    guest setting the software bit the hypervisor claims) and returns -EINVAL,
    as mmu_update does; otherwise the entry is written."""

    def __init__(self, base):
        self.base = base

    def read(self, maddr):
        return self.base.read(maddr)

    def write(self, maddr, value):
        if value & PTE_AVL0:
            return -errno.EINVAL
        return self.base.write(maddr, value)

    def probe(self, va):
        return self.base.probe(va)


def test_refused_write_keeps_the_entry_and_shows_the_errno(tree):
    va = KBASE + 0x8000
    d = PteDecoder(XenLikePtes(MachinePageTables(mmu=tree["mmu"])), leaf_of(tree, va), va=va)
    before = d.value
    v = d.toggle(9)
    assert v.rc == -22 and v.errno_name == "EINVAL" and not v.ok
    assert d.value == before == tree["memory"].read64(d.entry_maddr)
    assert not d.bit_buttons[9].value               # the button shows what is stored
    assert "refused, -EINVAL (-22)" in d.verdict_html.value
    assert d.history[-1] == {"entry_maddr": d.entry_maddr, "old": before,
                             "new": before | PTE_AVL0, "rc": -22, "stored": before}
    assert d.toggle(10).ok                          # another software bit is fine


def test_verdict_of():
    assert Verdict.of(None).ok and Verdict.of(0).ok
    assert str(Verdict.of(-1)).startswith("refused, -EPERM (-1)")
    v = Verdict(-16, "page is pinned")
    assert Verdict.of(v) is v and "EBUSY" in str(v) and "pinned" in str(v)


def test_model_errors_become_verdicts_not_tracebacks(tree):
    class Raising(XenLikePtes):
        def write(self, maddr, value):
            raise RuntimeError("hypercall page not mapped")
    src = MachinePageTables(mmu=tree["mmu"])
    d = PteDecoder(Raising(src), leaf_of(tree, KBASE))
    before = d.value
    v = d.write(0)
    assert not v.ok and "hypercall page not mapped" in v.message
    assert d.value == before
    assert not PteDecoder(src, leaf_of(tree, KBASE) + 4).write(0).ok   # misaligned


def test_targeting_outside_memory_names_the_address(tree):
    d = PteDecoder(MachinePageTables(mmu=tree["mmu"]))
    with pytest.raises(Exception, match="0x200000000000"):
        d.target(1 << 45)


def test_probe_needs_cr3_or_state(tree):
    with pytest.raises(ValueError, match="cr3"):
        probe_translation(tree["memory"], 0)


def test_toggle_rejects_address_bits(tree):
    d = PteDecoder(MachinePageTables(mmu=tree["mmu"]), leaf_of(tree, KBASE))
    with pytest.raises(ValueError, match="set_frame"):
        d.toggle(20)
