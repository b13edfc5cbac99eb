"""A class of students for the grading tests, assigned and graded once per session.

Each student's submission is their released copy (``xenlab assign``) with the
edits a real student could make: the solution, nothing, part of it, a fix
hard-coded to their variant, and one submission for each kind of tampering,
plus a crash, a loop and an unreadable file.  ``graded`` runs the real CLI
(``xenlab assign`` then ``xenlab grade`` on a local process pool).
"""

from __future__ import annotations

import copy
from pathlib import Path

import nbformat
import pytest

from .fixtures.build_toy_lab import NAME as TOY_NAME

FIXTURES = Path(__file__).resolve().parent / "fixtures"
TOY = FIXTURES / TOY_NAME
LAB = "toy_console"
SECRET = "course-secret-for-tests-0123456789"
TIMEOUT = 20

SOLUTION_PTE = '''\
def my_make_pte(mfn):
    return make_pte(mfn, PTE_P, PTE_RW)

lab.hooks.toy_make_pte = my_make_pte'''

SOLUTION_PORT = '''\
def my_console_port(inb, outb):
    for base in (0x3F8, 0x2F8, 0x3E8, 0x2E8):
        outb(base + 7, 0x3C)
        if inb(base + 7) == 0x3C:
            return base
    return 0x3F8

lab.hooks.toy_console_port = my_console_port'''

SOLVED = {"answer_bit": "ANSWER_MISSING_BIT = 0", "hook_pte": SOLUTION_PTE,
          "hook_port": SOLUTION_PORT}


def hardcoded_port(port):
    return (f"def my_console_port(inb, outb):\n    return {port:#x}   # what my machine has\n\n"
            "lab.hooks.toy_console_port = my_console_port")


def edit(nb, replace=None, insert_after=None):
    """A copy of ``nb`` with cells (by grade_id) replaced and new cells inserted
    after the cell with a given grade_id (a list of sources per id)."""
    nb = copy.deepcopy(nb)
    replace, insert_after = replace or {}, insert_after or {}
    cells = []
    for c in nb.cells:
        gid = (c.metadata.get("nbgrader") or {}).get("grade_id")
        if gid in replace:
            c.source = replace[gid]
        cells.append(c)
        for src in insert_after.get(gid, []):
            new = nbformat.v4.new_code_cell(src)
            new.pop("id", None)
            cells.append(new)
    nb.cells = cells
    return nb


def submissions_for(release: Path) -> dict:
    """student -> notebook (or raw text for an unreadable file)."""
    from tests.grading.toystage import variant

    def rel(s):
        return nbformat.read(release / s / f"{LAB}.ipynb", as_version=4)

    def seed_of(s):
        return rel(s).metadata["xenlab"]["seed"]

    subs = {
        "ada": edit(rel("ada"), SOLVED),
        "bob": rel("bob"),
        "cyd": edit(rel("cyd"), {"answer_bit": "ANSWER_MISSING_BIT = 0",
                                 "hook_pte": SOLUTION_PTE}),
        "dee": edit(rel("dee"), {**SOLVED,
                                 "hook_port": hardcoded_port(variant(seed_of("dee"))["uart"])}),
        # tampering, one of each kind
        "eve": edit(rel("eve"), SOLVED, {"walk": [
            "from xenlab.checks import Finding\n"
            "xenlab.checks.REGISTRY['toy_console'].fn = lambda stage: Finding(True, 'x', 'y', 'z')"]}),
        "fay": edit(rel("fay"), {"hook_pte": SOLUTION_PTE}, {"walk": [
            "exec('import xenlab.checks as c\\n'\n"
            "     'c.run = lambda name, stage: c.CheckResult(name, name, \"pass\", 1, 1)')"]}),
        "gus": edit(rel("gus"), {}, {"reboot": [
            "from tests.grading.toystage import PT\n"
            "lab.machine.memory.write64((PT << 12) + 8 * ((lab.kva >> 12) & 511),\n"
            "                           make_pte(lab.data_mfn, PTE_P, PTE_RW))\n"
            "lab.mmu.write_cr3(0x100 << 12)"]}),
        "hal": edit(rel("hal"), {**SOLVED, "hook_pte":
                                 "def my_make_pte(mfn):\n"
                                 "    lab.machine.memory.write64(0x5000, 1)\n"
                                 "    return make_pte(mfn, PTE_P, PTE_RW)\n\n"
                                 "lab.hooks.toy_make_pte = my_make_pte"}),
        "ivy": edit(rel("ivy"), {**SOLVED, "hook_pte":
                                 "from tests.grading.toystage import reference_make_pte\n\n"
                                 "lab.hooks.toy_make_pte = reference_make_pte"}),
        "jon": None,                                       # filled below: seed changed
        "kim": edit(rel("kim"), {"answer_bit": "ANSWER_MISSING_BIT = 0",
                                 "hook_pte": SOLUTION_PTE,
                                 "check_banner": "print('PASS: the banner is there')"}),
        "leo": edit(rel("ada"), SOLVED),                   # hands in ada's notebook
        # broken notebooks
        "max": edit(rel("max"), SOLVED, {"walk": ["import os\nos._exit(1)"]}),
        "ned": edit(rel("ned"), {**SOLVED, "hook_port":
                                 "def my_console_port(inb, outb):\n    while True:\n"
                                 "        pass\n\nlab.hooks.toy_console_port = my_console_port"}),
        "oli": "{ this is not a notebook",
    }
    jon = edit(rel("jon"), SOLVED)
    setup = next(c for c in jon.cells if c.metadata.get("tags") == ["setup"])
    setup.source = setup.source.replace(f"SEED = {seed_of('jon')}", "SEED = 7")
    subs["jon"] = jon
    return subs


STUDENTS = ["ada", "bob", "cyd", "dee", "eve", "fay", "gus", "hal", "ivy", "jon", "kim", "leo",
            "max", "ned", "oli"]


def _assign(root):
    from xenlab.cli import main
    (root / "labs").mkdir()
    (root / "labs" / TOY.name).write_bytes(TOY.read_bytes())
    (root / "roster.csv").write_text("student,name\n" + "".join(f"{s},{s.title()} X\n"
                                                                  for s in STUDENTS))
    (root / "secret").write_text(SECRET + "\n")
    rc = main(["assign", "--students", str(root / "roster.csv"), "--labs", str(root / "labs"),
               "--out", str(root / "release"), "--secret-file", str(root / "secret")])
    assert rc == 0


def _collect(root):
    sub = root / "submissions"
    for student, nb in submissions_for(root / "release").items():
        (sub / student).mkdir(parents=True, exist_ok=True)
        path = sub / student / f"{LAB}.ipynb"
        if isinstance(nb, str):
            path.write_text(nb)
        else:
            nbformat.write(nb, path)


def _grade(root):
    from xenlab.cli import main
    rc = main(["grade", str(root / "submissions"), "--labs", str(root / "labs"),
               "--secret-file", str(root / "secret"), "--out", str(root / "grades" / "grades.csv"),
               "--timeout", str(TIMEOUT), "--workers", "2", "--quiet"])
    assert rc == 0


@pytest.fixture(scope="session")
def course(tmp_path_factory):
    """The class, built once per test run even with pytest-xdist (a file lock in the
    shared temp folder): labs/, roster.csv, secret, release/ (by `xenlab assign`),
    submissions/STUDENT/toy_console.ipynb, grades/ (by `xenlab grade` on a local pool)."""
    import fcntl
    import os
    import shutil
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent
    root = base / "grading-class"
    with open(base / "grading-class.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if not (root / "DONE").exists():
                shutil.rmtree(root, ignore_errors=True)
                root.mkdir()
                _assign(root)
                _collect(root)
                _grade(root)
                (root / "DONE").write_text("ok\n")
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return root


@pytest.fixture(scope="session")
def collected(course):
    return course / "submissions"


@pytest.fixture(scope="session")
def graded(course):
    """The grade table `xenlab grade` wrote for the class (a DataFrame)."""
    import pandas as pd
    return pd.read_csv(course / "grades" / "grades.csv", keep_default_na=False)
