"""Build the lab notebooks (``labs/*.ipynb``) from their sources (``tools/labs/*.lab``).

A lab is written as plain text, one cell after another; a line starting with
``===`` opens a cell::

    === markdown
    # 04 PCI configuration space without a BIOS
    === code setup setup
    import xenlab.checks
    SEED = 5
    === code check check_mech
    xenlab.checks.run("pci_config_mechanism", lab)

``=== code ROLE GRADE_ID [TAG ...]``: ROLE is the cell's tag (``setup``,
``boot``, ``investigate``, ``hook``, ``answer``, ``check``; docs/lab-format.md),
GRADE_ID its nbgrader ``grade_id`` (optional for investigate cells), further
words are extra tags (``check-passes-unfixed``).  The builder writes the tags
and the nbgrader metadata, and gives each check cell the points of the checks
it runs (``xenlab.checks``: a check run twice, public and hidden, counts
twice), so the points in the notebook cannot drift from the checks.  The
notebook is stored without outputs, kernelspec ``python3``, without cell ids.

``python -m xenlab.tools.labsrc [tools/labs] [labs]`` rebuilds every lab;
``tests/tools/test_labsrc.py`` checks that each stored notebook is its
source's build.  Sources live outside ``labs/`` because ``make lab`` copies
that folder to students, and the sources hold the solutions.
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SRC_DIR = REPO / "tools" / "labs"
OUT_DIR = REPO / "labs"
ROLES = ("setup", "boot", "investigate", "hook", "answer", "check")
LOCKED = ("setup", "boot", "check")
MARK = "==="


class LabSourceError(ValueError):
    """A lab source that does not parse (names the file and line)."""


@dataclass
class Cell:
    kind: str                    # "markdown" or "code"
    source: str
    role: str | None = None
    grade_id: str | None = None
    tags: list = field(default_factory=list)
    line: int = 0


def parse(text: str, where: str = "lab") -> list[Cell]:
    """The cells of a lab source."""
    cells: list[Cell] = []
    cur: Cell | None = None
    body: list[str] = []

    def close():
        if cur is not None:
            cur.source = "\n".join(body).strip("\n")
            cells.append(cur)

    for n, line in enumerate(text.split("\n"), 1):
        if not line.startswith(MARK):
            if cur is None and line.strip():
                raise LabSourceError(f"{where}:{n}: text before the first '{MARK}' cell marker")
            body.append(line)
            continue
        close()
        body = []
        words = line[len(MARK):].split()
        if words[:1] == ["markdown"] and len(words) == 1:
            cur = Cell("markdown", "", line=n)
        elif words[:1] == ["code"] and len(words) >= 2:
            role = words[1]
            if role not in ROLES:
                raise LabSourceError(f"{where}:{n}: role {role!r} is not one of {', '.join(ROLES)}")
            gid = words[2] if len(words) > 2 else None
            if gid is None and role != "investigate":
                raise LabSourceError(f"{where}:{n}: a {role} cell needs a grade id "
                                     f"('{MARK} code {role} ID')")
            cur = Cell("code", "", role, gid, [role] + words[3:], n)
        else:
            raise LabSourceError(f"{where}:{n}: expected '{MARK} markdown' or "
                                 f"'{MARK} code ROLE [GRADE_ID] [TAG ...]', got {line!r}")
    close()
    return cells


def python_of(src: str) -> str:
    """A cell as IPython runs it (``%kmdb ...`` lines become Python)."""
    from IPython.core.inputtransformer2 import TransformerManager
    return TransformerManager().transform_cell(src)


def check_calls(src: str) -> list[str]:
    """The check names a cell runs (``run("name", ...)``, also inside hidden regions)."""
    calls = []
    for node in ast.walk(ast.parse(src)):
        if (isinstance(node, ast.Call) and node.args
                and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)
                and ((isinstance(node.func, ast.Name) and node.func.id == "run")
                     or (isinstance(node.func, ast.Attribute) and node.func.attr == "run"))):
            calls.append((node.lineno, node.col_offset, node.args[0].value))
    return [name for *_, name in sorted(calls)]


def points_of(src: str, where: str = "cell") -> float:
    """The points of a check cell: the sum over the checks it runs."""
    from .. import checks
    checks.load_all()
    names = check_calls(src)
    if not names:
        raise LabSourceError(f"{where}: a check cell that runs no check")
    unknown = [n for n in names if n not in checks.REGISTRY]
    if unknown:
        raise LabSourceError(f"{where}: unknown check(s) {', '.join(unknown)}")
    total = sum(checks.REGISTRY[n].points for n in names)
    return int(total) if float(total).is_integer() else total


def nbgrader_meta(cell: Cell, points) -> dict:
    meta = {"grade": cell.role == "check", "grade_id": cell.grade_id,
            "locked": cell.role in LOCKED, "schema_version": 3,
            "solution": cell.role in ("hook", "answer")}
    if cell.role == "check":
        meta["points"] = points
    return meta


def build(text: str, where: str = "lab"):
    """The notebook (nbformat node) of a lab source."""
    import nbformat
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "language": "python",
                                 "display_name": "Python 3 (ipykernel)"}
    nb.metadata["language_info"] = {"name": "python"}
    seen: dict[str, int] = {}
    n_inv = 0
    for c in parse(text, where):
        if c.kind == "markdown":
            cell = nbformat.v4.new_markdown_cell(c.source)
        else:
            if c.grade_id is None:
                n_inv += 1
                c.grade_id = f"investigate_{n_inv}"
            if c.grade_id in seen:
                raise LabSourceError(f"{where}:{c.line}: grade id {c.grade_id!r} is also used "
                                     f"on line {seen[c.grade_id]}")
            seen[c.grade_id] = c.line
            try:
                ast.parse(python_of(c.source))
            except SyntaxError as e:
                raise LabSourceError(f"{where}:{c.line + (e.lineno or 0)}: {e.msg}") from None
            pts = points_of(c.source, f"{where}:{c.line}") if c.role == "check" else None
            cell = nbformat.v4.new_code_cell(c.source)
            cell.metadata["tags"] = list(c.tags)
            cell.metadata["nbgrader"] = nbgrader_meta(c, pts)
        cell.pop("id", None)
        nb.cells.append(cell)
    nb.nbformat, nb.nbformat_minor = 4, 4
    return nb


def build_file(src: Path):
    return build(src.read_text(encoding="utf-8"), src.name)


def sources(src_dir: Path = SRC_DIR) -> list[Path]:
    return sorted(src_dir.glob("*.lab"))


def target(src: Path, out_dir: Path = OUT_DIR) -> Path:
    return out_dir / (src.stem + ".ipynb")


def main(argv=None) -> int:
    import nbformat
    argv = sys.argv[1:] if argv is None else argv
    src_dir = Path(argv[0]) if argv else SRC_DIR
    out_dir = Path(argv[1]) if len(argv) > 1 else OUT_DIR
    out_dir.mkdir(parents=True, exist_ok=True)
    for src in sources(src_dir):
        nbformat.write(build_file(src), target(src, out_dir))
        print(f"wrote {target(src, out_dir)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
