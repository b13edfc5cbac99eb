"""Grading end to end on the real model: a lab over ``Stage("pci_config")``.

Until ``labs/04_pci_config.ipynb`` lands, ``fixtures/pci_config.ipynb`` (same shape,
same stage, same checks) stands in: ``xenlab assign``, then ``xenlab grade`` of a
solution, the 2007 code, and a hook that imports the reference fix; and the real
nbgrader pipeline on the same lab giving the same points.
"""

from pathlib import Path

import nbformat
import pytest

from xenlab.grading.labfile import read_lab

from .fixtures.build_pci_lab import NAME, build

PCI = Path(__file__).resolve().parent / "fixtures" / NAME
LAB = "pci_config"
SECRET = b"another-course-secret-0123456789"
SOLVED = '''\
def my_pci_config_mechanism(platform, pci_bios_probe):
    return PCI_MECHANISM_1 if platform == "i86xen" else pci_bios_probe()

lab.hooks.pci_config_mechanism = my_pci_config_mechanism'''
REFERENCE = '''\
from xenlab.lab.stages.pci_config import pci_config_mechanism_fixed

lab.hooks.pci_config_mechanism = pci_config_mechanism_fixed'''


def test_fixture_matches_its_builder():
    assert nbformat.read(PCI, as_version=4) == build()
    lab = read_lab(PCI)
    assert lab.hooks == ["pci_config_mechanism"]
    assert lab.role("check")[1].calls == [("pci_config_mechanism", False),
                                         ("pci_config_mechanism", True)]


def with_hook(nb, src):
    nb = nbformat.from_dict(nb)
    for c in nb.cells:
        if (c.metadata.get("nbgrader") or {}).get("grade_id") == "hook_mech":
            c.source = src
    return nb


@pytest.fixture(scope="module")
def pci_class(tmp_path_factory):
    from xenlab.grading.assign import assign
    root = tmp_path_factory.mktemp("pci")
    rows = assign([PCI], ["sol", "old", "ref"], SECRET, root / "release")
    subs = root / "submissions"
    for r in rows:
        nb = nbformat.read(r["path"], as_version=4)
        nb = {"sol": with_hook(nb, SOLVED), "old": nb, "ref": with_hook(nb, REFERENCE)}[r["student"]]
        (subs / r["student"]).mkdir(parents=True)
        nbformat.write(nb, subs / r["student"] / f"{LAB}.ipynb")
    return root


@pytest.fixture(scope="module")
def pci_graded(pci_class):
    from xenlab.grading import grade
    return grade(sorted((pci_class / "submissions").glob(f"*/{LAB}.ipynb")), [PCI], SECRET,
                 out=pci_class / "grades.csv", workers=2, timeout=300, progress=False)


def test_grades_on_the_real_model(pci_graded):
    t = pci_graded
    totals = t.groupby("student").points.sum().to_dict()
    assert totals == {"sol": 6, "old": 0, "ref": 0}
    sol = t[t.student == "sol"]
    assert list(zip(sol.check, sol.hidden, sol.points)) == [
        ("pci_config_accessors", False, 1), ("pci_config_mechanism", False, 2),
        ("pci_config_mechanism", True, 2), ("pci_config_reached", False, 1)]
    old = t[t.student == "old"].set_index(["check", "hidden"])
    assert old.loc[("pci_config_reached", False), "status"] == "fail"
    assert "pci_cfgspace_init" in old.loc[("pci_config_reached", False), "message"] or \
        old.loc[("pci_config_reached", False), "message"]
    ref = t[t.student == "ref"]
    assert set(ref.status) == {"flagged"} and set(ref.model_status) == {"pass"}
    assert all("pci_config_mechanism_fixed" in f or "reference fix" in f for f in ref["flags"])


def test_nbgrader_agrees_on_the_real_model(pci_class, pci_graded, tmp_path):
    pytest.importorskip("nbgrader")
    from xenlab.cli import main

    from .test_nbgrader import nbgrader
    nbc = tmp_path / "nbcourse"
    assert main(["assign", "--nbgrader", str(nbc), "--labs", str(PCI)]) == 0
    nbgrader(nbc, "generate_assignment", LAB, "--force")
    released = nbformat.read(nbc / "release" / LAB / f"{LAB}.ipynb", as_version=4)
    for student, src in (("sol", SOLVED), ("old", None)):
        d = nbc / "submitted" / student / LAB
        d.mkdir(parents=True)
        nbformat.write(with_hook(released, src) if src else released, d / f"{LAB}.ipynb")
    nbgrader(nbc, "autograde", LAB, "--force")
    from nbgrader.api import Gradebook
    with Gradebook(f"sqlite:///{nbc / 'gradebook.db'}") as gb:
        scores = {s: gb.find_submission(LAB, s).score for s in ("sol", "old")}
    ours = pci_graded.groupby("student").points.sum().to_dict()
    assert scores == {"sol": ours["sol"], "old": ours["old"]} == {"sol": 6, "old": 0}
