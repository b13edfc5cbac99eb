"""The student's version of a lab notebook: solutions out, shipped code in.

Lab notebooks in ``labs/`` carry the instructor's solutions in nbgrader-style
regions.  In a code cell::

    def pci_config_access(bus, dev, func, reg):
        ### BEGIN SOLUTION
        return reference.pci_config_access(bus, dev, func, reg)
        ### SHIPPED
        # return legacy_2007.pci_config_access(bus, dev, func, reg)
        ### END SOLUTION

The student gets the ``### SHIPPED`` lines uncommented (the 2007 code the
story starts from) in place of the region; a region without ``### SHIPPED``
becomes ``raise NotImplementedError()`` at the region's indentation, as
nbgrader does.  In a markdown cell a region becomes "*Your answer here.*".
``### BEGIN HIDDEN TESTS`` / ``### END HIDDEN TESTS`` regions (hidden
checks) are removed from the student's copy.

:func:`strip_solutions` is the one function that does this: ``make lab``
(``xenlab.tools.worklabs``), the notebook tests and ``xenlab bench labs`` all
call it, so what is tested is what students get.
"""

from __future__ import annotations

import copy
import re
import sys

BEGIN = "### BEGIN SOLUTION"
END = "### END SOLUTION"
SHIPPED = "### SHIPPED"
BEGIN_HIDDEN = "### BEGIN HIDDEN TESTS"
END_HIDDEN = "### END HIDDEN TESTS"
STUB = "raise NotImplementedError()"
MARKDOWN_STUB = "*Your answer here.*"


class ReleaseError(ValueError):
    """A solution region is malformed (the message names the cell and line)."""


def _source(cell) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def strip_source(source: str, *, markdown: bool = False, where: str = "cell") -> str:
    """One cell's source with its solution regions replaced."""
    out: list[str] = []
    region = None             # None, or {"indent", "shipped": list | None, "line"}
    for n, line in enumerate(source.split("\n"), 1):
        mark = line.strip()
        if mark.startswith(BEGIN):
            if region is not None:
                raise ReleaseError(f"{where}, line {n}: {BEGIN} inside another solution "
                                   f"region (opened on line {region['line']})")
            region = {"indent": line[:len(line) - len(line.lstrip())], "shipped": None,
                      "line": n}
            continue
        if region is None:
            if mark.startswith((END, SHIPPED)):
                raise ReleaseError(f"{where}, line {n}: {mark} without {BEGIN}")
            out.append(line)
            continue
        if mark.startswith(SHIPPED):
            if region["shipped"] is not None:
                raise ReleaseError(f"{where}, line {n}: a second {SHIPPED} in one region")
            region["shipped"] = []
            continue
        if mark.startswith(END):
            indent = region["indent"]
            if region["shipped"] is not None:
                out.extend(region["shipped"])
            else:
                out.append(indent + (MARKDOWN_STUB if markdown else STUB))
            region = None
            continue
        if region["shipped"] is not None:
            region["shipped"].append(_uncomment(line, where, n))
    if region is not None:
        raise ReleaseError(f"{where}: {BEGIN} on line {region['line']} is never closed "
                           f"with {END}")
    return "\n".join(out)


def _uncomment(line: str, where: str, n: int) -> str:
    """A shipped line is stored commented out: '    # code' -> '    code'."""
    if not line.strip():
        return line
    m = re.match(r"^(\s*)# ?(.*)$", line)
    if not m:
        raise ReleaseError(f"{where}, line {n}: lines after {SHIPPED} are the shipped code "
                           f"commented out ('# ...'), got {line.strip()!r}")
    return (m.group(1) + m.group(2)) if m.group(2) else ""


def strip_hidden(source: str, where: str = "cell") -> str:
    """Remove hidden-check regions (nbgrader's BEGIN/END HIDDEN TESTS)."""
    out, inside = [], None
    for n, line in enumerate(source.split("\n"), 1):
        mark = line.strip()
        if mark.startswith(BEGIN_HIDDEN):
            if inside is not None:
                raise ReleaseError(f"{where}, line {n}: nested {BEGIN_HIDDEN}")
            inside = n
        elif mark.startswith(END_HIDDEN):
            if inside is None:
                raise ReleaseError(f"{where}, line {n}: {END_HIDDEN} without {BEGIN_HIDDEN}")
            inside = None
        elif inside is None:
            out.append(line)
    if inside is not None:
        raise ReleaseError(f"{where}: {BEGIN_HIDDEN} on line {inside} is never closed")
    return "\n".join(out)


def strip_solutions(nb, *, hidden: bool = True):
    """The student's copy of notebook ``nb`` (not modified): solution regions
    replaced, hidden checks removed (unless ``hidden=False``), outputs cleared."""
    nb = copy.deepcopy(nb)
    for i, cell in enumerate(nb["cells"]):
        where = f"cell {i}"
        src = _source(cell)
        kind = cell.get("cell_type")
        if kind in ("code", "markdown"):
            src = strip_source(src, markdown=kind == "markdown", where=where)
        if kind == "code" and hidden:
            src = strip_hidden(src, where)
        cell["source"] = src
        if kind == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
    return nb


def has_solutions(nb) -> bool:
    """Whether any cell holds a solution region."""
    return any(BEGIN in _source(c) for c in nb["cells"])


def main(argv=None) -> int:
    """``python -m xenlab.tools.release SRC.ipynb DST.ipynb``: write the student copy."""
    import nbformat
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        print("usage: python -m xenlab.tools.release SRC.ipynb DST.ipynb")
        return 2
    nb = nbformat.read(argv[0], as_version=4)
    nbformat.write(strip_solutions(nb), argv[1])
    return 0


if __name__ == "__main__":
    sys.exit(main())
