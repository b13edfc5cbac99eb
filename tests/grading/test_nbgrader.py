"""The nbgrader route: the real nbgrader pipeline gives the same points as xenlab grade.

A course directory from ``xenlab assign --nbgrader``; ``nbgrader generate_assignment``
releases the lab; four students' hook and answer cells (the same code they handed
in to ``xenlab grade``) go into nbgrader's release; ``nbgrader autograde`` and the
gradebook give each student's score.  nbgrader has no variants (everyone has the
lab's own seed) and trusts the notebook's run, so only honest submissions are
compared.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from .conftest import LAB

pytest.importorskip("nbgrader", reason="nbgrader is in the 'grading' extra")
HONEST = ["ada", "bob", "cyd", "dee"]


def nbgrader(course, *args):
    env = dict(os.environ)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join([root] + [p for p in env.get("PYTHONPATH", "").split(
        os.pathsep) if p])
    exe = shutil.which("nbgrader", path=env["PATH"])
    assert exe, "nbgrader is installed as a module but its command is not on PATH"
    r = subprocess.run([exe, *args], cwd=course, env=env, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return r


def test_nbgrader_autograde_gives_the_same_points(course, collected, graded, tmp_path):
    from xenlab.cli import main
    nbc = tmp_path / "nbcourse"
    assert main(["assign", "--nbgrader", str(nbc), "--labs", str(course / "labs")]) == 0
    nbgrader(nbc, "generate_assignment", LAB, "--force")
    released = nbformat.read(nbc / "release" / LAB / f"{LAB}.ipynb", as_version=4)
    assert "HIDDEN" not in str(released) and "BEGIN SOLUTION" not in str(released)
    hook_ids = {"answer_bit", "hook_pte", "hook_port"}
    for student in HONEST:
        mine = nbformat.read(collected / student / f"{LAB}.ipynb", as_version=4)
        code = {c.metadata.nbgrader["grade_id"]: c.source for c in mine.cells
                if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("grade_id")
                in hook_ids}
        nb = nbformat.from_dict(released)
        for c in nb.cells:
            gid = c.metadata.get("nbgrader", {}).get("grade_id")
            if gid in code:
                c.source = code[gid]
        d = nbc / "submitted" / student / LAB
        d.mkdir(parents=True)
        nbformat.write(nb, d / f"{LAB}.ipynb")
    nbgrader(nbc, "autograde", LAB, "--force")
    from nbgrader.api import Gradebook
    with Gradebook(f"sqlite:///{nbc / 'gradebook.db'}") as gb:
        scores = {s: gb.find_submission(LAB, s).score for s in HONEST}
        max_score = gb.find_assignment(LAB).max_score
    ours = graded[graded.student.isin(HONEST)].groupby("student").points.sum().to_dict()
    assert max_score == graded[graded.student == "ada"].max_points.sum() == 8
    assert scores == ours
    assert scores == {"ada": 8, "bob": 0, "cyd": 4, "dee": 4}
