"""The stage runner: Xen, the machine and the kernel put together, booted to a
named stage of the 2007 Solaris dom0 bring-up, with the hooks a student fixes.

``Stage(name, profile=..., memory=..., seed=..., native=...)`` -- see
:mod:`xenlab.lab.stage`; ``STAGES`` lists the stages; hooks and their 2007
defaults and reference fixes live in :mod:`xenlab.lab.stages`.  docs/stages.md.
"""

from .hooks import SPECS, HookError, Hooks, hook
from .stages import STAGE_NAMES, STAGES, stage_info

__all__ = ["Stage", "BootResult", "STAGES", "STAGE_NAMES", "stage_info", "Hooks", "HookError",
           "hook", "SPECS", "Boot", "StageFailed"]


def __getattr__(name):
    # Stage and Boot pull in the machine, Xen and the kernel: load them on first use.
    if name in ("Stage", "BootResult"):
        from . import stage
        return getattr(stage, name)
    if name in ("Boot", "StageFailed"):
        from . import boot
        return getattr(boot, name)
    raise AttributeError(f"module 'xenlab.lab' has no attribute {name!r}")
