"""A guard for numba's on-disk cache: kernels recompile when a file they may
have inlined changes, not only their own.

numba keys a cached function on the source of the file that defines it.
When ``run_loop`` (cpu/run.py) inlines ``alu`` from cpu/arith.py and only
arith.py changes, numba happily loads the stale ``run_loop``.  This module
registers cache locators (numba's hook for where and how a function is
cached) that add to every xenlab kernel's source stamp a hash of

* the machine core: ``memory.py``, ``mmu.py``, ``pte.py``, ``regs.py``,
  everything in ``machine/cpu/`` and ``asm/isa.py`` (whose tables the CPU's
  decoder freezes into its code), and
* every other ``.py`` file in the kernel's own directory.

So editing any of those files invalidates exactly the kernels that could
have inlined it (and a few more); nothing else changes.  Importing this
module is enough; ``xenlab.machine.memory`` does it before defining its
kernels.  To throw every cached kernel away by hand (after a numba upgrade
that went wrong, say): ``find xenlab -name '*.nbi' -delete``, or point
``NUMBA_CACHE_DIR`` at a fresh directory.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

from numba.core import caching

PACKAGE = Path(__file__).resolve().parents[1]          # .../xenlab
CORE = ("machine/memory.py", "machine/mmu.py", "machine/pte.py", "machine/regs.py",
        "machine/cpu", "asm/isa.py")


def _files(rel: str) -> list[Path]:
    p = PACKAGE / rel
    return sorted(p.glob("*.py")) if p.is_dir() else [p]


@functools.lru_cache(maxsize=None)
def _digest(paths: tuple[Path, ...]) -> str:
    h = hashlib.sha256()
    for p in paths:
        h.update(str(p.relative_to(PACKAGE)).encode())
        try:
            h.update(p.read_bytes())
        except OSError:
            h.update(b"<missing>")
    return h.hexdigest()


def group_stamp(py_file: str) -> str:
    """The hash of the core files and of ``py_file``'s directory."""
    core = [f for rel in CORE for f in _files(rel)]
    local = sorted(Path(py_file).resolve().parent.glob("*.py"))
    return _digest(tuple(dict.fromkeys(core + local)))


def _ours(py_file) -> bool:
    try:
        Path(py_file).resolve().relative_to(PACKAGE)
        return True
    except (ValueError, OSError):
        return False


class _GroupStamp:
    """Mixin: the file's own stamp plus the group's."""

    def get_source_stamp(self):
        return (super().get_source_stamp(), group_stamp(self._py_file))

    @classmethod
    def from_function(cls, py_func, py_file):
        if not _ours(py_file):
            return None
        return super().from_function(py_func, py_file)


class UserDirLocator(_GroupStamp, caching.UserProvidedCacheLocator):
    """NUMBA_CACHE_DIR, with the group stamp."""


class InTreeLocator(_GroupStamp, caching.InTreeCacheLocator):
    """``__pycache__`` next to the source, with the group stamp."""


def install():
    """Put the locators first in numba's list (once)."""
    impl = getattr(caching, "CacheImpl", None) or getattr(caching, "_CacheImpl")
    classes = impl._locator_classes
    for cls in (InTreeLocator, UserDirLocator):
        if cls not in classes:
            classes.insert(0, cls)


install()
