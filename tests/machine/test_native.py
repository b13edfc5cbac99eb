"""The platform driven by real instructions on the CPU: configuration cycles from
IN/OUT, the console from OUT, a PCI BIOS call, interrupts through the IDT."""

import json

import pytest

from xenlab.asm import code as asm
from xenlab.machine import Machine
from xenlab.machine import regs as R
from xenlab.machine.devices import lapic as L
from xenlab.machine.profile import load_profile, profiles_dir, validate
from xenlab.machine.snippet import identity_map, setup_gdt

CODE, STACK, IDT = 0x100000, 0x3F00000, 0x5000


def boot(m, code, cpu=0):
    """vCPU ``cpu`` in 64-bit mode, first 64 MiB identity-mapped, ``code`` at 1 MiB."""
    v = m.vcpus[cpu]
    cr3 = identity_map(m.memory)
    setup_gdt(v)
    v.set_long_mode(cr3)
    m.memory.write_bytes(CODE, bytes(code))
    v.set("rip", CODE)
    v.set("rsp", STACK)
    return v


def mech12_machine():
    doc = json.loads((profiles_dir() / "qemu-i440fx.json").read_text())
    doc["pci_host"]["mechanisms"] = [1, 2]
    return Machine.from_profile(validate(doc))


def test_vcpus_follow_the_profile():
    m = Machine.from_profile("sun-x4200")
    assert len(m.vcpus) == 4 and [v.index for v in m.vcpus] == [0, 1, 2, 3]
    assert m.vcpus[0].get("rip") is not None


def test_cpuid_reports_each_vcpus_own_apic_id():
    # the R630's LAPIC ids are not the vCPU numbers: vCPU 1 is APIC 32
    m = Machine.from_profile("dell-poweredge-r630")
    code = asm("mov $1, %eax\n cpuid\n hlt")
    for cpu in (0, 1, 13, len(m.vcpus) - 1):
        v = boot(m, code, cpu)
        assert v.run(100).reason == "hlt"
        assert v.get("rbx") >> 24 == m.lapics[cpu].apic_id, cpu
    assert m.lapics[1].apic_id == 32


def test_config_cycles_from_in_out_instructions():
    m = mech12_machine()
    code = asm("""
        mov $0x80001800, %eax      # mechanism #1: 00:03.0, register 0
        mov $0xcf8, %dx
        out %eax, %dx
        mov $0xcfc, %dx
        in %dx, %eax
        mov %eax, %ebx             # vendor and device
        mov $0xcfe, %dx
        in %dx, %ax                # a word at offset 2 of the dword
        mov %eax, %ecx
        mov $0x8000183c, %eax      # register 0x3c: interrupt line
        mov $0xcf8, %dx
        out %eax, %dx
        mov $0xcfc, %dx
        mov $0x0a, %al
        out %al, %dx
        mov $0xcfa, %dx            # mechanism #2: forward register = bus 0
        mov $0, %al
        out %al, %dx
        mov $0xcf8, %dx            # CSE: key 8, function 0
        mov $0x80, %al
        out %al, %dx
        mov $0xc300, %dx           # device 3, register 0
        in %dx, %eax
        mov %eax, %esi
        mov $0xc30b, %dx           # the base class byte
        in %dx, %al
        mov %eax, %edi
        mov $0xcf8, %dx            # close the window
        mov $0, %al
        out %al, %dx
        hlt
    """, divide=True)
    v = boot(m, code)
    ex = m.run_native(0, 1000)
    assert ex.reason == "hlt"
    assert v.get("rbx") & 0xFFFFFFFF == 0x100E8086
    assert v.get("rcx") & 0xFFFF == 0x100E
    assert m.pci.find(0, 3, 0).config_read(0x3C, 1) == 0x0A
    assert v.get("rsi") & 0xFFFFFFFF == 0x100E8086
    assert v.get("rdi") & 0xFF == 0x02
    assert m.ports.read(0xC000, 4) == 0x100E8086            # the e1000's I/O BAR is back


def test_native_code_talks_to_the_uart():
    m = Machine.from_profile("qemu-i440fx")
    code = asm("""
        mov $0x3f8, %dx
        mov $0x68, %al             # 'h'
        out %al, %dx
        mov $0x69, %al             # 'i'
        out %al, %dx
        mov $0x0a, %al
        out %al, %dx
        mov $0x3fd, %dx            # line status
        in %dx, %al
        hlt
    """, divide=True)
    v = boot(m, code)
    assert m.run_native(0, 100).reason == "hlt"
    assert m.console == "hi\n"
    assert v.get("rax") & 0x60 == 0x60                      # LSR: THRE and TEMT


def test_pci_bios_call_on_a_native_boot_only():
    m = Machine.from_profile("qemu-i440fx")
    code = asm("""
        mov $0xb101, %eax          # PCI BIOS: PCI_BIOS_PRESENT
        mov $0xf0110, %ecx         # the $PCI entry point
        call *%rcx
        hlt
    """, divide=True)
    v = boot(m, code)
    assert m.run_native(0, 100).reason == "hlt"
    assert v.get("rdx") & 0xFFFFFFFF == 0x20494350                 # "PCI "
    assert v.get("rax") & 0xFFFF == 0x0001                         # AH=0 present, AL=mech #1
    assert not v.get("rflags") & 1
    assert m.firmware_log and m.firmware_log[-1][2] == 0xB101
    # the same code run the way a hypervisor runs a guest vCPU: nobody answers
    m2 = Machine.from_profile("qemu-i440fx")
    v2 = boot(m2, code)
    v2.intercept.add(3)
    ex = v2.run_native(100)
    assert ex.reason == "breakpoint" and ex.rip == 0xF0110
    assert v2.get("rdx") & 0xFFFFFFFF != 0x20494350


def idt_gate(handler):
    lo = (handler & 0xFFFF) | 0x10 << 16 | 0x8E << 40 | ((handler >> 16) & 0xFFFF) << 48
    return lo.to_bytes(8, "little") + (handler >> 32).to_bytes(8, "little")


def with_idt(m, v, vector, handler_code, at=0x101000):
    m.memory.write_bytes(at, handler_code)
    m.memory.write_bytes(IDT + 16 * vector, idt_gate(at))
    v.state[R.IDTR_BASE] = IDT
    v.state[R.IDTR_LIMIT] = 16 * 256 - 1


HANDLER = asm("movl $0x1234, 0x6000\n iretq", base=0x101000)
IDLE = asm("sti\n nop\n hlt\n movl 0x6000, %eax\n hlt")   # sti; hlt with a nop between


def test_lapic_timer_interrupt_wakes_hlt_and_runs_the_handler():
    m = Machine.from_profile("qemu-i440fx")
    v = boot(m, IDLE)
    with_idt(m, v, 0x40, HANDLER)
    lap = m.lapics[0]
    lap.write_register(L.TIMER_DIVIDE, 0xB)
    lap.write_register(L.LVT_TIMER, 0x40)
    lap.write_register(L.TIMER_INITIAL, 500)                       # 5 us
    ex = m.run_native(0, 100_000)
    assert ex.reason == "hlt"
    assert m.memory.read32(0x6000) == 0x1234                       # the handler ran
    assert lap.isr == 1 << 0x40                                    # in service: no EOI yet
    assert m.clock.now >= 5000


def test_uart_interrupt_through_ioapic_into_the_idt():
    m = Machine.from_profile("qemu-i440fx")
    code = asm("""
        sti
        nop
        mov $0x3f9, %dx            # IER = THRE
        mov $0x02, %al
        out %al, %dx
        mov $0x3fc, %dx            # MCR = OUT2: the IRQ line is live
        mov $0x08, %al
        out %al, %dx
        hlt
        movl 0x6000, %eax
        hlt
    """)
    v = boot(m, code)
    with_idt(m, v, 0x41, HANDLER)
    io = m.ioapics[0]
    io.write_register(0x10 + 2 * 4, 0x41)                          # GSI 4: edge, high, vector 0x41
    io.write_register(0x11 + 2 * 4, m.lapics[0].apic_id << 24)
    ex = m.run_native(0, 10_000)
    assert ex.reason == "hlt" and m.memory.read32(0x6000) == 0x1234
    assert ("ioapic", 0, 4) in [s for s, vec, cpu in m.interrupts.log if vec == 0x41]


def test_pic_interrupt_in_virtual_wire_mode():
    m = Machine.from_profile("qemu-i440fx")
    v = boot(m, IDLE)
    with_idt(m, v, 0x08 + 1, HANDLER)                              # IRQ1 at the BIOS's base 8
    m.pic.io_write(0x21, 1, 0xF9)                                  # unmask IRQ1 (and cascade)
    m.isa["i8042"].key(b"\x1e")                                    # a key press: IRQ1
    ex = m.run_native(0, 10_000)
    assert ex.reason == "hlt" and m.memory.read32(0x6000) == 0x1234
    assert m.pic.master.isr == 0x02


def test_sti_hlt_idiom_takes_the_interrupt_right_after_hlt():
    m = Machine.from_profile("qemu-i440fx")
    v = boot(m, asm("sti\n hlt\n movl 0x6000, %eax\n hlt"))
    with_idt(m, v, 0x40, HANDLER)
    lap = m.lapics[0]
    lap.write_register(L.TIMER_DIVIDE, 0xB)
    lap.write_register(L.LVT_TIMER, 0x40)
    lap.write_register(L.TIMER_INITIAL, 500)
    m.run_native(0, 100_000)
    assert v.get("rax") & 0xFFFF == 0x1234


def test_device_registers_through_the_page_tables():
    """A BAR mapped by a PTE: the load leaves the CPU as an MMIO access at the
    machine address and the device answers (here: the e1000's ID register)."""
    from xenlab.machine.snippet import TABLES
    m = Machine.from_profile("qemu-i440fx")
    bar = m.pci.find(0, 3, 0).bars[0].decoded
    v = boot(m, asm("movl 0x3000000, %eax\n movl %eax, 0x3000010\n hlt"))
    pte = TABLES + 0x3000 + (0x3000000 >> 12) * 8
    m.memory.write64(pte, bar | 0x1 | 0x2 | 0x10)                  # P, RW, PCD
    assert m.run_native(0, 100).reason == "hlt"
    assert v.get("rax") & 0xFFFFFFFF == 0x100E8086
    assert m.mmio.read(bar + 0x10, 4) == 0x100E8086                # the store reached the device
