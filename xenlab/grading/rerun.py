"""Re-run a submission in a fresh kernel, as nbgrader's autograde does.

The submission's locked cells (setup, boot, check) are replaced by the
instructor's versions for this student's seed, hidden checks included (a
missing one is put back at the end), so the run shows what the student's own
cells make of the real checks.  A probe cell after the setup cell fingerprints
the code, and a last cell reports what changed (:class:`xenlab.grading.probe.Probe`).

The whole notebook has one time limit: each cell gets what is left of it.  A
cell that runs past it, or a kernel that dies, ends the run; the result says
which cell it was, and the cells after it did not run.
"""

from __future__ import annotations

import copy
import subprocess
import json
import os
import tempfile
import time
from dataclasses import dataclass, field

from ..tools.nbrun import CHECK_MIME, kernel_env
from .labfile import LOCKED_ROLES, grade_id, role_of, source
from .probe import PROBE_MIME

PROBE_TAG = "xenlab-grading-probe"


@dataclass
class Rerun:
    status: str = "ok"                 # ok, timeout, crashed, error
    detail: str = ""
    stopped_at: int | None = None      # index (in the run notebook) of the cell that stopped it
    seconds: float = 0.0
    cells: list = field(default_factory=list)      # per cell: grade_id, role, ran, error, checks
    probe: dict | None = None

    def ran(self, gid: str) -> bool:
        return any(c["grade_id"] == gid and c["ran"] for c in self.cells)

    def seen_checks(self) -> dict:
        """check name -> the card (json) the notebook showed, last one wins."""
        out = {}
        for c in self.cells:
            for k in c["checks"]:
                out[k.get("name")] = k
        return out

    def to_json(self):
        return self.__dict__ | {}


def build(submission, trusted_release, seed: int, extra_modules=()):
    """The notebook to run: the submission with locked cells from ``trusted_release``."""
    import nbformat
    nb = copy.deepcopy(submission)
    trusted = {grade_id(c): c for c in trusted_release["cells"]
               if c.get("cell_type") == "code" and role_of(c) in LOCKED_ROLES}
    placed = set()
    for cell in nb["cells"]:
        if cell.get("cell_type") != "code":
            continue
        gid = grade_id(cell)
        if gid in trusted and gid not in placed:
            t = trusted[gid]
            cell["source"], cell["metadata"] = source(t), copy.deepcopy(t["metadata"])
            placed.add(gid)
        elif gid in trusted:                       # a duplicated locked cell: run it as the
            cell["source"] = source(trusted[gid])   # instructor wrote it
        cell["outputs"], cell["execution_count"] = [], None
    for gid, t in trusted.items():
        if gid not in placed:
            c = copy.deepcopy(t)
            c["outputs"], c["execution_count"] = [], None
            nb["cells"].append(nbformat.from_dict(c))
    setup_at = next((i for i, c in enumerate(nb["cells"]) if role_of(c) == "setup"), 0)
    probe = nbformat.v4.new_code_cell(
        "import xenlab.grading.probe as __xenlab_grading_probe\n"
        f"__xenlab_probe = __xenlab_grading_probe.Probe({int(seed)}, "
        f"{list(extra_modules)!r})\ndel __xenlab_grading_probe")
    end = nbformat.v4.new_code_cell(
        "from IPython.display import display as __xenlab_display\n"
        f"__xenlab_display({{{PROBE_MIME!r}: __xenlab_probe.report(globals())}}, raw=True)")
    for c in (probe, end):
        c.metadata["tags"] = [PROBE_TAG]
        c.pop("id", None)
    nb["cells"].insert(setup_at + 1, probe)
    nb["cells"].append(end)
    for c in nb["cells"]:
        c.pop("id", None)
    nb["nbformat"], nb["nbformat_minor"] = 4, 4
    return nbformat.from_dict(nb)


def execute(nb, *, limit: float, env: dict | None = None, kernel_name="python3") -> Rerun:
    """Run ``nb`` (modified in place) with ``limit`` seconds for the whole notebook."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    out = Rerun()
    started = {"i": None}
    deadline = time.monotonic() + limit
    with tempfile.TemporaryDirectory(prefix="xenlab-grade-") as tmp:
        e = kernel_env(env)
        e.pop("XENLAB_COURSE_SECRET", None)
        e["XENLAB_GRADING"] = "1"
        e.setdefault("IPYTHONDIR", os.path.join(tmp, "ipython"))
        e.setdefault("MPLCONFIGDIR", os.path.join(tmp, "mpl"))
        e["MPLBACKEND"] = "Agg"

        def on_start(cell, cell_index, **kw):
            started["i"] = cell_index

        client = NotebookClient(nb, kernel_name=kernel_name, allow_errors=True,
                                timeout_func=lambda cell: max(1, int(deadline - time.monotonic())),
                                startup_timeout=120, resources={"metadata": {"path": tmp}},
                                on_cell_start=on_start)
        t = time.perf_counter()
        try:
            client.execute(env=e, cwd=tmp, stderr=subprocess.DEVNULL)
        except CellTimeoutError:
            out.status, out.stopped_at = "timeout", started["i"]
            out.detail = f"the notebook ran past its {limit:g} s limit in cell {started['i']}"
        except DeadKernelError as ex:
            out.status, out.stopped_at = "crashed", started["i"]
            out.detail = f"the kernel died in cell {started['i']}: {str(ex)[:200]}"
        except Exception as ex:
            out.status, out.stopped_at = "error", started["i"]
            out.detail = f"the notebook could not be run: {type(ex).__name__}: {str(ex)[:300]}"
        out.seconds = time.perf_counter() - t
    for i, cell in enumerate(nb["cells"]):
        if cell.get("cell_type") != "code":
            continue
        tags = cell.get("metadata", {}).get("tags", [])
        ran = out.stopped_at is None or i < out.stopped_at
        rec = {"index": i, "grade_id": grade_id(cell), "role": role_of(cell), "ran": ran,
               "error": None, "checks": []}
        for o in cell.get("outputs", []):
            if o.get("output_type") == "error":
                rec["error"] = f"{o.get('ename')}: {o.get('evalue', '')}"[:500]
            data = o.get("data") or {}
            if CHECK_MIME in data:
                payload = data[CHECK_MIME]
                rec["checks"].append(json.loads(payload) if isinstance(payload, str)
                                     else dict(payload))
            if PROBE_MIME in data and PROBE_TAG in tags:
                payload = data[PROBE_MIME]
                out.probe = json.loads(payload) if isinstance(payload, str) else dict(payload)
        if PROBE_TAG in tags:
            if rec["error"] and out.status == "ok":
                out.probe = {"error": rec["error"]}
            continue
        out.cells.append(rec)
    return out
