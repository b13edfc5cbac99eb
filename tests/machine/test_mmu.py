"""MMU tests: every PTE bit, every #PF error-code bit, the TLB's flush rules,
PAE, large pages, and a property test against the reference walker."""

import numpy as np
import pytest
from hypothesis import given, strategies as st

from xenlab.machine import mmu as MMU
from xenlab.machine import regs as R
from xenlab.machine.memory import Memory
from xenlab.machine.mmu import PageFault, walk, walk_many, pagetable_frame
from xenlab.machine.pte import (PF_ID, PF_P, PF_RSVD, PF_US, PF_WR, PTE_A, PTE_AVL0,
                                PTE_AVL1, PTE_AVL2, PTE_D, PTE_G, PTE_NX, PTE_P,
                                PTE_PAT, PTE_PCD, PTE_PS, PTE_PWT, PTE_RW, PTE_US,
                                VEC_GP, VEC_PF, decode_flags, decode_pf_error)

from . import refwalk
from .ptbuild import Tables, long_mode_mmu

VA = 0x0000_7F12_3456_7000
USER_RW = PTE_P | PTE_RW | PTE_US


@pytest.fixture
def mem():
    return Memory()


def fault_of(fn):
    with pytest.raises(PageFault) as e:
        fn()
    return e.value


# -- P ------------------------------------------------------------------------

@pytest.mark.parametrize("level", [4, 3, 2, 1])
def test_not_present_at_any_level_is_a_pf_with_p_clear(mem, level):
    t = Tables(mem)
    t.map(VA, 0x999)
    addr = t.entry_addr(VA, level)
    mem.write64(addr, mem.read64(addr) & ~PTE_P)
    mmu = long_mode_mmu(mem, t.cr3)
    f = fault_of(lambda: mmu.translate(VA + 8))
    assert (f.vector, f.code, f.va) == (VEC_PF, 0, VA + 8)
    assert mmu.state[R.CR2] == VA + 8
    assert len(walk(mem, t.cr3, VA).steps) == 5 - level


# -- RW and CR0.WP --------------------------------------------------------------

@pytest.mark.parametrize("level", [4, 3, 2, 1])
def test_rw_clear_at_any_level_blocks_user_writes(mem, level):
    t = Tables(mem)
    t.map(VA, 0x999)
    addr = t.entry_addr(VA, level)
    mem.write64(addr, mem.read64(addr) & ~PTE_RW)
    mmu = long_mode_mmu(mem, t.cr3, cpl=3)
    assert mmu.translate(VA) == 0x999000             # reads fine
    f = fault_of(lambda: mmu.translate(VA, write=True))
    assert f.code == PF_P | PF_WR | PF_US


def test_cr0_wp_decides_supervisor_writes_to_read_only_pages(mem):
    t = Tables(mem)
    t.map(VA, 0x999, PTE_P | PTE_US)
    assert long_mode_mmu(mem, t.cr3, wp=False).translate(VA, write=True) == 0x999000
    f = fault_of(lambda: long_mode_mmu(mem, t.cr3, wp=True).translate(VA, write=True))
    assert f.code == PF_P | PF_WR


# -- US -----------------------------------------------------------------------------

@pytest.mark.parametrize("level", [4, 3, 2, 1])
def test_us_clear_at_any_level_blocks_user_access(mem, level):
    t = Tables(mem)
    t.map(VA, 0x999)
    addr = t.entry_addr(VA, level)
    mem.write64(addr, mem.read64(addr) & ~PTE_US)
    assert long_mode_mmu(mem, t.cr3, cpl=0).translate(VA) == 0x999000
    f = fault_of(lambda: long_mode_mmu(mem, t.cr3, cpl=3).translate(VA))
    assert f.code == PF_P | PF_US


def test_smep_blocks_supervisor_fetch_from_user_pages(mem):
    t = Tables(mem)
    t.map(VA, 0x999)
    assert long_mode_mmu(mem, t.cr3).translate(VA, fetch=True) == 0x999000
    f = fault_of(lambda: long_mode_mmu(mem, t.cr3, smep=True).translate(VA, fetch=True))
    assert f.code == PF_P | PF_ID


# -- PWT, PCD, PAT, AVL: decoded, never change the translation --------------------------

@pytest.mark.parametrize("bit,name", [(PTE_PWT, "PWT"), (PTE_PCD, "PCD"), (PTE_PAT, "PAT"),
                                      (PTE_AVL0, "AVL9"), (PTE_AVL1, "AVL10"),
                                      (PTE_AVL2, "AVL11")])
def test_cache_and_software_bits_are_decoded_but_ignored(mem, bit, name):
    t = Tables(mem)
    t.map(VA, 0x999, USER_RW | bit)
    w = walk(mem, t.cr3, VA + 0x10)
    assert w.maddr == 0x999010 and w.page_size == 4096
    assert name in w.steps[-1].flags
    assert long_mode_mmu(mem, t.cr3, cpl=3).translate(VA, write=True) == 0x999000


# -- A and D ----------------------------------------------------------------------------

def test_accessed_set_at_every_level_and_dirty_only_on_the_leaf_of_a_write(mem):
    t = Tables(mem)
    t.map(VA, 0x999)
    addrs = [t.entry_addr(VA, lv) for lv in (4, 3, 2, 1)]
    mmu = long_mode_mmu(mem, t.cr3)
    mmu.translate(VA)
    assert all(mem.read64(a) & PTE_A for a in addrs)
    assert not any(mem.read64(a) & PTE_D for a in addrs)
    mmu.translate(VA, write=True)            # TLB entry lacks D: re-walk sets it
    assert mem.read64(addrs[-1]) & PTE_D
    assert not any(mem.read64(a) & PTE_D for a in addrs[:-1])


def test_walk_and_debugger_batch_walks_have_no_side_effects(mem):
    t = Tables(mem)
    t.map(VA, 0x999)
    before = mem.read64(t.entry_addr(VA, 1))
    walk(mem, t.cr3, VA)
    walk_many(mem, t.cr3, [VA, VA + 1])
    assert mem.read64(t.entry_addr(VA, 1)) == before


def test_faulting_walk_sets_no_accessed_bits(mem):
    t = Tables(mem)
    t.map(VA, 0x999, PTE_P | PTE_US)
    mmu = long_mode_mmu(mem, t.cr3)
    fault_of(lambda: mmu.translate(VA, write=True))
    assert not mem.read64(t.entry_addr(VA, 4)) & PTE_A


# -- PS: 2 MiB and 1 GiB pages, and where PS is reserved ----------------------------------------

def test_2mib_page(mem):
    t = Tables(mem)
    t.map(0x4000_0000, 0x200, size=2 << 20)        # frame 0x200 = 2 MiB aligned
    mmu = long_mode_mmu(mem, t.cr3)
    assert mmu.translate(0x4000_0000 + 0x12_3456) == 0x20_0000 + 0x12_3456
    w = walk(mem, t.cr3, 0x4000_0000)
    assert w.page_size == 2 << 20 and len(w.steps) == 3 and "PS" in w.steps[-1].flags


def test_1gib_page_and_its_feature_switch(mem):
    t = Tables(mem)
    t.map(0x80_0000_0000, 0x40000, size=1 << 30)   # 1 GiB at machine 1 GiB
    mmu = long_mode_mmu(mem, t.cr3)
    assert mmu.translate(0x80_0000_0000 + 0x3FFF_FFFF) == 0x4000_0000 + 0x3FFF_FFFF
    mmu.state[R.FEATURES] &= ~R.FEAT_PAGE1GB
    mmu.flush()
    assert fault_of(lambda: mmu.translate(0x80_0000_0000)).code == PF_P | PF_RSVD


def test_ps_in_a_pml4e_is_reserved(mem):
    t = Tables(mem)
    t.map(VA, 0x999)
    a = t.entry_addr(VA, 4)
    mem.write64(a, mem.read64(a) | PTE_PS)
    assert fault_of(lambda: long_mode_mmu(mem, t.cr3).translate(VA)).code == PF_P | PF_RSVD


def test_misaligned_large_page_address_bits_are_reserved(mem):
    t = Tables(mem)
    t.map(0x4000_0000, 0x201, size=2 << 20)         # bit 12 = PAT: allowed
    assert walk(mem, t.cr3, 0x4000_0000).ok
    t.map(0x4000_0000, 0x202, size=2 << 20)         # bit 13: reserved
    f = walk(mem, t.cr3, 0x4000_0000).fault
    assert f.code & PF_RSVD


# -- G and the TLB ----------------------------------------------------------------------------

def test_stale_tlb_until_invlpg(mem):
    t = Tables(mem)
    pte = t.map(VA, 0x111)
    mmu = long_mode_mmu(mem, t.cr3)
    assert mmu.translate(VA) == 0x111000
    mem.write64(pte, (0x222 << 12) | USER_RW | PTE_A)
    assert mmu.translate(VA) == 0x111000             # the TLB still says 0x111
    mmu.invlpg(VA + 0x800)
    assert mmu.translate(VA) == 0x222000


def test_cr3_write_flushes_all_but_global_entries_when_pge(mem):
    t = Tables(mem)
    p1 = t.map(VA, 0x111, USER_RW | PTE_G)
    p2 = t.map(VA + 0x1000, 0x112, USER_RW)
    mmu = long_mode_mmu(mem, t.cr3, pge=True)
    mmu.translate(VA), mmu.translate(VA + 0x1000)
    mem.write64(p1, (0x333 << 12) | USER_RW)
    mem.write64(p2, (0x334 << 12) | USER_RW)
    mmu.write_cr3(t.cr3)
    assert mmu.translate(VA) == 0x111000             # global: survived
    assert mmu.translate(VA + 0x1000) == 0x334000    # non-global: re-walked
    mmu.write_cr4(int(mmu.state[R.CR4]) & ~R.CR4_PGE)  # toggling PGE flushes all
    assert mmu.translate(VA) == 0x333000


def test_g_is_ignored_without_cr4_pge(mem):
    t = Tables(mem)
    p1 = t.map(VA, 0x111, USER_RW | PTE_G)
    mmu = long_mode_mmu(mem, t.cr3, pge=False)
    mmu.translate(VA)
    mem.write64(p1, (0x333 << 12) | USER_RW)
    mmu.write_cr3(t.cr3)
    assert mmu.translate(VA) == 0x333000


def test_invlpg_drops_the_whole_large_page(mem):
    t = Tables(mem)
    pde = t.map(0x4000_0000, 0x200, size=2 << 20)
    mmu = long_mode_mmu(mem, t.cr3)
    mmu.translate(0x4000_0000), mmu.translate(0x4010_0000)
    mem.write64(pde, (0x400 << 12) | USER_RW | PTE_PS)
    mmu.invlpg(0x4000_0000)
    assert mmu.translate(0x4010_0000) == 0x40_0000 + 0x10_0000


def test_tlb_frame_lists_cached_translations(mem):
    t = Tables(mem)
    t.map(VA, 0x111, USER_RW | PTE_G)
    mmu = long_mode_mmu(mem, t.cr3)
    mmu.translate(VA)
    df = mmu.tlb_frame()
    assert list(df.va) == [VA] and list(df.mfn) == [0x111] and bool(df["global"][0])


# -- NX ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("level", [4, 3, 2, 1])
def test_nx_at_any_level_blocks_fetch(mem, level):
    t = Tables(mem)
    t.map(VA, 0x999)
    a = t.entry_addr(VA, level)
    mem.write64(a, mem.read64(a) | PTE_NX)
    mmu = long_mode_mmu(mem, t.cr3)
    assert mmu.translate(VA) == 0x999000
    assert fault_of(lambda: mmu.translate(VA, fetch=True)).code == PF_P | PF_ID


def test_nx_is_reserved_without_efer_nxe_and_id_bit_disappears(mem):
    t = Tables(mem)
    t.map(VA, 0x999, USER_RW | PTE_NX)
    mmu = long_mode_mmu(mem, t.cr3, nxe=False)
    f = fault_of(lambda: mmu.translate(VA, fetch=True))
    assert f.code == PF_P | PF_RSVD                    # no I/D without NXE or SMEP


# -- the address field and MAXPHYADDR -------------------------------------------------------------

def test_address_bits_above_maxphyaddr_are_reserved(mem):
    t = Tables(mem)
    t.map(VA, 1 << 28)                               # frame at 1 TiB: bit 40 set
    mmu = long_mode_mmu(mem, t.cr3)
    assert fault_of(lambda: mmu.translate(VA)).code == PF_P | PF_RSVD
    mmu.state[R.MAXPHYADDR] = 46
    mmu.flush()
    assert mmu.translate(VA) == 1 << 40


# -- error-code bits, one by one -----------------------------------------------------------------

def test_every_error_code_bit(mem):
    t = Tables(mem)
    t.map(VA, 0x999, PTE_P | PTE_US | PTE_NX)       # user, read-only, no-exec
    t.map(VA + 0x1000, 0x998, PTE_P | PTE_RW)       # supervisor only
    user = long_mode_mmu(mem, t.cr3, cpl=3)
    assert fault_of(lambda: user.translate(VA + 0x2000)).code == PF_US          # not present
    assert fault_of(lambda: user.translate(VA, write=True)).code == PF_P | PF_WR | PF_US
    assert fault_of(lambda: user.translate(VA + 0x1000)).code == PF_P | PF_US
    assert fault_of(lambda: user.translate(VA, fetch=True)).code == PF_P | PF_US | PF_ID
    a = t.entry_addr(VA, 1)
    mem.write64(a, mem.read64(a) | (1 << 45))
    user.flush()
    assert fault_of(lambda: user.translate(VA)).code == PF_P | PF_US | PF_RSVD
    assert decode_pf_error(PF_P | PF_WR | PF_US) == "P|W|U"


def test_non_canonical_address_is_gp_not_pf(mem):
    t = Tables(mem)
    mmu = long_mode_mmu(mem, t.cr3)
    f = fault_of(lambda: mmu.translate(0x0000_8000_0000_0000))
    assert f.vector == VEC_GP


def test_high_half_addresses_walk(mem):
    t = Tables(mem)
    hi = -0x8000_0000 & 0xFFFF_FFFF_FFFF_FFFF       # 0xffffffff80000000
    t.map(hi, 0x777)
    assert long_mode_mmu(mem, t.cr3).translate(hi + 5) == 0x777005
    df = pagetable_frame(mem, t.cr3)
    assert df[df.leaf].va.iloc[0] == -0x8000_0000


# -- paging off, PAE -------------------------------------------------------------------------------

def test_paging_off_is_identity(mem):
    mmu = MMU.Mmu(mem)
    assert mmu.translate(0x1234_5678) == 0x1234_5678


def pae_setup(mem):
    """PDPT at 0x3000 (32-byte aligned), PD at 0x4000, PT at 0x5000."""
    mem.write64(0x3000 + 8 * 1, 0x4000 | PTE_P)
    mem.write64(0x4000 + 8 * 2, 0x5000 | USER_RW)
    mem.write64(0x5000 + 8 * 3, 0x999000 | USER_RW)
    mem.write64(0x4000 + 8 * 4, 0xA00000 | USER_RW | PTE_PS)
    mmu = MMU.Mmu(mem)
    st = mmu.state
    st[R.CR4] |= R.CR4_PAE
    st[R.CR3] = 0x3000
    mmu.write_cr0(int(st[R.CR0]) | R.CR0_PE | R.CR0_PG)
    mmu.write_cr3(0x3000)
    return mmu


def test_pae_three_level_walk_and_2mib_page(mem):
    mmu = pae_setup(mem)
    va = (1 << 30) | (2 << 21) | (3 << 12) | 0x45
    assert mmu.translate(va) == 0x999045
    assert mmu.translate((1 << 30) | (4 << 21) | 0x1234) == 0xA01234
    w = walk(mem, 0x3000, va, mode=3)
    assert [s.name for s in w.steps] == ["PDPTE", "PDE", "PTE"]
    assert w.maddr == 0x999045


def test_pae_pdptes_are_registers_loaded_by_cr3(mem):
    mmu = pae_setup(mem)
    va = (1 << 30) | (2 << 21) | (3 << 12)
    mem.write64(0x3000 + 8 * 1, 0)                  # PDPTE gone in memory...
    mmu.flush()
    assert mmu.translate(va) == 0x999000            # ...but not in the register
    mmu.write_cr3(0x3000)
    assert fault_of(lambda: mmu.translate(va)).code == 0


def test_pae_pdpte_reserved_bits_make_cr3_load_gp(mem):
    mmu = pae_setup(mem)
    mem.write64(0x3000, 0x4000 | PTE_P | PTE_RW)    # RW is reserved in a PDPTE
    f = fault_of(lambda: mmu.write_cr3(0x3000))
    assert f.vector == VEC_GP


# -- views ----------------------------------------------------------------------------------------

def test_walk_steps_report_addresses_raw_values_and_frames(mem):
    t = Tables(mem)
    t.map(VA, 0x999, USER_RW | PTE_G)
    w = walk(mem, t.cr3, VA)
    assert [s.name for s in w.steps] == ["PML4E", "PDPTE", "PDE", "PTE"]
    assert w.steps[0].entry_maddr == t.cr3 + 8 * ((VA >> 39) & 511)
    assert w.steps[-1].frame == 0x999 and w.steps[-1].raw == mem.read64(t.entry_addr(VA, 1))
    assert w.steps[-1].flags == ["P", "RW", "US", "G"]
    assert "PTE" in repr(w) and len(w.frame()) == 4


def test_pagetable_frame_lists_every_present_entry(mem):
    t = Tables(mem)
    for i in range(700):                              # spans two L1 tables
        t.map(VA + i * 4096, 0x1000 + i)
    t.map(0x4000_0000, 0x200, size=2 << 20)
    df = pagetable_frame(mem, t.cr3)
    leaves = df[df.leaf]
    assert len(leaves) == 701
    assert set(leaves.level) == {1, 2}
    assert (leaves[leaves.level == 1].sort_values("va").target_mfn.values
            == 0x1000 + np.arange(700)).all()
    assert len(df[df.level == 1]) == 700 and (df.va_end > df.va).all()
    assert df["bits"].iloc[0] == "P RW US"


def test_decode_flags_reads_bit7_by_level():
    assert decode_flags(PTE_P | PTE_PS, 2) == ["P", "PS"]
    assert decode_flags(PTE_P | PTE_PAT, 1) == ["P", "PAT"]
    assert decode_flags(PTE_NX | PTE_P) == ["P", "NX"]


# -- property test: the MMU against the reference walker -------------------------------------------

entry_bits = st.integers(0, 0xFFF) | st.sampled_from([PTE_NX, 1 << 45, 1 << 51, 1 << 55])


@st.composite
def walk_case(draw):
    ctl = dict(wp=draw(st.booleans()), nxe=draw(st.booleans()), smep=draw(st.booleans()),
               cpl=draw(st.sampled_from([0, 3])))
    flags = [draw(st.integers(0, 0xFFF)) | (PTE_P if draw(st.integers(0, 9)) else 0)
             | draw(st.sampled_from([0, 0, 0, PTE_NX, 1 << 45, 1 << 51, 1 << 60]))
             for _ in range(4)]
    frame = draw(st.integers(0x1000, 0xFFFFF)) << 9 if draw(st.booleans()) else \
        draw(st.integers(0x1000, 0xFFFFFFF))
    access = draw(st.sampled_from(["r", "w", "x"]))
    offset = draw(st.integers(0, (1 << 30) - 1))
    return ctl, flags, frame, access, offset


@given(walk_case())
def test_mmu_agrees_with_reference_walker(case):
    ctl, flags, frame, access, offset = case
    mem = Memory()
    va = 0x0000_1234_4000_0000 + offset
    tables = [0x10, 0x11, 0x12, 0x13]
    idx = [(va >> s) & 511 for s in (39, 30, 21, 12)]
    for lv in range(4):
        target = tables[lv + 1] if lv < 3 else frame
        mem.write64((tables[lv] << 12) + 8 * idx[lv],
                    ((target << 12) & ((1 << 52) - 1)) | flags[lv])
    mmu = long_mode_mmu(mem, tables[0] << 12, wp=ctl["wp"], nxe=ctl["nxe"],
                        smep=ctl["smep"], cpl=ctl["cpl"])
    st_ = mmu.state
    write, fetch, user = access == "w", access == "x", ctl["cpl"] == 3
    try:
        want = refwalk.translate(mem, cr0=int(st_[R.CR0]), cr3=int(st_[R.CR3]),
                                 cr4=int(st_[R.CR4]), efer=int(st_[R.EFER]), va=va,
                                 write=write, user=user, fetch=fetch)
    except refwalk.Fault as f:
        want = f
    ref_mem = Memory()
    for lv in range(4):
        a = (tables[lv] << 12) + 8 * idx[lv]
        ref_mem.write64(a, mem.read64(a))
    try:
        got = mmu.translate(va, write=write, fetch=fetch)
    except PageFault as f:
        assert isinstance(want, refwalk.Fault), f"MMU faulted ({f}), reference gave {want}"
        assert (f.vector, f.code) == ((VEC_PF, want.code) if want.kind == "pf" else (VEC_GP, 0))
        for lv in range(4):                          # no A/D changes on a fault
            a = (tables[lv] << 12) + 8 * idx[lv]
            assert mem.read64(a) == ref_mem.read64(a)
        return
    assert not isinstance(want, refwalk.Fault), f"MMU gave {got:#x}, reference faulted {want.code:#x}"
    assert got == want[0]
    refwalk.set_ad(ref_mem, want[1], write)
    for lv in range(4):
        a = (tables[lv] << 12) + 8 * idx[lv]
        assert mem.read64(a) == ref_mem.read64(a), f"A/D differ at level {4 - lv}"


@given(st.lists(st.integers(0, 2047), min_size=1, max_size=50), st.integers(0, 2**32))
def test_batch_walkers_agree_with_reference(pages, seed):
    from xenlab.bench.mmu import build_tree, numpy_walk
    mem = Memory()
    cr3, vas, frames = build_tree(mem, 1024, seed=seed)
    probe = np.array([vas[0] + (p << 12) + 7 for p in pages], dtype=np.int64)  # some unmapped
    lean = walk_many(mem, cr3, probe)
    npw = numpy_walk(mem, cr3, probe)
    for k, va in enumerate(probe):
        try:
            want = refwalk.translate(mem, cr0=1 << 31, cr3=cr3, cr4=1 << 5,
                                     efer=(1 << 10) | (1 << 11), va=int(va))[0]
        except refwalk.Fault:
            want = None
        assert (lean[k] >= 0) == (want is not None)
        if want is not None:
            assert lean[k] == want == npw[k]


def test_translate_batch_uses_tlb_and_reports_faults(mem):
    t = Tables(mem)
    for i in range(4):
        t.map(VA + i * 4096, 0x500 + i)
    mmu = long_mode_mmu(mem, t.cr3)
    out = mmu.translate_batch([VA, VA + 0x1001, VA + 0x5000, VA + 0x3FFF])
    assert list(out[[0, 1, 3]]) == [0x500000, 0x501001, 0x503FFF]
    assert out[2] < 0 and MMU.fault_vector(out[2]) == VEC_PF
    assert len(mmu.tlb_frame()) == 3
