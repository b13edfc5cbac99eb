"""The static half of tamper detection: locked cells and the student's own cells."""

import copy

import pytest

from xenlab.grading.assign import release_notebook
from xenlab.grading.labfile import read_lab
from xenlab.grading.tamper import compare_locked, scan_cell

from .conftest import TOY

ALIASES = {"xenlab": "xenlab", "run": "checks", "Finding": "checks", "ToyStage": "xenlab",
           "make_pte": "xenlab", "SEED": "seed", "lab": "stage"}
PROTECTED = {"xenlab", "run", "lab", "SEED", "ToyStage"}
REFS = {"reference_make_pte"}
WATCHED = {"tests.grading.toystage"}


def scan(src, role="investigate"):
    return [(f.kind, f.scope) for f in scan_cell(src, role=role, where="cell 9", aliases=ALIASES,
                                                 protected=PROTECTED, references=REFS,
                                                 watched=WATCHED)]


@pytest.mark.parametrize("src,kind", [
    ("xenlab.checks.run = lambda n, s: None", "check-tamper"),
    ("import xenlab.checks as C\nC.REGISTRY['x'].fn = print", "check-tamper"),
    ("from xenlab import checks\nsetattr(checks, 'run', print)", "check-tamper"),
    ("def run(name, stage):\n    return True", "check-tamper"),
    ("run = print", "check-tamper"),
    ("import xenlab.lab\nxenlab.lab.hooks.Hooks.call = lambda *a: 0", "monkey-patch"),
    ("ToyStage.boot = lambda self: None", "monkey-patch"),
    ("SEED = 7", "seed"),
    ("lab = ToyStage('toy_console', seed=7)", "seed"),
    ("from tests.grading.toystage import reference_make_pte", "reference"),
    ("import tests.grading.toystage as t\nf = t.reference_make_pte", "reference"),
    ("lab.apply_reference_fix()", "reference"),
    ("lab.hooks.use_reference()", "reference"),
    ("from xenlab.lab.hooks import SPECS\nfix = SPECS['toy_make_pte'].reference", "reference"),
])
def test_tampering_anywhere_voids_the_lab(src, kind):
    flags = scan(src)
    assert (kind, "lab") in flags, flags


def test_model_edits_void_in_hook_cells_and_are_noted_elsewhere():
    src = "lab.machine.memory.write64(0x1000, 3)"
    assert scan(src, "investigate") == [("model-edit", "info")]
    assert ("model-edit", "lab") in scan(src, "hook")
    assert scan("lab.kernel.console = None", "investigate") == [("model-edit", "info")]
    hook = "def f(mfn):\n    return lab.machine.memory.read64(0)\nlab.hooks.toy_make_pte = f"
    assert ("model-edit", "lab") in scan(hook, "hook")


@pytest.mark.parametrize("src", [
    "import gc\ndef f(mfn):\n    return 1",
    "def f(mfn):\n    return f.__globals__['x']",
    "import sys\ndef f(mfn):\n    return sys._getframe(1)",
    "def f(mfn):\n    exec('x = 1')\n    return 1",
])
def test_hook_cells_may_not_reach_past_the_api(src):
    assert ("monkey-patch", "lab") in scan(src, "hook")


@pytest.mark.parametrize("src,role", [
    ("def my_make_pte(mfn):\n    return make_pte(mfn, PTE_P, PTE_RW)\n\n"
     "lab.hooks.toy_make_pte = my_make_pte", "hook"),
    ("ANSWER_MISSING_BIT = 0\nlab.answers['missing_bit'] = 0", "answer"),
    ("lab.walk()\nprint(lab.machine.memory.read64(0x100000))\nw = lab.mmu.walk(lab.kva)",
     "investigate"),
    ("import xenlab.viz\nfrom xenlab.checks import evaluate\nr = evaluate('toy_mapped', lab)",
     "investigate"),
    ("import numpy as np\nx = np.arange(4)\nfor i in range(3):\n    x[i] = i", "investigate"),
    ("import xenlab.checks\nxenlab.checks.run('toy_mapped', lab)", "investigate"),
])
def test_honest_cells_are_not_flagged(src, role):
    assert scan(src, role) == []


def test_locked_cells_edited_missing_or_reseeded():
    lab = read_lab(TOY)
    rel = release_notebook(lab, "ann", 1234)

    def flags(nb, student="ann", seed=1234):
        return [(f.kind, f.scope) for f in compare_locked(nb, rel, student=student, seed=seed,
                                                          lab="toy_console")]
    assert flags(rel) == []
    nb = copy.deepcopy(rel)
    nb.cells[15].source = "print('ok')"                  # check_banner
    assert flags(nb) == [("locked-edit", "cell:check_banner")]
    nb = copy.deepcopy(rel)
    nb.cells[3].source += "\nlab.hooks.use_reference()"  # boot
    assert flags(nb) == [("locked-edit", "lab")]
    nb = copy.deepcopy(rel)
    del nb.cells[14]                                      # check_mapped
    assert flags(nb) == [("locked-edit", "cell:check_mapped")]
    nb = copy.deepcopy(rel)
    nb.cells[1].source = nb.cells[1].source.replace("SEED = 1234", "SEED = 7")
    assert flags(nb) == [("seed", "lab")]
    assert flags(rel, student="bob") == [("seed", "lab")]        # someone else's notebook
    assert flags(rel, seed=99) == [("seed", "lab")]                 # metadata: another seed
    nb = copy.deepcopy(rel)
    nb.cells[14].source += "   \n"                        # trailing blanks do not count
    assert flags(nb) == []
