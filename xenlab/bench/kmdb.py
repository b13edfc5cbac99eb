"""``xenlab bench kmdb``: the debugger stays interactive.

- ``::vtop`` (kmdb's own walk in Python, read from machine memory, with the
  M2P/P2M lookups under Xen and the text) beside the machine layer's jitted
  side-effect-free walker on the same address;
- ``:s`` single steps under Xen and natively (a thread hand-off, one
  instruction through the host runner, the stop report) beside calling the
  host runner for one instruction directly;
- ``:c`` through the ``iopl`` stage under the debugger beside ``Boot.run`` of
  the same stage without it (what the worker thread and wrapped runners cost).
"""

from __future__ import annotations

import time

from . import Row, best_of


def _stage(name, native=False):
    from ..lab import Stage
    st = Stage(name, native=native).fix("all")
    st.boot()
    return st


def _vtop_rows(quick: bool) -> list[Row]:
    from ..kmdb import Kmdb
    from ..machine.mmu import walk
    st = _stage("boot_kmdb")
    k = Kmdb(st)
    va = st.kernel.unix.sym("msgbuf")
    v = st.kernel.cpus[0].vcpu
    n = 50 if quick else 500
    t = best_of(lambda: [k.cmd(f"{va:#x}::vtop") for _ in range(n)], 3) / n
    peer = best_of(lambda: [walk(v.memory, v.get("cr3"), va, state=v.state)
                            for _ in range(n)], 3) / n
    return [Row("kmdb", "::vtop of a kernel address under Xen (levels, pfns, text)", 1 / t,
                "cmds/s", target=">= 200/s (interactive)", met=1 / t >= 200
                ).with_peer("mmu.walk (jitted)", 1 / peer)]


def _step_rows(quick: bool) -> list[Row]:
    from ..kmdb import Kmdb
    rows = []
    for native in (False, True):
        st = _stage("pci_config", native=native)
        k = Kmdb(st)
        k.run("::bp pci_mech1_getl")
        k.run(":c")                                  # inside iopl's bus scan
        n = 20 if quick else 200
        t0 = time.perf_counter()
        for _ in range(n):
            k.run(":s")
        t = (time.perf_counter() - t0) / n
        k.close()
        st2 = _stage("pci_config", native=native)
        kc = st2.kernel.kcpu
        kc.set_reg("rip", st2.kernel.unix.sym("kdelay"))
        kc.set_reg("rdi", 10**9)
        runner = kc.runner
        peer = best_of(lambda: [runner(1) for _ in range(n)], 3) / n
        where = "natively" if native else "under Xen"
        rows.append(Row("kmdb", f":s single steps {where}", 1 / t, "steps/s",
                        target=">= 100/s", met=1 / t >= 100
                        ).with_peer("the host runner, 1 instruction", 1 / peer))
    return rows


def _cont_rows(quick: bool) -> list[Row]:
    from ..kmdb import Kmdb
    repeat = 1 if quick else 3
    best_dbg = best_plain = float("inf")
    for _ in range(repeat):
        st = _stage("pci_config")
        k = Kmdb(st)
        t = time.perf_counter()
        k.run(":c")
        best_dbg = min(best_dbg, time.perf_counter() - t)
        k.close()
        st = _stage("pci_config")
        t = time.perf_counter()
        st.state.run("iopl")
        best_plain = min(best_plain, time.perf_counter() - t)
    row = Row("kmdb", ":c through stage iopl under Xen (worker thread, wrapped runners)",
              best_dbg, "s", target="<= 1.2x without the debugger")
    row.with_peer("Boot.run('iopl')", best_plain)
    row.met = row.ratio is not None and row.ratio <= 1.2
    return [row]


def bench_kmdb(quick: bool) -> list[Row]:
    _stage("iopl")                          # load the numba kernels before timing
    return _vtop_rows(quick) + _step_rows(quick) + _cont_rows(quick)
