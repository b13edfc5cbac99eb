"""Grade one submission: the unit of work a process pool or a Dask worker runs.

:func:`grade_submission` takes a plain dict (the submission and the
instructor's lab as notebook JSON, the student, the re-derived seed, the time
limit) and returns a plain dict (one row per check, the flags, how the runs
went), so the same function runs in a local process pool and on a Dask cluster
with no shared files.  It never raises for a bad submission: a notebook that
cannot be read, crashes or loops becomes rows with a status saying so.

Points come from the model (:mod:`.sandbox`); a check cell is the unit of
credit, as in nbgrader (its checks' points are earned when all of them pass,
so a hidden check that fails takes the public one's points with it); a check
the re-run notebook never reached (timeout, crash) earns nothing; a tamper flag
voids its scope.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time

from .assign import release_notebook
from .labfile import LOCKED_ROLES, STUDENT_ROLES, grade_id, read_lab, role_of, source
from .tamper import Flag, compare_locked

COLUMNS = ["student", "lab", "cell", "check", "title", "hidden", "points", "max_points",
           "status", "message", "flags", "model_status", "notebook", "seed"]


def _message(card: dict | None) -> str:
    if not card:
        return ""
    if card.get("passed") or card.get("status") == "pass":
        return f"passed: {card.get('found', '')}".rstrip(": ")
    msg = f"expected {card.get('expected', '')}; found {card.get('found', '')}"
    if card.get("hint"):
        msg += f" (hint: {card['hint']})"
    return msg


def student_cells(submission, lab) -> list[dict]:
    """The submission's own cells: everything but the locked ones, with their role."""
    release_roles = {c.grade_id: c.role for c in lab.cells if c.grade_id}
    locked_ids = {c.grade_id for c in lab.cells if c.role in LOCKED_ROLES}
    out = []
    for i, cell in enumerate(submission.get("cells", [])):
        if cell.get("cell_type") != "code":
            continue
        gid = grade_id(cell)
        if gid in locked_ids:
            continue
        role = release_roles.get(gid) if gid in release_roles else role_of(cell)
        if role not in STUDENT_ROLES:
            role = "investigate"
        out.append({"where": f"cell {i}" + (f" ({gid})" if gid else ""), "role": role,
                    "grade_id": gid, "source": source(cell)})
    return out


class Sandbox:
    """:mod:`.sandbox` running in its own process; :meth:`wait` gives its events."""

    def __init__(self, sjob: dict, limit: float, env=None):
        from ..tools.nbrun import kernel_env
        self.tmp = tempfile.TemporaryDirectory(prefix="xenlab-sandbox-")
        tmp = self.tmp.name
        jp, self.ep = os.path.join(tmp, "job.json"), os.path.join(tmp, "events.jsonl")
        with open(jp, "w", encoding="utf-8") as f:
            json.dump(sjob, f)
        e = kernel_env(env)
        e.pop("XENLAB_COURSE_SECRET", None)
        e["MPLBACKEND"] = "Agg"
        self.limit, self.deadline = limit, time.monotonic() + limit
        self.p = subprocess.Popen([sys.executable, "-m", "xenlab.grading.sandbox", jp, self.ep],
                                  cwd=tmp, env=e, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, start_new_session=True)

    def wait(self) -> tuple[list[dict], str]:
        p, how = self.p, "ok"
        try:
            _, err = p.communicate(timeout=max(0.1, self.deadline - time.monotonic()))
            if p.returncode:
                how = f"crashed: the grading process exited with {p.returncode}: " \
                      f"{err.decode(errors='replace')[-300:]}"
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.communicate()
            how = f"timeout: the hooks and checks ran past the {self.limit:g} s limit"
        ep = self.ep
        events = []
        if os.path.exists(ep):
            with open(ep, encoding="utf-8") as f:
                for line in f:
                    try:
                        events.append(json.loads(line))
                    except ValueError:
                        pass
        if how == "ok" and not any(ev["event"] == "done" for ev in events):
            how = "crashed: the grading process stopped without finishing"
        self.tmp.cleanup()
        return events, how


def grade_submission(job: dict) -> dict:
    """Grade one submission (see the module docstring).  ``job`` keys: student, lab,
    seed, submission (notebook JSON or None), source (the instructor's lab JSON),
    timeout (seconds per run), path (for the report), rerun (default True)."""
    t0 = time.perf_counter()
    student, seed, limit = job["student"], int(job["seed"]), float(job.get("timeout", 600))
    lab = read_lab(job["source"], job["lab"])
    out = {"student": student, "lab": lab.name, "path": job.get("path", ""), "seed": seed,
           "flags": [], "notes": [], "boot": None, "rerun": None, "rows": []}
    flags: list[Flag] = []
    release = release_notebook(lab, student, seed)
    trusted = release_notebook(lab, student, seed, hidden=False)
    sub = job.get("submission")
    cells = student_cells(sub, lab) if sub is not None else []
    trusted_by_id = {grade_id(c): c for c in trusted["cells"] if c.get("cell_type") == "code"}
    setup = next(c for c in lab.cells if c.role == "setup")
    sjob = {"lab": lab.name, "seed": seed, "catalog_only": sub is None,
            "setup": source(trusted_by_id[setup.grade_id]),
            "stage_expr": lab.stage_expr, "hooks": lab.hooks, "student_cells": cells,
            "check_cells": [{"grade_id": c.grade_id, "source": source(trusted_by_id[c.grade_id]),
                             "calls": c.calls} for c in lab.check_cells],
            "locked_sources": [source(trusted_by_id[c.grade_id]) for c in lab.cells
                               if c.role in LOCKED_ROLES]}
    sandbox = Sandbox(sjob, limit, job.get("env"))
    rerun = None
    if sub is not None:
        flags += compare_locked(sub, release, student=student, seed=seed, lab=lab.name)
        if job.get("rerun", True):      # runs while the sandbox grades the model
            from .rerun import Rerun, build, execute
            try:
                rerun = execute(build(sub, trusted, seed), limit=limit, env=job.get("env"))
            except Exception as e:            # the batch goes on
                rerun = Rerun(status="error", detail=f"{type(e).__name__}: {e}")
            out["rerun"] = {"status": rerun.status, "detail": rerun.detail,
                            "seconds": round(rerun.seconds, 2)}
            flags += _probe_flags(rerun, seed)
    events, how = sandbox.wait()
    catalog, results, cell_errors = {}, {}, {}
    for ev in events:
        kind = ev.pop("event")
        if kind == "flag":
            flags.append(Flag(**ev))
        elif kind == "check":
            results[(ev["cell"], ev["result"]["name"], ev.get("n", 0))] = ev["result"]
        elif kind == "cell_error":
            out["notes"].append(f"{ev['cell']}: {ev['error']}")
            cell_errors[ev["cell"]] = ev["error"]
        elif kind == "boot":
            out["boot"] = ev
        elif kind == "catalog":
            catalog = ev["checks"]
        elif kind == "fatal":
            how = f"error: {ev['where']}: {ev['error']}"
    if sub is None:
        how = f"missing: {job.get('error', 'no notebook')}"
    out["seconds"] = round(time.perf_counter() - t0, 2)
    unique = []
    for f in flags:
        if all((f.kind, f.reason, f.scope) != (g.kind, g.reason, g.scope) for g in unique):
            unique.append(f)
    return _rows(out, lab, flags=unique, results=results, rerun=rerun, how=how,
                 catalog=catalog, cell_errors=cell_errors)


def _probe_flags(rerun, seed) -> list[Flag]:
    flags = []
    p = rerun.probe
    if rerun.status != "ok":
        return flags                       # the end of the notebook never ran
    if p is None:
        return [Flag("monkey-patch", "the grading probe did not report (the notebook removed "
                                     "or replaced it)")]
    if "error" in p:
        return [Flag("monkey-patch", f"the grading probe failed: {p['error']}")]
    for c in p.get("changes", []):
        flags.append(Flag("monkey-patch", f"{c} during the notebook run"))
    for key, what in (("seed", "SEED"), ("stage_seed", "lab.seed")):
        if p.get(key) is not None and p.get(key) != seed:
            flags.append(Flag("seed", f"at the end of the notebook run {what} was "
                                      f"{p.get(key)!r}; this student's variant is {seed}"))
    return flags


def _rows(out, lab, results=None, rerun=None, flags=(), how="ok", catalog=None,
          cell_errors=None):
    results, catalog, cell_errors = results or {}, catalog or {}, cell_errors or {}
    info = [f for f in flags if f.scope == "info"]
    void_lab = [f for f in flags if f.scope == "lab"]
    void_cell = {}
    for f in flags:
        if f.scope.startswith("cell:"):
            void_cell.setdefault(f.scope[5:], []).append(f)
    seen = rerun.seen_checks() if rerun else {}
    rows = []
    for cell in lab.check_cells:
        calls, count = [], {}
        for name, hidden in cell.calls:                 # (name, hidden, n-th run in the cell)
            count[name] = count.get(name, -1) + 1
            calls.append((name, hidden, count[name]))
        got = {c: results.get((cell.grade_id, c[0], c[2])) for c in calls}
        cell_ok = all(r is not None and r["status"] == "pass" for r in got.values())
        notebook = "not run"
        if rerun is not None:
            ran = rerun.ran(cell.grade_id)
            notebook = "ran" if ran else f"{rerun.status}: did not run"
        for call in calls:
            k, hidden, _ = call
            r = got[call]
            reg = catalog.get(k, {})
            maxp = float(r["max_points"]) if r else float(reg.get("points", 0))
            title = r["title"] if r else reg.get("title", k)
            card = r if hidden else (seen.get(k) or r)     # hidden: the student saw nothing
            model_status = r["status"] if r else how.split(":")[0] if how != "ok" else "not run"
            status = model_status
            if card:
                message = _message(card)
            elif how != "ok":
                message = how
            elif cell.grade_id in cell_errors:
                message = f"the check cell stopped before this check: {cell_errors[cell.grade_id]}"
            else:
                message = "the check did not run"
            points = maxp if (r and cell_ok) else 0.0
            reasons = []
            if r and r["status"] == "pass" and not cell_ok:
                bad = [n + (" (hidden)" if h else "") for (n, h, _), x in got.items()
                       if not x or x["status"] != "pass"]
                reasons.append(f"no credit: {', '.join(bad)} in the same check cell did not pass")
            if rerun is not None and not rerun.ran(cell.grade_id):
                points, status = 0.0, rerun.status
                message = rerun.detail
            vs = void_lab + void_cell.get(cell.grade_id, [])
            if vs:
                points = 0.0
                status = "flagged"
                reasons += [str(f) for f in vs]
            if r and r["status"] != "pass" and seen.get(k, {}).get("passed"):
                reasons.append("passed in the notebook but not against the model built from "
                               "the hook cells alone (something outside the hooks changed the "
                               "model or the check)")
                reasons += [str(f) for f in info]
            rows.append({"student": out["student"], "lab": lab.name, "cell": cell.grade_id,
                         "check": k, "title": title, "hidden": hidden,
                         "points": points, "max_points": maxp, "status": status,
                         "message": message, "flags": "; ".join(reasons),
                         "model_status": model_status,
                         "notebook": notebook, "seed": out["seed"],
                         "looked_at": (r or {}).get("looked_at", ""),
                         "expected": (r or {}).get("expected", ""),
                         "found": (r or {}).get("found", "") or (how if not r else ""),
                         "hint": (r or {}).get("hint", "")})
    if "boot" in cell_errors:
        out["notes"].insert(0, f"the boot with your hooks raised {cell_errors['boot']}")
    out["rows"] = rows
    out["flags"] = [f.to_json() for f in flags]
    out["status"] = how
    return out
