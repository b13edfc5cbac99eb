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


def _rng(seed: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64([int(seed) & 0xFFFFFFFF, _TAG]))


def lab_profile(seed: int) -> str:
    """The profile a student with ``seed`` boots in the labs."""
    return LAB_PROFILES[int(_rng(seed).integers(len(LAB_PROFILES)))]


def other_profile(seed: int) -> str:
    """A second lab profile, never the one :func:`lab_profile` gives ``seed``
    (hidden checks run the student's hooks there)."""
    rng = _rng(seed)
    mine = int(rng.integers(len(LAB_PROFILES)))
    step = 1 + int(rng.integers(len(LAB_PROFILES) - 1))
    return LAB_PROFILES[(mine + step) % len(LAB_PROFILES)]


__all__ = ["LAB_PROFILES", "lab_profile", "other_profile"]
