"""Registers the check cards of every implemented stage (lab = stage name)."""

from . import (boot_kmdb, console, dma, dom0_64, foreign_pfn, interrupts,  # noqa: F401
               iopl, lowmem, multiuser, pci_config, platforms, pte_swbits, toolchain)
