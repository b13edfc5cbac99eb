"""The labs' question checks, previews and the other boots checks read:
answers compared with the 2007 boot of the student's variant, never revealing
the value; hidden checks on another machine; native checks that tell apart
fixes which break i86pc."""

import pytest

from xenlab import checks
from xenlab.checks import MIME, _model
from xenlab.lab import LAB_PROFILES, Stage, lab_profile, other_profile
from xenlab.lab.stages.iopl import set_io_privilege_fixed
from xenlab.xen.abi import PHYSDEVOP_set_iopl

PROFILE = "qemu-i440fx"
from .cardlib import card


@pytest.fixture
def pci():
    return Stage("pci_config", profile=PROFILE, seed=3)


def test_question_reads_the_2007_boot_and_never_shows_the_value(pci):
    assert pci.state is None                         # the student's stage need not be booted
    none = card("q_pci_native_entry", pci)
    assert none.status == "fail" and "ANSWER_NATIVE_ENTRY is None" in none.found
    wrong = card("q_pci_native_entry", pci, 0xF0000, "pci_native_entry")
    assert wrong.status == "fail" and "f0110" not in repr(wrong).lower()
    right = card("q_pci_native_entry", pci, 0xF0110, "pci_native_entry")
    assert right.passed and right.points == 1


@pytest.mark.parametrize("typed", [0xCF8, 3320, "0xcf8", " 0xCF8 ", "0x0cf8"])
def test_numbers_may_be_typed_several_ways(typed):
    s = Stage("iopl", profile=PROFILE, seed=3)
    assert card("q_iopl_port", s, typed, "iopl_port").passed


@pytest.mark.parametrize("typed", [True, 0xCF9, "cf8x", 3320.0, [0xCF8]])
def test_other_values_are_wrong_not_errors(typed):
    s = Stage("iopl", profile=PROFILE, seed=3)
    assert card("q_iopl_port", s, typed, "iopl_port").status == "fail"


def test_names_with_or_without_their_class():
    s = Stage("platforms", profile=PROFILE, seed=3)
    truth = checks.platforms.q_platforms_first_missing(s)
    assert truth
    for typed in (truth, f"drv/{truth}", f" {truth.upper()} "):
        assert card("q_platforms_first_missing", s, typed, "platforms_first_missing").passed
    assert not card("q_platforms_first_missing", s, "zz" + truth,
                    "platforms_first_missing").passed


def test_the_truth_ignores_the_students_hooks():
    """After the fix the boot no longer faults; the question still has its answer."""
    s = Stage("iopl", profile=PROFILE, seed=3)
    s.hooks.set_io_privilege = set_io_privilege_fixed
    s.boot()
    assert s.result.ok
    assert card("q_iopl_port", s, 0xCF8, "iopl_port").passed


def test_truth_differs_between_machines():
    mfns = {p: checks.tour.q_tour_si_mfn(Stage("iopl", profile=p, seed=1))
            for p in LAB_PROFILES}
    assert len(set(mfns.values())) == len(LAB_PROFILES)


def test_preview_shows_a_card_without_the_check_output(pci):
    pci.boot()
    p = checks.preview("pci_config_reached", pci)
    assert not p.passed and "not graded" in p._repr_html_()
    assert not hasattr(p, "_repr_mimebundle_") and MIME not in p._repr_html_()


def test_other_variant_boots_the_students_hooks_elsewhere_and_is_cached():
    s = Stage("pci_config", profile=lab_profile(5), seed=5)
    s.hooks.pci_config_mechanism = lambda platform, probe: 1 if platform == "i86xen" else probe()
    o = checks.other_variant(s)
    assert (o.profile, o.seed) == (other_profile(5), 6) and o.profile != s.profile
    assert o.hooks.pci_config_mechanism is s.hooks.pci_config_mechanism and o.result.ok
    assert checks.other_variant(s) is o
    s.hooks.pci_config_mechanism = lambda platform, probe: probe()
    assert checks.other_variant(s) is not o and not checks.other_variant(s).result.ok


@pytest.mark.parametrize("stage, hook, wrong, check", [
    ("boot_kmdb", "early_console", lambda p, b, x: "hypervisor", "boot_kmdb_native"),
    ("pci_config", "pci_config_mechanism", lambda p, probe: 1, "pci_config_native_bios"),
    ("iopl", "set_io_privilege", lambda cpu: cpu.physdev_op(PHYSDEVOP_set_iopl, iopl=1),
     "iopl_native"),
])
def test_native_checks_catch_fixes_that_forget_i86pc(stage, hook, wrong, check):
    s = Stage(stage, profile=PROFILE, seed=3)
    setattr(s.hooks, hook, wrong)
    s.boot()
    assert s.result.ok                               # dom0 boots ...
    assert checks.evaluate(check, s).status == "fail"   # ... and the PC kernel does not
    s.apply_reference_fix()
    s.boot()
    assert checks.evaluate(check, s).passed


def test_cache_is_bounded():
    _model.clear_cache()
    for seed in range(_model._CACHE_SIZE + 3):
        _model.shipped_boot(Stage("toolchain", profile=PROFILE, seed=seed))
    assert len(_model._CACHE) == _model._CACHE_SIZE
