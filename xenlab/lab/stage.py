"""``Stage``: boot a fresh machine to a named stage of the bring-up.

::

    lab = Stage("pci_config", profile="sun-x4200", seed=7)
    lab.boot()                  # stops where the 2007 code failed
    lab.hooks.pci_config_mechanism = my_fix
    lab.boot()                  # a new machine, the same seed: the same boot up to the fix
    lab.check()                 # the stage's check cards

Every ``boot()`` builds a new machine from the profile and seed (so boots are
deterministic), runs every stage up to and including this one -- earlier
stages with their reference fixes unless the student replaced those hooks,
this stage and later ones with the hooks as they are -- and stops where a
stage fails.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field

from .boot import Boot, StageFailed
from .hooks import SPECS, Hooks
from .stages import STAGE_NAMES, stage_index

# Set by xenlab.checks on import: (stage, hidden) -> list of CheckResult.
CHECK_RUNNER = None


@dataclass
class BootResult:
    """How far a boot went and why it stopped."""

    target: str
    native: bool
    reached: str | None = None        # the last stage that passed
    failed: str | None = None         # the stage that failed (None: the target was reached)
    kind: str = "ok"                  # ok, panic, hang, crash, build, xen panic, hook error
    why: str = ""
    panic: str | None = None
    console: str = ""
    milestones: list = field(default_factory=list)
    instructions: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.failed is None

    def console_tail(self, lines: int = 12) -> str:
        return "\n".join(self.console.rstrip("\n").splitlines()[-lines:])

    def summary(self) -> str:
        where = "i86pc (native)" if self.native else "i86xen (dom0 on Xen)"
        if self.ok:
            return f"{where}: reached stage {self.target!r}"
        got = f"after {self.reached!r}" if self.reached else "before any stage passed"
        return f"{where}: stopped in stage {self.failed!r} ({self.kind}) {got}: {self.why}"

    def __repr__(self):
        return self.summary()


class Stage:
    """One stage of the bring-up, booted on demand (see the module docstring)."""

    def __init__(self, name: str, profile: str = "sun-x4200", memory=None, seed: int = 0,
                 native: bool = False):
        stage_index(name)
        from ..machine.profile import load_profile
        load_profile(profile)                 # a bad name fails here, listing the profiles
        self.name = name
        self.profile = profile
        self.memory = memory
        self.seed = int(seed)
        self.native = bool(native)
        self.hooks = Hooks()
        self.result: BootResult | None = None
        self.state: Boot | None = None
        self._callbacks = []

    # -- hooks ----------------------------------------------------------------------------
    def effective_hooks(self) -> Hooks:
        """The hooks a boot uses: earlier stages fixed unless replaced by the student."""
        idx = stage_index(self.name)
        eff = Hooks()
        for name, spec in SPECS.items():
            chosen = self.hooks._chosen.get(name)
            if chosen is not None:
                setattr(eff, name, chosen)
            elif spec.stage in STAGE_NAMES and STAGE_NAMES.index(spec.stage) < idx:
                eff._chosen[name] = spec.reference
        return eff

    def apply_reference_fix(self, stage: str | None = None):
        """Install the reference fix for this stage's hooks (or another stage's)."""
        self.hooks.use_reference(stage or self.name)
        return self

    def fix(self, stages) -> "Stage":
        """``"all"`` or a list of stage names: install their reference fixes."""
        names = STAGE_NAMES if stages == "all" else list(stages)
        for s in names:
            stage_index(s)
            self.hooks.use_reference(s)
        return self

    # -- booting ----------------------------------------------------------------------------
    def boot(self) -> BootResult:
        """Boot a fresh machine to this stage; returns (and keeps) the result."""
        t = time.perf_counter()
        b = Boot(self.profile, self.memory, self.seed, self.native, self.effective_hooks())
        self.state = b
        res = BootResult(self.name, self.native)
        try:
            b.run(self.name)
        except StageFailed as e:
            res.failed, res.kind, res.why, res.panic = e.stage, e.kind, e.why, e.panic
        res.reached = b.passed[-1] if b.passed else None
        res.console = b.visible_console()
        res.milestones = list(b.kernel.milestones) if b.kernel else []
        res.instructions = sum(k.instructions for k in b.kernel.cpus) if b.kernel else 0
        res.seconds = time.perf_counter() - t
        self.result = res
        for cb in list(self._callbacks):
            cb()
        return res

    def on_boot(self, callback):
        """Call ``callback()`` after every boot (views use it to refresh)."""
        self._callbacks.append(callback)

    # -- the live model ------------------------------------------------------------------------
    def _need(self):
        if self.state is None:
            raise RuntimeError(f"stage {self.name!r} has not been booted: call .boot() first")
        return self.state

    @property
    def machine(self):
        return self._need().machine

    @property
    def xen(self):
        return self._need().xen

    @property
    def dom0(self):
        return self._need().dom0

    @property
    def kernel(self):
        return self._need().kernel

    @property
    def console(self) -> str:
        """What the developer saw on the console."""
        return self._need().visible_console()

    def state_hash(self) -> str:
        return self._need().state_hash()

    # -- snapshots --------------------------------------------------------------------------
    def _memo(self, b: Boot) -> dict:
        mem = b.machine.memory
        memo = {id(mem): mem, id(b.unix): b.unix, id(b.catalog): b.catalog}
        for v in b.machine.vcpus:
            cache = getattr(v, "cache", None)
            if cache is not None:
                memo[id(cache)] = cache
            # views bound to their vCPU (register names, breakpoint and intercept
            # sets that resync the vCPU's arrays): shared by the copy, rebuilt after it
            for attr in ("regs", "_breakpoints", "_intercept"):
                if hasattr(v, attr):
                    memo[id(getattr(v, attr))] = getattr(v, attr)
        return memo

    def _copy(self, b: Boot) -> Boot:
        new = copy.deepcopy(b, self._memo(b))
        for old, v in zip(b.machine.vcpus, new.machine.vcpus):
            if hasattr(v, "regs"):
                v.regs = type(v.regs)(v)
                v.breakpoints = set(old.breakpoints)
                v.intercept = set(old.intercept)
        return new

    def snapshot(self):
        """The whole model as it is now (machine memory, devices, CPUs, Xen, kernel)."""
        b = self._need()
        return (self._copy(b), b.machine.memory.snapshot(),
                copy.copy(self.result))

    def restore(self, snap):
        """Put the model back as :meth:`snapshot` found it (repeatable)."""
        state, mem_snap, result = snap
        b = self._copy(state)
        b.machine.memory.restore(mem_snap)
        for v in b.machine.vcpus:
            if hasattr(v, "mmu"):
                v.mmu.flush()
        self.state = b
        self.result = copy.copy(result)
        return self

    # -- checks -------------------------------------------------------------------------------
    def check(self, *, hidden: bool = False):
        """Run this stage's check cards against the model.

        The cards live in the presentation layer (``xenlab.checks``), which
        registers its runner in :data:`CHECK_RUNNER` when imported; the lab
        layer never imports upwards.
        """
        if CHECK_RUNNER is None:
            raise RuntimeError("check cards live in xenlab.checks: `import xenlab.checks` "
                               "first (the lab notebooks' setup cell does)")
        return CHECK_RUNNER(self, hidden)

    def __repr__(self):
        state = self.result.summary() if self.result else "not booted"
        return (f"<Stage {self.name!r} profile={self.profile} seed={self.seed}"
                f"{' native' if self.native else ''}: {state}>")
