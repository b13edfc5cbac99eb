"""The grade table, its summaries, the students' feedback pages and a plot."""

from __future__ import annotations

import html
from pathlib import Path

from .job import COLUMNS

CARD_STATUS = {"pass": "pass", "fail": "fail", "not run": "not run", "error": "error",
               "flagged": "fail", "timeout": "not run", "crashed": "not run",
               "missing": "not run"}


def table(results: list[dict]):
    """One row per student, lab and check (see ``xenlab.grading.job.COLUMNS``)."""
    import pandas as pd
    rows = [r for res in results for r in res["rows"]]
    df = pd.DataFrame(rows)
    if df.empty:
        df = pd.DataFrame(columns=COLUMNS)
    extra = [c for c in df.columns if c not in COLUMNS]
    return df[COLUMNS + extra].sort_values(["lab", "student", "cell", "check"],
                                           kind="stable").reset_index(drop=True)


def totals(t):
    """Points per student and lab (a student x lab table)."""
    return t.pivot_table(index="student", columns="lab", values="points", aggfunc="sum",
                         fill_value=0.0)


def summary(t):
    """Per lab: students graded, mean/median/min/max points, the maximum, how many
    students were flagged, timed out or crashed."""
    import pandas as pd
    rows = []
    for lab, g in t.groupby("lab", sort=True):
        per = g.groupby("student")["points"].sum()
        maxp = g.groupby("student")["max_points"].sum().max()
        st = g.groupby("student")["status"].agg(set)
        rows.append({"lab": lab, "students": len(per), "mean": per.mean(),
                     "median": per.median(), "min": per.min(), "max": per.max(),
                     "max_points": maxp,
                     "full_marks": int((per >= maxp).sum()),
                     "flagged": int(st.map(lambda s: "flagged" in s).sum()),
                     "timeout": int(st.map(lambda s: "timeout" in s).sum()),
                     "crashed": int(st.map(lambda s: "crashed" in s).sum())})
    return pd.DataFrame(rows)


def check_summary(t):
    """Per lab and check: how many students passed it, and the mean points."""
    return (t.groupby(["lab", "cell", "check", "hidden"], sort=True)
             .agg(max_points=("max_points", "max"), mean_points=("points", "mean"),
                  credited=("points", lambda p: int((p > 0).sum())), students=("student", "nunique"))
             .reset_index())


def feedback_html(result: dict) -> str:
    """A student's page for one lab: the total, any flags, the check cards."""
    from xenlab.checks import CheckResult
    rows = result["rows"]
    got, maxp = sum(r["points"] for r in rows), sum(r["max_points"] for r in rows)
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(result['lab'])}"
             f" — {html.escape(result['student'])}</title></head><body style='font-family:"
             "sans-serif;max-width:52em;margin:2em auto'>",
             f"<h1>{html.escape(result['lab'])}</h1><p>Student <b>{html.escape(result['student'])}"
             f"</b> &middot; <b>{got:g} / {maxp:g}</b> points</p>"]
    run = result.get("rerun") or {}
    if run and run.get("status") != "ok":
        parts.append(f"<p style='color:#9a6700'><b>Your notebook did not finish:</b> "
                     f"{html.escape(run.get('detail', ''))}. Checks after that point earn no "
                     "points.</p>")
    if result.get("status", "ok") != "ok":
        parts.append(f"<p style='color:#9a6700'><b>Grading your hooks:</b> "
                     f"{html.escape(result['status'])}</p>")
    lab_flags = [f for f in result.get("flags", []) if f.get("scope") != "info"]
    if lab_flags:
        parts.append("<div style='border:2px solid #cf222e;padding:6px 10px'><b>Flagged for "
                     "review</b> (no credit for the checks affected):<ul>" +
                     "".join(f"<li>{html.escape(f['kind'])}: {html.escape(f['reason'])}"
                             + (f" — {html.escape(f['cell'])}" if f.get("cell") else "")
                             + "</li>" for f in lab_flags) + "</ul></div>")
    for r in rows:
        card = CheckResult(name=r["check"], title=r["title"] + (" (hidden check)" if r["hidden"]
                                                                else ""),
                           status=CARD_STATUS.get(r["status"], "error"), points=r["points"],
                           max_points=r["max_points"], looked_at=r.get("looked_at", ""),
                           expected=r.get("expected", ""), found=r.get("found", ""),
                           hint=r.get("hint", ""), lab=r["lab"])
        parts.append(card._repr_html_())
        if r["flags"]:
            parts.append(f"<p style='margin:0 0 8px 16px;color:#57606a;font-size:90%'>"
                         f"{html.escape(r['flags'])}</p>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_outputs(results: list[dict], out, feedback_dir=None) -> dict:
    """grades.csv (rows), grades-summary.csv (per lab), grades-checks.csv (per check),
    grades-flags.csv and feedback/STUDENT/LAB.html; returns the paths."""
    import pandas as pd
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    t = table(results)
    t.to_csv(out, index=False)
    paths = {"grades": out}
    for name, frame in (("summary", summary(t)), ("checks", check_summary(t))):
        p = out.with_name(f"{out.stem}-{name}.csv")
        frame.to_csv(p, index=False)
        paths[name] = p
    flags = pd.DataFrame([{"student": r["student"], "lab": r["lab"], **f}
                          for r in results for f in r.get("flags", [])],
                         columns=["student", "lab", "kind", "reason", "cell", "scope"])
    p = out.with_name(f"{out.stem}-flags.csv")
    flags.to_csv(p, index=False)
    paths["flags"] = p
    fb = Path(feedback_dir) if feedback_dir else out.parent / "feedback"
    for r in results:
        d = fb / r["student"]
        d.mkdir(parents=True, exist_ok=True)
        (d / f"{r['lab']}.html").write_text(feedback_html(r), encoding="utf-8")
    paths["feedback"] = fb
    return paths


def plot(t, *, lab: str | None = None, bins: int | None = None):
    """A histogram of the points per check (one panel per check), from the grade
    table (a DataFrame or a grades.csv path).  Returns the matplotlib Figure."""
    import math

    import matplotlib.pyplot as plt
    import pandas as pd
    if not isinstance(t, pd.DataFrame):
        t = pd.read_csv(t)
    if lab is not None:
        t = t[t["lab"] == lab]
    if t.empty:
        raise ValueError("the grade table has no rows" + (f" for lab {lab!r}" if lab else ""))
    groups = list(t.groupby(["lab", "check", "hidden"], sort=True))
    n = len(groups)
    cols = min(4, n)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.4 * rows), squeeze=False)
    for ax, ((lab_, chk, hidden), g) in zip(axes.flat, groups):
        top = float(g["max_points"].max())
        ax.hist(g["points"], bins=bins or max(2, int(top) + 1), range=(0, max(top, 1)),
                color="#1a7f37", edgecolor="white")
        hid = str(hidden).lower() in ("true", "1")
        ax.set_title(f"{chk}{' (hidden)' if hid else ''}\n({lab_})", fontsize=8)
        ax.set_xlabel("points")
        ax.set_ylabel("students")
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    fig.tight_layout()
    return fig
