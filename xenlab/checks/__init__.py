"""Check cards: small tests that read the running model and say pass or fail.

A check is a function ``fn(stage) -> Finding`` registered with :func:`check`;
it looks at the model (frame table, page tables, registers, event channels,
console ring), never at what a notebook printed.  Running it gives a
:class:`CheckResult`, which shows itself in a notebook as a card saying what it
looked at, what it expected and what it found (plus a hint on failure), and
which, in grading mode, raises :class:`CheckFailed` so graders count it.

Checks carry their points.  A check may name a ``parent`` (usually "the boot
reached stage X"): when the parent fails, the child is reported as not run,
with the parent's reason, instead of failing mysteriously (gradelib's
``parent=`` pattern).
"""

from __future__ import annotations

import html
import json
import os
from dataclasses import asdict, dataclass
from typing import Callable

MIME = "application/vnd.xenlab.check+json"


@dataclass
class Finding:
    """What a check function returns: did it hold, and the sentences for the card."""

    ok: bool
    looked_at: str
    expected: str
    found: str
    hint: str = ""


@dataclass
class CheckResult:
    name: str
    title: str
    status: str            # "pass", "fail", "not run", "error"
    points: float
    max_points: float
    looked_at: str = ""
    expected: str = ""
    found: str = ""
    hint: str = ""
    lab: str = ""

    @property
    def passed(self) -> bool:
        return self.status == "pass"

    def to_json(self) -> dict:
        return asdict(self) | {"passed": self.passed}

    # -- notebook display ----------------------------------------------------
    def _repr_html_(self) -> str:
        colour = {"pass": "#1a7f37", "fail": "#cf222e", "not run": "#9a6700",
                  "error": "#cf222e"}[self.status]
        mark = {"pass": "&#10004;", "fail": "&#10008;", "not run": "&#9888;",
                "error": "&#10008;"}[self.status]
        rows = [("Looked at", self.looked_at), ("Expected", self.expected),
                ("Found", self.found)]
        if self.hint and not self.passed:
            rows.append(("Hint", self.hint))
        body = "".join(
            f"<tr><td style='padding:2px 8px;color:#57606a;vertical-align:top'>{k}</td>"
            f"<td style='padding:2px 8px'>{html.escape(v)}</td></tr>" for k, v in rows if v)
        return (f"<div class='xenlab-check xenlab-check-{self.status.replace(' ', '-')}' "
                f"style='border-left:6px solid {colour};padding:6px 10px;margin:4px 0;"
                f"background:#f6f8fa;font-family:sans-serif'>"
                f"<div style='font-weight:bold;color:{colour}'>{mark} {html.escape(self.title)}"
                f" <span style='float:right;color:#57606a'>{self.points:g} / {self.max_points:g}"
                f" points</span></div><table style='font-size:90%'>{body}</table></div>")

    def _repr_mimebundle_(self, include=None, exclude=None):
        return {"text/html": self._repr_html_(), "text/plain": repr(self),
                MIME: self.to_json()}

    def __repr__(self):
        return (f"[{self.status.upper()}] {self.title} ({self.points:g}/{self.max_points:g})"
                + (f"\n  looked at: {self.looked_at}\n  expected:  {self.expected}"
                   f"\n  found:     {self.found}" if not self.passed else "")
                + (f"\n  hint:      {self.hint}" if self.hint and not self.passed else ""))


class CheckFailed(AssertionError):
    """Raised in grading mode by a check that did not pass; carries the result."""

    def __init__(self, result: CheckResult):
        self.result = result
        super().__init__(repr(result))


@dataclass
class Check:
    name: str
    fn: Callable
    points: float
    title: str
    lab: str
    parent: str | None = None
    hidden: bool = False


REGISTRY: dict[str, Check] = {}


def check(*, points: float, title: str, lab: str, parent: str | None = None,
          hidden: bool = False, name: str | None = None):
    """Register ``fn(stage) -> Finding`` as a check worth ``points``."""
    def deco(fn):
        key = name or fn.__name__
        if key in REGISTRY and REGISTRY[key].fn.__module__ != fn.__module__:
            raise ValueError(f"check {key!r} is defined twice "
                             f"({REGISTRY[key].fn.__module__} and {fn.__module__})")
        REGISTRY[key] = Check(key, fn, points, title, lab, parent, hidden)
        return fn
    return deco


def grading_mode() -> bool:
    """True when a grader runs the notebook (checks then raise on failure)."""
    return bool(os.environ.get("XENLAB_GRADING") or os.environ.get("NBGRADER_EXECUTION"))


def load_all():
    """Register every check card: the stages' and the lab notebooks' questions."""
    from . import stages, tour  # noqa: F401


def evaluate(name: str, stage, _seen: dict | None = None) -> CheckResult:
    """Run check ``name`` against ``stage`` (parents first), never raising."""
    seen = {} if _seen is None else _seen
    if name in seen:
        return seen[name]
    if name not in REGISTRY:
        load_all()
    if name not in REGISTRY:
        raise KeyError(f"no check named {name!r}; known: {', '.join(sorted(REGISTRY))}")
    c = REGISTRY[name]
    base = dict(name=c.name, title=c.title, max_points=c.points, lab=c.lab)
    if c.parent:
        parent = evaluate(c.parent, stage, seen)
        if not parent.passed:
            res = CheckResult(status="not run", points=0,
                              looked_at=f"this check needs: {parent.title}",
                              expected="that check to pass first",
                              found=parent.found or parent.status,
                              hint=parent.hint, **base)
            seen[name] = res
            return res
    try:
        f = c.fn(stage)
        if not isinstance(f, Finding):
            raise TypeError(f"check {name} returned {type(f).__name__}, not a Finding")
        res = CheckResult(status="pass" if f.ok else "fail", points=c.points if f.ok else 0,
                          looked_at=f.looked_at, expected=f.expected, found=f.found,
                          hint=f.hint, **base)
    except Exception as e:     # a check must always produce a card
        res = CheckResult(status="error", points=0, looked_at="the model",
                          expected="the check to run", found=f"{type(e).__name__}: {e}",
                          hint="Boot the stage first (stage.boot()), then run the check.",
                          **base)
    seen[name] = res
    return res


def run(name: str, stage) -> CheckResult:
    """Run a check and return its card; in grading mode a failure raises."""
    res = evaluate(name, stage)
    if grading_mode() and not res.passed:
        try:
            from IPython.display import display
            display(res)
        except Exception:
            pass
        raise CheckFailed(res)
    return res


# ---------------------------------------------------------------------------
# questions: the investigation's small answers, checked against the model
# ---------------------------------------------------------------------------

def _as_value(answer, want):
    """The student's answer as the kind of value the model gives (an int may be
    typed as 0xcf8, 3320 or "0xcf8"; a name with or without its drv/ prefix)."""
    if isinstance(want, bool):
        return answer if isinstance(answer, bool) else None
    if isinstance(want, int):
        if isinstance(answer, bool):
            return None
        if isinstance(answer, int):
            return answer
        if isinstance(answer, str):
            try:
                return int(answer.strip().replace("_", ""), 0)
            except ValueError:
                return None
        return None
    if isinstance(want, str):
        if not isinstance(answer, str):
            return None
        return answer.strip().strip("'\"").lower().removeprefix("drv/")
    return answer


def _show(v) -> str:
    if isinstance(v, bool) or not isinstance(v, int):
        return repr(v)
    return f"{v:#x}" if v > 9 else str(v)


# check name -> (the key in stage.answers, the notebook variable that holds the answer)
QUESTIONS: dict[str, tuple[str, str]] = {}


def question(key: str, *, lab: str, points: float, title: str, answer: str, asks: str,
             looked_at: str, hint: str = "", name: str | None = None):
    """Register a question: ``fn(stage) -> truth`` reads the model (usually
    :func:`shipped_boot`) for the value the answer ``stage.answers[key]`` (the
    notebook's ``answer`` variable) must equal.  The card never shows the true
    value of a wrong answer, only what was asked and where to look."""
    def deco(fn):
        def check_answer(stage):
            given = getattr(stage, "answers", {}).get(key)
            if given is None:
                return Finding(False, looked_at, asks,
                               f"no answer yet: {answer} is None",
                               hint=hint or f"Fill in {answer} in the cell above and run it.")
            want = fn(stage)
            if isinstance(want, str):
                want = want.lower().removeprefix("drv/")
            got = _as_value(given, want)
            ok = got is not None and got == want
            found = (f"you answered {_show(given)}: right" if ok else
                     f"you answered {_show(given)}: not what the model shows")
            return Finding(ok, looked_at, asks, found, hint=hint)
        check_answer.__name__ = name or f"{lab}_{key}"
        check_answer.__module__ = fn.__module__
        check_answer.__doc__ = fn.__doc__
        check(points=points, title=title, lab=lab, name=name or f"q_{key}")(check_answer)
        QUESTIONS[name or f"q_{key}"] = (key, answer)
        return fn
    return deco


def checks_for(lab: str, *, hidden: bool | None = None) -> list[Check]:
    return [c for c in REGISTRY.values() if c.lab == lab and (hidden is None or c.hidden == hidden)]


def summary(results: list[CheckResult]) -> dict:
    return {"points": sum(r.points for r in results),
            "max_points": sum(r.max_points for r in results),
            "passed": sum(r.passed for r in results), "total": len(results)}


def results_json(results: list[CheckResult]) -> str:
    return json.dumps([r.to_json() for r in results])


def run_stage(stage, hidden: bool = False) -> list[CheckResult]:
    """Every check card of ``stage``'s lab (the public ones unless ``hidden``)."""
    from . import stages as _registered  # noqa: F401  (registers the stage checks)
    return [run(c.name, stage) for c in checks_for(stage.name) if hidden or not c.hidden]


def _register_with_lab():
    from ..lab import stage as _stage
    _stage.CHECK_RUNNER = run_stage


_register_with_lab()


class Preview:
    """A check card to look at, not to count: shows the result as HTML (no
    check output), so trying a wrong fix in an investigation cell teaches without
    grading anything."""

    def __init__(self, result: CheckResult):
        self.result = result

    @property
    def passed(self) -> bool:
        return self.result.passed

    def _repr_html_(self) -> str:
        return ("<div style='opacity:0.85'><i>preview (not graded):</i>"
                + self.result._repr_html_() + "</div>")

    def __repr__(self):
        return "preview (not graded): " + repr(self.result)


def preview(name: str, stage) -> Preview:
    """Check ``name`` against ``stage``, shown as an ungraded card."""
    return Preview(evaluate(name, stage))


def previews(names, stage) -> None:
    """Display a preview card for each check in ``names`` (in a notebook)."""
    from IPython.display import display
    for n in names:
        display(preview(n, stage))


from ._model import native_variant, other_variant, shipped_boot  # noqa: E402

__all__ = ["run_stage", "question", "QUESTIONS", "preview", "previews", "Preview", "load_all",
           "shipped_boot", "other_variant", "native_variant", "Finding", "CheckResult",
           "CheckFailed", "check", "run", "evaluate", "checks_for", "grading_mode", "summary",
           "REGISTRY", "MIME"]
