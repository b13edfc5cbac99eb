"""``xenlab as FILE [-o OUT] [--divide] [--listing] [--base ADDR]``: assemble to a flat image."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", help="AT&T assembly source ('-' reads standard input)")
    p.add_argument("-o", "--output", metavar="OUT",
                   help="write the flat image (.text at --base, then .data) here "
                        "(default: FILE with the suffix .bin)")
    p.add_argument("--divide", action="store_true",
                   help="treat '/' as division, not as a comment (GNU as --divide; without it "
                        "xenlab models the 2007 Solaris assembler, where '/' starts a comment)")
    p.add_argument("--listing", action="store_true", help="print address, bytes and source")
    p.add_argument("--base", default="0x100000", metavar="ADDR",
                   help="address of .text (default 0x100000)")


def run(args: argparse.Namespace) -> int:
    from . import AsmError, assemble
    try:
        base = int(args.base, 0)
    except ValueError:
        print(f"xenlab as: --base {args.base!r} is not a number (try 0x100000)", file=sys.stderr)
        return 2
    if args.file == "-":
        source, name = sys.stdin.read(), "<stdin>"
    else:
        path = Path(args.file)
        if not path.is_file():
            print(f"xenlab as: no such file: {args.file}", file=sys.stderr)
            return 2
        source, name = path.read_text(), str(path)
    try:
        prog = assemble(source, base=base, divide=args.divide)
    except AsmError as e:
        where = f"{name}:{e.line}: " if e.line is not None else f"{name}: "
        print(f"{where}error: {e.message}", file=sys.stderr)
        if e.text is not None:
            print(f"    {e.line} | {e.text.rstrip()}", file=sys.stderr)
        return 1
    if args.listing:
        sys.stdout.write(prog.listing())
    out = args.output
    if out is None and args.file != "-":
        out = str(Path(args.file).with_suffix(".bin"))
    if out is not None:
        Path(out).write_bytes(prog.image())
        if not args.listing:
            print(f"{out}: {len(prog.image())} bytes at {prog.base:#x} "
                  f"(.text {len(prog.text)}, .data {len(prog.data)})")
    return 0
