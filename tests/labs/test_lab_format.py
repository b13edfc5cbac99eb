"""Every lab follows docs/lab-format.md, so the harness, `make lab` and grading
can rely on it: roles and nbgrader metadata on every code cell, a literal SEED,
`lab = Stage(...)`, hook cells that only define and install hooks, answers that
reach their question checks, hidden checks only on another variant."""

import ast
import re
from pathlib import Path

import nbformat
import pytest

from xenlab import checks
from xenlab.lab import SPECS, STAGE_NAMES
from xenlab.tools.labsrc import check_calls, python_of
from xenlab.tools.nbrun import is_exploration
from xenlab.tools.release import (BEGIN, BEGIN_HIDDEN, END_HIDDEN, SHIPPED, strip_solutions,
                                  strip_source)

ROOT = Path(__file__).resolve().parents[2]
LABS = sorted((ROOT / "labs").glob("*.ipynb"))
ROLES = ("setup", "boot", "investigate", "hook", "answer", "check")
MODEL = {"machine", "xen", "kernel", "dom0", "state", "restore", "snapshot"}
checks.load_all()


def code_cells(nb):
    return [c for c in nb.cells if c.cell_type == "code"]


def role(cell):
    roles = [t for t in cell.metadata.get("tags", []) if t in ROLES]
    assert len(roles) == 1, f"cell needs exactly one role tag: {cell.source[:60]!r}"
    return roles[0]


def lab_stage(nb) -> str:
    boot = next(c for c in code_cells(nb) if role(c) == "boot")
    m = re.search(r'^lab = Stage\("(\w+)"', boot.source, re.M)
    assert m, f"the first boot cell builds `lab = Stage(...)`: {boot.source!r}"
    return m.group(1)


def lab_stages(nb) -> set:
    """The boot cell's stage, and any earlier stage whose every check card the lab runs
    (a lab may cover two stages, as 11_console_multiuser covers console and multiuser)."""
    stage = lab_stage(nb)
    used = {n for c in code_cells(nb) if role(c) == "check" for n in check_calls(c.source)}
    earlier = STAGE_NAMES[:STAGE_NAMES.index(stage)]
    return {stage} | {s for s in earlier
                      if checks.checks_for(s) and {c.name for c in checks.checks_for(s)} <= used}


@pytest.fixture(params=LABS, ids=[p.stem for p in LABS])
def nb(request):
    return nbformat.read(request.param, as_version=4)


def test_cells_have_roles_and_nbgrader_metadata(nb):
    ids = set()
    for c in code_cells(nb):
        r = role(c)
        meta = c.metadata.nbgrader
        assert meta["grade_id"] not in ids
        ids.add(meta["grade_id"])
        assert meta["locked"] == (r in ("setup", "boot", "check"))
        assert meta["solution"] == (r in ("hook", "answer"))
        assert meta["grade"] == (r == "check")
        assert (meta.get("points", 0) > 0) == (r == "check")
    assert role(code_cells(nb)[0]) == "setup"


def test_setup_has_a_literal_seed_and_boot_builds_the_stage(nb):
    setup = code_cells(nb)[0].source
    seeds = [n for n in ast.parse(setup).body if isinstance(n, ast.Assign)
             and [t.id for t in n.targets if isinstance(t, ast.Name)] == ["SEED"]]
    assert len(seeds) == 1 and isinstance(seeds[0].value, ast.Constant)
    assert lab_stage(nb) in STAGE_NAMES
    for c in code_cells(nb):
        if role(c) in ("setup", "boot", "check", "hook", "answer"):
            ast.parse(c.source)          # grading runs these as plain Python: no magics


def test_hook_cells_only_define_and_install_hooks(nb):
    stage = lab_stage(nb)
    hooks = []
    student = strip_solutions(nb)
    for c, shipped in zip(code_cells(nb), code_cells(student)):
        if role(c) != "hook":
            continue
        assert BEGIN in c.source and SHIPPED in c.source, "a hook ships the 2007 code"
        for src in (c.source, shipped.source):
            tree = ast.parse(src)
            for node in tree.body:
                if isinstance(node, ast.FunctionDef):
                    assert ast.get_docstring(node), f"{node.name}: the contract goes in its docstring"
                    continue
                assert isinstance(node, ast.Assign), ast.dump(node)[:80]
                (t,) = node.targets
                assert isinstance(t, ast.Attribute) and ast.unparse(t.value) == "lab.hooks"
                hooks.append(t.attr)
            for node in ast.walk(tree):
                if isinstance(node, ast.Attribute) and ast.unparse(node.value) == "lab":
                    assert node.attr == "hooks", f"a hook cell touches lab.{node.attr}"
                if isinstance(node, ast.Name):
                    assert not node.id.endswith("_fixed"), "a hook cell uses a reference fix"
    stages = lab_stages(nb)
    for h in hooks:
        assert SPECS[h].stage in stages, f"{h} belongs to stage {SPECS[h].stage}, not {stage}"
    if hooks:                         # a lab with hooks asks for every hook of its stage(s)
        assert set(hooks) == {s.name for s in SPECS.values() if s.stage in stages}


def test_answers_reach_their_questions(nb):
    answers, passed = {}, {}
    for c in code_cells(nb):
        if role(c) == "answer":
            (node,) = ast.parse(strip_source(c.source)).body
            (t,) = node.targets
            assert t.id.startswith("ANSWER_") and ast.literal_eval(node.value) is None, \
                "an answer ships as ANSWER_X = None"
            answers[t.id] = c
        if role(c) == "check":
            for m in re.finditer(r'lab\.answers\["(\w+)"\] = (ANSWER_\w+)', c.source):
                passed[m.group(2)] = (m.group(1), check_calls(c.source))
    assert set(answers) == set(passed), "every answer goes to a check cell, and back"
    for var, (key, names) in passed.items():
        assert any(checks.QUESTIONS.get(n) == (key, var) for n in names), (var, key, names)


def test_check_cells_run_registered_checks_and_hide_only_variants(nb):
    stage = lab_stage(nb)
    used = set()
    for c in code_cells(nb):
        if BEGIN_HIDDEN in c.source:
            assert role(c) == "check"
            hidden = c.source.split(BEGIN_HIDDEN)[1].split(END_HIDDEN)[0]
            assert "other_variant(lab)" in hidden, "hidden checks run on another variant"
            public = c.source.split(BEGIN_HIDDEN)[0]
            assert set(check_calls(hidden)) <= set(check_calls(public)), \
                "a hidden check backs the public check of its cell"
        if role(c) == "check":
            names = check_calls(c.source)
            assert all(n in checks.REGISTRY for n in names)
            used |= set(names)
        else:
            assert "xenlab.checks.run(" not in python_of(c.source), \
                "only check cells run graded checks (investigations use previews)"
    if any(role(c) == "hook" for c in code_cells(nb)):
        assert {c.name for c in checks.checks_for(stage)} <= used, \
            "a lab with hooks uses every check card of its stage"


def test_student_copy_has_no_solutions(nb):
    text = "\n".join(c.source for c in strip_solutions(nb).cells)
    for word in ("BEGIN SOLUTION", "HIDDEN TESTS", "other_variant", "_fixed"):
        assert word not in text


@pytest.mark.parametrize("path", LABS, ids=[p.stem for p in LABS])
def test_graded_labs_have_checks_and_exploration_notebooks_none(path):
    """9x_ notebooks explore (setup, boot, investigate cells only); every other lab
    is graded and has check cells."""
    roles = [role(c) for c in code_cells(nbformat.read(path, as_version=4))]
    if is_exploration(path):
        assert set(roles) <= {"setup", "boot", "investigate"}, roles
    else:
        assert "check" in roles
