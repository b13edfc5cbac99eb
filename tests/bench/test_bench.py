"""The benchmarks run and report rows with peers; timings are never asserted."""

import json

from xenlab.cli import main


def test_mmu_bench_reports_a_ratio_against_numpy(capsys):
    assert main(["bench", "mmu", "--quick", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    walk = rows[0]
    assert walk["peer"] == "numpy walker" and walk["ratio"] > 0
    assert walk["unit"] == "walks/s" and walk["met"] in (True, False)


def test_memory_bench_measures_rss_of_a_sparse_machine(capsys):
    assert main(["bench", "memory", "--quick"]) == 0
    out = capsys.readouterr().out
    assert "RSS growth, 64 GiB machine, 64 MiB touched" in out
