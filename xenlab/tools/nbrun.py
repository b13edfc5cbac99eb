"""Run a lab notebook headless in a fresh kernel and judge the run.

Two ways to run a lab (``tests/labs`` does both for every ``labs/*.ipynb``,
``xenlab bench labs`` times the second):

- **as the student receives it** (:func:`xenlab.tools.release.strip_solutions`):
  no cell may raise except check cells (tagged ``check``), and those only with
  a check's own exception (:data:`CHECK_EXCEPTIONS`); every check must fail,
  since the shipped hooks are the 2007 code, unless its cell is also tagged
  ``check-passes-unfixed``;
- **with the solutions in place**: no cell may raise and every check passes.

A check reports itself as a display output of type :data:`CHECK_MIME`
(``{"name", "passed", "points"}``; ``xenlab.checks`` emits it beside the
HTML card), so the run is judged from the model's verdicts, not from text.
A check cell that raises a check exception without such an output counts as
one failed check.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

CHECK_MIME = "application/vnd.xenlab.check+json"
CHECK_TAG = "check"
PASSES_UNFIXED_TAG = "check-passes-unfixed"
# Exception names a failing check may raise (xenlab.checks raises CheckFailed).
CHECK_EXCEPTIONS = ("CheckFailed",)
REPO = Path(__file__).resolve().parents[2]


@dataclass
class CellResult:
    index: int
    tags: list[str]
    source: str
    error: tuple[str, str] | None = None        # (ename, evalue)
    checks: list[dict] = field(default_factory=list)
    seconds: float | None = None

    @property
    def is_check(self) -> bool:
        return CHECK_TAG in self.tags

    @property
    def check_error(self) -> bool:
        return self.error is not None and self.error[0] in CHECK_EXCEPTIONS

    @property
    def passed(self) -> bool | None:
        """All of this cell's checks passed (None: the cell reported no check)."""
        if not self.checks and not self.check_error:
            return None
        return all(c.get("passed") for c in self.checks) and not self.check_error

    def where(self) -> str:
        first = next((ln for ln in self.source.splitlines() if ln.strip()), "")
        return f"cell {self.index} ({first[:60]!r})"


@dataclass
class Run:
    """One executed notebook: per-cell errors and check results."""

    name: str
    solutions: bool
    seconds: float
    cells: list[CellResult]

    @property
    def check_cells(self) -> list[CellResult]:
        return [c for c in self.cells if c.is_check]

    def checks(self):
        """Every reported check as a DataFrame (cell, name, passed, points)."""
        import pandas as pd
        rows = []
        for c in self.cells:
            for chk in c.checks:
                rows.append({"cell": c.index, "name": chk.get("name"),
                             "passed": bool(chk.get("passed")), "points": chk.get("points")})
            if c.check_error and not c.checks:
                rows.append({"cell": c.index, "name": c.error[1][:60], "passed": False,
                             "points": None})
        return pd.DataFrame(rows, columns=["cell", "name", "passed", "points"])

    def problems(self) -> list[str]:
        """What is wrong with this run, in sentences (empty: the lab is fine)."""
        out = []
        for c in self.cells:
            if c.error is not None and not (c.is_check and c.check_error and not self.solutions):
                kind = "check cell" if c.is_check else "cell"
                out.append(f"{c.where()}: {kind} raised {c.error[0]}: {c.error[1][:300]}")
                if not (c.is_check and c.check_error):
                    continue           # one complaint per cell
            if not c.is_check:
                continue
            if c.passed is None:
                out.append(f"{c.where()}: check cell reported no check "
                           f"(no {CHECK_MIME} output and no {'/'.join(CHECK_EXCEPTIONS)})")
            elif self.solutions and not c.passed and c.error is None:
                failed = [k.get("name") for k in c.checks if not k.get("passed")]
                out.append(f"{c.where()}: with the solutions in place, check(s) "
                           f"{failed or [c.error[1][:80] if c.error else '?']} failed")
            elif not self.solutions and c.passed and PASSES_UNFIXED_TAG not in c.tags:
                out.append(f"{c.where()}: check passes on the shipped (2007) code; a check "
                           f"must fail unfixed (tag the cell {PASSES_UNFIXED_TAG!r} if it "
                           "checks something the student does not fix)")
        return out


def kernel_env(extra: dict | None = None) -> dict:
    """The kernel's environment: this checkout's xenlab first on the path."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(REPO)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    env.pop("JUPYTER_TOKEN", None)
    env.update(extra or {})
    return env


def execute(nb, *, cwd, timeout: int = 600, kernel_name: str = "python3", env=None):
    """Execute ``nb`` (modified in place) in a fresh kernel; return wall seconds."""
    from nbclient import NotebookClient
    with tempfile.TemporaryDirectory(prefix="xenlab-nb-") as tmp:
        e = kernel_env(env)
        e.setdefault("IPYTHONDIR", os.path.join(tmp, "ipython"))
        e.setdefault("MPLCONFIGDIR", os.path.join(tmp, "mpl"))
        client = NotebookClient(nb, timeout=timeout, kernel_name=kernel_name,
                                allow_errors=True, record_timing=True,
                                resources={"metadata": {"path": str(cwd)}})
        t = time.perf_counter()
        client.execute(env=e)
        return time.perf_counter() - t


def judge(nb, *, name: str, solutions: bool, seconds: float = 0.0) -> Run:
    """Read an executed notebook's errors and check outputs."""
    cells = []
    for i, cell in enumerate(nb["cells"]):
        if cell.get("cell_type") != "code":
            continue
        src = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
        r = CellResult(i, list(cell.get("metadata", {}).get("tags", [])), src)
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                r.error = (out.get("ename", "?"), out.get("evalue", ""))
            data = out.get("data") or {}
            if CHECK_MIME in data:
                payload = data[CHECK_MIME]
                if isinstance(payload, str):
                    import json
                    payload = json.loads(payload)
                r.checks.append(dict(payload))
        r.seconds = _cell_seconds(cell)
        cells.append(r)
    return Run(name, solutions, seconds, cells)


def _cell_seconds(cell):
    ex = cell.get("metadata", {}).get("execution", {})
    a, b = ex.get("iopub.execute_input"), ex.get("shell.execute_reply")
    if not a or not b:
        return None
    from datetime import datetime
    try:
        return (datetime.fromisoformat(b.replace("Z", "+00:00")) -
                datetime.fromisoformat(a.replace("Z", "+00:00"))).total_seconds()
    except ValueError:
        return None


def with_seed(nb, seed: int):
    """``nb`` with its setup cell's ``SEED = ...`` line set to ``seed`` (another
    student's variant), as ``xenlab assign`` writes it."""
    import re
    for cell in nb.cells:
        if cell.cell_type == "code" and "setup" in cell.metadata.get("tags", []):
            src, n = re.subn(r"(?m)^SEED = [^\n#]*?(?=[ \t]*(#|$))", f"SEED = {int(seed)}",
                            cell.source, count=1)
            if n != 1:
                raise ValueError("the setup cell has no top-level 'SEED = ...' line")
            cell.source = src
            return nb
    raise ValueError("the notebook has no setup cell (tag 'setup')")


def is_exploration(path) -> bool:
    """``labs/9x_*.ipynb`` are exploration notebooks: they run headless like the
    labs, but have no hooks, answers or checks, and are not graded."""
    name = Path(path).name
    return len(name) > 3 and name[0] == "9" and name[1].isdigit() and name[2] == "_"


def run_notebook(path, *, solutions: bool, timeout: int = 600, env=None,
                 seed: int | None = None) -> Run:
    """Run the lab at ``path`` as the student gets it, or with its solutions;
    ``seed`` runs another variant (the setup cell's SEED replaced)."""
    import nbformat

    from .release import strip_solutions
    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    if seed is not None:
        nb = with_seed(nb, seed)
    if not solutions:
        nb = strip_solutions(nb)
    else:
        for cell in nb.cells:
            if cell.cell_type == "code":
                cell.outputs, cell.execution_count = [], None
    seconds = execute(nb, cwd=path.parent, timeout=timeout, env=env)
    return judge(nb, name=path.name, solutions=solutions, seconds=seconds)


def main(argv=None) -> int:
    """``python -m xenlab.tools.nbrun LAB.ipynb [--solutions] [--seed N]``: run and judge."""
    argv = list(sys.argv[1:] if argv is None else argv)
    seed = None
    if "--seed" in argv:
        i = argv.index("--seed")
        seed = int(argv[i + 1])
        del argv[i:i + 2]
    paths = [a for a in argv if not a.startswith("--")]
    solutions = "--solutions" in argv
    bad = 0
    for p in paths:
        run = run_notebook(p, solutions=solutions, seed=seed)
        probs = run.problems()
        print(f"{p}: {run.seconds:.1f} s, {len(run.check_cells)} check cell(s), "
              f"{'OK' if not probs else f'{len(probs)} problem(s)'}")
        for line in probs:
            print("  -", line)
        bad += bool(probs)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
