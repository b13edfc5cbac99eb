"""xenlab bench viz: rows with their peers (timings are never asserted)."""

import json

from xenlab.cli import main


def test_viz_bench_rows(capsys):
    assert main(["bench", "viz", "--quick", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert [r["unit"] for r in rows] == ["pages/s", "s"]
    assert rows[0]["peer"] == "pagetable_frame" and rows[0]["ratio"] > 0
