"""Copy the shipped labs into the student's working folder, never overwriting.

``make lab`` runs this before starting JupyterLab: the first run copies every
notebook; later runs add only notebooks that are new (a later lab), so a
student's edits are never replaced.  ``git pull`` updates ``labs/``, not the
student's copy.  Notebooks are copied as students get them: solution regions
replaced by the shipped code (:func:`xenlab.tools.release.strip_solutions`).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path


def copy_new(src: Path, dst: Path) -> list[Path]:
    """Copy files from ``src`` that do not exist yet in ``dst``; return the copied ones."""
    copied = []
    for path in sorted(src.rglob("*")):
        if path.is_dir() or ".ipynb_checkpoints" in path.parts or "__pycache__" in path.parts:
            continue
        target = dst / path.relative_to(src)
        if target.exists():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix == ".ipynb":
            _release(path, target)
        else:
            shutil.copy2(path, target)
        copied.append(target)
    return copied


def _release(src: Path, dst: Path):
    import nbformat

    from .release import strip_solutions
    nbformat.write(strip_solutions(nbformat.read(src, as_version=4)), dst)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    src, dst = Path(argv[0]), Path(argv[1])
    dst.mkdir(parents=True, exist_ok=True)
    copied = copy_new(src, dst)
    if copied:
        print(f"copied {len(copied)} new file(s) from {src}/ to {dst}/ (existing ones kept)")
    else:
        print(f"your copies in {dst}/ are up to date (nothing overwritten)")


if __name__ == "__main__":
    main()
