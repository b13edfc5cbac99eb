"""Lab 06's checks: the questions read the 2007 boot of each variant (and differ
between machines), the native check fails unfixed ("not run") and passes fixed,
and a fix that tags every PFN foreign breaks i86pc."""

from xenlab import checks
from xenlab.kernel.intel.hat import PFN_IS_FOREIGN_MFN
from xenlab.lab import LAB_PROFILES, Stage
from xenlab.lab.stages.foreign_pfn import rootnex_reg_pfn_fixed

from .cardlib import card


def test_questions_read_the_2007_boot_of_the_variant():
    s = Stage("foreign_pfn", profile="dell-optiplex755", seed=2)
    assert card("q_fpfn_bar_pfn", s).status == "fail"          # no answer yet
    assert card("q_fpfn_bar_pfn", s, 0xFD000, "fpfn_bar_pfn").passed   # vgatext0's BAR
    assert not card("q_fpfn_bar_pfn", s, 0xFD000000, "fpfn_bar_pfn").passed  # the address
    assert card("q_fpfn_nr_pages", s, 0xEEBFF, "fpfn_nr_pages").passed
    assert not card("q_fpfn_nr_pages", s, 0xEEC00, "fpfn_nr_pages").passed
    assert card("q_fpfn_foreign_bit", s, 51, "fpfn_foreign_bit").passed
    assert PFN_IS_FOREIGN_MFN == 1 << 51


def test_question_answers_differ_between_machines():
    pfns = {p: checks.foreign_pfn.q_fpfn_bar_pfn(Stage("foreign_pfn", profile=p, seed=1))
            for p in LAB_PROFILES}
    sizes = {p: checks.foreign_pfn.q_fpfn_nr_pages(Stage("foreign_pfn", profile=p, seed=1))
             for p in LAB_PROFILES}
    assert len(set(pfns.values())) >= 3
    assert len(set(sizes.values())) == len(LAB_PROFILES)


def test_native_check_fails_unfixed_and_passes_fixed():
    s = Stage("foreign_pfn", profile="qemu-i440fx", seed=1)
    s.boot()
    assert card("foreign_pfn_native", s).status == "not run"
    s.hooks.rootnex_reg_pfn = rootnex_reg_pfn_fixed
    s.boot()
    assert card("foreign_pfn_native", s).passed


def always_foreign(platform, paddr):
    return (paddr >> 12) | PFN_IS_FOREIGN_MFN


def test_a_fix_that_ignores_the_platform_breaks_i86pc():
    s = Stage("foreign_pfn", profile="qemu-i440fx", seed=1)
    s.hooks.rootnex_reg_pfn = always_foreign
    s.boot()
    assert card("foreign_pfn_reached", s).passed
    assert card("foreign_pfn_foreign", s).passed
    assert not card("foreign_pfn_native", s).passed
