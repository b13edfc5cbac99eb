"""``xenlab bench stages``: wall time of booting to each stage of the bring-up.

For each stage, a fresh machine booted with every reference fix (Xen + dom0),
the same kernel booted natively, and the 2007 hooks (the boot that fails, the
kmdb hang being the slowest: it waits out its instruction budget).  The peer is
what the hypervisor's own start costs in the same process: building the
machine, Xen's boot stub, Xen and domain 0 -- so the ratio is what the kernel's
boot adds on top.  Numba kernels are loaded (and the first boot run) before
timing.
"""

from __future__ import annotations

import time

from . import Row

PROFILES = ("sun-x4200", "qemu-i440fx")


def _time(fn, repeat: int) -> float:
    import gc
    best = float("inf")
    for _ in range(repeat):
        gc.collect()                    # the previous boot's machine is freed outside the timing
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def bench_stages(quick: bool) -> list[Row]:
    from ..lab import STAGE_NAMES, Stage
    repeat = 1 if quick else 3
    Stage("iopl", profile="qemu-i440fx").fix("all").boot()            # warm up
    rows = []
    for profile in (PROFILES[:1] if quick else PROFILES):
        peer = _time(lambda: Stage("toolchain", profile=profile).fix("all").boot(), repeat)
        for name in STAGE_NAMES:
            box = {}

            def xen_boot():
                box["r"] = Stage(name, profile=profile).fix("all").boot()
            t = _time(xen_boot, repeat)
            r = box["r"]
            rows.append(Row("stages", f"{profile}: boot to {name}, Xen + dom0, fixed "
                            f"({r.instructions:,} kernel instructions)", t, "s",
                            target="seconds", met=t < 5 and r.ok
                            ).with_peer("machine + Xen + dom0 build", peer))
        t = _time(lambda: Stage("iopl", profile=profile, native=True).boot(), repeat)
        rows.append(Row("stages", f"{profile}: boot to iopl, native i86pc", t, "s",
                        target="seconds", met=t < 5).with_peer("machine + Xen + dom0 build", peer))
        for name in ("boot_kmdb", "iopl"):
            t = _time(lambda: Stage(name, profile=profile).boot(), repeat)
            rows.append(Row("stages", f"{profile}: boot to {name} with the 2007 hooks (fails)",
                            t, "s").with_peer("machine + Xen + dom0 build", peer))
    return rows
