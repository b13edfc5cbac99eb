"""Lab 07's checks: the questions read the 2007 boot (debug Xen) of each variant
and differ between machines; the native check fails unfixed ("not run") and
passes fixed; the first try (values right, foreign test by mask) is caught."""

from xenlab import checks
from xenlab.lab import LAB_PROFILES, Stage
from xenlab.lab.stages.pte_swbits import pte_is_foreign_fixed, pte_software_bits_fixed

from .cardlib import card


def test_questions_read_the_2007_boot_of_the_variant():
    s = Stage("pte_swbits", profile="qemu-i440fx", seed=2)
    assert card("q_swbits_refused_pte", s).status == "fail"           # no answer yet
    assert card("q_swbits_refused_pte", s, 0x80000000FD00087B, "swbits_refused_pte").passed
    assert not card("q_swbits_refused_pte", s, 0x80000000FD00067B,
                    "swbits_refused_pte").passed
    assert card("q_swbits_claimed_bit", s, 11, "swbits_claimed_bit").passed
    assert not card("q_swbits_claimed_bit", s, 0x800, "swbits_claimed_bit").passed
    assert card("q_swbits_refused_count", s, 4, "swbits_refused_count").passed
    assert not card("q_swbits_refused_count", s, 2, "swbits_refused_count").passed


def test_question_answers_differ_between_machines():
    counts = {p: checks.pte_swbits.q_swbits_refused_count(Stage("pte_swbits", profile=p, seed=1))
              for p in LAB_PROFILES}
    ptes = {p: checks.pte_swbits.q_swbits_refused_pte(Stage("pte_swbits", profile=p, seed=1))
            for p in LAB_PROFILES}
    assert len(set(counts.values())) == len(LAB_PROFILES)
    assert len(set(ptes.values())) >= 3
    assert all(v & 0xE00 == 0x800 for v in ptes.values())      # the 2007 PT_FOREIGN


def test_native_check_fails_unfixed_and_passes_fixed():
    s = Stage("pte_swbits", profile="qemu-i440fx", seed=1)
    s.boot()
    assert card("pte_swbits_native", s).status == "not run"
    s.hooks.pte_software_bits = pte_software_bits_fixed
    s.hooks.pte_is_foreign = pte_is_foreign_fixed
    s.boot()
    assert card("pte_swbits_native", s).passed


def by_mask(pte):
    return bool(pte & 0x600)


def test_a_foreign_test_by_mask_is_caught():
    s = Stage("pte_swbits", profile="qemu-i440fx", seed=1)
    s.hooks.pte_software_bits = pte_software_bits_fixed
    s.hooks.pte_is_foreign = by_mask
    s.boot()
    assert card("pte_swbits_avl", s).passed             # Xen accepts every entry
    assert not card("pte_swbits_reached", s).passed     # but the kernel frees a "foreign" page
    bad = card("pte_swbits_foreign_test", s)
    assert not bad.passed and "kmem" in bad.found
