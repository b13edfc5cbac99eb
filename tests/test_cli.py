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
