"""Another student's variant: each lab run headless with another SEED (so another
machine) still works: the answers the solution reads from kmdb and the widgets
match the model, the hooks pass every check, and nothing else errors.

The default run takes one other seed per lab; ``-m slow`` runs every lab
profile in both modes."""

import re
from pathlib import Path

import nbformat
import pytest

from xenlab.lab import LAB_PROFILES, lab_profile
from xenlab.tools.nbrun import run_notebook, with_seed

ROOT = Path(__file__).resolve().parents[2]
LABS = sorted((ROOT / "labs").glob("*.ipynb"))


def default_seed(path) -> int:
    nb = nbformat.read(path, as_version=4)
    setup = next(c for c in nb.cells if "setup" in c.metadata.get("tags", []))
    return int(re.search(r"(?m)^SEED = (\d+)", setup.source).group(1))


def seed_for(profile: str, avoid: int | None = None) -> int:
    return next(s for s in range(1000) if lab_profile(s) == profile and s != avoid)


def another_seed(path) -> int:
    mine = default_seed(path)
    return next(s for s in range(mine + 1, mine + 1000)
                if lab_profile(s) != lab_profile(mine))


def test_with_seed_rewrites_only_the_setup_seed():
    nb = nbformat.read(LABS[0], as_version=4)
    out = with_seed(nb, 1234)
    setup = next(c for c in out.cells if "setup" in c.metadata.get("tags", []))
    assert re.search(r"(?m)^SEED = 1234 +# your variant", setup.source)
    bare = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")])
    with pytest.raises(ValueError, match="no setup cell"):
        with_seed(bare, 1)


@pytest.mark.parametrize("path", LABS, ids=[p.stem for p in LABS])
def test_another_variant_passes_with_solutions(path):
    seed = another_seed(path)
    run = run_notebook(path, solutions=True, timeout=600, env={"XENLAB_GRADING": "1"},
                       seed=seed)
    assert run.problems() == [], f"seed {seed} ({lab_profile(seed)})"
    assert run.checks()["passed"].all()


@pytest.mark.slow
@pytest.mark.parametrize("profile", LAB_PROFILES)
@pytest.mark.parametrize("path", LABS, ids=[p.stem for p in LABS])
def test_every_lab_profile_in_both_modes(path, profile):
    seed = seed_for(profile)
    shipped = run_notebook(path, solutions=False, timeout=600, seed=seed)
    assert shipped.problems() == [] and not shipped.checks()["passed"].any()
    solved = run_notebook(path, solutions=True, timeout=600, env={"XENLAB_GRADING": "1"},
                          seed=seed)
    assert solved.problems() == [] and solved.checks()["passed"].all()
