"""Device models: UART, IDE bus-master storage, ISA legacy devices, PIC, IOAPIC, LAPIC."""
