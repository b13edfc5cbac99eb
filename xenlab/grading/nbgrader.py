"""The nbgrader route: a course directory whose sources are xenlab labs.

``nbgrader_course(labs, COURSE)`` writes ``COURSE/source/LAB/LAB.ipynb`` for each
lab and an ``nbgrader_config.py``; then nbgrader's own commands take over
(``nbgrader generate_assignment``, collect, ``nbgrader autograde``, ``export``).

The source given to nbgrader is :func:`xenlab.tools.release.strip_solutions`
of the lab with its hidden checks kept (``hidden=False``): the student gets the
2007 code in the hook cells, as with ``xenlab assign``, instead of nbgrader's
``raise NotImplementedError()``, so hook and answer cells are plain editable
cells for nbgrader (not "solution" cells, whose whole source nbgrader would
replace); setup, boot and check cells stay locked, and check cells are
nbgrader grade cells whose points are the sum of their checks' points.
nbgrader removes the hidden regions when it releases and puts them back when
it autogrades, so the hidden checks run then.

What nbgrader does not do: variants (every student gets the lab's own seed),
and the model-based tamper checks of ``xenlab grade`` (nbgrader trusts the
notebook's run).  On an honest submission the points are the same: a check
cell is all-or-nothing in both.
"""

from __future__ import annotations

import csv
from pathlib import Path

from ..tools.release import strip_solutions
from .labfile import read_lab, role_of

CONFIG = '''\
# nbgrader configuration for a xenlab course (written by `xenlab assign --nbgrader`).
c = get_config()
c.CourseDirectory.course_id = {course!r}
# a lab boots emulated machines: give each cell time (the default is 30 s)
c.Execute.timeout = {timeout}
'''


def nbgrader_source(nb_or_path, name: str | None = None):
    """The notebook nbgrader's ``source/`` folder gets for a lab."""
    lab = read_lab(nb_or_path, name)
    nb = strip_solutions(lab.nb, hidden=False)
    for cell in nb["cells"]:
        if cell.get("cell_type") != "code":
            continue
        meta = cell.setdefault("metadata", {}).setdefault("nbgrader", {})
        role = role_of(cell)
        meta.setdefault("schema_version", 3)
        meta.setdefault("grade_id", f"cell-{id(cell):x}")
        if role in ("hook", "answer", "investigate") or role is None:
            meta.update(grade=False, solution=False, locked=False)
            meta.pop("points", None)
        elif role in ("setup", "boot"):
            meta.update(grade=False, solution=False, locked=True)
        elif role == "check":
            meta.update(grade=True, solution=False, locked=True)
            from xenlab.checks import REGISTRY
            lc = next(c for c in lab.check_cells if c.grade_id == meta["grade_id"])
            if all(k in REGISTRY for k, _ in lc.calls):
                meta["points"] = float(sum(REGISTRY[k].points for k, _ in lc.calls))
            meta.setdefault("points", 0.0)
    return lab, nb


def nbgrader_course(labs, course_dir, *, students=(), course_id: str = "xenlab",
                    timeout: int = 600) -> list[str]:
    """Write an nbgrader course for ``labs`` (paths); returns the assignment names."""
    import nbformat
    course = Path(course_dir)
    (course / "source").mkdir(parents=True, exist_ok=True)
    names = []
    for path in labs:
        lab, nb = nbgrader_source(path)
        d = course / "source" / lab.name
        d.mkdir(parents=True, exist_ok=True)
        nbformat.write(nbformat.from_dict(nb), d / f"{lab.name}.ipynb")
        names.append(lab.name)
    cfg = course / "nbgrader_config.py"
    if not cfg.exists():
        cfg.write_text(CONFIG.format(course=course_id, timeout=int(timeout)))
    if students:
        with (course / "students.csv").open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["id", "first_name", "last_name", "email"])
            for s in students:
                first, _, last = (getattr(s, "name", "") or "").partition(" ")
                w.writerow([getattr(s, "id", s), first, last, getattr(s, "email", "")])
    return names
