"""GNU as (binutils, x86-64) as an oracle: assemble many lines at once, bytes per line.

Each line gets a label in front of it; the object is linked at the same base
xenlab uses (so label addresses in immediates and displacements resolve the
same way) and the bytes between consecutive labels belong to that line.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

TOOLS = ("as", "ld", "objcopy", "nm")


def missing() -> list[str]:
    return [t for t in TOOLS if shutil.which(t) is None]


def require():
    gone = missing()
    if gone:
        pytest.skip(f"GNU binutils not installed ({', '.join(gone)} missing); "
                    "tools/sysdeps.sh installs them (apt-get install binutils)")


def run_gas(source: str, base: int, data_base: int | None = None, divide: bool = False,
            extra: str = "") -> tuple[bytes, bytes, dict[str, int]]:
    """Assemble and link ``source``: returns (.text bytes, .data bytes, symbol addresses)."""
    require()
    with tempfile.TemporaryDirectory(prefix="xenlab-gas-") as d:
        d = Path(d)
        (d / "x.s").write_text(extra + source + "\n")
        args = ["as", "--64", "-o", str(d / "x.o"), str(d / "x.s")]
        if divide:
            args.insert(1, "--divide")
        r = subprocess.run(args, capture_output=True, text=True)
        if r.returncode != 0:
            raise AssertionError(f"GNU as rejected the test source:\n{r.stderr[:4000]}")
        link = ["ld", "-m", "elf_x86_64", "-Ttext", hex(base), "-e", hex(base), "-z", "noexecstack",
                "-o", str(d / "x"), str(d / "x.o")]
        if data_base is not None:
            link[5:5] = ["-Tdata", hex(data_base)]
        r = subprocess.run(link, capture_output=True, text=True)
        if r.returncode != 0:
            raise AssertionError(f"ld failed:\n{r.stderr[:4000]}")
        out = {}
        for sec in (".text", ".data"):
            subprocess.run(["objcopy", "-O", "binary", "-j", sec, str(d / "x"), str(d / f"{sec}.bin")],
                           check=True, capture_output=True)
            out[sec] = (d / f"{sec}.bin").read_bytes()
        nm = subprocess.run(["nm", str(d / "x")], capture_output=True, text=True, check=True).stdout
        syms = {}
        for row in nm.splitlines():
            parts = row.split()
            if len(parts) == 3:
                syms[parts[2]] = int(parts[0], 16)
        return out[".text"], out[".data"], syms


def gas_lines(lines: list[str], base: int, tail: str = "") -> list[bytes]:
    """Bytes GNU as gives each of ``lines`` (in .text at ``base``); ``tail`` follows them."""
    src = "\n".join(f"__t{i}: {ln}" for i, ln in enumerate(lines)) + f"\n__t{len(lines)}:\n" + tail
    text, _, syms = run_gas(src, base)
    out = []
    for i in range(len(lines)):
        a, b = syms[f"__t{i}"] - base, syms[f"__t{i + 1}"] - base
        out.append(text[a:b])
    return out
