"""``xenlab boot --to multiuser --fix all`` on machines imported from Linux
boot logs: the real logs shipped in datasets/reference/dmesg (the
concatenated excerpts of datasets-raw) and a hand-made one."""

import json
from pathlib import Path

import pytest

from xenlab.cli import main
from xenlab.machine.dmesg import import_dmesg

ROOT = Path(__file__).resolve().parents[2]
RAW = ROOT / "datasets" / "reference" / "dmesg"
HANDMADE = Path(__file__).with_name("data") / "handmade-dmesg.log"


def imported(tmp_path, log: Path, name: str) -> str:
    doc = import_dmesg(log.read_text(), name=name)
    out = tmp_path / f"{name}.json"
    out.write_text(json.dumps(doc))
    return str(out)


def boot(profile, native, capsys):
    args = ["boot", "--profile", profile, "--to", "multiuser", "--fix", "all", "--quiet"]
    rc = main(args + (["--native"] if native else []))
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "reached stage 'multiuser'" in out


def test_a_hand_made_log_reaches_multiuser(tmp_path, capsys):
    p = imported(tmp_path, HANDMADE, "handmade")
    boot(p, False, capsys)
    boot(p, True, capsys)


def test_a_real_log_reaches_multiuser(tmp_path, capsys):
    boot(imported(tmp_path, RAW / "sun-x2200m2.log", "x2200-imported"), False, capsys)


@pytest.mark.slow
@pytest.mark.parametrize("native", [False, True])
@pytest.mark.parametrize("name", ["dell-optiplex755", "dell-poweredge-r630",
                                  "lenovo-thinkpad-t470", "sun-x2200m2"])
def test_every_real_log_reaches_multiuser(tmp_path, capsys, name, native):
    boot(imported(tmp_path, RAW / f"{name}.log", f"{name}-imported"), native, capsys)
