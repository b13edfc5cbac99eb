"""The x86-64 CPU: an interpreter for real machine code with privilege rules,
exceptions and a KVM_RUN-like exit protocol.  See docs/cpu.md."""

from .slots import EXIT_NAMES
from .vcpu import CodeCache, Exit, Registers, Vcpu, code_cache

__all__ = ["Vcpu", "Exit", "Registers", "CodeCache", "code_cache", "EXIT_NAMES"]
