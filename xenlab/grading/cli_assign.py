"""``xenlab assign``: write each student's copy of the labs (their variant)."""

from __future__ import annotations

from pathlib import Path


def add_arguments(p):
    p.add_argument("--students", metavar="ROSTER.csv",
                   help="class list: a CSV whose header has a student (or id, username) column")
    p.add_argument("--labs", nargs="+", default=["labs"], metavar="LAB",
                   help="lab notebooks or folders of them (default: labs/)")
    p.add_argument("--out", default="release", metavar="DIR",
                   help="where to write DIR/STUDENT/LAB.ipynb (default: release/)")
    p.add_argument("--secret-file", metavar="FILE",
                   help="the course secret (else $XENLAB_COURSE_SECRET); keep it private")
    p.add_argument("--overwrite", action="store_true",
                   help="replace copies that already exist in --out")
    p.add_argument("--nbgrader", metavar="COURSE_DIR",
                   help="write an nbgrader course instead: COURSE_DIR/source/LAB/LAB.ipynb, "
                        "nbgrader_config.py and (with --students) students.csv for "
                        "`nbgrader db student import`")


def run(args) -> int:
    from .batch import find_labs
    from .labfile import LabFormatError
    from .roster import RosterError, read_roster
    from .seeds import SecretError, read_secret
    if not args.students and not args.nbgrader:
        print("xenlab assign: give --students ROSTER.csv (and/or --nbgrader COURSE_DIR)")
        return 2
    try:
        labs = find_labs(args.labs)
        if args.nbgrader:
            from .nbgrader import nbgrader_course
            students = read_roster(args.students) if args.students else ()
            made = nbgrader_course(list(labs.values()), args.nbgrader, students=students)
            print(f"nbgrader course in {args.nbgrader}: {len(made)} assignment(s) "
                  f"({', '.join(made)})" + (f", {len(students)} student(s) in students.csv"
                                            if students else "") +
                  f"; next: cd {args.nbgrader} && nbgrader generate_assignment {made[0]}")
        else:
            from .assign import assign
            students = read_roster(args.students)
            rows = assign(list(labs.values()), students, read_secret(args.secret_file), args.out,
                          overwrite=args.overwrite)
            print(f"wrote {len(rows)} notebook(s): {len(students)} student(s) x {len(labs)} "
                  f"lab(s) in {Path(args.out)}/STUDENT/ (seeds in {Path(args.out)}/MANIFEST.csv; "
                  "hand out each student's folder, not the manifest)")
    except (RosterError, SecretError, LabFormatError, FileExistsError, FileNotFoundError) as e:
        print(f"xenlab assign: {e}")
        return 2
    return 0
