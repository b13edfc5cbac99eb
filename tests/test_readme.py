"""The README's table of labs is the list of notebooks in labs/, and
docs/labs.md has a row or a section for each of them."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _notebooks():
    return {p.stem for p in (ROOT / "labs").glob("*.ipynb")}


def _table_labs(text: str):
    return set(re.findall(r"^\| `(\d\d_[a-z0-9_]+)` \|", text, re.M))


def test_readme_lists_every_lab_and_only_those():
    readme = (ROOT / "README.md").read_text()
    assert _table_labs(readme) == _notebooks()


def test_docs_labs_has_a_row_for_every_lab():
    assert _table_labs((ROOT / "docs" / "labs.md").read_text()) == _notebooks()


def test_the_table_reader_sees_a_missing_lab():
    assert _table_labs("| `00_tour` | x |\n| `01_toolchain` | y |\n") == {"00_tour", "01_toolchain"}
