"""``xenlab boot`` and ``xenlab stages``: boot a machine to a stage of the bring-up.

    xenlab boot --profile sun-x4200 --to pci_config
    xenlab boot --profile qemu-i440fx --memory 2G --to iopl --fix all
    xenlab boot --profile sun-x2200m2 --to iopl --fix toolchain,platforms --seed 7
    xenlab boot --profile sun-x4200 --to iopl --native
    xenlab stages

``boot`` prints the console, then the stage reached and why it stopped; it
exits with 1 if the boot stopped before the requested stage.
"""

from __future__ import annotations

import sys


def add_arguments(p):
    p.add_argument("--profile", default="sun-x4200", help="machine profile (xenlab profiles)")
    p.add_argument("--memory", default=None, help="installed memory, e.g. 8G (default: the profile's)")
    p.add_argument("--to", dest="stage", default="iopl", help="the stage to boot to (xenlab stages)")
    p.add_argument("--fix", default="", help="'all' or a comma-separated list of stages whose "
                   "reference fixes to use (earlier stages are always fixed)")
    p.add_argument("--native", action="store_true", help="boot i86pc on the bare machine, no Xen")
    p.add_argument("--seed", type=int, default=0, help="the variant (default 0)")
    p.add_argument("--quiet", action="store_true", help="print only the result line")


def run(args) -> int:
    from .lab import STAGE_NAMES
    from .lab.stages import stage_index
    try:
        stage_index(args.stage)
        fixes = STAGE_NAMES if args.fix == "all" else [s for s in args.fix.split(",") if s]
        for s in fixes:
            stage_index(s)
    except ValueError as e:
        print(f"xenlab boot: {e}", file=sys.stderr)
        return 2
    from .lab import Stage
    try:
        st = Stage(args.stage, profile=args.profile, memory=args.memory, seed=args.seed,
                   native=args.native)
    except Exception as e:        # noqa: BLE001 - a bad profile or memory size, said plainly
        print(f"xenlab boot: {e}", file=sys.stderr)
        return 2
    st.fix(fixes)
    res = st.boot()
    if not args.quiet:
        print(res.console.rstrip("\n"))
        if res.panic and res.panic.strip() not in res.console:
            print("\n--- not on the console (kernel message buffer / panic text) ---")
            print(res.panic.rstrip("\n"))
        print()
    print(f"{res.summary()}  [{res.seconds:.2f} s, {res.instructions:,} kernel instructions]")
    return 0 if res.ok else 1


def add_stage_arguments(p):
    p.add_argument("--all", action="store_true", help="also list the stages not implemented yet")


def run_stages(args) -> int:
    from .lab import SPECS, STAGES
    for s in STAGES:
        if not s.implemented and not args.all:
            continue
        hooks = [n for n, spec in SPECS.items() if spec.stage == s.name]
        mark = "" if s.implemented else "  (not implemented yet)"
        print(f"{s.name:<12} {s.title}{mark}")
        if hooks:
            print(f"{'':<12} hooks: {', '.join(hooks)}")
    return 0


