"""The class list: a CSV with one student per row."""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

ID_COLUMNS = ("student", "student_id", "id", "username", "login")
SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]*$")


class RosterError(ValueError):
    """The roster cannot be read (the message names the file, row and column)."""


@dataclass(frozen=True)
class Student:
    id: str
    name: str = ""
    email: str = ""


def check_id(student: str, where: str = "student id") -> str:
    """A student id is used as a folder name: letters, digits and ``. _ @ + -``."""
    s = str(student).strip()
    if not SAFE_ID.match(s):
        raise RosterError(f"{where}: {student!r} is not a usable student id (letters, digits "
                          "and . _ @ + - only, not starting with a symbol; it names a folder)")
    return s


def read_roster(path) -> list[Student]:
    """Students from a CSV with a header; the id column is the first of
    ``student, student_id, id, username, login`` present (case-insensitive);
    ``name`` and ``email`` are kept when present."""
    path = Path(path)
    if not path.is_file():
        raise RosterError(f"roster {str(path)!r} does not exist")
    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        header = {h.strip().lower(): h for h in (reader.fieldnames or [])}
        col = next((header[c] for c in ID_COLUMNS if c in header), None)
        if col is None:
            raise RosterError(f"{path}: no student id column; the header must have one of "
                              f"{', '.join(ID_COLUMNS)} (found: {', '.join(header) or 'nothing'})")
        students, seen = [], {}
        for n, row in enumerate(reader, 2):
            raw = (row.get(col) or "").strip()
            if not raw:
                continue
            sid = check_id(raw, f"{path}, line {n}, column {col!r}")
            if sid in seen:
                raise RosterError(f"{path}, line {n}: student {sid!r} is listed twice "
                                  f"(first on line {seen[sid]})")
            seen[sid] = n
            students.append(Student(sid, (row.get(header.get("name", ""), "") or "").strip(),
                                    (row.get(header.get("email", ""), "") or "").strip()))
    if not students:
        raise RosterError(f"{path}: no students in column {col!r}")
    return students
