"""``xenlab profiles``: list the machine profiles; ``import-dmesg`` makes a new one.

    xenlab profiles
    xenlab profiles show NAME
    xenlab profiles import-dmesg boot.log -o mybox.json [--name mybox]
"""

from __future__ import annotations

import sys
from pathlib import Path


def add_arguments(p):
    p.add_argument("action", nargs="?", default="list", choices=["list", "show", "import-dmesg"],
                   help="list (default), show NAME, or import-dmesg FILE")
    p.add_argument("arg", nargs="?", help="profile name (show) or boot log (import-dmesg)")
    p.add_argument("-o", "--output", help="where import-dmesg writes the profile (default: stdout)")
    p.add_argument("--name", help="profile name for import-dmesg (default: from -o or the log)")


def run(args) -> int:
    from .machine.profile import ProfileError, list_profiles, load_profile
    if args.action == "list":
        rows = []
        for n in list_profiles():
            try:
                rows.append(load_profile(n).summary())
            except ProfileError as e:
                print(f"{n}: INVALID: {e}", file=sys.stderr)
        head = ("name", "machine", "year", "cpus", "memory", "pci_functions", "source")
        table = [head] + [tuple(str(r[k]) for k in head) for r in rows]
        widths = [min(max(len(t[i]) for t in table), 60) for i in range(len(head))]
        for t in table:
            print("  ".join(c[:60].ljust(w) for c, w in zip(t, widths)).rstrip())
        return 0
    if args.action == "show":
        if not args.arg:
            print("xenlab profiles show NAME", file=sys.stderr)
            return 2
        try:
            p = load_profile(args.arg)
        except ProfileError as e:
            print(e, file=sys.stderr)
            return 1
        print(p.path.read_text())
        return 0
    # import-dmesg
    from .machine.dmesg import import_dmesg
    from .machine.profile import dumps, validate
    if not args.arg:
        print("xenlab profiles import-dmesg FILE -o profile.json", file=sys.stderr)
        return 2
    src = Path(args.arg)
    try:
        text = src.read_text(errors="replace")
    except OSError as e:
        print(f"{src}: {e.strerror}", file=sys.stderr)
        return 1
    name = args.name or (Path(args.output).stem if args.output else src.stem)
    name = "".join(ch if ch.isalnum() or ch in "._-" else "-" for ch in name.lower()).strip("-._") or "imported"
    try:
        doc = import_dmesg(text, name=name, source={"kind": "dmesg", "file": src.name})
        validate(doc, origin=str(src))
    except (ValueError, ProfileError) as e:
        print(f"{src}: cannot build a profile: {e}", file=sys.stderr)
        return 1
    out = dumps(doc)
    if args.output:
        Path(args.output).write_text(out)
        print(f"wrote {args.output}: {doc['machine']}, {len(doc['cpus'])} CPUs, "
              f"{len(doc['pci'])} PCI functions, {len(doc['e820'])} E820 entries")
        for n in doc.get("notes", []):
            print(f"  note: {n}")
    else:
        sys.stdout.write(out)
    return 0
