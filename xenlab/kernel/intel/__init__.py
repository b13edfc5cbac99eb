"""intel: the parts of the kernel both x86 platforms share (startup, krtld,
kmdb's boot stop, PCI configuration access, consoles, messages, traps)."""
