"""``xenlab bench compile``: first-import cost of the jitted layers, cold and warm.

Cold: a fresh, empty NUMBA_CACHE_DIR, so every kernel compiles.  Warm: the
same directory again, so kernels load from the cache.  Each layer registers
a small warm-up snippet that calls its kernels once.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time

from . import Row

# layer -> code that imports it and calls its kernels once
WARMUPS = {
    "machine.memory+mmu": (
        "from xenlab.machine.memory import Memory\n"
        "from xenlab.machine import mmu\n"
        "m = Memory(); m.write64(0x1000, 0x2003); m.write_bytes(0x3000, b'x')\n"
        "m.read_bytes(0, 16); m.frame(); m.snapshot()\n"
        "mm = mmu.Mmu(m); mm.state[18] |= 1 << 31; mm.state[21] |= 32;"
        " mm.state[22] |= (1 << 8) | (1 << 10)\n"
        "mm.write_cr3(0x1000)\n"
        "try: mm.translate(0)\nexcept mmu.PageFault: pass\n"
        "mm.translate_batch([0]); mmu.walk_many(m, 0x1000, [0]); mmu.walk(m, 0x1000, 0)\n"
        "mmu.pagetable_frame(m, 0x1000); mm.invlpg(0)\n"
    ),
    "xen (heap, frame table, M2P, dom0 build)": (
        "from xenlab.machine import Machine\n"
        "from xenlab.xen import Xen, KernelImage, Segment, check_invariants\n"
        "x = Xen(Machine('64M'), cpu=False)\n"
        "x.build_dom0(KernelImage([Segment(0xFFFFFFFF80000000, b'\\x90' * 0x4000)],"
        " entry=0xFFFFFFFF80000000, virt_base=0xFFFFFFFF80000000))\n"
        "check_invariants(x); x.heap.history()\n"
    ),
    # the whole CPU (interpreter loop, general executor, exceptions) compiles
    # on the first run; this snippet also takes a port exit and a fault
    "machine.cpu": (
        "from xenlab.machine.snippet import snippet_vcpu\n"
        "v = snippet_vcpu(bytes.fromhex('b8010000004801c3e680f4'))\n"
        "v.run_native(100)\n"
    ),
}


def _time(code: str, cache_dir: str) -> float:
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir)
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], env=env, check=True)
    return time.perf_counter() - t


def bench_compile(quick: bool) -> list[Row]:
    rows = []
    base = _time("import numba, numpy, pandas", tempfile.mkdtemp())
    for layer, code in WARMUPS.items():
        with tempfile.TemporaryDirectory() as d:
            cold = _time(code, d) - base
            warm = _time(code, d) - base
        rows.append(Row("compile", f"{layer}: first use, cold cache", cold, "s",
                        target="small (CPU: < 20 s)"))
        rows.append(Row("compile", f"{layer}: first use, warm cache", warm, "s",
                        target="< 2 s"))
    return rows
