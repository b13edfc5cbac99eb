"""``%kmdb`` and ``%%kmdb``: the debugger in a notebook.

``%kmdb ::vtop 0xffffffff80001000`` runs a line; a ``%%kmdb`` cell runs each
of its lines in turn (the text after ``%%kmdb`` first).  Output is printed as
mdb prints it; the last :class:`~xenlab.kmdb.session.Result` is also left in
the namespace as ``_kmdb`` (its ``.data`` holds the same facts as values).

Which model: ``%kmdb -t NAME ...`` names a variable (a Stage, Boot, Kernel or
KCpu); otherwise the session made by :func:`xenlab.kmdb.attach`, otherwise the
one booted ``Stage`` in the namespace.  Each target keeps one session, so
breakpoints and dot persist from cell to cell.

Registration: ``%load_ext xenlab.kmdb``, or just ``import xenlab`` (any
``from xenlab.lab import Stage``) inside IPython.
"""

from __future__ import annotations

import weakref

_SESSIONS: dict[int, tuple] = {}      # id(target) -> (weakref to target, Kmdb)
_CURRENT: list = []                   # the session attach() chose, if any


def _target_of(k):
    t = k.target
    return t.stage or t._boot or t._kernel or t._kcpu


def remember(k):
    """Make ``k`` the session ``%kmdb`` uses (and the one for its target)."""
    obj = _target_of(k)
    _SESSIONS[id(obj)] = (weakref.ref(obj), k)
    _CURRENT[:] = [weakref.ref(k)]


def session_for(obj):
    """The session of a target object (made on first use)."""
    from .session import Kmdb
    hit = _SESSIONS.get(id(obj))
    if hit is not None and hit[0]() is obj:
        return hit[1]
    k = Kmdb(obj)
    _SESSIONS[id(obj)] = (weakref.ref(obj), k)
    return k


def _booted_stages(ns: dict) -> dict:
    found = {}
    for name, v in ns.items():
        if name.startswith("_") or type(v).__name__ != "Stage":
            continue
        if getattr(v, "state", None) is not None:
            found.setdefault(id(v), (name, v))
    return found


def pick(ns: dict, name: str | None = None):
    """The session ``%kmdb`` should use in namespace ``ns``."""
    from .errors import MdbError
    if name:
        if name not in ns:
            raise MdbError(f"%kmdb -t {name}: no such variable")
        return session_for(ns[name])
    if _CURRENT:
        k = _CURRENT[0]()
        if k is not None:
            return k
    stages = _booted_stages(ns)
    if not stages:
        raise MdbError("no booted Stage in the namespace: lab = Stage(...); lab.boot(), "
                       "or %kmdb -t NAME")
    if len(stages) > 1:
        names = ", ".join(sorted(n for n, _ in stages.values()))
        raise MdbError(f"several booted Stages ({names}): say which with %kmdb -t NAME, "
                       "or xenlab.kmdb.attach(stage)")
    (_, obj), = stages.values()
    return session_for(obj)


def run_magic(ip, line: str, cell: str | None = None):
    """Run ``line`` (and a cell's lines); print what mdb prints."""
    from .errors import MdbError
    from .session import Result
    words = line.split(None, 2)
    name = None
    if words[:1] == ["-t"]:
        if len(words) < 2:
            print("mdb: %kmdb -t needs a variable name")
            return None
        name = words[1]
        line = words[2] if len(words) > 2 else ""
    try:
        k = pick(ip.user_ns, name)
    except MdbError as e:
        print(e)
        ip.user_ns["_kmdb"] = Result(line, error=str(e))
        return None
    lines = [line] + (cell.splitlines() if cell is not None else [])
    last = None
    for text in lines:
        if not text.strip():
            continue
        for r in k.execute(text):
            print(str(r), end="")
            last = r
        if k.quit:
            k.quit = False
            break
    ip.user_ns["_kmdb"] = last
    return None


def register(ip):
    """Register ``%kmdb`` / ``%%kmdb`` on an IPython shell."""
    def kmdb(line, cell=None):
        return run_magic(ip, line, cell)
    kmdb.__doc__ = __doc__
    ip.register_magic_function(kmdb, "line_cell", "kmdb")
