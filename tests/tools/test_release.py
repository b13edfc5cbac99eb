"""strip_solutions: what students get from a lab notebook."""

import nbformat
import pytest

from xenlab.tools.release import (ReleaseError, has_solutions, strip_hidden, strip_solutions,
                                  strip_source)

HOOK = """\
def hook(x):
    \"\"\"doc\"\"\"
    ### BEGIN SOLUTION
    y = x + 1
    return y
    ### SHIPPED
    # return x    # 2007
    #
    # # a comment the student keeps
    ### END SOLUTION
print("after")"""


def test_shipped_code_replaces_the_solution():
    assert strip_source(HOOK) == """\
def hook(x):
    \"\"\"doc\"\"\"
    return x    # 2007

    # a comment the student keeps
print("after")"""


def test_region_without_shipped_code_raises_not_implemented_at_its_indent():
    src = "def f():\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION\n"
    assert strip_source(src) == "def f():\n    raise NotImplementedError()\n"
    ns = {}
    exec(strip_source(src), ns)
    with pytest.raises(NotImplementedError):
        ns["f"]()


def test_stripped_hook_runs_the_shipped_code():
    ns = {}
    exec(strip_source(HOOK), ns)
    assert ns["hook"](5) == 5
    ns = {}
    exec(HOOK, ns)                      # the solution version
    assert ns["hook"](5) == 6


@pytest.mark.parametrize("src,msg", [
    ("### BEGIN SOLUTION\nx = 1\n", "never closed"),
    ("x = 1\n### END SOLUTION\n", "without"),
    ("### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION\n", "inside another"),
    ("### BEGIN SOLUTION\n### SHIPPED\nx = 1\n### END SOLUTION\n", "commented out"),
    ("### BEGIN SOLUTION\n### SHIPPED\n### SHIPPED\n### END SOLUTION\n", "second"),
])
def test_malformed_regions_name_the_line(src, msg):
    with pytest.raises(ReleaseError, match=msg):
        strip_source(src, where="cell 3")


def test_hidden_checks_are_removed():
    src = "check(a)\n### BEGIN HIDDEN TESTS\ncheck(b, seed=2)\n### END HIDDEN TESTS\ncheck(c)"
    assert strip_hidden(src) == "check(a)\ncheck(c)"
    with pytest.raises(ReleaseError, match="never closed"):
        strip_hidden("### BEGIN HIDDEN TESTS\n")


def test_strip_solutions_on_a_notebook_leaves_the_original_alone():
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("Answer:\n### BEGIN SOLUTION\n42\n"
                                              "### END SOLUTION"),
                nbformat.v4.new_code_cell(HOOK),
                nbformat.v4.new_code_cell("x = 1\n### BEGIN HIDDEN TESTS\nx = 2\n"
                                          "### END HIDDEN TESTS")]
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", text="old")]
    nb.cells[1].execution_count = 3
    student = strip_solutions(nb)
    assert has_solutions(nb) and not has_solutions(student)
    assert student.cells[0].source == "Answer:\n*Your answer here.*"
    assert "return x" in student.cells[1].source and student.cells[1].outputs == []
    assert student.cells[1].execution_count is None
    assert student.cells[2].source == "x = 1"
    assert strip_solutions(nb, hidden=False).cells[2].source == nb.cells[2].source
    assert "### BEGIN SOLUTION" in nb.cells[1].source          # original untouched
    nbformat.validate(student)


def test_release_command(tmp_path):
    from xenlab.tools.release import main
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(HOOK)]
    nbformat.write(nb, tmp_path / "a.ipynb")
    assert main([str(tmp_path / "a.ipynb"), str(tmp_path / "b.ipynb")]) == 0
    assert "SOLUTION" not in nbformat.read(tmp_path / "b.ipynb", as_version=4).cells[0].source
