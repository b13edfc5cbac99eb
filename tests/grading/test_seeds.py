"""Seeds from the course secret, the secret itself, and the roster."""

import hashlib

import pytest

from xenlab.grading.roster import RosterError, read_roster
from xenlab.grading.seeds import SecretError, derive_seed, read_secret


def hmac_sha256(key: bytes, msg: bytes) -> bytes:
    """RFC 2104 written out with the bare hash (the oracle for derive_seed)."""
    block = 64
    if len(key) > block:
        key = hashlib.sha256(key).digest()
    key = key.ljust(block, b"\0")
    inner = hashlib.sha256(bytes(k ^ 0x36 for k in key) + msg).digest()
    return hashlib.sha256(bytes(k ^ 0x5C for k in key) + inner).digest()


def test_the_oracle_matches_rfc4231_case_2():
    assert hmac_sha256(b"Jefe", b"what do ya want for nothing?").hex() == \
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"


@pytest.mark.parametrize("secret,student,lab", [
    (b"s" * 32, "alice", "04_pci_config"), (b"another course secret!", "u1234567", "00_tour"),
    ("unicode-sécret-0123456789", "  bob@uni.edu ", "05_io_privilege ")])
def test_seed_is_the_documented_hmac(secret, student, lab):
    key = secret.encode() if isinstance(secret, str) else secret
    msg = b"xenlab-seed-v1\0" + student.strip().encode() + b"\0" + lab.strip().encode()
    want = int.from_bytes(hmac_sha256(key, msg)[:4], "big") & 0x7FFFFFFF
    assert derive_seed(secret, student, lab) == want


def test_seeds_differ_by_student_lab_and_secret():
    ids = [f"s{i:04d}" for i in range(300)]
    seeds = {derive_seed(b"k" * 20, s, "lab") for s in ids}
    assert len(seeds) == 300 and all(0 <= s < 2**31 for s in seeds)
    assert derive_seed(b"k" * 20, "ann", "a") != derive_seed(b"k" * 20, "ann", "b")
    assert derive_seed(b"k" * 20, "ann", "a") != derive_seed(b"j" * 20, "ann", "a")
    assert derive_seed(b"k" * 20, "ann", "a") == derive_seed(b"k" * 20, "ann", "a")


def test_secret_from_file_or_environment(tmp_path):
    f = tmp_path / "secret"
    f.write_text("  0123456789abcdef0123\n")
    assert read_secret(f, env={}) == b"0123456789abcdef0123"
    assert read_secret(None, env={"XENLAB_COURSE_SECRET": "x" * 16}) == b"x" * 16
    with pytest.raises(SecretError, match="--secret-file FILE or set"):
        read_secret(None, env={})
    with pytest.raises(SecretError, match="does not exist"):
        read_secret(tmp_path / "nope", env={})
    f.write_text("short")
    with pytest.raises(SecretError, match="5 bytes"):
        read_secret(f, env={})
    with pytest.raises(SecretError, match="empty"):
        derive_seed(b"", "a", "b")


def test_roster_columns_and_errors(tmp_path):
    p = tmp_path / "r.csv"
    p.write_text("\ufeffName,Username,Email\nAda L,ada,a@x\n,,\nBob,bob.k,\n")
    assert [(s.id, s.name, s.email) for s in read_roster(p)] == [("ada", "Ada L", "a@x"),
                                                                ("bob.k", "Bob", "")]
    p.write_text("name,mail\nAda,a\n")
    with pytest.raises(RosterError, match="no student id column"):
        read_roster(p)
    p.write_text("student\nada\nbob\nada\n")
    with pytest.raises(RosterError, match="line 4: student 'ada' is listed twice"):
        read_roster(p)
    p.write_text("student\n../etc\n")
    with pytest.raises(RosterError, match="line 2.*not a usable student id"):
        read_roster(p)
