import json
import subprocess
import sys

from xenlab import __version__
from xenlab.cli import main


def test_version_and_help(capsys):
    try:
        main(["--version"])
    except SystemExit as e:
        assert e.code == 0
    assert __version__ in capsys.readouterr().out
    assert main([]) == 0
    assert "bench" in capsys.readouterr().out


def test_console_script_runs():
    out = subprocess.run([sys.executable, "-m", "xenlab", "--help"], capture_output=True,
                         text=True, check=True).stdout
    assert "usage: xenlab" in out


def test_unknown_bench_is_named(capsys):
    assert main(["bench", "nope"]) == 2
    assert "unknown benchmark(s) nope" in capsys.readouterr().out


def test_design_md_public_surface_works_as_written():
    """DESIGN.md's 'Public surface' example, through `import xenlab` alone."""
    import subprocess
    code = (
        "import xenlab\n"
        "m = xenlab.Machine.from_profile('sun-x4200', memory='8G', seed=7)\n"
        "hv = xenlab.Xen(m, debug=True, lowmem_2g_4g=True)\n"
        "lab = xenlab.lab.Stage('pci_config', profile='sun-x4200', seed=7)\n"
        "assert not lab.boot().ok\n"
        "lab.apply_reference_fix()\n"
        "assert lab.boot().ok\n"
        "cards = lab.check()\n"
        "assert cards and all(c.passed for c in cards), cards\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
