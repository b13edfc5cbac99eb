"""Every lab runs headless in a fresh kernel, as shipped and with solutions.

For each ``labs/*.ipynb`` (and the harness's own fixture lab):

- stored clean: no outputs, no execution counts, the ``python3`` kernelspec;
- as the student receives it (``strip_solutions``): nothing raises except
  check cells, with a check's exception; every check fails (the 2007 code);
- with the solutions: nothing raises and every check passes.

The rules live in :mod:`xenlab.tools.nbrun`; the tests at the bottom prove
the harness itself catches what it must.
"""

from pathlib import Path

import nbformat
import pytest

from xenlab.tools.nbrun import CHECK_MIME, is_exploration, judge, run_notebook

from .fixtures.build_fixture import NAME as FIXTURE_NAME, build as build_fixture

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
LABS = sorted((ROOT / "labs").glob("*.ipynb"))
NOTEBOOKS = LABS + [FIXTURES / FIXTURE_NAME]
ids = [p.name for p in NOTEBOOKS]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_stored_without_outputs_and_with_python3_kernel(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3", \
        f"{path.name}: kernelspec must be python3 (JupyterLab asks otherwise)"
    dirty = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"
             and (c.get("outputs") or c.get("execution_count") is not None)]
    assert not dirty, f"{path.name}: cells {dirty} are stored with outputs; clear them"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_as_shipped_only_checks_fail(path):
    run = run_notebook(path, solutions=False, timeout=600)
    if is_exploration(path):          # 9x_: runs clean, has nothing to grade
        assert run.problems() == [] and not run.check_cells
        return
    assert run.check_cells, f"{path.name} has no check cells (tag them 'check')"
    assert run.problems() == []
    assert not run.checks()["passed"].any() or any(
        "check-passes-unfixed" in c.tags for c in run.check_cells)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_with_solutions_every_check_passes(path):
    run = run_notebook(path, solutions=True, timeout=600, env={"XENLAB_GRADING": "1"})
    assert run.problems() == []
    checks = run.checks()
    assert len(checks) >= len(run.check_cells) and checks["passed"].all()


def test_fixture_matches_its_builder():
    stored = nbformat.read(FIXTURES / FIXTURE_NAME, as_version=4)
    assert stored == build_fixture(), "run tests/labs/fixtures/build_fixture.py"


# --------------------------------------------------------------------------
# the harness catches what it must
# --------------------------------------------------------------------------

def executed(*cells):
    """A notebook as nbclient leaves it: (source, tags, outputs) per cell."""
    nb = nbformat.v4.new_notebook()
    for src, tags, outputs in cells:
        c = nbformat.v4.new_code_cell(src)
        c.metadata["tags"] = tags
        c.outputs = outputs
        nb.cells.append(c)
    return nb


def err(ename, evalue="boom"):
    return nbformat.v4.new_output("error", ename=ename, evalue=evalue, traceback=[])


def card(name, passed):
    return nbformat.v4.new_output("display_data", data={
        CHECK_MIME: {"name": name, "passed": passed, "points": 1}, "text/plain": name})


def test_judge_student_rules():
    nb = executed(("1/0", [], [err("ZeroDivisionError")]),
                  ("check()", ["check"], [card("a", False), err("CheckFailed")]),
                  ("check()", ["check"], [err("ValueError")]),
                  ("check()", ["check"], [card("b", True)]),
                  ("check()", ["check", "check-passes-unfixed"], [card("c", True)]),
                  ("pass", ["check"], []))
    probs = judge(nb, name="t", solutions=False).problems()
    assert len(probs) == 4
    assert "cell 0" in probs[0] and "ZeroDivisionError" in probs[0]
    assert "cell 2" in probs[1] and "ValueError" in probs[1]
    assert "cell 3" in probs[2] and "passes on the shipped" in probs[2]
    assert "cell 5" in probs[3] and "reported no check" in probs[3]


def test_judge_solution_rules():
    nb = executed(("x", [], []),
                  ("check()", ["check"], [card("a", True)]),
                  ("check()", ["check"], [card("b", False)]),
                  ("check()", ["check"], [card("c", False), err("CheckFailed", "c failed")]))
    run = judge(nb, name="t", solutions=True)
    probs = run.problems()
    assert len(probs) == 2
    assert "cell 2" in probs[0] and "['b']" in probs[0]
    assert "cell 3" in probs[1] and "CheckFailed" in probs[1]
    assert run.checks()["passed"].tolist() == [True, False, False]


def test_a_real_kernel_run_catches_errors(tmp_path):
    """A notebook whose non-check cell raises fails the harness, for real."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell("import xenlab.viz\nraise KeyError('no stage')"),
                nbformat.v4.new_code_cell("print('still runs')")]
    nb.cells.append(nbformat.v4.new_code_cell(
        "from IPython.display import display\n"
        f"display({{{CHECK_MIME!r}: {{'name': 'k', 'passed': True, 'points': 1}}}}, raw=True)"))
    nb.cells[2].metadata["tags"] = ["check"]
    path = tmp_path / "bad.ipynb"
    nbformat.write(nb, path)
    run = run_notebook(path, solutions=True, timeout=120)
    assert [p.split(":")[0] for p in run.problems()] == ["cell 0 ('import xenlab.viz')"]
    assert "KeyError" in run.problems()[0]
    assert run.checks()[["name", "passed"]].values.tolist() == [["k", True]]


def test_exploration_notebooks_are_named_9x():
    assert is_exploration("labs/90_explore_memory.ipynb") and is_exploration("99_x.ipynb")
    for name in ("09_x.ipynb", "12_dom0_64.ipynb", "900_x.ipynb", "9a_x.ipynb"):
        assert not is_exploration(name)
