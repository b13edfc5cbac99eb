"""``xenlab bench labs``: wall time of each lab notebook run headless.

Each ``labs/*.ipynb`` runs with its solutions in place in a fresh kernel (the
way the grader runs a finished submission), beside a peer measured in the same
run: a notebook whose only cell imports xenlab, i.e. what starting a kernel
costs before a lab does anything.  ``XENLAB_LABS_DIR`` points it at another
folder.  Target: under 30 s per lab once the numba cache is warm (issue 7).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from . import Row

TARGET_S = 30.0


def labs_dir() -> Path:
    env = os.environ.get("XENLAB_LABS_DIR")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "labs"


def _kernel_start_seconds() -> float:
    """The peer: a fresh kernel that imports xenlab and stops."""
    import nbformat

    from ..tools.nbrun import execute
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell("import xenlab, xenlab.machine, xenlab.viz")]
    with tempfile.TemporaryDirectory() as tmp:
        return execute(nb, cwd=tmp, timeout=300)


def bench_labs(quick: bool) -> list[Row]:
    from ..tools.nbrun import run_notebook
    labs = sorted(labs_dir().glob("*.ipynb"))
    if quick:
        labs = labs[:1]
    if not labs:
        return []
    peer = _kernel_start_seconds()
    rows = []
    for path in labs:
        run = run_notebook(path, solutions=True, timeout=1800)
        case = path.stem if not run.problems() else f"{path.stem} (has problems: "\
            f"python -m xenlab.tools.nbrun {path} --solutions)"
        rows.append(Row("labs", case, run.seconds, "s", target=f"< {TARGET_S:g} s",
                        met=run.seconds < TARGET_S).with_peer("kernel start + import xenlab",
                                                              peer))
    return rows
