"""xenlab grade over a class: points from the model, tampering flagged, the batch survives.

The class (``conftest.py``) is assigned and graded once with the real CLI on a
local process pool; each test reads the grade table it wrote.
"""

import pandas as pd
import pytest

from xenlab.grading.seeds import derive_seed

from .conftest import LAB, SECRET, STUDENTS

EXPECTED = {"ada": 8, "bob": 0, "cyd": 4, "dee": 4, "eve": 0, "fay": 0, "gus": 0, "hal": 0,
            "ivy": 0, "jon": 0, "kim": 3, "leo": 0, "max": 0, "ned": 0, "oli": 0}
CHECKS = ["toy_banner", "toy_console", "toy_console_hidden", "toy_mapped", "toy_missing_bit"]


def rows(t, student):
    return t[t.student == student].set_index("check")


def flags_of(course):
    return pd.read_csv(course / "grades" / "grades-flags.csv", keep_default_na=False)


def test_one_row_per_student_and_check_with_the_derived_seed(graded):
    assert sorted(graded.student.unique()) == sorted(STUDENTS)
    assert len(graded) == len(STUDENTS) * len(CHECKS)
    for s, g in graded.groupby("student"):
        assert sorted(g.check) == CHECKS
        assert set(g.seed) == {derive_seed(SECRET.encode(), s, LAB)}
        assert g.max_points.sum() == 8          # known even when nothing ran (ned, oli)
    assert set(graded.hidden[graded.check == "toy_console_hidden"]) == {True}


def test_totals(graded):
    got = graded.groupby("student").points.sum().to_dict()
    assert got == EXPECTED


def test_partial_credit_by_check_cell(graded):
    cyd = rows(graded, "cyd")
    assert cyd.loc[["toy_missing_bit", "toy_mapped", "toy_banner"], "points"].tolist() == [1, 2, 1]
    assert cyd.loc["toy_console", "status"] == "fail"
    assert "Probe the legacy bases" in cyd.loc["toy_console", "message"]   # what the card said
    bob = rows(graded, "bob")
    assert bob.loc["toy_mapped", "status"] == "fail" and bob.loc["toy_banner", "status"] == "not run"


def test_a_fix_hard_coded_to_the_variant_loses_the_cell_to_the_hidden_check(graded):
    dee = rows(graded, "dee")
    assert dee.loc["toy_console", "status"] == "pass" and dee.loc["toy_console", "points"] == 0
    assert "toy_console_hidden" in dee.loc["toy_console", "flags"]
    assert dee.loc["toy_console_hidden", "status"] == "fail"
    assert dee.loc["toy_console_hidden", "hidden"]


@pytest.mark.parametrize("student,kind,words", [
    ("eve", "check-tamper", "REGISTRY"),                     # patches a check's function
    ("eve", "monkey-patch", "check toy_console was replaced"),
    ("fay", "monkey-patch", "xenlab.checks.run was replaced"),   # hidden in exec(): the probe
    ("hal", "model-edit", "lab.machine"),                    # a hook that writes the model
    ("ivy", "reference", "reference_make_pte"),              # imports the reference fix
    ("ivy", "reference", "is the reference fix"),
    ("jon", "seed", "SEED = 7"),                             # changes the seed
    ("leo", "seed", "released as 'toy_console' to 'ada'"),   # hands in a classmate's copy
])
def test_tampering_voids_the_lab_with_the_reason(graded, course, student, kind, words):
    mine = rows(graded, student)
    assert (mine.points == 0).all() and (mine.status == "flagged").all()
    assert all(words in f for f in mine["flags"])       # every row says why
    f = flags_of(course)
    f = f[(f.student == student) & (f.kind == kind)]
    assert any(words in r for r in f.reason), f.to_string()
    assert set(f.scope) == {"lab"}


def test_passing_checks_of_a_tampered_lab_earned_nothing(graded):
    """The tampering students' hooks were right: the model passed, the points are 0."""
    for s in ("eve", "ivy", "jon", "leo"):
        assert (rows(graded, s).model_status == "pass").all(), s
    hal = rows(graded, "hal")          # the grader refused his hook the model: the boot failed
    assert hal.loc["toy_mapped", "model_status"] == "fail"
    assert hal.loc["toy_console_hidden", "model_status"] == "not run"


def test_a_locked_check_cell_edit_voids_only_that_cell(graded, course):
    kim = rows(graded, "kim")
    assert kim.loc["toy_banner", "status"] == "flagged" and kim.loc["toy_banner", "points"] == 0
    assert "check_banner" in kim.loc["toy_banner", "flags"]
    assert kim.loc[["toy_missing_bit", "toy_mapped"], "points"].tolist() == [1, 2]


def test_editing_the_model_outside_the_hooks_does_not_pay(graded, course):
    gus = rows(graded, "gus")
    assert gus.loc["toy_mapped", "points"] == 0 and gus.loc["toy_mapped", "model_status"] == "fail"
    assert gus.loc["toy_mapped", "message"].startswith("passed")   # his notebook said so
    assert "passed in the notebook but not against the model" in gus.loc["toy_mapped", "flags"]
    assert "lab.machine.memory.write64" in gus.loc["toy_mapped", "flags"]
    f = flags_of(course)
    assert (f[f.student == "gus"].kind == "model-edit").any()


def test_crash_loop_and_unreadable_notebooks_get_a_status_and_zero(graded):
    mx, ned, oli = rows(graded, "max"), rows(graded, "ned"), rows(graded, "oli")
    assert set(mx.status) == {"crashed"} and "kernel died" in mx.message.iloc[0]
    assert (mx.model_status == "pass").all()          # the hooks were right; the notebook died
    assert set(ned.status) == {"timeout"} and (ned.points == 0).all()
    assert set(oli.status) == {"missing"} and "cannot read" in oli.message.iloc[0]


def test_summary_checks_and_feedback(graded, course):
    d = course / "grades"
    s = pd.read_csv(d / "grades-summary.csv").iloc[0]
    assert (s.lab, s.students, s.max_points, s["max"], s.full_marks) == (LAB, 15, 8, 8, 1)
    assert s.flagged == 7 and s.timeout == 1 and s.crashed == 1
    assert s["mean"] == pytest.approx(sum(EXPECTED.values()) / 15)
    c = pd.read_csv(d / "grades-checks.csv").set_index("check")
    assert c.loc["toy_mapped", "credited"] == 4          # ada, cyd, dee, kim
    ada = (d / "feedback" / "ada" / f"{LAB}.html").read_text()
    assert "8 / 8</b> points" in ada and "The console works on another machine" in ada
    eve = (d / "feedback" / "eve" / f"{LAB}.html").read_text()
    assert "Flagged for review" in eve and "REGISTRY" in eve
    mx = (d / "feedback" / "max" / f"{LAB}.html").read_text()
    assert "did not finish" in mx


def test_plot_is_a_histogram_per_check(graded):
    import matplotlib
    matplotlib.use("Agg")
    from xenlab.grading import plot
    fig = plot(graded)
    axes = [a for a in fig.axes if a.get_visible()]
    assert len(axes) == len(CHECKS)
    for ax in axes:
        assert sum(p.get_height() for p in ax.patches) == len(STUDENTS)
    mapped = next(a for a in axes if a.get_title().startswith("toy_mapped"))
    heights = [p.get_height() for p in mapped.patches]
    assert heights[0] == 11 and heights[-1] == 4          # 11 students at 0, 4 at 2 points
