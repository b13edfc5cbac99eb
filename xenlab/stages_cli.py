"""``xenlab stages``: the stages of the bring-up, one line each, with their hooks."""

from .boot_cli import add_stage_arguments as add_arguments
from .boot_cli import run_stages as run

__all__ = ["add_arguments", "run"]
