"""``xenlab bench boot``: Xen boot + dom0 build on 1, 4, 16 and 64 GiB machines.

Each size runs in a fresh process, so its RSS growth is its own.  Reported:
wall time, frames handed to dom0 per second, RSS growth against the machine
memory actually touched (M2P, P2M list, page tables), and a peer: numpy
writing the same per-frame bulk (an int64 P2M, an int64 M2P, the frame
table's 10 bytes) into fresh arrays, the memory-bandwidth floor of the job.
"""

from __future__ import annotations

import json
import subprocess
import sys

from . import Row

SIZES = ["1G", "4G", "16G", "64G"]

_CHILD = r"""
import json, time, psutil, numpy as np
from xenlab.machine import Machine
from xenlab.xen import Xen, KernelImage, Segment
img = lambda: KernelImage([Segment(0xFFFFFFFF80000000, b"\x90" * 0x4000)],
                          entry=0xFFFFFFFF80000000, virt_base=0xFFFFFFFF80000000,
                          hypercall_page=0xFFFFFFFF80001000)
w = Xen(Machine("64M"), cpu=False); w.build_dom0(img())   # compile / load kernels
del w
p = psutil.Process()
r0 = p.memory_info().rss
t = time.perf_counter()
m = Machine(SIZE)
x = Xen(m, cpu=False)       # the builder alone (no CPU code cache)
d = x.build_dom0(img())
dt = time.perf_counter() - t
rss = p.memory_info().rss - r0
n = d.tot_pages
t = time.perf_counter()
a = np.arange(n, dtype=np.int64); b = np.arange(n, dtype=np.int64)
c = np.zeros(n, dtype=np.int16); e = np.ones(n, dtype=np.uint32); f = np.ones(n, np.uint32)
peer = time.perf_counter() - t
print(json.dumps({"seconds": dt, "pages": n, "rss": rss,
                  "touched": m.memory.touched_frames * 4096, "peer": peer}))
"""


def measure(size: str) -> dict:
    out = subprocess.run([sys.executable, "-c", _CHILD.replace("SIZE", repr(size))],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def bench_boot(quick: bool) -> list[Row]:
    rows = []
    for size in (SIZES[:2] if quick else SIZES):
        r = measure(size)
        target = "< 2 s" if size == "64G" else ""
        rows.append(Row("boot", f"{size}: Xen boot + dom0 build", r["seconds"], "s",
                        target=target, met=(r["seconds"] < 2.0) if size == "64G" else None
                        ).with_peer("numpy bulk fill", r["peer"]))
        rows.append(Row("boot", f"{size}: frames given to dom0 per second",
                        r["pages"] / r["seconds"], "frames/s"))
        rows.append(Row("boot", f"{size}: RSS growth", r["rss"] / 2**20, "MiB",
                        target="in proportion to touched memory"
                        ).with_peer("machine memory touched (MiB)", r["touched"] / 2**20))
    return rows
