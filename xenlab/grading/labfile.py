"""What grading needs to know about a lab notebook, read from its cells.

A lab (``docs/lab-format.md``) tags every code cell with its role and carries
nbgrader metadata.  :func:`read_lab` turns the instructor's notebook into a
:class:`Lab`: the locked cells (setup, boot, check) with their grade ids, the
hooks its hook cells install, the checks each check cell runs (public and
hidden), and the ``Stage(...)`` expression of the boot cell.  Everything is read
from the source (the instructor's) notebook, never from a submission.
"""

from __future__ import annotations

import ast
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from ..tools.release import strip_hidden

ROLES = ("setup", "boot", "investigate", "hook", "answer", "check")
LOCKED_ROLES = ("setup", "boot", "check")
STUDENT_ROLES = ("hook", "answer")
STAGE_VAR = "lab"          # the boot cell's ``lab = Stage(...)``
SEED_VAR = "SEED"          # the setup cell's ``SEED = ...``


class LabFormatError(ValueError):
    """A lab notebook does not follow docs/lab-format.md (names the cell)."""


def source(cell) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def role_of(cell) -> str | None:
    """The cell's role from its tags (``setup``, ``hook``, ...), or None."""
    tags = cell.get("metadata", {}).get("tags", []) or []
    return next((t for t in tags if t in ROLES), None)


def grade_id(cell) -> str | None:
    return (cell.get("metadata", {}).get("nbgrader") or {}).get("grade_id")


def normalise(src: str) -> str:
    """Source as compared for edits: newlines unified, trailing blanks ignored."""
    return "\n".join(line.rstrip() for line in src.replace("\r\n", "\n").split("\n")).strip("\n")


def checks_in(src: str, where: str = "cell") -> list[str]:
    """Check names a cell runs: ``run("name", ...)`` / ``xenlab.checks.run("name", ...)``."""
    try:
        tree = ast.parse(src)
    except SyntaxError as e:
        raise LabFormatError(f"{where}: does not parse ({e.msg}, line {e.lineno})") from None
    names = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and node.args
                and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)
                and ((isinstance(node.func, ast.Name) and node.func.id == "run")
                     or (isinstance(node.func, ast.Attribute) and node.func.attr == "run"))):
            names.append((node.lineno, node.col_offset, node.args[0].value))
    return [n for _, _, n in sorted(names)]


def check_calls(src: str, where: str = "cell") -> list[tuple[str, bool]]:
    """(check name, hidden) for every run(...) of a check cell, in order; hidden ones
    are those inside ``### BEGIN/END HIDDEN TESTS`` (the same check may run twice:
    on the student's stage and, hidden, on another seed or profile)."""
    from ..tools.release import BEGIN_HIDDEN, END_HIDDEN
    hidden_lines, inside = set(), False
    for n, line in enumerate(src.split("\n"), 1):
        mark = line.strip()
        if mark.startswith(BEGIN_HIDDEN):
            inside = True
        elif mark.startswith(END_HIDDEN):
            inside = False
        elif inside:
            hidden_lines.add(n)
    tree = ast.parse(src)
    calls = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and node.args
                and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)
                and ((isinstance(node.func, ast.Name) and node.func.id == "run")
                     or (isinstance(node.func, ast.Attribute) and node.func.attr == "run"))):
            calls.append((node.lineno, node.col_offset, node.args[0].value,
                          node.lineno in hidden_lines))
    return [(name, hidden) for _, _, name, hidden in sorted(calls)]


def hooks_assigned(src: str) -> list[str]:
    """Hook names a cell installs with ``lab.hooks.NAME = ...``."""
    try:
        tree = ast.parse(src)
    except SyntaxError:
        return []
    out = []
    for node in ast.walk(tree):
        targets = node.targets if isinstance(node, ast.Assign) else (
            [node.target] if isinstance(node, (ast.AnnAssign, ast.AugAssign)) else [])
        for t in targets:
            if (isinstance(t, ast.Attribute) and isinstance(t.value, ast.Attribute)
                    and t.value.attr == "hooks" and isinstance(t.value.value, ast.Name)
                    and t.value.value.id == STAGE_VAR and t.attr not in out):
                out.append(t.attr)
    return out


def stage_expression(src: str, where: str = "boot cell") -> str:
    """The expression the boot cell assigns to ``lab`` (``Stage("x", seed=SEED)``)."""
    tree = ast.parse(src)
    for node in tree.body:
        if (isinstance(node, ast.Assign) and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name) and node.targets[0].id == STAGE_VAR
                and isinstance(node.value, ast.Call)):
            return ast.get_source_segment(src, node.value)
    raise LabFormatError(f"{where}: no `{STAGE_VAR} = Stage(...)` assignment; the boot cell "
                         "must build the stage that way (docs/lab-format.md)")


def set_seed(src: str, seed: int, comment: str = "") -> str:
    """The setup cell with its ``SEED = ...`` statement replaced by ``SEED = seed``."""
    tree = ast.parse(src)
    for node in tree.body:
        if (isinstance(node, ast.Assign) and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name) and node.targets[0].id == SEED_VAR):
            lines = src.split("\n")
            indent = lines[node.lineno - 1][:node.col_offset]
            new = f"{indent}{SEED_VAR} = {int(seed)}" + (f"  # {comment}" if comment else "")
            return "\n".join(lines[:node.lineno - 1] + [new] + lines[node.end_lineno:])
    raise LabFormatError(f"the setup cell has no top-level `{SEED_VAR} = ...` statement")


def seed_in(src: str):
    """The literal value of ``SEED = <int>`` in a cell, None if absent or not a literal."""
    try:
        tree = ast.parse(src)
    except SyntaxError:
        return None
    for node in tree.body:
        if (isinstance(node, ast.Assign) and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name) and node.targets[0].id == SEED_VAR):
            return node.value.value if isinstance(node.value, ast.Constant) else None
    return None


@dataclass
class LabCell:
    index: int
    role: str | None
    grade_id: str | None
    source: str                       # instructor's source (solutions, hidden tests)
    points: float | None = None       # nbgrader points (check cells)
    calls: list[tuple[str, bool]] = field(default_factory=list)   # (check, hidden), in order

    @property
    def checks(self) -> list[str]:
        """Every check the cell runs (once each)."""
        return list(dict.fromkeys(n for n, _ in self.calls))

    @property
    def hidden_checks(self) -> list[str]:
        return list(dict.fromkeys(n for n, h in self.calls if h))

    @property
    def locked(self) -> bool:
        return self.role in LOCKED_ROLES


@dataclass
class Lab:
    """A lab notebook as grading reads it (from the instructor's source)."""

    name: str                  # the notebook stem: 04_pci_config
    path: Path | None
    nb: dict                   # the instructor's notebook (nbformat node)
    cells: list[LabCell]
    hooks: list[str]           # hooks the lab's hook cells install
    stage_expr: str            # Stage(...) from the boot cell

    def role(self, role: str) -> list[LabCell]:
        return [c for c in self.cells if c.role == role]

    @property
    def check_cells(self) -> list[LabCell]:
        return self.role("check")

    @property
    def checks(self) -> list[str]:
        out = []
        for c in self.check_cells:
            out += [n for n in c.checks if n not in out]
        return out

    def by_id(self) -> dict[str, LabCell]:
        return {c.grade_id: c for c in self.cells if c.grade_id}

    def fingerprint(self) -> str:
        """sha256 of the instructor's notebook cells (which version of the lab)."""
        h = hashlib.sha256()
        for c in self.cells:
            h.update(f"{c.role}\0{c.grade_id}\0{c.source}\0".encode())
        return h.hexdigest()


def read_lab(nb_or_path, name: str | None = None) -> Lab:
    """Read a lab notebook (a path or an nbformat node) and check its shape."""
    import nbformat
    path = None
    if isinstance(nb_or_path, (str, Path)):
        path = Path(nb_or_path)
        nb = nbformat.read(path, as_version=4)
        name = name or path.stem
    else:
        nb = nb_or_path
    if not name:
        raise ValueError("read_lab: give the lab's name when passing a notebook object")
    cells, seen_ids, hooks = [], {}, []
    for i, cell in enumerate(nb["cells"]):
        if cell.get("cell_type") != "code":
            continue
        role, gid, src = role_of(cell), grade_id(cell), source(cell)
        where = f"{name}, cell {i} ({role or 'untagged'})"
        if role in LOCKED_ROLES + STUDENT_ROLES and not gid:
            raise LabFormatError(f"{where}: a {role} cell needs metadata.nbgrader.grade_id "
                                 "(grading matches cells by it)")
        if gid:
            if gid in seen_ids:
                raise LabFormatError(f"{where}: grade_id {gid!r} is also used by cell "
                                     f"{seen_ids[gid]}")
            seen_ids[gid] = i
        lc = LabCell(i, role, gid, src)
        if role == "check":
            checks_in(src, where)                  # names a syntax error
            strip_hidden(src, where)               # names a malformed hidden region
            lc.calls = check_calls(src, where)
            if not lc.calls:
                raise LabFormatError(f"{where}: a check cell that runs no check "
                                     "(expected xenlab.checks.run(\"name\", lab))")
            lc.points = (cell.get("metadata", {}).get("nbgrader") or {}).get("points")
        if role == "hook":
            hooks += [h for h in hooks_assigned(src) if h not in hooks]
        cells.append(lc)
    setups, boots = [c for c in cells if c.role == "setup"], [c for c in cells if c.role == "boot"]
    if len(setups) != 1:
        raise LabFormatError(f"{name}: expected one setup cell, found {len(setups)}")
    set_seed(setups[0].source, 0)          # raises if there is no SEED = ...
    if not boots:
        raise LabFormatError(f"{name}: no boot cell (tag 'boot')")
    expr = stage_expression(boots[0].source, f"{name}, cell {boots[0].index} (boot)")
    if not any(c.role == "check" for c in cells):
        raise LabFormatError(f"{name}: no check cells (tag 'check')")
    return Lab(name, path, nb, cells, hooks, expr)
