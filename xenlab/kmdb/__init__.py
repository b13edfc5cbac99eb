"""kmdb: an mdb-style debugger over the live model.

::

    from xenlab.lab import Stage
    from xenlab.kmdb import Kmdb

    lab = Stage("boot_kmdb").fix("all")
    lab.boot()
    k = Kmdb(lab)
    print(k.run("$r; <rip::vtop; ::print start_info mfn_list"))
    k.cmd("::pfntomfn 0").data            # {'pfn': 0, 'mfn': ...}

In a notebook: ``%kmdb ::msgbuf`` and ``%%kmdb`` cells (``%load_ext xenlab.kmdb``;
importing ``xenlab`` inside IPython registers the magics too).  From a shell:
``xenlab kmdb --profile sun-x4200 --to boot_kmdb``.  See docs/kmdb.md.

This package stays light to import (``xenlab --help`` loads its CLI module);
the debugger itself loads on first use.
"""

from .errors import MdbError

__all__ = ["Kmdb", "Result", "MdbError", "DCMDS", "attach", "load_ipython_extension"]


def attach(target, **kw):
    """``Kmdb(target)``; in IPython also the target ``%kmdb`` uses from now on."""
    from . import magic
    from .session import Kmdb
    k = Kmdb(target, **kw)
    magic.remember(k)
    return k


def load_ipython_extension(ipython):
    """``%load_ext xenlab.kmdb``: register ``%kmdb`` and ``%%kmdb``."""
    from .magic import register
    register(ipython)


def __getattr__(name):
    if name in ("Kmdb", "Result", "DCMDS"):
        from . import session
        return getattr(session, name)
    raise AttributeError(f"module 'xenlab.kmdb' has no attribute {name!r}")
