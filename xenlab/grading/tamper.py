"""What a submission did that a fix should not do, found without trusting it.

Two kinds of evidence, both compared with what grading rebuilt itself:

- **locked cells**: the setup, boot and check cells of a submission must equal
  those of the release made again from the instructor's lab and the re-derived
  seed (nbgrader compares checksums the same way); a ``SEED`` that differs, or
  notebook metadata naming another student or seed, is a changed seed;
- **the student's cells**, read as Python (:func:`scan_cell`): assignments
  through ``xenlab`` modules or the check machinery (monkey-patching), names the
  locked cells rely on rebound (``run``, ``lab``, ``SEED``), writes into the
  model (``lab.machine...``), the reference fix, and — in hook and answer
  cells, which grading runs — reaching past the lab's API (``gc``, frames,
  ``__code__``, ``sys.modules``, ...).

The model run (:mod:`.sandbox`) adds what only running shows: a fingerprint
changed, the reference fix called, the model touched from a hook.

Each :class:`Flag` has a scope: ``lab`` (no credit for any check of the lab),
``cell:<grade_id>`` (no credit for that check cell's checks) or ``info``
(reported; the points already reflect it).
"""

from __future__ import annotations

import ast
from dataclasses import asdict, dataclass

from .labfile import LOCKED_ROLES, normalise, role_of, grade_id, seed_in, source

MODEL_PARTS = ("machine", "xen", "kernel")
STAGE_OK_ATTRS = ("hooks", "answers")
MUTATORS = ("write", "store", "poke", "fill", "set", "put", "map", "unmap", "restore",
            "claim", "release", "update", "reset", "inject", "raise_", "clear", "load",
            "pin", "unpin", "free", "alloc", "send", "push", "pop", "append", "extend",
            "remove", "insert", "discard", "__setitem__", "__delitem__")
INTROSPECTION_ATTRS = {"__globals__", "__code__", "__closure__", "__dict__", "__defaults__",
                       "__kwdefaults__", "f_back", "f_globals", "f_locals", "f_builtins",
                       "tb_frame", "gi_frame", "cr_frame", "_getframe", "modules",
                       "setprofile", "settrace", "__subclasses__", "__class__", "__bases__",
                       "__mro__", "environ"}
REFERENCE_WORDS = {"reference", "use_reference", "apply_reference_fix", "SPECS"}


@dataclass
class Flag:
    kind: str          # locked-edit, seed, check-tamper, monkey-patch, model-edit, reference,
    reason: str        # discrepancy, ...
    cell: str = ""
    scope: str = "lab"

    def to_json(self):
        return asdict(self)

    def __str__(self):
        return f"{self.kind}: {self.reason}" + (f" ({self.cell})" if self.cell else "")


# -- locked cells ----------------------------------------------------------------------------

def compare_locked(submission, release, *, student: str, seed: int, lab: str) -> list[Flag]:
    """Locked cells edited, missing or duplicated, the seed changed, or the notebook
    released to someone else, comparing ``submission`` with the rebuilt ``release``."""
    flags = []
    sub_cells = {}
    for i, cell in enumerate(submission.get("cells", [])):
        gid = grade_id(cell)
        if gid and cell.get("cell_type") == "code":
            sub_cells.setdefault(gid, []).append((i, cell))
    for cell in release["cells"]:
        role = role_of(cell)
        if cell.get("cell_type") != "code" or role not in LOCKED_ROLES:
            continue
        gid = grade_id(cell)
        scope = f"cell:{gid}" if role == "check" else "lab"
        found = sub_cells.get(gid, [])
        if not found:
            flags.append(Flag("locked-edit", f"the locked {role} cell {gid!r} is missing "
                                             "(deleted, or its grade_id was changed)", gid, scope))
            continue
        if len(found) > 1:
            flags.append(Flag("locked-edit", f"the locked {role} cell {gid!r} appears "
                                             f"{len(found)} times", gid, scope))
        i, sub = found[0]
        if normalise(source(sub)) == normalise(source(cell)):
            continue
        if role == "setup":
            got = seed_in(source(sub))
            if got != seed:
                flags.append(Flag("seed", f"the setup cell sets SEED = {got!r}; this "
                                          f"student's variant of {lab} is {seed}", gid, "lab"))
                continue
        flags.append(Flag("locked-edit", f"the locked {role} cell {gid!r} (cell {i}) was "
                                         "edited", gid, scope))
    meta = (submission.get("metadata") or {}).get("xenlab") or {}
    if meta:
        if str(meta.get("student", student)) != student or str(meta.get("lab", lab)) != lab:
            flags.append(Flag("seed", f"the notebook was released as {meta.get('lab')!r} to "
                                      f"{meta.get('student')!r}, not {lab!r} to {student!r}"))
        elif meta.get("seed") != seed:
            flags.append(Flag("seed", f"the notebook's metadata says seed {meta.get('seed')!r}; "
                                      f"this student's variant is {seed}"))
    else:
        flags.append(Flag("locked-edit", "the notebook has no metadata.xenlab (it is not a copy "
                                         "made by xenlab assign, or its metadata was removed)",
                          "", "info"))
    return flags


# -- student cells ---------------------------------------------------------------------------

def _root_and_path(node):
    """``a.b[c].d()`` -> ("a", ["b", "[]", "d", "()"]); None when not rooted at a name."""
    path = []
    while True:
        if isinstance(node, ast.Attribute):
            path.append(node.attr)
            node = node.value
        elif isinstance(node, ast.Subscript):
            path.append("[]")
            node = node.value
        elif isinstance(node, ast.Call):
            path.append("()")
            node = node.func
        else:
            break
    return (node.id, path[::-1]) if isinstance(node, ast.Name) else None


def _dotted(root, path):
    return root + "".join("[...]" if p == "[]" else "()" if p == "()" else f".{p}" for p in path)


def _import_category(module: str, watched: set[str]) -> str | None:
    if module == "xenlab.checks" or module.startswith("xenlab.checks."):
        return "checks"
    if module == "xenlab" or module.startswith("xenlab.") or module in watched:
        return "xenlab"
    return None


class _Scanner(ast.NodeVisitor):
    def __init__(self, role, where, aliases, protected, references, watched):
        self.role, self.where = role, where
        self.aliases = dict(aliases)         # name -> checks | xenlab | stage | seed
        self.protected = protected           # names the locked cells read
        self.references = references         # names of the lab's reference fixes
        self.watched = watched
        self.flags: list[Flag] = []
        self.runs = role in ("hook", "answer")   # grading runs these cells

    def flag(self, kind, reason, node, scope=None):
        line = getattr(node, "lineno", "?")
        scope = scope or ("info" if kind == "model-edit" and not self.runs else "lab")
        f = Flag(kind, f"{reason} (line {line})", self.where, scope)
        if all(str(f) != str(g) for g in self.flags):
            self.flags.append(f)

    # bindings
    def _bind(self, name, node, how):
        cat = self.aliases.get(name)
        if name == "SEED" or cat == "seed":
            self.flag("seed", "assigns SEED, the variant grading derives for you", node)
        elif cat == "stage" or name == "lab":
            self.flag("seed", f"rebinds `{name}` ({how}): the lab's stage is built by the locked "
                              "boot cell with your seed", node)
        elif cat == "checks" and name in self.protected:
            self.flag("check-tamper", f"redefines `{name}` ({how}), which the check cells use",
                      node)
        elif cat == "xenlab" and name in self.protected:
            self.flag("monkey-patch", f"redefines `{name}` ({how}), which the locked cells use",
                      node)

    def _target(self, t, node, how="assignment"):
        if isinstance(t, ast.Name):
            self._bind(t.id, node, how)
        elif isinstance(t, (ast.Tuple, ast.List)):
            for e in t.elts:
                self._target(e, node, how)
        elif isinstance(t, ast.Starred):
            self._target(t.value, node, how)
        elif isinstance(t, (ast.Attribute, ast.Subscript)):
            rp = _root_and_path(t)
            if rp:
                self._write(rp[0], rp[1], node)

    def _write(self, root, path, node):
        cat = self.aliases.get(root)
        what = _dotted(root, path)
        if cat == "stage":
            if path and path[0] in STAGE_OK_ATTRS and (path[0] == "answers" or len(path) == 2):
                return
            if path and path[0] in MODEL_PARTS:
                self.flag("model-edit", f"writes {what}: the model may change only through "
                                        "hooks", node)
            else:
                self.flag("model-edit", f"assigns {what}", node)
        elif cat == "checks":
            self.flag("check-tamper", f"assigns {what} (the check machinery)", node)
        elif cat == "xenlab":
            kind = "check-tamper" if "checks" in path or "REGISTRY" in path else "monkey-patch"
            self.flag(kind, f"assigns {what} (monkey-patching xenlab)", node)

    def visit_Assign(self, node):
        for t in node.targets:
            self._target(t, node)
        self.generic_visit(node)

    def visit_AugAssign(self, node):
        self._target(node.target, node)
        self.generic_visit(node)

    def visit_AnnAssign(self, node):
        self._target(node.target, node)
        self.generic_visit(node)

    def visit_Delete(self, node):
        for t in node.targets:
            self._target(t, node, "del")
        self.generic_visit(node)

    def visit_FunctionDef(self, node):
        self._bind(node.name, node, "def")
        self.generic_visit(node)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_ClassDef(self, node):
        self._bind(node.name, node, "class")
        self.generic_visit(node)

    def visit_For(self, node):
        self._target(node.target, node, "for")
        self.generic_visit(node)

    def visit_withitem(self, node):
        if node.optional_vars is not None:
            self._target(node.optional_vars, node.context_expr, "with")
        self.generic_visit(node)

    def visit_NamedExpr(self, node):
        self._target(node.target, node, ":=")
        self.generic_visit(node)

    def visit_Import(self, node):
        for a in node.names:
            cat = _import_category(a.name, self.watched)
            bound = a.asname or a.name.split(".")[0]
            if cat:
                self.aliases[bound] = "checks" if a.asname and cat == "checks" else (
                    cat if a.asname else "xenlab")
            elif bound in self.aliases:
                self._bind(bound, node, "import of another module")
            if self.runs and a.name.split(".")[0] in ("gc", "ctypes", "inspect", "importlib",
                                                      "builtins", "subprocess"):
                self.flag("monkey-patch", f"imports {a.name}, which a hook has no use for (it "
                                          "reaches past the lab's API)", node)

    def visit_ImportFrom(self, node):
        mod = node.module or ""
        cat = _import_category(mod, self.watched)
        for a in node.names:
            bound = a.asname or a.name
            if a.name in self.references or a.name in REFERENCE_WORDS:
                self.flag("reference", f"imports {a.name} from {mod} (the reference fix)", node)
            sub = _import_category(f"{mod}.{a.name}", self.watched) if mod else None
            if cat or sub:
                self.aliases[bound] = "checks" if "checks" in (cat, sub) else "xenlab"
            elif bound in self.aliases:
                self._bind(bound, node, f"import from {mod}")
            if self.runs and mod.split(".")[0] in ("gc", "ctypes", "inspect", "importlib",
                                                   "builtins", "sys"):
                self.flag("monkey-patch", f"imports {a.name} from {mod}, which a hook has no "
                                          "use for", node)

    # uses
    def visit_Call(self, node):
        f = node.func
        name = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""
        if name in ("setattr", "delattr") and node.args:
            rp = _root_and_path(node.args[0])
            if rp:
                self._write(rp[0], rp[1] + ["?"], node)
        if name in ("apply_reference_fix", "use_reference"):
            self.flag("reference", f"calls {name}() (installs the reference fix)", node)
        rp = _root_and_path(f) if isinstance(f, ast.Attribute) else None
        if rp and self.aliases.get(rp[0]) == "stage" and rp[1]:
            head, last = rp[1][0], rp[1][-1]
            if head in MODEL_PARTS and last.lstrip("_").startswith(MUTATORS):
                self.flag("model-edit", f"calls {_dotted(*rp)}(): the model may change only "
                                        "through hooks", node)
            if head == "restore" and len(rp[1]) == 1:
                self.flag("model-edit", "calls lab.restore(): the model may change only "
                                        "through hooks", node)
        if name.endswith("Stage") and self.role != "check":
            seeds = [k for k in node.keywords if k.arg == "seed"]
            for k in seeds:
                if not (isinstance(k.value, ast.Name) and k.value.id == "SEED"):
                    self.flag("seed", f"builds a {name}(...) with seed={ast.unparse(k.value)}",
                              node, "info" if not self.runs else "lab")
        self.generic_visit(node)

    def visit_Attribute(self, node):
        if node.attr in self.references or node.attr in REFERENCE_WORDS:
            rp = _root_and_path(node)
            if node.attr in REFERENCE_WORDS or (rp and self.aliases.get(rp[0]) == "xenlab"):
                self.flag("reference", f"uses {_dotted(*rp) if rp else node.attr} "
                                       "(the reference fix)", node)
        if self.runs and node.attr in INTROSPECTION_ATTRS:
            self.flag("monkey-patch", f"uses .{node.attr}, which a hook has no use for (it "
                                      "reaches past the lab's API)", node)
        if self.runs and node.attr in MODEL_PARTS:
            rp = _root_and_path(node)
            if rp and self.aliases.get(rp[0]) == "stage":
                self.flag("model-edit", f"reaches into {_dotted(*rp)}: a hook cell must not touch "
                                        "the model", node)
        self.generic_visit(node)

    def visit_Name(self, node):
        if node.id in ("REGISTRY", "SPECS"):
            self.flag("check-tamper" if node.id == "REGISTRY" else "reference",
                      f"uses {node.id}", node)
        elif self.runs and node.id in ("gc", "ctypes", "__builtins__", "__import__", "exec",
                                       "eval", "compile", "globals", "setattr", "delattr"):
            self.flag("monkey-patch", f"uses {node.id}, which a hook has no use for (it reaches "
                                      "past the lab's API)", node)
        elif node.id in self.references and self.aliases.get(node.id) == "xenlab":
            self.flag("reference", f"uses {node.id} (the reference fix)", node)


def scan_cell(src: str, *, role: str | None, where: str, aliases: dict, protected=(),
              references=(), watched=()) -> list[Flag]:
    """Flags for one student cell (see the module docstring)."""
    try:
        tree = ast.parse(src)
    except SyntaxError:
        return []          # it cannot run: the run reports the error
    s = _Scanner(role or "investigate", where, aliases, set(protected), set(references),
                 set(watched))
    s.visit(tree)
    return s.flags


def loaded_names(sources) -> set[str]:
    """Names read by the given (locked) cells."""
    out = set()
    for src in sources:
        try:
            tree = ast.parse(src)
        except SyntaxError:
            continue
        out |= {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)
                and isinstance(n.ctx, ast.Load)}
    return out
