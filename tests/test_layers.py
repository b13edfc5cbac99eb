"""Every module imports only its own layer and the layers below it
(docs/architecture.md). Read from the source with ``ast``, so a lazy import
inside a function counts too."""

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "xenlab"

# rank of each top-level part of the package; a module may import parts whose
# rank is not higher than its own.  Same-rank parts of the presentation layer
# may use each other (kmdb's views, checks that read viz frames).
RANK = {
    "datasets": 0, "asm": 0, "machine": 1, "xen": 2, "kernel": 3, "lab": 4,
    "kmdb": 5, "viz": 5, "checks": 5, "tools": 5, "grading": 6,
}
# (datasets only locates data files; tools builds, releases and runs notebooks.)
# The package's outer shell may use every layer.
SHELL = {"cli", "boot_cli", "stages_cli", "profiles_cli", "bench",
         "__init__", "__main__", "_version"}


def _part(module: str) -> str | None:
    bits = module.split(".")
    return bits[1] if len(bits) > 1 and bits[0] == "xenlab" else None


def _imports(path: Path, pkg: Path):
    rel = path.relative_to(pkg.parent).with_suffix("")
    here = list(rel.parts)
    if here[-1] == "__init__":
        here = here[:-1]
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield node.lineno, a.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                pkg = here if path.name == "__init__.py" else here[:-1]
                base = pkg[:len(pkg) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            for a in node.names:      # `from .. import xen` names the part in the alias
                yield node.lineno, f"{mod}.{a.name}"


def _violations(pkg: Path = PKG):
    out = []
    for path in sorted(pkg.rglob("*.py")):
        parts = path.relative_to(pkg).parts
        top = parts[0].removesuffix(".py")
        if top in SHELL or top not in RANK:
            continue
        for line, mod in _imports(path, pkg):
            other = _part(mod)
            if other is None or other == top or other in ("_version",):
                continue
            if other not in RANK or RANK[other] > RANK[top]:
                out.append(f"{path.relative_to(pkg.parent)}:{line} imports {mod}")
    return out


def test_every_layer_imports_only_layers_below_it():
    assert _violations() == []


def test_the_rule_catches_an_upward_import(tmp_path):
    fake = tmp_path / "xenlab"
    (fake / "xen").mkdir(parents=True)
    (fake / "xen" / "bad.py").write_text("import numpy\nfrom ..kernel import Kernel\n")
    (fake / "xen" / "ok.py").write_text("from ..machine.memory import Memory\n")
    assert _violations(fake) == ["xenlab/xen/bad.py:2 imports xenlab.kernel.Kernel"]


def _imports_of(part: str):
    for path in sorted((PKG / part).rglob("*.py")):
        for line, mod in _imports(path, PKG):
            yield path.relative_to(PKG.parent), line, mod


def test_the_kernel_reaches_xen_only_through_its_public_abi():
    from_xen = {mod for _, _, mod in _imports_of("kernel") if _part(mod) == "xen"}
    assert from_xen and all(m == "xenlab.xen.abi" or m.startswith("xenlab.xen.abi.")
                            for m in from_xen), sorted(from_xen)


def test_kmdb_uses_no_other_presentation_module():
    """kmdb reads the model itself (every layer below it), not through viz or checks."""
    used = {_part(mod) for _, _, mod in _imports_of("kmdb")} - {None, "kmdb"}
    assert {"asm", "machine", "xen", "kernel", "lab"} <= used
    assert not used & {"viz", "checks", "grading", "tools"}, used
