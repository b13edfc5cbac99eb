"""Which machine a student's seed gets in the lab notebooks.

A lab's setup cell turns the student's ``SEED`` into a profile with
:func:`lab_profile`, so classmates boot different machines of the 2007 era
(different PCI devices, memory sizes, so different frame numbers, forceload
lists and failing drivers) while the lesson and the checks stay the same.
Hidden checks boot the student's hooks again on :func:`other_profile`, a
machine the student's own variant is not, with another seed.

The choice uses numpy's PCG64, pinned, so a seed names the same machine on
every host and in every release.
"""

from __future__ import annotations

import numpy as np

# Machines of the story's time (2005-2007): the Sun boxes Solaris was brought up on,
# a desktop of 2007 and a small synthetic PC.  datasets/profiles/*.json.
LAB_PROFILES = ("sun-x4200", "sun-x2200m2", "dell-optiplex755", "qemu-i440fx")
_TAG = 0x6c616273                       # "labs": a stream of its own for this choice

# Stages whose failure needs what some lab machines lack: ``lowmem`` needs a 32-bit
# DMA device (a USB host controller) and RAM above 4 GiB, which the 1 GiB QEMU PC
# has not.  Their labs choose among these profiles only.
STAGE_PROFILES = {"lowmem": ("sun-x4200", "sun-x2200m2", "dell-optiplex755")}


def profiles_for(stage: str | None = None) -> tuple:
    """The profiles a lab of ``stage`` draws from (all lab profiles by default)."""
    return STAGE_PROFILES.get(stage, LAB_PROFILES)


def _rng(seed: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64([int(seed) & 0xFFFFFFFF, _TAG]))


def lab_profile(seed: int, stage: str | None = None) -> str:
    """The profile a student with ``seed`` boots in the labs (in the lab of
    ``stage``, when that stage needs particular machines: :data:`STAGE_PROFILES`)."""
    profiles = profiles_for(stage)
    return profiles[int(_rng(seed).integers(len(profiles)))]


def other_profile(seed: int, stage: str | None = None) -> str:
    """A second lab profile, never the one :func:`lab_profile` gives ``seed``
    (hidden checks run the student's hooks there)."""
    profiles = profiles_for(stage)
    rng = _rng(seed)
    mine = int(rng.integers(len(profiles)))
    step = 1 + int(rng.integers(len(profiles) - 1))
    return profiles[(mine + step) % len(profiles)]


__all__ = ["LAB_PROFILES", "STAGE_PROFILES", "lab_profile", "other_profile", "profiles_for"]
