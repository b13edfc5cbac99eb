"""``xenlab grade``: re-run and grade submissions against the model."""

from __future__ import annotations

from pathlib import Path


def add_arguments(p):
    p.add_argument("submissions", nargs="+", metavar="SUBMISSION",
                   help="STUDENT/LAB.ipynb files, or folders holding STUDENT/LAB.ipynb")
    p.add_argument("--out", required=True, metavar="grades.csv",
                   help="the grade table; grades-summary.csv, grades-checks.csv and "
                        "grades-flags.csv are written beside it")
    p.add_argument("--labs", nargs="+", default=["labs"], metavar="LAB",
                   help="the instructor's lab notebooks or folders (default: labs/)")
    p.add_argument("--secret-file", metavar="FILE",
                   help="the course secret used by xenlab assign (else $XENLAB_COURSE_SECRET)")
    p.add_argument("--feedback", metavar="DIR",
                   help="where to write STUDENT/LAB.html (default: feedback/ beside --out)")
    p.add_argument("--timeout", type=float, default=600, metavar="SECONDS",
                   help="time limit for each notebook run and each model run (default 600)")
    p.add_argument("--workers", type=int, default=None,
                   help="local processes (default: one per CPU)")
    p.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                   help="run the jobs on this Dask cluster instead of local processes")
    p.add_argument("--no-rerun", action="store_true",
                   help="grade from the model only, without re-running each notebook")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def submission_paths(items) -> list[Path]:
    out = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            out += sorted(q for q in p.glob("*/*.ipynb") if ".ipynb_checkpoints" not in q.parts)
        elif p.is_file():
            out.append(p)
        else:
            raise FileNotFoundError(f"no submission at {str(p)!r}")
    if not out:
        raise FileNotFoundError(f"no STUDENT/LAB.ipynb notebooks under {', '.join(items)}")
    return out


def run(args) -> int:
    from .batch import grade
    from .labfile import LabFormatError
    from .report import summary
    from .seeds import SecretError, read_secret
    try:
        paths = submission_paths(args.submissions)
        t = grade(paths, args.labs, read_secret(args.secret_file), out=args.out,
                  feedback_dir=args.feedback, workers=args.workers, scheduler=args.scheduler,
                  timeout=args.timeout, rerun=not args.no_rerun, progress=not args.quiet)
    except (SecretError, LabFormatError, FileNotFoundError, ValueError) as e:
        print(f"xenlab grade: {e}")
        return 2
    out = Path(args.out)
    import pandas as pd
    with pd.option_context("display.width", 120, "display.max_columns", 20):
        print(summary(t).to_string(index=False, float_format=lambda v: f"{v:g}"))
    flagged = t[t["status"] == "flagged"][["student", "lab"]].drop_duplicates()
    print(f"\n{len(t)} row(s) in {out}; per lab: {out.with_name(out.stem + '-summary.csv')}; "
          f"flags: {out.with_name(out.stem + '-flags.csv')}; feedback: "
          f"{args.feedback or out.parent / 'feedback'}/STUDENT/LAB.html")
    if len(flagged):
        print(f"{len(flagged)} submission(s) lost points to tamper flags: " +
              ", ".join(f"{s}/{l}" for s, l in flagged.values))
    noted = sorted({(r["student"], r["lab"]) for r in t.attrs.get("results", [])
                    for f in r.get("flags", []) if f.get("scope") == "info"}
                   - {tuple(x) for x in flagged.values})
    if noted:
        print(f"{len(noted)} more with notes to read in the flags file: " +
              ", ".join(f"{s}/{l}" for s, l in noted))
    return 0
