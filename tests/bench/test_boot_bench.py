import json

from xenlab.cli import main


def test_boot_bench_quick_json(capsys):
    assert main(["bench", "boot", "--quick", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    cases = [r["case"] for r in rows]
    assert "1G: Xen boot + dom0 build" in cases and "4G: RSS growth" in cases
    build = next(r for r in rows if r["case"] == "4G: Xen boot + dom0 build")
    assert build["value"] > 0 and build["peer"] == "numpy bulk fill"
