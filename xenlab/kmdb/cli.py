"""``xenlab kmdb``: boot to a stage and debug it at a ``[0]>`` prompt.

::

    xenlab kmdb --profile sun-x4200 --to boot_kmdb --fix all
    xenlab kmdb --to pci_config -c '::status; $r; $c'       # a script: print and exit

The boot runs first (as ``xenlab boot`` would, and the console is shown);
then commands come from ``-c`` or from the terminal (readline history in
``~/.xenlab_kmdb_history``) or, when stdin is not a terminal, one per line
from stdin.  ``$q`` or end of input leaves.
"""

from __future__ import annotations

import os
import sys

HISTORY = "~/.xenlab_kmdb_history"


def add_arguments(p):
    p.add_argument("--profile", default="sun-x4200", help="machine profile (xenlab profiles)")
    p.add_argument("--memory", default=None, help="machine memory, e.g. 8G (profile default)")
    p.add_argument("--seed", type=int, default=0, help="variant seed (default 0)")
    p.add_argument("--to", default="boot_kmdb", metavar="STAGE",
                   help="boot up to and including this stage (default boot_kmdb)")
    p.add_argument("--fix", default=None, metavar="all|S1,S2",
                   help="install the reference fixes of these stages first")
    p.add_argument("--native", action="store_true", help="boot i86pc on the bare machine")
    p.add_argument("-c", dest="commands", action="append", default=None, metavar="CMDS",
                   help="run these commands (';'-separated; may repeat) and exit")
    p.add_argument("-q", "--quiet", action="store_true", help="do not print the boot console")


def _stage(args):
    from ..lab import Stage
    from .errors import MdbError
    try:
        st = Stage(args.to, profile=args.profile, memory=args.memory, seed=args.seed,
                   native=args.native)
        if args.fix:
            st.fix("all" if args.fix == "all" else [s.strip() for s in args.fix.split(",")
                                                    if s.strip()])
    except (ValueError, KeyError) as e:
        raise MdbError(f"xenlab kmdb: {e}") from None
    return st


def run(args) -> int:
    from .errors import MdbError
    from .session import Kmdb
    try:
        st = _stage(args)
    except MdbError as e:
        print(e, file=sys.stderr)
        return 2
    res = st.boot()
    if not args.quiet:
        print(res.console.rstrip("\n"))
    print(f"kmdb: {res.summary()}")
    k = Kmdb(st)
    try:
        if args.commands:
            ok = True
            for script in args.commands:
                for r in k.execute(script):
                    sys.stdout.write(str(r))
                    ok = ok and r.ok
                if k.quit:
                    break
            return 0 if ok else 1
        return repl(k, sys.stdin, sys.stdout)
    finally:
        k.close()


def repl(k, stdin, stdout) -> int:
    """Read commands until ``$q`` or end of input; a terminal gets readline history."""
    tty = stdin.isatty() and stdout.isatty()
    if tty:
        _readline()
    while not k.quit:
        try:
            if tty:
                line = input(k.prompt)
            else:
                stdout.write(k.prompt)
                line = stdin.readline()
                if not line:
                    stdout.write("\n")
                    break
                stdout.write(line if line.endswith("\n") else line + "\n")
        except EOFError:
            stdout.write("\n")
            break
        except KeyboardInterrupt:
            stdout.write("\n")
            continue
        for r in k.execute(line):
            stdout.write(str(r))
        stdout.flush()
    return 0


def _readline():
    try:
        import atexit
        import readline
    except ImportError:                       # no readline on this platform
        return
    path = os.path.expanduser(HISTORY)
    try:
        readline.read_history_file(path)
    except OSError:
        pass
    readline.set_history_length(1000)
    atexit.register(_save_history, readline, path)


def _save_history(readline, path):
    try:
        readline.write_history_file(path)
    except OSError:
        pass
