"""The ``xenlab`` command.

Each subcommand lives in its own module with ``add_arguments(parser)`` and
``run(args) -> int``; this file only lists them, so ``xenlab --help`` stays
fast (the numba kernels load when a subcommand needs them).
"""

from __future__ import annotations

import argparse
import importlib
import sys

from ._version import __version__

# name -> (module, one-line help)
COMMANDS = {
    "bench": ("xenlab.bench.cli", "measure the emulator against a peer (table or --json)"),
    "as": ("xenlab.asm.cli", "assemble AT&T x86-64 source (the CPU's subset) to a flat image"),
    "profiles": ("xenlab.profiles_cli", "list machine profiles; import one from a Linux boot log"),
    "assign": ("xenlab.grading.cli_assign", "write each student's copy of the labs (their variant)"),
    "grade": ("xenlab.grading.cli_grade", "re-run submissions and grade them from the model"),
    "boot": ("xenlab.boot_cli", "boot a machine to a stage of the dom0 bring-up (Xen or --native)"),
    "stages": ("xenlab.stages_cli", "list the stages of the bring-up and their hooks"),
    "kmdb": ("xenlab.kmdb.cli", "boot to a stage and debug it with an mdb-style kmdb"),
}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="xenlab",
        description="Bring up a Solaris-like dom0 on a Xen-like hypervisor on an emulated PC.")
    p.add_argument("--version", action="version", version=f"xenlab {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_) in COMMANDS.items():
        sp = sub.add_parser(name, help=help_, description=help_)
        sp.set_defaults(_module=module)
        importlib.import_module(module).add_arguments(sp)
    return p


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_module", None):
        parser.print_help()
        return 0
    return int(importlib.import_module(args._module).run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
