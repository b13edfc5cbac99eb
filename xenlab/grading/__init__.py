"""Classroom grading: per-student variants, model-based autograding, nbgrader route.

- :func:`derive_seed` — a student's seed for a lab (HMAC-SHA256 of the course secret);
- :func:`assign` — one stripped copy of each lab per student (``xenlab assign``);
- :func:`grade` — re-run and grade submissions in parallel (``xenlab grade``),
  returning the grade table (one row per student, lab and check);
- :func:`plot` — a histogram of points per check from that table;
- :func:`nbgrader_course` — a course directory for the nbgrader route.

The instructor's guide is ``docs/instructors.md``.
"""

from __future__ import annotations

from .seeds import derive_seed, read_secret

__all__ = ["derive_seed", "read_secret", "assign", "grade", "plot", "summary", "totals",
           "nbgrader_course"]


def __getattr__(name):       # keep `import xenlab.grading` light (the CLI imports it)
    if name == "assign":
        from .assign import assign
        return assign
    if name == "grade":
        from .batch import grade
        return grade
    if name in ("plot", "summary", "totals", "table"):
        from . import report
        return getattr(report, name)
    if name == "nbgrader_course":
        from .nbgrader import nbgrader_course
        return nbgrader_course
    raise AttributeError(f"module 'xenlab.grading' has no attribute {name!r}")
