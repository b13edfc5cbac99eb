"""Every stage's check cards fail on the 2007 hooks and pass on the reference
fix; the iopl checks tell the two wrong first tries apart."""

import pytest

from xenlab import checks
from xenlab.checks import CheckFailed
from xenlab.checks import stages as _registered  # noqa: F401
from xenlab.lab import STAGE_NAMES, Stage
from xenlab.lab.stages.iopl import set_io_privilege_boot_cpu_only, set_io_privilege_iopl3

PROFILE = "qemu-i440fx"


@pytest.mark.parametrize("name", STAGE_NAMES)
def test_checks_fail_on_2007_and_pass_on_the_fix(name):
    cards = checks.checks_for(name)
    assert len(cards) >= 3, "every stage has several checks (partial credit)"
    s = Stage(name, profile=PROFILE, seed=1)
    s.boot()
    bad = s.check()
    assert not any(r.passed for r in bad), [repr(r) for r in bad]
    assert all(r.status in ("fail", "not run") for r in bad)
    s.apply_reference_fix().boot()
    good = s.check()
    assert all(r.passed for r in good), [repr(r) for r in good]
    assert sum(r.points for r in good) == sum(c.points for c in cards)


def test_iopl_checks_tell_the_wrong_fixes_apart():
    s = Stage("iopl", profile=PROFILE, seed=1)
    s.hooks.set_io_privilege = set_io_privilege_boot_cpu_only
    s.boot()
    r = {c.name: c.status for c in s.check()}
    assert r == {"iopl_reached": "fail", "iopl_every_vcpu": "not run",
                 "iopl_user_refused": "not run"}
    s.hooks.set_io_privilege = set_io_privilege_iopl3
    s.boot()
    cards = {c.name: c for c in s.check()}
    assert cards["iopl_reached"].passed
    assert not cards["iopl_every_vcpu"].passed and "vcpu0: 3" in cards["iopl_every_vcpu"].found
    assert not cards["iopl_user_refused"].passed
    assert "completed in user mode" in cards["iopl_user_refused"].found


def test_a_card_says_what_it_saw():
    s = Stage("toolchain", profile=PROFILE, seed=1)
    s.boot()
    card = {c.name: c for c in s.check()}["toolchain_bss_clear"]
    bss = s.state.xenboot.bss[1] - s.state.xenboot.bss[0]
    assert card.found == f"rep stosq count {bss:#x} ({bss * 8:#x} bytes)"
    assert "head.s" in card.hint


def test_grading_mode_raises_on_a_failed_stage_check(monkeypatch):
    s = Stage("pci_config", profile=PROFILE)
    s.boot()
    monkeypatch.setenv("XENLAB_GRADING", "1")
    with pytest.raises(CheckFailed):
        checks.run("pci_config_reached", s)
