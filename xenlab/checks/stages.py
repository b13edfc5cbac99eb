"""Registers the check cards of every implemented stage (lab = stage name)."""

from . import boot_kmdb, iopl, pci_config, platforms, toolchain  # noqa: F401
