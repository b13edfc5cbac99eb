"""Execution control: breakpoints, ``:c`` and ``:s`` over a live boot.

The kernel's logic is Python that runs machine code in stubs on the vCPU
(``KCpu.call`` asks its *runner* to run the vCPU until a stop).  To stop the
boot in the middle of a stage, the debugger runs the boot on a **worker
thread** and wraps each KCpu's runner in a :class:`DebugRunner`; the worker
blocks inside the runner whenever the target should look stopped -- at a
breakpoint, after a single step, at the kernel's own kmdb prompt -- and the
debugger (the caller's thread) reads the model while it waits.  Only one of
the two threads ever runs, so the model is never touched concurrently.

* ``:c`` at a stage boundary runs the next stage (``Boot.run``); inside a
  stage it resumes the vCPU until the next breakpoint or the end of the stage.
* ``:s`` executes one instruction; at a boundary it runs the next stage up to
  the first instruction the kernel executes on a vCPU.
* Breakpoints are vCPU breakpoints (the CPU checks RIP before executing; a
  resumed vCPU executes the instruction it stopped at), so the stops are exact.

With no breakpoints and no stepping the wrapped runner calls the real one with
the same budgets, so a boot continued under the debugger is bit-identical to
one run straight through.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass

from ..machine import regs as R
from ..machine.pte import u64
from .errors import MdbError

ICOUNT = R.ICOUNT


class Detached(BaseException):
    """Raised inside the worker when the debugger lets go of a paused boot
    (a BaseException, so the kernel's ``except Exception`` blocks let it through)."""


@dataclass
class Breakpoint:
    id: int
    addr: int
    desc: str
    enabled: bool = True
    hits: int = 0
    temporary: bool = False


@dataclass
class Stop:
    """Why the target is stopped now."""

    kind: str                   # breakpoint, step, kmdb, interrupted, stage, failed, done, idle
    cpu: int = 0
    rip: int | None = None
    bp: Breakpoint | None = None
    stage: str | None = None    # the stage that passed/failed
    why: str = ""               # failure text
    panic: str | None = None
    failure: object = None

    @property
    def inside_stage(self) -> bool:
        """Is the worker paused in the middle of a stage?"""
        return self.kind in ("breakpoint", "step", "kmdb", "interrupted")


@dataclass
class _Budget:
    reason: str = "budget"
    count: int = 0
    rip: int = 0


class DebugRunner:
    """Wraps a KCpu's host runner: pauses the worker at breakpoints and steps."""

    def __init__(self, inner, control: "Control", kcpu):
        self.inner = inner
        self.control = control
        self.kcpu = kcpu
        self.landed = None          # a step stopped on this breakpoint without the CPU's exit

    def __deepcopy__(self, memo):
        # Stage.snapshot() deep-copies the boot: the copy runs without the debugger.
        import copy
        return copy.deepcopy(self.inner, memo)

    def __call__(self, budget: int):
        ctl, kc = self.control, self.kcpu
        st = kc.state
        start = int(st[ICOUNT])
        ex = None
        while True:
            if ctl.skip_check:
                ctl.skip_check = False
            elif ctl.interrupt:
                ctl.interrupt = False
                ctl.pause("interrupted", kc)
            elif ctl.stepping:
                ctl.pause("step", kc)
            left = budget - (int(st[ICOUNT]) - start)
            if left <= 0:
                return ex if ex is not None and ex.reason == "budget" else _Budget()
            ex = self.inner(1 if ctl.stepping else left)
            rip = u64(int(st[R.RIP]))
            bp = ctl.by_addr.get(rip)
            if bp is not None and bp.enabled:
                if ex.reason == "breakpoint" and self.landed == rip:
                    # a step already stopped here; the CPU now steps over it
                    self.landed = None
                    ctl.skip_check = True
                    continue
                if ex.reason == "breakpoint" or (ctl.stepping and ex.reason == "budget"):
                    self.landed = rip if ex.reason == "budget" else None
                    bp.hits += 1
                    ctl.pause("breakpoint", kc, bp)
                    ctl.skip_check = True
                    if rip in kc.stops:
                        return ex
                    continue
            self.landed = None
            if rip in kc.stops:
                return ex
            if ex.reason == "budget" and ctl.stepping:
                continue
            return ex


class Control:
    """Breakpoints and the worker thread of one boot."""

    def __init__(self, target):
        self.target = target
        self.bps: dict[int, Breakpoint] = {}
        self.next_id = 1
        self.stop = Stop("idle")
        self.stepping = False
        self.skip_check = False
        self.interrupt = False
        self.thread: threading.Thread | None = None
        self._to_worker: queue.Queue = queue.Queue()
        self._to_debugger: queue.Queue = queue.Queue()
        self.boot = None                       # the Boot the breakpoints are armed on
        self._armed: dict[int, set[int]] = {}  # id(hw vcpu) -> addresses we added

    # -- breakpoints ----------------------------------------------------------------------
    @property
    def by_addr(self) -> dict[int, Breakpoint]:
        return {b.addr: b for b in self.bps.values()}

    def add(self, addr: int, desc: str) -> Breakpoint:
        addr = u64(addr)
        for b in self.bps.values():
            if b.addr == addr:
                b.enabled = True
                break
        else:
            b = Breakpoint(self.next_id, addr, desc)
            self.bps[b.id] = b
            self.next_id += 1
        if self.paused:
            self._arm()
        return b

    def delete(self, ident: int | None) -> list[Breakpoint]:
        if ident is None:
            gone = list(self.bps.values())
            self.bps.clear()
        else:
            if ident not in self.bps:
                raise MdbError(f"'{ident}' is not a valid event ID")
            gone = [self.bps.pop(ident)]
        self._disarm_all()
        if self.paused:
            self._arm()
        return gone

    def _kcpus(self):
        try:
            return self.target.cpus
        except MdbError:
            return []

    def _arm(self):
        """Wrap every KCpu's runner and put enabled breakpoints on their vCPUs.
        Breakpoints are on the vCPUs only while the debugger runs the boot (a
        snapshot or a boot run without the debugger never meets one)."""
        for kc in self._kcpus():
            if not isinstance(kc.runner, DebugRunner):
                kc.runner = DebugRunner(kc.runner, self, kc)
            hw = kc.vcpu
            mine = self._armed.setdefault(id(hw), set())
            want = {b.addr for b in self.bps.values() if b.enabled} - set(kc.stops)
            for a in mine - want:
                hw.breakpoints.discard(a)
            for a in want - mine:
                hw.breakpoints.add(a)
            self._armed[id(hw)] = want

    def _disarm_all(self):
        for kc in self._kcpus():
            mine = self._armed.pop(id(kc.vcpu), set())
            for a in mine:
                if a not in kc.stops:
                    kc.vcpu.breakpoints.discard(a)

    def detach_runners(self):
        """Take the debugger out of the boot (runners and breakpoints)."""
        self._disarm_all()
        for kc in self._kcpus():
            if isinstance(kc.runner, DebugRunner):
                kc.runner = kc.runner.inner

    # -- the worker side ---------------------------------------------------------------------
    def pause(self, kind: str, kcpu, bp: Breakpoint | None = None):
        """Called on the worker: report a stop and wait for the debugger's word."""
        cpu = kcpu.cpu_id if kcpu is not None else 0
        rip = u64(int(kcpu.state[R.RIP])) if kcpu is not None else None
        self._to_debugger.put(Stop(kind, cpu=cpu, rip=rip, bp=bp))
        word = self._to_worker.get()
        if word == "kill":
            raise Detached()
        self.stepping = word == "step"

    def _work(self, stages: list[str]):
        boot = self.target.boot
        orig_start = boot.start_kernel
        orig_operator = boot.operator

        def start_kernel():
            orig_start()
            self._arm()

        def operator():
            text = boot.visible_console()
            prompts = text.count("[0]> ") + text.count("[1]> ")
            if prompts > orig_operator.answered:
                k = boot.kernel
                self.pause("kmdb", k.kcpu if k is not None else None)
            orig_operator()

        boot.start_kernel = start_kernel
        boot.operator = operator
        try:
            for name in stages:
                boot.run(name)
            self._to_debugger.put(Stop("stage", stage=stages[-1]))
        except Detached:
            self._to_debugger.put(Stop("detached"))
        except Exception as e:                                  # noqa: BLE001
            from ..lab.boot import StageFailed
            if isinstance(e, StageFailed):
                self._to_debugger.put(Stop("failed", stage=e.stage, why=f"{e.kind}: {e.why}",
                                           panic=e.panic, failure=e))
            else:
                self._to_debugger.put(Stop("failed", why=f"{type(e).__name__}: {e}",
                                           failure=e))
        finally:
            del boot.start_kernel
            boot.operator = orig_operator

    # -- the debugger side ---------------------------------------------------------------------
    @property
    def paused(self) -> bool:
        return self.thread is not None and self.thread.is_alive() and self.stop.inside_stage

    def resume(self, step: bool, next_stage: str | None = None) -> Stop:
        """Resume the paused worker, or start the next stage on a new one; wait for the stop."""
        self.stepping = step
        if self.paused:
            self._arm()
            self._to_worker.put("step" if step else "cont")
        else:
            if next_stage is None:
                raise MdbError("nothing to continue")
            self._arm()
            self.thread = threading.Thread(target=self._work, args=([next_stage],),
                                           name="kmdb-boot", daemon=True)
            self.thread.start()
        return self._wait()

    def _wait(self) -> Stop:
        while True:
            try:
                stop = self._to_debugger.get(timeout=0.2)
                break
            except queue.Empty:
                continue
            except KeyboardInterrupt:
                self.interrupt = True           # the worker stops at its next run
        if not stop.inside_stage:
            self.thread.join()
            self.thread = None
            self.stepping = False
            self._disarm_all()
        self.stop = stop
        return stop

    def kill(self):
        """Let go of a paused worker (the boot it was running is abandoned)."""
        if self.thread is not None and self.thread.is_alive():
            self._to_worker.put("kill")
            self.thread.join(timeout=30)
        while not self._to_debugger.empty():
            self._to_debugger.get_nowait()
        self.thread = None
        self.stop = Stop("idle")


__all__ = ["Control", "DebugRunner", "Breakpoint", "Stop", "Detached"]
