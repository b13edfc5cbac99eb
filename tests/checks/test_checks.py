from types import SimpleNamespace

import pytest

from xenlab import checks as C
from xenlab.checks import CheckFailed, Finding, check, evaluate, run


@pytest.fixture(autouse=True)
def clean_registry():
    saved = dict(C.REGISTRY)
    yield
    C.REGISTRY.clear()
    C.REGISTRY.update(saved)


def register_pair():
    @check(points=1, title="the boot reached pci_config", lab="t")
    def reached(stage):
        return Finding(stage.reached, "how far the boot went", "pci_config",
                       "pci_config" if stage.reached else "mlsetup", hint="fix mlsetup")

    @check(points=3, title="mechanism #1 is used", lab="t", parent="reached")
    def mech1(stage):
        return Finding(stage.mech == 1, "the kernel's PCI config mechanism", "1",
                       str(stage.mech), hint="PV guests cannot call the BIOS")


def test_pass_fail_and_points():
    register_pair()
    ok = evaluate("mech1", SimpleNamespace(reached=True, mech=1))
    bad = evaluate("mech1", SimpleNamespace(reached=True, mech=0))
    assert (ok.status, ok.points, ok.max_points) == ("pass", 3, 3)
    assert (bad.status, bad.points) == ("fail", 0)
    assert "PV guests" in bad._repr_html_() and "PV guests" not in ok._repr_html_()
    assert bad._repr_mimebundle_()[C.MIME]["passed"] is False


def test_failed_parent_makes_child_not_run_with_the_parents_reason():
    register_pair()
    r = evaluate("mech1", SimpleNamespace(reached=False, mech=1))
    assert r.status == "not run" and r.points == 0
    assert "the boot reached pci_config" in r.looked_at and r.found == "mlsetup"


def test_a_crashing_check_still_gives_a_card():
    @check(points=1, title="reads a missing attribute", lab="t")
    def broken(stage):
        return Finding(stage.nope == 1, "", "", "")
    r = evaluate("broken", SimpleNamespace())
    assert r.status == "error" and "AttributeError" in r.found


def test_grading_mode_raises_only_on_failure(monkeypatch):
    register_pair()
    monkeypatch.setenv("XENLAB_GRADING", "1")
    assert run("mech1", SimpleNamespace(reached=True, mech=1)).passed
    with pytest.raises(CheckFailed) as e:
        run("mech1", SimpleNamespace(reached=True, mech=2))
    assert e.value.result.name == "mech1"
    monkeypatch.delenv("XENLAB_GRADING")
    assert not run("mech1", SimpleNamespace(reached=True, mech=2)).passed


def test_unknown_check_and_duplicate_names_are_refused():
    with pytest.raises(KeyError, match="no check named 'zzz'"):
        evaluate("zzz", None)
    register_pair()

    def again(stage):
        return Finding(True, "", "", "")
    again.__module__ = "elsewhere"
    with pytest.raises(ValueError, match="defined twice"):
        check(points=1, title="x", lab="t", name="mech1")(again)
