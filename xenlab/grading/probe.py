"""Fingerprints of the code a grade depends on, to catch monkey-patching.

A fingerprint maps every function, class and method binding of the watched
modules (xenlab's, and the modules a lab's stage, hooks and checks come from),
plus the check registry and the hook specs, to the identity of the object and
of its code.  Taken before a student's code runs and again after, a difference
names exactly what was replaced (``xenlab.checks.run``, a check's function, a
method of ``Stage``).  Bindings added later (lazy imports) are not a change.

Grading uses it twice: in the model run (:mod:`.sandbox`) and inside the
re-run notebook (:class:`Probe`, put in by :mod:`.rerun` after the setup cell
and read at the end).
"""

from __future__ import annotations

import sys
import types

PROBE_MIME = "application/vnd.xenlab.probe+json"
_SKIP_DUNDER = {"__doc__", "__module__", "__dict__", "__weakref__", "__qualname__",
                "__annotations__", "__dataclass_fields__", "__dataclass_params__",
                "__match_args__", "__firstlineno__", "__static_attributes__", "__orig_bases__",
                "__parameters__", "__abstractmethods__", "_abc_impl", "__slots__",
                "__hash__"}


def watched_modules(extra=()) -> list[str]:
    """xenlab's loaded modules, the extra ones named, and those of every check and hook."""
    names = {m for m in sys.modules if m == "xenlab" or m.startswith("xenlab.")}
    names |= {m for m in extra if m in sys.modules}
    checks = sys.modules.get("xenlab.checks")
    if checks is not None:
        names |= {c.fn.__module__ for c in checks.REGISTRY.values()
                  if getattr(c.fn, "__module__", None) in sys.modules}
    hooks = sys.modules.get("xenlab.lab.hooks")
    if hooks is not None:
        for s in hooks.SPECS.values():
            names |= {getattr(f, "__module__", None) for f in (s.default, s.reference)} - {None}
    return sorted(n for n in names if n in sys.modules and not n.startswith("xenlab.grading"))


def _code_id(obj):
    fn = getattr(obj, "__func__", obj)
    code = getattr(fn, "__code__", None)
    return id(code) if code is not None else None


def fingerprint(modules) -> dict:
    """{binding: (object id, code id)} for the callables of ``modules``, the check
    registry and the hook specs."""
    out = {}
    for mname in modules:
        mod = sys.modules.get(mname)
        if mod is None:
            continue
        for k, v in list(vars(mod).items()):
            if not (callable(v) or isinstance(v, types.ModuleType)) or k in _SKIP_DUNDER:
                continue
            out[f"{mname}.{k}"] = (id(v), _code_id(v))
            if isinstance(v, type) and v.__module__ == mname:
                for a, av in list(vars(v).items()):
                    if a in _SKIP_DUNDER:
                        continue
                    if callable(av) or isinstance(av, (property, classmethod, staticmethod)):
                        out[f"{mname}.{k}.{a}"] = (id(av), _code_id(av))
    checks = sys.modules.get("xenlab.checks")
    if checks is not None:
        for name, c in list(checks.REGISTRY.items()):
            out[f"check {name}"] = (id(c), id(c.fn), _code_id(c.fn), c.points, c.parent,
                                    c.hidden, c.lab)
    hooks = sys.modules.get("xenlab.lab.hooks")
    if hooks is not None:
        for name, s in list(hooks.SPECS.items()):
            out[f"hook spec {name}"] = (id(s), id(s.default), _code_id(s.default),
                                        id(s.reference), id(s.validate))
    return out


def changes(before: dict, after: dict) -> list[str]:
    """Bindings of ``before`` that were replaced or removed in ``after``."""
    out = []
    for k, v in before.items():
        if k not in after:
            out.append(f"{k} was removed")
        elif after[k] != v:
            out.append(f"{k} was replaced")
    return out


class Probe:
    """Put in a notebook after its setup cell; ``report(ns)`` at the end says what
    changed in between (bindings, the seed, the stage's seed)."""

    def __init__(self, seed: int, extra_modules=()):
        self.seed = int(seed)
        self.modules = watched_modules(extra_modules)
        self.before = fingerprint(self.modules)

    def report(self, ns: dict) -> dict:
        out = {"changes": changes(self.before, fingerprint(self.modules)), "seed": None,
               "stage_seed": None}
        if "SEED" in ns:
            try:
                out["seed"] = int(ns["SEED"])
            except Exception:
                out["seed"] = repr(ns["SEED"])[:80]
        lab = ns.get("lab")
        if lab is not None and hasattr(lab, "seed"):
            try:
                out["stage_seed"] = int(lab.seed)
            except Exception:
                out["stage_seed"] = repr(lab.seed)[:80]
        out["expected_seed"] = self.seed
        return out
