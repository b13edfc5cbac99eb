"""Reading the model for checks: guest memory through dom0's own page tables
(a side-effect-free walk), and the boot's pieces, with messages that say what
is missing.

Besides the student's own boot, checks read three other boots of the same
lab, each built and booted here (never from the notebook), and cached:

* :func:`shipped_boot` -- the student's variant booted with the 2007 hooks:
  the ground truth of the investigation questions ("which port did the OUT
  fault on?"), whatever the student's hooks do by now;
* :func:`other_variant` -- the student's hooks on another machine and seed
  (hidden checks: a fix hard-coded to one variant fails there);
* :func:`native_variant` -- the student's hooks on the bare PC (i86pc): a fix
  for dom0 must not break the kernel it came from.
"""

from __future__ import annotations

from collections import OrderedDict

_CACHE: "OrderedDict[tuple, object]" = OrderedDict()
_CACHE_SIZE = 8


def boot_of(stage):
    b = getattr(stage, "state", None)
    if b is None:
        raise RuntimeError("the stage has not been booted (run lab.boot() first)")
    return b


def guest_read(stage, va: int, n: int) -> bytes:
    """``n`` bytes at kernel address ``va``, walked through the boot CPU's page
    tables the way the MMU would (no accessed bits set, no TLB touched)."""
    k = boot_of(stage).kernel
    vcpu = k.cpus[0].vcpu
    w = vcpu.mmu.walk(va)
    if not w.ok:
        raise RuntimeError(f"{va:#x} is not mapped in the kernel's page tables: {w.fault}")
    return vcpu.memory.read_bytes(w.maddr, n)


def guest_u64(stage, va: int) -> int:
    return int.from_bytes(guest_read(stage, va, 8), "little")


def reached(stage, name: str) -> bool:
    b = getattr(stage, "state", None)
    return b is not None and name in b.passed


def how_far(stage) -> str:
    r = getattr(stage, "result", None)
    if r is None:
        return "the stage was not booted"
    return r.summary()


def walk(stage, va: int):
    """The boot CPU's walk of ``va`` (side-effect free); its ``.ok``,
    ``.maddr`` and the leaf entry's raw value ``.steps[-1].entry``."""
    k = boot_of(stage).kernel
    return k.cpus[0].vcpu.mmu.walk(va)


def leaf_entry(stage, va: int) -> int | None:
    """The raw level-1 (leaf) entry mapping ``va``, or None if unmapped."""
    w = walk(stage, va)
    if not w.steps:
        return None
    last = w.steps[-1]
    return int(last.raw) & ((1 << 64) - 1) if w.ok else None


def machine_frames(stage, va: int, length: int) -> list[int]:
    """The machine frame of each page of [va, va+length), through the walk."""
    out = []
    first = va & ~0xFFF
    for p in range(first, va + length, 4096):
        w = walk(stage, p)
        if not w.ok:
            raise RuntimeError(f"{p:#x} is not mapped: {w.fault}")
        out.append(w.maddr >> 12)
    return out


def passed(stage, name: str) -> bool:
    return reached(stage, name)


# ---------------------------------------------------------------------------
# other boots of the same lab
# ---------------------------------------------------------------------------

def _chosen(stage) -> tuple:
    """The hooks the student installed, as a hashable key (the functions themselves,
    so a redefined hook is a new key and an old one cannot be confused with it)."""
    return tuple(sorted(stage.hooks._chosen.items(), key=lambda kv: kv[0]))


def _booted(key, make):
    hit = _CACHE.get(key)
    if hit is not None:
        _CACHE.move_to_end(key)
        return hit
    s = make()
    s.boot()
    _CACHE[key] = s
    while len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return s


def _new_stage(stage, **kw):
    from ..lab.stage import Stage
    args = dict(profile=stage.profile, memory=stage.memory, seed=stage.seed,
                native=stage.native)
    args.update(kw)
    return Stage(stage.name, **args)


def shipped_boot(stage, *, fixed: bool = False, native: bool | None = None):
    """The student's variant (profile, memory, seed) booted with the 2007 hooks of
    this stage (earlier stages fixed, as every boot does) -- or with every
    reference fix when ``fixed``; natively (i86pc) when ``native``.  Cached;
    the caller must not change it."""
    native = stage.native if native is None else bool(native)
    key = ("fixed" if fixed else "shipped", stage.name, stage.profile, stage.memory,
           stage.seed, native)

    def make():
        s = _new_stage(stage, native=native)
        return s.fix("all") if fixed else s
    return _booted(key, make)


def shipped_dom0(stage):
    """Domain 0 of :func:`shipped_boot` (the 2007 boot of the student's variant)."""
    d = boot_of(shipped_boot(stage)).dom0
    if d is None:
        raise RuntimeError("the 2007 boot of this variant has no dom0")
    return d


def other_variant(stage, seed: int | None = None, profile: str | None = None):
    """The student's hooks booted on another machine and seed: by default the seed
    after theirs and a lab profile their variant is not (xenlab.lab.other_profile; among
    the stage's own profiles when it needs particular machines)."""
    from ..lab.variants import other_profile
    seed = stage.seed + 1 if seed is None else int(seed)
    profile = profile or other_profile(stage.seed, stage.name)
    hooks = _chosen(stage)
    key = ("other", stage.name, profile, seed, stage.native, hooks)

    def make():
        s = _new_stage(stage, profile=profile, memory=None, seed=seed)
        for name, fn in hooks:
            setattr(s.hooks, name, fn)
        return s
    return _booted(key, make)


def native_variant(stage):
    """The student's hooks booted on the bare PC: the same machine and seed, i86pc."""
    hooks = _chosen(stage)
    key = ("native", stage.name, stage.profile, stage.memory, stage.seed, hooks)

    def make():
        s = _new_stage(stage, native=True)
        for name, fn in hooks:
            setattr(s.hooks, name, fn)
        return s
    return _booted(key, make)


def native_reached(stage, name: str, expected: str, *, hint: str, hooks: str = "hooks"):
    """The finding of a stage's native check: the student's ``hooks`` booted on
    the bare PC (:func:`native_variant`) must still get through stage ``name``."""
    from . import Finding
    n = native_variant(stage)
    return Finding(reached(n, name), f"the same machine booted natively (i86pc) with your {hooks}",
                   expected, how_far(n), hint=hint)


def clear_cache():
    """Forget the cached boots (tests; or to free memory)."""
    _CACHE.clear()
