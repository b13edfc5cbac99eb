"""``xenlab kmdb``: scripts with -c, and the prompt fed through stdin."""

import io
import os
import subprocess
import sys
from pathlib import Path

from xenlab.cli import main
from xenlab.kmdb import Kmdb
from xenlab.kmdb.cli import repl

ROOT = Path(__file__).resolve().parents[2]


def test_script_mode_prints_what_the_session_prints(capsys, native_stage):
    rc = main(["kmdb", "--to", "boot_kmdb", "--native", "--fix", "all", "-q",
               "-c", "$r; ::msgbuf", "-c", "kpy_return::dis"])
    out = capsys.readouterr().out
    assert rc == 0
    head, _, rest = out.partition("\n")
    assert head == "kmdb: i86pc (native): reached stage 'boot_kmdb'"
    k = Kmdb(native_stage)                # the same profile and seed: the same machine
    assert rest == k.run("$r; ::msgbuf") + k.run("kpy_return::dis")


def test_script_errors_give_a_nonzero_exit(capsys):
    rc = main(["kmdb", "--to", "boot_kmdb", "--native", "-q", "-c", "::vtop"])
    out = capsys.readouterr().out
    assert rc == 1 and out.splitlines()[-1].startswith("mdb: ::vtop: an address is required")


def test_bad_stage_is_a_clear_error(capsys):
    rc = main(["kmdb", "--to", "nosuch", "-c", "$r"])
    err = capsys.readouterr().err
    assert rc == 2 and "no stage 'nosuch'" in err


def test_repl_reads_commands_until_dollar_q(native_stage):
    k = Kmdb(native_stage)
    out = io.StringIO()
    rc = repl(k, io.StringIO("kpy_return=K\n\n::nosuch\n$q\n::msgbuf\n"), out)
    text = out.getvalue()
    assert rc == 0 and k.quit
    want = Kmdb(native_stage)
    assert text == ("[0]> kpy_return=K\n" + want.run("kpy_return=K") + "[0]> \n"
                    "[0]> ::nosuch\nmdb: dcmd 'nosuch' not found; ::dcmds lists them\n"
                    "[0]> $q\n")
    assert "Welcome" not in text                 # nothing after $q ran


def test_interactive_session_through_stdin():
    """The real command, a real process: a transcript through a pipe (no pexpect)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    p = subprocess.run([sys.executable, "-m", "xenlab", "kmdb", "--profile", "sun-x4200",
                        "--to", "boot_kmdb", "--fix", "all"],
                       input="::status\n<rip::vtop\n::print start_info magic\n:c\n$q\n",
                       capture_output=True, text=True, env=env, timeout=600, cwd=ROOT)
    assert p.returncode == 0, p.stderr
    out = p.stdout
    assert "Welcome to kmdb" in out                          # the boot console first
    assert "kmdb: i86xen (dom0 on Xen): reached stage 'boot_kmdb'" in out
    assert "[0]> ::status\ndebugging stage 'boot_kmdb' of a i86xen boot" in out
    assert "mapped to pfn 1, mfn" in out
    assert 'magic = [ "xen-3.1-x86_64" ]' in out
    assert "kmdb: stage 'pci_config' passed" in out
    assert out.rstrip().endswith("[0]> $q")
    assert "Traceback" not in out + p.stderr


def test_the_cli_module_is_light_to_import():
    """`xenlab --help` imports every subcommand's module: kmdb's must not load
    the debugger or numba."""
    code = ("import sys, xenlab.kmdb.cli; "
            "print('xenlab.kmdb.session' in sys.modules, 'numba' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=str(ROOT)), check=True).stdout
    assert out.split() == ["False", "False"]
