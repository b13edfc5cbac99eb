"""kmdb is presentation: it may read every layer below it, and nothing below
imports it (``xenlab/__init__.py`` registers the magics by name, lazily)."""

import ast
from pathlib import Path

import xenlab

ROOT = Path(xenlab.__file__).parent
BELOW = ("asm", "machine", "xen", "kernel", "lab")
PEERS = ("xenlab.checks", "xenlab.viz", "xenlab.grading")


def imports(path: Path):
    rel = path.relative_to(ROOT.parent).with_suffix("").parts
    pkg = ".".join(rel if path.name != "__init__.py" else rel[:-1] + ("__init__",))
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = pkg.split(".")[:-node.level]
                base = ".".join(parts + ([base] if base else []))
            for alias in node.names:
                yield f"{base}.{alias.name}" if base else alias.name
        elif isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name


def test_no_lower_layer_imports_kmdb():
    for layer in BELOW:
        for path in (ROOT / layer).rglob("*.py"):
            for name in imports(path):
                assert not name.startswith("xenlab.kmdb"), f"{path} imports {name}"


def test_kmdb_imports_only_lower_layers():
    seen = set()
    for path in (ROOT / "kmdb").rglob("*.py"):
        for name in imports(path):
            assert not name.startswith(PEERS), f"{path.name} imports {name}"
            if name.startswith("xenlab.") and not name.startswith("xenlab.kmdb"):
                seen.add(name.split(".")[1])
    assert seen <= set(BELOW) and {"lab", "kernel", "xen", "machine", "asm"} <= seen
