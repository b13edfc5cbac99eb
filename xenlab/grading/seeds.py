"""Per-student variants: a lab's seed from the student id and a course secret.

``seed = int.from_bytes(HMAC-SHA256(key=secret, msg=b"xenlab-seed-v1\\0" + student
+ b"\\0" + lab)[:4], "big") & 0x7FFFFFFF`` — a keyed hash, so a student who knows
their id (and everybody else's) cannot compute a classmate's seed or pick their
own without the secret; the lab name is in the message, so one student's labs get
independent variants.  Ids and lab names are UTF-8, stripped of surrounding
blanks; the seed is 31 bits (a non-negative int32, friendly to every RNG).

The secret is bytes from a file (``--secret-file``; blanks at the ends are
stripped, so ``echo`` and editors do not change it) or the environment variable
``XENLAB_COURSE_SECRET``.  Keep it out of the course repository: anyone with it
can compute every seed.  Grading derives every seed again from the secret and
never reads the one a notebook carries.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from pathlib import Path

DOMAIN = b"xenlab-seed-v1"
SECRET_ENV = "XENLAB_COURSE_SECRET"
MIN_SECRET_BYTES = 16


class SecretError(ValueError):
    """The course secret is missing or too short (the message says how to give one)."""


def derive_seed(secret: bytes | str, student: str, lab: str) -> int:
    """The seed of ``lab`` (a notebook stem, e.g. ``04_pci_config``) for ``student``."""
    key = secret.encode() if isinstance(secret, str) else bytes(secret)
    if not key:
        raise SecretError("the course secret is empty")
    student, lab = str(student).strip(), str(lab).strip()
    if not student:
        raise ValueError("a student id is empty")
    msg = DOMAIN + b"\0" + student.encode() + b"\0" + lab.encode()
    digest = hmac.new(key, msg, hashlib.sha256).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFF_FFFF


def read_secret(path: str | os.PathLike | None = None, *, env=None) -> bytes:
    """The course secret from ``path`` or, without one, ``$XENLAB_COURSE_SECRET``."""
    env = os.environ if env is None else env
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise SecretError(f"secret file {str(p)!r} does not exist; make one with "
                              f"`python -c \"import secrets; print(secrets.token_hex(32))\" > {p}`")
        secret = p.read_bytes().strip()
        where = f"secret file {str(p)!r}"
    elif env.get(SECRET_ENV):
        secret = env[SECRET_ENV].strip().encode()
        where = f"${SECRET_ENV}"
    else:
        raise SecretError(f"no course secret: pass --secret-file FILE or set ${SECRET_ENV}")
    if len(secret) < MIN_SECRET_BYTES:
        raise SecretError(f"{where} holds {len(secret)} bytes; use at least "
                          f"{MIN_SECRET_BYTES} random bytes (e.g. secrets.token_hex(32))")
    return secret
