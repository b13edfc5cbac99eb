"""The kernel talks to Xen only through the public ABI: no module of
xenlab.kernel imports anything from xenlab.xen but ``abi``, nor the lab or
presentation layers."""

import ast
from pathlib import Path

import xenlab.kernel

ROOT = Path(xenlab.kernel.__file__).parent
FORBIDDEN = ("xenlab.lab", "xenlab.checks", "xenlab.kmdb", "xenlab.viz", "xenlab.grading")


def imports(path: Path):
    pkg = "xenlab.kernel." + ".".join(path.relative_to(ROOT).with_suffix("").parts)
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


def test_only_the_xen_abi_and_lower_layers():
    seen = set()
    for path in ROOT.rglob("*.py"):
        for name in imports(path):
            if name.startswith("xenlab.xen"):
                assert name in ("xenlab.xen.abi",) or name.startswith("xenlab.xen.abi."), \
                    f"{path.name} imports {name}"
                seen.add(name)
            assert not name.startswith(FORBIDDEN), f"{path.name} imports {name} (a higher layer)"
    assert "xenlab.xen.abi" in seen, "the scan found the kernel's ABI imports"
