"""``xenlab bench memory``: what a big, mostly untouched machine costs."""

from __future__ import annotations

import json
import subprocess
import sys

from . import Row

_CHILD = r"""
import json, os, sys, time
import numpy as np
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
n = int(sys.argv[1])
from xenlab.machine.memory import Memory, PAGE_SIZE
m = Memory(addr_bits=40)
m.write64(0, 1)                          # compile the kernels before measuring
base = rss()
rng = np.random.Generator(np.random.PCG64(1))
machine_frames = (64 << 30) // PAGE_SIZE
mfns = np.sort(rng.choice(machine_frames, size=n, replace=False))
page = np.full(PAGE_SIZE, 0xA5, dtype=np.uint8)
t = time.perf_counter()
m.reserve(n + 16)
for mfn in mfns:
    m.write_bytes(int(mfn) * PAGE_SIZE, page)
touch_s = time.perf_counter() - t
after = rss()
t = time.perf_counter(); snap = m.snapshot(); snap_s = time.perf_counter() - t
t = time.perf_counter(); m.restore(snap); restore_s = time.perf_counter() - t
print(json.dumps(dict(base=base, after=after, touched=m.touched_frames * PAGE_SIZE,
                      touch_s=touch_s, snap_s=snap_s, restore_s=restore_s)))
"""


def bench_memory(quick: bool) -> list[Row]:
    n = 16384 if quick else 262144          # 64 MiB or 1 GiB touched
    out = subprocess.run([sys.executable, "-c", _CHILD, str(n)], capture_output=True,
                         text=True, check=True)
    r = json.loads(out.stdout.strip().splitlines()[-1])
    grown = r["after"] - r["base"]
    ratio = grown / r["touched"]
    overhead = (grown - r["touched"]) / 2**20
    mib = r["touched"] / 2**20
    return [
        Row("memory", f"RSS growth, 64 GiB machine, {mib:.0f} MiB touched", grown / 2**20, "MiB",
            "touched bytes", mib, ratio, "<= 1.3x touched", ratio <= 1.3),
        Row("memory", "fixed overhead (growth - touched: frame index, pool slack)", overhead,
            "MiB", target="< 100 MiB", met=overhead < 100),
        Row("memory", "RSS of the process before (interpreter, numba, kernels)",
            r["base"] / 2**20, "MiB"),
        Row("memory", f"touch rate ({n} frames, one write each)", n / r["touch_s"], "frames/s"),
        Row("memory", f"snapshot of {mib:.0f} MiB", r["snap_s"] * 1e3, "ms"),
        Row("memory", f"restore of {mib:.0f} MiB", r["restore_s"] * 1e3, "ms"),
    ]
