"""The real labs (``labs/*.ipynb``), once they land, through assign and grade.

For each lab: a student who hands in the instructor's solution gets full marks
from the model, and one who hands in the 2007 code gets less (every check fails
on the shipped hooks, docs/lab-format.md).  One lab runs in the default test
run (the first of 04_pci_config, 05_*, or whichever exists); the rest are slow.
"""

from pathlib import Path

import nbformat
import pytest

from xenlab.tools.nbrun import is_exploration

ROOT = Path(__file__).resolve().parents[2]
LABS = sorted(p for p in (ROOT / "labs").glob("*.ipynb")
              if not is_exploration(p))       # 9x_: exploration notebooks, not graded
DEFAULT = next((p for p in LABS if p.name.startswith("04_")), LABS[0] if LABS else None)
SECRET = b"labs-course-secret-0123456789abcdef"


def params():
    return [pytest.param(p, id=p.stem, marks=() if p == DEFAULT else pytest.mark.slow)
            for p in LABS]


@pytest.mark.skipif(not LABS, reason="labs/*.ipynb have not landed yet (grading is tested on "
                                     "tests/grading/fixtures until then)")
@pytest.mark.parametrize("path", params())
def test_solution_gets_full_marks_and_the_2007_code_does_not(path, tmp_path):
    from xenlab.grading import grade
    from xenlab.grading.assign import assign
    from xenlab.grading.labfile import read_lab, source
    lab = read_lab(path)
    key = {c.grade_id: c.source for c in lab.cells if c.role in ("hook", "answer")}
    rows = assign([path], ["solved", "shipped"], SECRET, tmp_path / "release")
    for r in rows:
        nb = nbformat.read(r["path"], as_version=4)
        if r["student"] == "solved":          # the instructor's code: markers are comments
            for c in nb.cells:
                gid = (c.metadata.get("nbgrader") or {}).get("grade_id")
                if gid in key:
                    c.source = key[gid]
        d = tmp_path / "submissions" / r["student"]
        d.mkdir(parents=True)
        nbformat.write(nb, d / path.name)
    t = grade(sorted((tmp_path / "submissions").glob(f"*/{path.name}")), [path], SECRET,
              workers=2, timeout=900, progress=False)
    solved, shipped = (t[t.student == s] for s in ("solved", "shipped"))
    assert (solved.status == "pass").all(), solved[["check", "status", "message", "flags"]]
    assert solved.points.sum() == solved.max_points.sum() > 0
    assert shipped.points.sum() < shipped.max_points.sum()
    assert not (shipped.status == "flagged").any()
    _ = source
