"""xenlab bench labs: one row per lab, beside a bare kernel start."""

import json
from pathlib import Path

from xenlab.cli import main

FIXTURES = Path(__file__).resolve().parents[1] / "labs" / "fixtures"


def test_no_labs_no_rows(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XENLAB_LABS_DIR", str(tmp_path))
    assert main(["bench", "labs", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["rows"] == []


def test_times_each_lab_against_a_kernel_start(monkeypatch, capsys):
    monkeypatch.setenv("XENLAB_LABS_DIR", str(FIXTURES))
    assert main(["bench", "labs", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert [r["case"] for r in rows] == ["viz_lab"]          # no "(has problems" suffix
    r = rows[0]
    assert r["unit"] == "s" and r["value"] > 0 and r["peer_value"] > 0
    assert r["peer"] == "kernel start + import xenlab" and r["ratio"] > 0

