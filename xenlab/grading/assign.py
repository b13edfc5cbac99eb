"""``xenlab assign``: one released copy of each lab per student.

The released notebook is :func:`xenlab.tools.release.strip_solutions` of the
instructor's lab (the one function that makes the student copy), with:

- ``SEED = <the student's seed>`` in the setup cell (:mod:`.seeds`);
- ``metadata.xenlab = {"student", "seed", "lab", "release_sha256"}``, where
  ``release_sha256`` covers the locked cells (setup, boot, check) of this copy;
- nbgrader's checksum of every nbgrader cell in ``metadata.nbgrader.checksum``
  (the same md5 nbgrader computes), as nbgrader stores them in a release.

Grading never reads any of these from a submission: it makes the release again
from the instructor's lab and the re-derived seed, and compares.
"""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

from ..tools.release import strip_solutions
from .labfile import LOCKED_ROLES, Lab, grade_id, read_lab, role_of, set_seed, source
from .roster import Student, check_id
from .seeds import derive_seed


def nbgrader_checksum(cell) -> str:
    """nbgrader's cell checksum: md5 over source, type, grade/solution/locked flags,
    grade id and (for grade cells) points — the fields nbgrader documents."""
    meta = (cell.get("metadata", {}) or {}).get("nbgrader") or {}
    grade, solution = bool(meta.get("grade", False)), bool(meta.get("solution", False))
    locked = False if solution else (True if grade else bool(meta.get("locked", False)))
    m = hashlib.md5()
    for part in (source(cell), cell.get("cell_type", ""), str(grade), str(solution), str(locked),
                 meta.get("grade_id", "")):
        m.update(str(part).encode("utf-8"))
    if grade:
        m.update(str(float(meta["points"])).encode("utf-8"))
    return m.hexdigest()


def locked_sha256(nb) -> str:
    """sha256 over the locked cells (role, grade id, source) in order."""
    h = hashlib.sha256()
    for cell in nb["cells"]:
        if cell.get("cell_type") == "code" and role_of(cell) in LOCKED_ROLES:
            h.update(f"{role_of(cell)}\0{grade_id(cell)}\0{source(cell)}\0".encode())
    return h.hexdigest()


def release_notebook(lab: Lab, student: str, seed: int, *, hidden: bool = True):
    """The copy of ``lab`` for ``student`` with ``seed``.  ``hidden=False`` keeps the
    hidden checks (what grading runs); the student's copy has them removed."""
    nb = strip_solutions(lab.nb, hidden=hidden)
    for cell in nb["cells"]:
        if cell.get("cell_type") == "code" and role_of(cell) == "setup":
            cell["source"] = set_seed(source(cell), seed,
                                      f"your variant of {lab.name} (xenlab assign)")
    for cell in nb["cells"]:
        meta = cell.get("metadata", {}).get("nbgrader")
        if meta and meta.get("grade_id") and (meta.get("grade") or meta.get("solution")
                                               or meta.get("locked")):
            meta["checksum"] = nbgrader_checksum(cell)
    nb["metadata"]["xenlab"] = {"student": student, "seed": int(seed), "lab": lab.name,
                                "release_sha256": locked_sha256(nb)}
    return nb


def assign(labs, students: list[Student | str], secret: bytes, out, *,
           overwrite: bool = False) -> list[dict]:
    """Write ``out/STUDENT/LAB.ipynb`` for every student and lab; return the manifest
    rows (student, lab, seed, release_sha256, path), also written to
    ``out/MANIFEST.csv`` (for the instructor: it lists every student's seed)."""
    import nbformat
    out = Path(out)
    read = [lab if isinstance(lab, Lab) else read_lab(lab) for lab in labs]
    if not read:
        raise ValueError("no labs to assign (pass --labs or put notebooks in labs/)")
    rows = []
    for st in students:
        sid = check_id(st.id if isinstance(st, Student) else st)
        for lab in read:
            seed = derive_seed(secret, sid, lab.name)
            nb = release_notebook(lab, sid, seed)
            path = out / sid / f"{lab.name}.ipynb"
            if path.exists() and not overwrite:
                raise FileExistsError(f"{path} exists (a student may have started on it); "
                                      "pass --overwrite to replace released copies")
            path.parent.mkdir(parents=True, exist_ok=True)
            nbformat.write(nbformat.from_dict(nb), path)
            rows.append({"student": sid, "lab": lab.name, "seed": seed,
                         "release_sha256": nb["metadata"]["xenlab"]["release_sha256"],
                         "path": str(path)})
    out.mkdir(parents=True, exist_ok=True)
    with (out / "MANIFEST.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return rows
