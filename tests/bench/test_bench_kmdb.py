"""``xenlab bench kmdb`` runs and reports each row beside its peer."""

import json

from xenlab.cli import main


def test_kmdb_bench_rows(capsys):
    assert main(["bench", "kmdb", "--quick", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert [r["unit"] for r in rows] == ["cmds/s", "steps/s", "steps/s", "s"]
    assert all(r["peer"] and r["ratio"] > 0 and r["met"] in (True, False) for r in rows)
    assert "under Xen" in rows[1]["case"] and "natively" in rows[2]["case"]
