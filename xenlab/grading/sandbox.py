"""Grade one submission against the model, in a fresh process.

``python -m xenlab.grading.sandbox JOB.json EVENTS.jsonl`` runs, in order:

1. the lab's **setup** cell as the instructor wrote it, with the re-derived seed;
2. the **Stage(...)** expression of the boot cell: a fresh, unbooted stage;
3. the student's **hook and answer cells** only, in a namespace of their own where
   ``lab`` is a :class:`Recorder`: ``lab.hooks.NAME = fn`` is recorded,
   ``lab.answers`` too, and touching ``lab.machine`` / ``.xen`` / ``.kernel`` is
   refused and flagged (also when a hook does it later, during the boot);
4. installs the recorded hooks on the fresh stage and **boots** it;
5. the lab's **check cells** as the instructor wrote them, hidden checks
   included, with ``xenlab.checks.run`` collecting every result (no raising).

Before step 3 it fingerprints the code (:mod:`.probe`) and puts tripwires on the
reference fixes of the lab's hooks; after steps 3, 4 and 5 it compares.  It
writes one JSON object per line as it goes (flags, cell errors, each check
result), so a run killed at its time limit still tells what it had graded.
The process never sees the course secret, only the seed.
"""

from __future__ import annotations

import builtins
import functools
import json
import os
import sys
import time
import traceback
import types

from .tamper import Flag, loaded_names, scan_cell


STUDENT_FILE = "<student "       # code objects compiled from the student's cells


class Events:
    def __init__(self, path):
        self.f = open(path, "a", buffering=1, encoding="utf-8")
        self._dumps, self._write = json.dumps, self.f.write    # held before student code runs

    def __call__(self, event, **kw):
        self._write(self._dumps({"event": event, **kw}, default=str) + "\n")
        self.f.flush()


class ModelAccessRefused(AttributeError):
    """A hook cell (or a hook, while grading) reached for the model."""


def make_recorder(emit, Hooks):
    """The stand-in for ``lab`` while the student's cells run."""

    class RecordingHooks(Hooks):
        def use_reference(self, stage=None):
            emit("flag", **Flag("reference", "calls lab.hooks.use_reference()").to_json())

    class Recorder:
        def __init__(self):
            object.__setattr__(self, "hooks", RecordingHooks())
            object.__setattr__(self, "answers", {})

        def __getattr__(self, name):
            if name in ("machine", "xen", "kernel"):
                emit("flag", **Flag("model-edit", f"a hook cell or hook reads lab.{name}: hooks "
                                                  "must not touch the model").to_json())
                raise ModelAccessRefused(f"lab.{name} is not available to hooks when grading")
            if name == "apply_reference_fix":
                emit("flag", **Flag("reference", "calls lab.apply_reference_fix()").to_json())
                return lambda *a, **k: None
            if name in ("boot", "check", "refresh"):
                return lambda *a, **k: None      # a habit from the notebook; grading boots
            raise AttributeError(f"lab.{name} is not available in hook cells when grading "
                                 "(they only define hooks and set lab.hooks.NAME)")

        def __setattr__(self, name, value):
            emit("flag", **Flag("model-edit", f"a hook cell assigns lab.{name}").to_json())

    return Recorder()


def _category(name, value, xenlab_modules):
    if name == "SEED":
        return "seed"
    mod = value.__name__ if isinstance(value, types.ModuleType) else getattr(value, "__module__",
                                                                             None)
    if isinstance(value, dict) and name == "REGISTRY":
        return "checks"
    if not isinstance(mod, str):
        return None
    if mod == "xenlab.checks":
        return "checks"
    if mod in xenlab_modules or mod == "xenlab" or mod.startswith("xenlab."):
        return "xenlab"
    return None


def run(job: dict, emit) -> None:
    os.environ["XENLAB_GRADING"] = "1"
    os.environ.pop("XENLAB_COURSE_SECRET", None)
    import xenlab.checks as C
    from xenlab.lab import hooks as H
    from . import probe as P

    evaluate, CheckResult = C.evaluate, C.CheckResult
    fingerprint, changes, watched_modules = P.fingerprint, P.changes, P.watched_modules
    current = {"cell": None}
    _getframe = sys._getframe
    perf = time.perf_counter

    def collect(name, stage):
        res = evaluate(name, stage)
        key = (current["cell"], name)
        current[key] = current.get(key, -1) + 1          # the n-th run of it in this cell
        emit("check", cell=current["cell"], n=current[key], result=res.to_json())
        return res

    C.run = collect

    ns = {"__name__": "__xenlab_lab__", "__builtins__": builtins}
    t0 = perf()
    try:
        exec(compile(job["setup"], "<setup cell>", "exec"), ns)
        stage = eval(compile(job["stage_expr"], "<boot cell>", "eval"), ns)
    except BaseException as e:
        emit("fatal", where="setup", error=f"{type(e).__name__}: {e}",
             traceback=traceback.format_exc()[-2000:])
        return
    emit("timing", step="setup", seconds=perf() - t0)
    names = [k for cell in job["check_cells"] for k, _ in cell["calls"]]
    emit("catalog", checks={k: {"title": C.REGISTRY[k].title, "points": C.REGISTRY[k].points,
                                "hidden": C.REGISTRY[k].hidden}
                            for k in names if k in C.REGISTRY})
    if job.get("catalog_only"):
        return

    # tripwires on the reference fixes of the hooks this lab asks for
    fired = []
    for name in job["hooks"]:
        spec = H.SPECS.get(name)
        if spec is None:
            emit("fatal", where="setup", error=f"the lab installs hook {name!r}, which no "
                                               "module defines")
            return
        ref = spec.reference

        def tripwire(*a, __ref=ref, __name=name, **k):
            f = _getframe(1)
            while f is not None:             # called from the student's code (not a check)?
                if f.f_code.co_filename.startswith(STUDENT_FILE):
                    fired.append(__name)
                    break
                f = f.f_back
            return __ref(*a, **k)
        functools.update_wrapper(tripwire, ref)
        spec.reference = tripwire
        mod = sys.modules.get(getattr(ref, "__module__", ""), None)
        if mod is not None and getattr(mod, ref.__name__, None) is ref:
            setattr(mod, ref.__name__, tripwire)
    references = {getattr(H.SPECS[n].reference, "__name__", "") for n in job["hooks"]} - {""}
    ref_codes = {id(H.SPECS[n].reference.__wrapped__.__code__) for n in job["hooks"]}

    extra = {type(stage).__module__}
    modules = watched_modules(extra)
    xenlab_modules = set(modules)
    aliases = {k: c for k, v in ns.items() if not k.startswith("__")
               for c in [_category(k, v, xenlab_modules)] if c}
    aliases["lab"] = "stage"
    protected = loaded_names(job["locked_sources"]) | {"lab", "SEED"}
    for cell in job["student_cells"]:
        for f in scan_cell(cell["source"], role=cell["role"], where=cell["where"],
                           aliases=aliases, protected=protected, references=references,
                           watched=xenlab_modules):
            emit("flag", **f.to_json())

    before = fingerprint(modules)
    rec = make_recorder(emit, H.Hooks)
    student_ns = dict(ns)
    student_ns["lab"] = rec
    trusted_names = set(ns)
    for cell in job["student_cells"]:
        if cell["role"] not in ("hook", "answer"):
            continue
        t = perf()
        try:
            exec(compile(cell["source"], f"{STUDENT_FILE}{cell['where']}>", "exec"), student_ns)
        except BaseException as e:
            emit("cell_error", cell=cell["where"], role=cell["role"],
                 error=f"{type(e).__name__}: {e}")
        emit("timing", step=cell["where"], seconds=perf() - t)
    for c in changes(before, fingerprint(modules)):
        emit("flag", **Flag("monkey-patch", f"{c} while the hook cells ran").to_json())

    chosen = dict(rec.hooks._chosen)
    for name, fn in chosen.items():
        target = getattr(fn, "func", fn)                   # functools.partial
        while hasattr(target, "__wrapped__"):
            target = target.__wrapped__
        if id(getattr(target, "__code__", None)) in ref_codes:
            emit("flag", **Flag("reference", f"lab.hooks.{name} is the reference fix").to_json())
    emit("hooks", chosen={k: getattr(v, "__qualname__", repr(v)) for k, v in chosen.items()})
    for name, fn in chosen.items():
        try:
            setattr(stage.hooks, name, fn)
        except Exception as e:
            emit("cell_error", cell=f"installing lab.hooks.{name}", role="hook",
                 error=f"{type(e).__name__}: {e}")
    if rec.answers:
        if not hasattr(stage, "answers"):
            stage.answers = {}
        stage.answers.update(rec.answers)
    for k, v in student_ns.items():          # answers (ANSWER_X = ...) for the check cells
        if k not in trusted_names and not k.startswith("__"):
            ns[k] = v

    t = perf()
    try:
        stage.boot()
    except BaseException as e:
        emit("cell_error", cell="boot", role="boot", error=f"{type(e).__name__}: {e}")
    emit("timing", step="boot", seconds=perf() - t)
    res = getattr(stage, "result", None)
    if res is not None:
        emit("boot", reached=str(getattr(res, "reached", "")), failed=str(getattr(res, "failed", "")),
             why=str(getattr(res, "why", ""))[:500])
    for c in changes(before, fingerprint(modules)):
        emit("flag", **Flag("monkey-patch", f"{c} while the stage booted with your hooks")
             .to_json())

    ns["lab"] = stage
    for cell in job["check_cells"]:
        current["cell"] = cell["grade_id"]
        t = perf()
        try:
            exec(compile(cell["source"], f"<check cell {cell['grade_id']}>", "exec"), ns)
        except BaseException as e:
            emit("cell_error", cell=cell["grade_id"], role="check",
                 error=f"{type(e).__name__}: {e}")
        emit("timing", step=cell["grade_id"], seconds=perf() - t)
    after = fingerprint(modules)
    for c in changes(before, after):
        emit("flag", **Flag("monkey-patch", f"{c} while the checks ran").to_json())
    for name in sorted(set(fired)):
        emit("flag", **Flag("reference", f"the reference fix of hook {name!r} was called "
                                         "while grading").to_json())
    _ = CheckResult


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    with open(argv[0], encoding="utf-8") as f:
        job = json.load(f)
    emit = Events(argv[1])
    try:
        run(job, emit)
    except BaseException as e:        # never leave without saying why
        emit("fatal", where="grader", error=f"{type(e).__name__}: {e}",
             traceback=traceback.format_exc()[-2000:])
    emit("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
