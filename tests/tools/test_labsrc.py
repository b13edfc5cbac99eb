"""The lab notebooks are their sources' builds; the builder names bad sources."""

from pathlib import Path

import nbformat
import pytest

from xenlab import checks
from xenlab.tools import labsrc
from xenlab.tools.labsrc import LabSourceError, build, check_calls, parse, points_of

ROOT = Path(__file__).resolve().parents[2]
SOURCES = labsrc.sources()


def test_every_lab_has_a_source_and_the_other_way_round():
    built = {labsrc.target(s).name for s in SOURCES}
    stored = {p.name for p in (ROOT / "labs").glob("*.ipynb")}
    assert built == stored
    assert {"00_tour.ipynb", "01_toolchain.ipynb", "02_platforms.ipynb",
            "03_boot_to_kmdb.ipynb", "04_pci_config.ipynb", "05_io_privilege.ipynb"} <= built


@pytest.mark.parametrize("src", SOURCES, ids=[s.name for s in SOURCES])
def test_stored_notebook_is_the_build_of_its_source(src):
    stored = nbformat.read(labsrc.target(src), as_version=4)
    assert stored == labsrc.build_file(src), \
        f"labs/{labsrc.target(src).name} is stale: run python -m xenlab.tools.labsrc"


@pytest.mark.parametrize("src", SOURCES, ids=[s.name for s in SOURCES])
def test_check_cell_points_are_the_sum_of_their_checks(src):
    checks.load_all()
    nb = labsrc.build_file(src)
    for cell in nb.cells:
        if "check" not in cell.metadata.get("tags", []):
            continue
        names = check_calls(cell.source)
        assert names, cell.source
        want = sum(checks.REGISTRY[n].points for n in names)
        assert cell.metadata.nbgrader["points"] == want > 0


def test_parse_roles_ids_and_tags():
    cells = parse("=== markdown\n# T\n=== code setup setup\nSEED = 1\n"
                  "=== code check c1 check-passes-unfixed\nrun('x', lab)\n=== code investigate\n1")
    assert [c.kind for c in cells] == ["markdown", "code", "code", "code"]
    assert cells[0].source == "# T"
    assert (cells[2].role, cells[2].grade_id, cells[2].tags) == \
        ("check", "c1", ["check", "check-passes-unfixed"])
    assert cells[3].grade_id is None


@pytest.mark.parametrize("text, words", [
    ("x = 1\n=== markdown\n", "text before the first"),
    ("=== code hook\nx = 1", "needs a grade id"),
    ("=== code solver s\nx", "role 'solver'"),
    ("=== cell\nx", "expected '=== markdown'"),
])
def test_bad_sources_are_named(text, words):
    with pytest.raises(LabSourceError, match=words):
        parse(text, "bad.lab")


def test_build_refuses_duplicate_ids_syntax_errors_and_unknown_checks():
    with pytest.raises(LabSourceError, match="also used"):
        build("=== code investigate a\n1\n=== code investigate a\n2")
    with pytest.raises(LabSourceError, match=r"bad.lab:2"):
        build("=== code investigate\nx = (", "bad.lab")
    with pytest.raises(LabSourceError, match="unknown check"):
        points_of("xenlab.checks.run('no_such_check', lab)")
    with pytest.raises(LabSourceError, match="runs no check"):
        points_of("print(1)")


def test_magics_are_allowed_in_investigate_cells():
    nb = build("=== code investigate\n%load_ext xenlab.kmdb\nk = 1\n%kmdb $r")
    assert nb.cells[0].metadata.tags == ["investigate"]
    assert nb.cells[0].metadata.nbgrader == {"grade": False, "grade_id": "investigate_1",
                                             "locked": False, "schema_version": 3,
                                             "solution": False}
