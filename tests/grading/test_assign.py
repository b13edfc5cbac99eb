"""xenlab assign: one stripped copy per student, nothing of the answer key in it."""

import json
import re
from pathlib import Path

import nbformat
import pytest

from xenlab.grading.assign import assign, locked_sha256, nbgrader_checksum, release_notebook
from xenlab.grading.labfile import LabFormatError, read_lab, role_of, source
from xenlab.grading.seeds import derive_seed
from xenlab.tools.nbrun import is_exploration
from xenlab.tools.release import BEGIN, BEGIN_HIDDEN, END, END_HIDDEN, SHIPPED, strip_solutions

from .fixtures.build_toy_lab import NAME, build

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = Path(__file__).resolve().parent / "fixtures" / NAME
LABS = sorted(p for p in (ROOT / "labs").glob("*.ipynb") if not is_exploration(p)) + [FIXTURE]
SECRET = b"0123456789abcdef-secret"


def test_a_folder_of_labs_leaves_out_exploration_notebooks(tmp_path):
    from xenlab.grading.batch import find_labs
    for name in ("04_x.ipynb", "90_explore.ipynb", "12_y.ipynb"):
        (tmp_path / name).write_text("{}")
    assert sorted(find_labs([tmp_path])) == ["04_x", "12_y"]
    assert list(find_labs([tmp_path / "90_explore.ipynb"])) == ["90_explore"]   # named: kept


def test_fixture_matches_its_builder():
    assert nbformat.read(FIXTURE, as_version=4) == build(), \
        "run tests/grading/fixtures/build_toy_lab.py"


def answer_key(nb):
    """Lines only the instructor's copy has: solution bodies and hidden checks."""
    secret_lines = set()
    for cell in nb.cells:
        inside = None
        for line in source(cell).split("\n"):
            mark = line.strip()
            if mark.startswith((BEGIN, BEGIN_HIDDEN)):
                inside = "hidden" if mark.startswith(BEGIN_HIDDEN) else "solution"
            elif mark.startswith((END, END_HIDDEN)) or mark.startswith(SHIPPED):
                inside = None
            elif inside and len(mark) > 6:
                secret_lines.add(mark)
    shipped = "\n".join(source(c) for c in strip_solutions(nb).cells)
    return {ln for ln in secret_lines if ln not in shipped}   # what the student may not see


def all_text(obj) -> str:
    """Every string in a notebook (sources, outputs, metadata keys and values), decoded."""
    if isinstance(obj, str):
        return obj
    if isinstance(obj, dict):
        return "\n".join(all_text(k) + "\n" + all_text(v) for k, v in obj.items())
    if isinstance(obj, list):
        return "\n".join(all_text(v) for v in obj)
    return str(obj)


def reference_names(lab):
    import importlib
    from xenlab.lab.hooks import SPECS
    setup = lab.role("setup")[0].source
    for line in setup.split("\n"):          # import what the setup cell imports
        m = re.match(r"\s*from ([\w.]+) import", line)
        if m:
            importlib.import_module(m.group(1))
    return {SPECS[h].reference.__name__ for h in lab.hooks if h in SPECS}


@pytest.mark.parametrize("path", LABS, ids=[p.name for p in LABS])
def test_nothing_of_the_answer_key_leaks(path, tmp_path):
    lab = read_lab(path)
    key = answer_key(lab.nb)
    refs = reference_names(lab)
    assert key, "the lab has no solution or hidden text to protect?"
    rows = assign([path], ["ann", "ben"], SECRET, tmp_path)
    for row in rows:
        nb = json.loads(Path(row["path"]).read_text())
        text = all_text(nb)
        for marker in (BEGIN, END, SHIPPED, BEGIN_HIDDEN, END_HIDDEN):
            assert marker not in text
        for line in key:
            assert line not in text, f"{row['path']} leaks {line!r}"
        for name in refs:
            assert name not in text, f"{row['path']} names the reference fix {name}"
        # checks that run only hidden; one that backs its public run on another variant
        # (docs/lab-format.md) is named in the release anyway, by the public run
        public = {k for c in lab.check_cells for k, h in c.calls if not h}
        hidden = {k for c in lab.check_cells for k in c.hidden_checks} - public
        for cell in nb["cells"]:
            for k in hidden:
                assert k not in source(cell), f"hidden check {k} is in the release"


def test_release_is_strip_solutions_plus_the_seed(tmp_path):
    lab = read_lab(FIXTURE)
    rows = assign([FIXTURE], ["ann", "ben"], SECRET, tmp_path)
    stripped = strip_solutions(lab.nb)
    for row in rows:
        nb = nbformat.read(row["path"], as_version=4)
        seed = derive_seed(SECRET, row["student"], "toy_console")
        assert row["seed"] == seed
        assert nb.metadata.xenlab == {"student": row["student"], "seed": seed,
                                      "lab": "toy_console",
                                      "release_sha256": locked_sha256(nb)}
        assert len(nb.cells) == len(stripped.cells)
        for got, want in zip(nb.cells, stripped.cells):
            if role_of(got) == "setup":
                assert f"SEED = {seed}  #" in got.source
                assert got.source.replace(f"SEED = {seed}", "X") != want.source
            else:
                assert got.source == want.source
            assert not got.get("outputs")
    a, b = (nbformat.read(r["path"], as_version=4) for r in rows)
    assert a.metadata.xenlab["release_sha256"] != b.metadata.xenlab["release_sha256"]
    assert (tmp_path / "MANIFEST.csv").read_text().count("\n") == 3
    with pytest.raises(FileExistsError, match="--overwrite"):
        assign([FIXTURE], ["ann"], SECRET, tmp_path)
    assign([FIXTURE], ["ann"], SECRET, tmp_path, overwrite=True)


def test_checksums_are_nbgraders():
    utils = pytest.importorskip("nbgrader.utils")
    lab = read_lab(FIXTURE)
    nb = release_notebook(lab, "ann", 5)
    n = 0
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader")
        if meta and "checksum" in meta:
            assert meta["checksum"] == utils.compute_checksum(cell)
            n += 1
    assert n == sum(1 for c in nb.cells if c.cell_type == "code" and role_of(c) != "investigate")


def test_malformed_labs_are_named(tmp_path):
    nb = build()
    gids = [c for c in nb.cells if c.cell_type == "code"]
    del gids[0].metadata["nbgrader"]["grade_id"]
    with pytest.raises(LabFormatError, match="cell 1 .setup.: a setup cell needs"):
        read_lab(nb, "t")
    nb = build()
    nb.cells[1].source = nb.cells[1].source.replace("SEED =", "seed =")
    with pytest.raises(LabFormatError, match="no top-level `SEED = ...`"):
        read_lab(nb, "t")
    nb = build()
    nb.cells[3].source = "ToyStage('toy_console').boot()"
    with pytest.raises(LabFormatError, match="no `lab = Stage"):
        read_lab(nb, "t")
    nb = build()
    nb.cells[14].source = "print('checked')"
    with pytest.raises(LabFormatError, match="runs no check"):
        read_lab(nb, "t")


def test_lab_reader_finds_hooks_checks_and_hidden_ones():
    lab = read_lab(FIXTURE)
    assert lab.hooks == ["toy_make_pte", "toy_console_port"]
    assert lab.stage_expr == 'ToyStage("toy_console", seed=SEED)'
    assert [(c.grade_id, c.checks, c.hidden_checks) for c in lab.check_cells] == [
        ("check_bit", ["toy_missing_bit"], []), ("check_mapped", ["toy_mapped"], []),
        ("check_banner", ["toy_banner"], []),
        ("check_console", ["toy_console", "toy_console_hidden"], ["toy_console_hidden"])]


def test_the_leak_search_would_see_a_leak():
    """The instructor's own notebook, searched the same way, is full of leaks."""
    lab = read_lab(FIXTURE)
    text = all_text(json.loads(FIXTURE.read_text()))
    key = answer_key(lab.nb)
    assert key and all(ln in text for ln in key)
    assert "return make_pte(mfn, PTE_P, PTE_RW)" in key and any("_seed2" in ln for ln in key)
    assert "toy_console_hidden" in text
