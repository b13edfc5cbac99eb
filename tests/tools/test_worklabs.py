"""make lab's copy step: students get stripped notebooks, edits are kept."""

import nbformat

from xenlab.tools.worklabs import copy_new


def test_copies_student_versions_once(tmp_path):
    src, dst = tmp_path / "labs", tmp_path / "work"
    src.mkdir()
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("### BEGIN SOLUTION\nx = 1\n### SHIPPED\n# x = 0\n"
                                          "### END SOLUTION")]
    nbformat.write(nb, src / "00_tour.ipynb")
    (src / "notes.txt").write_text("hi")
    assert sorted(p.name for p in copy_new(src, dst)) == ["00_tour.ipynb", "notes.txt"]
    assert nbformat.read(dst / "00_tour.ipynb", as_version=4).cells[0].source == "x = 0"
    (dst / "00_tour.ipynb").write_text("student edits")
    assert copy_new(src, dst) == []
    assert (dst / "00_tour.ipynb").read_text() == "student edits"
