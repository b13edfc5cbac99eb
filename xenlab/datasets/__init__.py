"""Where the project's data lives: ``datasets/`` at the top of the checkout.

Set ``XENLAB_DATASETS`` to use another folder (e.g. an instructor's variants).
"""

from __future__ import annotations

import os
from pathlib import Path


def datasets_root() -> Path:
    env = os.environ.get("XENLAB_DATASETS")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "datasets"


def dataset_path(*parts: str) -> Path:
    p = datasets_root().joinpath(*parts)
    if not p.exists():
        raise FileNotFoundError(f"dataset file {p} is missing (XENLAB_DATASETS={os.environ.get('XENLAB_DATASETS', 'unset')})")
    return p
