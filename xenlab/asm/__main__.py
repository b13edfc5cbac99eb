"""``python -m xenlab.asm [--update-table FILE...]``: print the instruction table, or refresh it.

Files that include the table (docs/asm.md, docs/cpu.md) carry two marker lines;
everything between them is replaced by `xenlab.asm.isa.render_table()`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .isa import FORMS, TABLE_BEGIN, TABLE_END, render_table, update_docs


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m xenlab.asm", description=__doc__.splitlines()[0])
    p.add_argument("--update-table", nargs="+", metavar="FILE",
                   help="replace the generated table (between its markers) in these files")
    args = p.parse_args(argv)
    if not args.update_table:
        print(render_table())
        return 0
    for name in args.update_table:
        path = Path(name)
        text = path.read_text()
        if TABLE_BEGIN not in text or TABLE_END not in text:
            print(f"{name}: no table markers; add these two lines where the table goes:\n"
                  f"{TABLE_BEGIN}\n{TABLE_END}", file=sys.stderr)
            return 1
        path.write_text(update_docs(text))
        print(f"{name}: table updated ({len(FORMS)} encodings)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
