"""The PC's firmware as the OS finds it in memory: E820, BIOS data area, EBDA,
ACPI tables, the BIOS32 service directory and its PCI BIOS."""
