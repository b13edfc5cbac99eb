"""``xenlab bench NAME... [--json] [--quick]``."""

from __future__ import annotations

from . import BENCHES


def add_arguments(p):
    p.add_argument("names", nargs="+", metavar="NAME",
                   help=f"one or more of: {', '.join(BENCHES)}, or all")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--out", metavar="FILE", help="also write the JSON to FILE")
    p.add_argument("--quick", action="store_true", help="smaller sizes (a smoke run)")


def run(args) -> int:
    from . import run as run_benches, table, to_json
    names = list(BENCHES) if "all" in args.names else args.names
    unknown = [n for n in names if n not in BENCHES]
    if unknown:
        print(f"xenlab bench: unknown benchmark(s) {', '.join(unknown)}; "
              f"choose from {', '.join(BENCHES)} or all")
        return 2
    rows = run_benches(names, quick=args.quick)
    js = to_json(rows)
    print(js if args.json else table(rows))
    if args.out:
        with open(args.out, "w") as f:
            f.write(js)
    return 0
