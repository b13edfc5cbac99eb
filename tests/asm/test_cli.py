"""``xenlab as``: files in, flat image and listing out, errors as FILE:LINE."""

from __future__ import annotations

import subprocess
import sys

from xenlab.asm import assemble
from xenlab.cli import main

STUB = "_start: movq $(4096/8), %rax\n        hlt\n.data\nv: .quad _start\n"


def test_assembles_to_a_flat_image(tmp_path, capsys):
    src = tmp_path / "boot.s"
    src.write_text(STUB)
    assert main(["as", str(src)]) == 0
    out = tmp_path / "boot.bin"
    assert out.read_bytes() == assemble(STUB).image()
    assert "boot.bin" in capsys.readouterr().out
    # without --divide the '/' swallowed '/8)': 4096 is loaded
    assert out.read_bytes()[:7] == bytes.fromhex("48c7c000100000")


def test_divide_base_listing_and_output(tmp_path, capsys):
    src = tmp_path / "boot.s"
    src.write_text(STUB)
    out = tmp_path / "x.img"
    assert main(["as", str(src), "-o", str(out), "--divide", "--listing", "--base", "0x200000"]) == 0
    prog = assemble(STUB, base=0x200000, divide=True)
    assert out.read_bytes() == prog.image()
    assert out.read_bytes()[:7] == bytes.fromhex("48c7c000020000")
    assert capsys.readouterr().out == prog.listing()
    # .quad _start holds the address at the chosen base
    assert int.from_bytes(prog.data, "little") == 0x200000


def test_errors_name_file_and_line(tmp_path, capsys):
    src = tmp_path / "bad.s"
    src.write_text("nop\nmovq %rax\n")
    assert main(["as", str(src)]) == 1
    err = capsys.readouterr().err
    assert f"{src}:2: error: 'movq' does not take (%rax)" in err
    assert "    2 | movq %rax" in err
    assert not (tmp_path / "bad.bin").exists()


def test_bad_arguments(tmp_path, capsys):
    assert main(["as", str(tmp_path / "missing.s")]) == 2
    assert "no such file" in capsys.readouterr().err
    (tmp_path / "a.s").write_text("nop\n")
    assert main(["as", str(tmp_path / "a.s"), "--base", "lots"]) == 2
    assert "--base 'lots' is not a number" in capsys.readouterr().err


def test_stdin_and_help():
    r = subprocess.run([sys.executable, "-m", "xenlab", "as", "-", "--listing", "--divide"],
                       input="movq $(4096/8), %rax\n", capture_output=True, text=True)
    assert r.returncode == 0
    assert "48 c7 c0 00 02 00 00" in r.stdout
    r = subprocess.run([sys.executable, "-m", "xenlab", "--help"], capture_output=True, text=True)
    assert " as " in r.stdout or "\n    as" in r.stdout


def test_table_tool(tmp_path, capsys):
    from xenlab.asm.__main__ import main as table_main
    from xenlab.asm import isa
    doc = tmp_path / "d.md"
    doc.write_text(f"intro\n{isa.TABLE_BEGIN}\nstale\n{isa.TABLE_END}\nend\n")
    assert table_main(["--update-table", str(doc)]) == 0
    assert isa.check_docs(doc.read_text()) and doc.read_text().endswith("end\n")
    (tmp_path / "e.md").write_text("no markers")
    assert table_main(["--update-table", str(tmp_path / "e.md")]) == 1
    assert table_main([]) == 0
    assert isa.TABLE_BEGIN in capsys.readouterr().out
