"""``%kmdb`` / ``%%kmdb`` in a real IPython shell."""

import pytest

from xenlab.kmdb import Kmdb

IPython = pytest.importorskip("IPython")


@pytest.fixture
def ip():
    from IPython.core.interactiveshell import InteractiveShell
    shell = InteractiveShell.instance()
    shell.user_ns.clear()
    from xenlab.kmdb import magic
    magic._CURRENT.clear()
    magic._SESSIONS.clear()
    magic.register(shell)
    yield shell
    shell.user_ns.clear()
    magic._CURRENT.clear()
    magic._SESSIONS.clear()


def test_load_ext_and_line_magic(ip, xen_stage, capsys):
    ip.magics_manager.magics["line"].pop("kmdb", None)
    ip.run_line_magic("reload_ext", "xenlab.kmdb")           # %load_ext, even if loaded
    assert "kmdb" in ip.magics_manager.magics["line"]
    ip.user_ns["lab"] = xen_stage
    ip.run_line_magic("kmdb", "::msgbuf")
    out = capsys.readouterr().out
    assert out == Kmdb(xen_stage).run("::msgbuf")
    assert "Welcome to kmdb" in out
    r = ip.user_ns["_kmdb"]
    assert r.ok and r.data["text"] == xen_stage.kernel.messages


def test_cell_magic_runs_each_line_and_keeps_state(ip, native_stage, capsys):
    ip.user_ns["lab"] = native_stage
    ip.run_cell_magic("kmdb", "kpy_return>here", "<here=K\n$r\n")
    out = capsys.readouterr().out
    want = Kmdb(native_stage)
    assert out == want.run("kpy_return=K") + want.run("$r")
    ip.run_line_magic("kmdb", "<here::sym")                  # the variable persisted
    assert capsys.readouterr().out.strip().endswith("= kpy_return")


def test_importing_xenlab_registers_the_magic(ip, native_stage, capsys):
    import xenlab
    ip.magics_manager.magics["line"].pop("kmdb", None)
    ip.magics_manager.magics["cell"].pop("kmdb", None)
    xenlab._register_ipython_magics(ip)
    assert "kmdb" in ip.magics_manager.magics["line"] and "kmdb" in ip.magics_manager.magics["cell"]
    ip.user_ns["s"] = native_stage
    ip.run_line_magic("kmdb", "::status")
    assert "i86pc boot" in capsys.readouterr().out


def test_which_stage(ip, xen_stage, native_stage, capsys):
    from xenlab.lab import Stage
    ip.run_line_magic("kmdb", "$r")
    assert capsys.readouterr().out.startswith("mdb: no booted Stage in the namespace")
    ip.user_ns["unbooted"] = Stage("boot_kmdb")
    ip.user_ns["a"], ip.user_ns["b"] = xen_stage, native_stage
    ip.run_line_magic("kmdb", "$r")
    assert capsys.readouterr().out.startswith("mdb: several booted Stages (a, b)")
    ip.run_line_magic("kmdb", "-t b ::status")
    assert "i86pc boot" in capsys.readouterr().out
    ip.run_line_magic("kmdb", "-t nosuch $r")
    assert "no such variable" in capsys.readouterr().out
    import xenlab.kmdb
    xenlab.kmdb.attach(xen_stage)
    ip.run_line_magic("kmdb", "::status")
    assert "i86xen boot" in capsys.readouterr().out
    ip.run_line_magic("kmdb", "::nosuch")
    assert capsys.readouterr().out == "mdb: dcmd 'nosuch' not found; ::dcmds lists them\n"
    assert not ip.user_ns["_kmdb"].ok
