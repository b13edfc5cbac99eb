"""Lab 12's checks: each dom0_64 card fails on the 2007 (32-bit) boot and passes
on the 64-bit one, naming what it saw; the lab's questions read the 32-bit boot
of the student's variant (the cs64 one the fixed boot), differ between machines
where the model does, and never pass a wrong answer."""

import pytest

from xenlab import checks
from xenlab.checks import dom0_64 as c
from xenlab.lab import LAB_PROFILES, Stage
from xenlab.machine import regs as R
from xenlab.xen.abi import FLAT_KERNEL_CS64, FLAT_RING1_CS

PROFILE = "qemu-i440fx"
STAGE_CHECKS = ["dom0_64_reached", "dom0_64_ring", "dom0_64_ptes", "dom0_64_hypercalls",
                "dom0_64_user_table"]
AMD64 = "/platform/i86xen/kernel/amd64/unix"


@pytest.fixture(scope="module")
def boots():
    old = Stage("dom0_64", profile=PROFILE, seed=4)
    old.boot()
    old.int82_at_boot = old.dom0.hypercall_entries["int82"]     # before any check probes
    new = Stage("dom0_64", profile=PROFILE, seed=4)
    new.hooks.dom0_kernel = lambda: AMD64
    new.boot()
    return old, new


@pytest.mark.parametrize("name", STAGE_CHECKS)
def test_each_check_fails_on_the_32_bit_dom0_and_passes_on_the_64_bit_one(boots, name):
    old, new = boots
    bad, good = checks.evaluate(name, old), checks.evaluate(name, new)
    assert bad.status == "fail" and bad.points == 0, repr(bad)
    assert good.passed and good.points == good.max_points > 0, repr(good)
    assert bad.found != good.found


def test_the_cards_say_what_they_saw(boots):
    old, new = boots
    assert "CPL 1, 32-bit PV" in checks.evaluate("dom0_64_ring", old).found
    assert "CPL 3, 64-bit PV" in checks.evaluate("dom0_64_ring", new).found
    assert "syscall 0" in checks.evaluate("dom0_64_hypercalls", old).found
    assert "0 with bit 52" in checks.evaluate("dom0_64_ptes", old).found


def answer(stage, key, value):
    stage.answers[key] = value
    return checks.evaluate(f"q_{key}", stage)


@pytest.mark.parametrize("key, right, wrong", [
    ("dom0_64_cpl32", 1, 3), ("dom0_64_cs32", FLAT_RING1_CS, FLAT_KERNEL_CS64),
    ("dom0_64_cs64", FLAT_KERNEL_CS64, FLAT_RING1_CS)])
def test_ring_and_selector_questions(key, right, wrong):
    s = Stage("dom0_64", profile=PROFILE, seed=4)
    assert answer(s, key, None).status == "fail"
    assert answer(s, key, wrong).status == "fail"
    assert f"{right:#x}" not in answer(s, key, wrong).found
    assert answer(s, key, right).passed
    assert answer(s, key, hex(right)).passed


def test_root_and_int82_answers_are_the_32_bit_boots_and_survive_the_fix(boots):
    old, new = boots
    root = int(old.dom0.vcpus[0].hw.state[R.CR3]) >> 12
    n = old.int82_at_boot
    assert root > 0 and n > 0
    s = Stage("dom0_64", profile=PROFILE, seed=4)
    s.hooks.dom0_kernel = lambda: AMD64
    s.boot()                                # the student's own boot no longer has int $0x82
    assert s.dom0.hypercall_entries["int82"] == 0
    assert answer(s, "dom0_64_root", root).passed
    assert answer(s, "dom0_64_root", root + 1).status == "fail"
    assert answer(s, "dom0_64_int82", n).passed
    assert answer(s, "dom0_64_int82", n + 1).status == "fail"


def test_root_and_int82_differ_between_machines():
    roots = {p: c.q_dom0_64_root(Stage("dom0_64", profile=p, seed=1)) for p in LAB_PROFILES}
    assert len(set(roots.values())) == len(LAB_PROFILES), roots
    counts = {p: c.q_dom0_64_int82(Stage("dom0_64", profile=p, seed=1)) for p in LAB_PROFILES}
    assert len(set(counts.values())) > 1, counts
