# locore.s -- the machine-code part of the xenlab Solaris-like kernel.
#
# The kernel's logic is Python (xenlab.kernel); everything that touches the
# machine runs here, on the vCPU, at the vCPU's privilege: port I/O, device
# registers, privileged instructions, hypercalls, BIOS calls.  Each stub is
# called by KCpu.call() with the System V argument registers and returns with
# `ret` to `kpy_return`, where a breakpoint hands control back to Python.
#
# The same text runs in both platforms: i86pc (native, CPL 0) and i86xen (a
# 64-bit PV domain 0, CPL 3).  Written for divide mode (no `/` anywhere).
#
# Layout: the first page is the hypercall page (Xen fills it when it builds
# domain 0; XEN_ELFNOTE_HYPERCALL_PAGE points here).

        .text
hypercall_page:
        .space 4096

# ---------------------------------------------------------------------------
# Entry.  Xen: %rsi = start_info (virtual).  i86pc: %rsi = the boot info dboot
# built (physical = virtual in the identity map).
# ---------------------------------------------------------------------------
        .globl _start
_start:
        movq %rsi, boot_info(%rip)
        leaq kstack_top(%rip), %rsp
        xorl %ebp, %ebp
kpy_entry:                      # breakpoint: Python's startup takes over here
        hlt
        jmp kpy_entry

kpy_return:                     # breakpoint: a stub called from Python returned
        hlt
        jmp kpy_return

# ---------------------------------------------------------------------------
# Port I/O (illumos inb/outb/... and repinsw/repoutsw).  Under Xen these #GP
# into the hypervisor, which emulates them if the vCPU's virtual IOPL allows.
# ---------------------------------------------------------------------------
inb:    movl %edi, %edx
        xorl %eax, %eax
        inb %dx, %al
        ret
inw:    movl %edi, %edx
        xorl %eax, %eax
        inw %dx, %ax
        ret
inl:    movl %edi, %edx
        inl %dx, %eax
        ret
outb:   movl %edi, %edx
        movl %esi, %eax
        outb %al, %dx
        ret
outw:   movl %edi, %edx
        movl %esi, %eax
        outw %ax, %dx
        ret
outl:   movl %edi, %edx
        movl %esi, %eax
        outl %eax, %dx
        ret
repinsb:                        # (port, addr, count)
        movq %rdx, %rcx
        movl %edi, %edx
        movq %rsi, %rdi
        rep insb
        ret
repinsw:
        movq %rdx, %rcx
        movl %edi, %edx
        movq %rsi, %rdi
        rep insw
        ret
repinsd:
        movq %rdx, %rcx
        movl %edi, %edx
        movq %rsi, %rdi
        rep insl
        ret
repoutsb:
        movq %rdx, %rcx
        movl %edi, %edx
        rep outsb
        ret
repoutsw:
        movq %rdx, %rcx
        movl %edi, %edx
        rep outsw
        ret
repoutsd:
        movq %rdx, %rcx
        movl %edi, %edx
        rep outsl
        ret

# ---------------------------------------------------------------------------
# Device registers (ddi_get8 ... ddi_put64 on a mapped address): real loads
# and stores, so an MMIO frame makes the CPU exit to its device.
# ---------------------------------------------------------------------------
mmio_get8:
        movzbl (%rdi), %eax
        ret
mmio_get16:
        movzwl (%rdi), %eax
        ret
mmio_get32:
        movl (%rdi), %eax
        ret
mmio_get64:
        movq (%rdi), %rax
        ret
mmio_put8:
        movb %sil, (%rdi)
        ret
mmio_put16:
        movw %si, (%rdi)
        ret
mmio_put32:
        movl %esi, (%rdi)
        ret
mmio_put64:
        movq %rsi, (%rdi)
        ret

# ---------------------------------------------------------------------------
# Privileged instructions.  Natively they run; in a PV guest (ring 3) they
# #GP into Xen, which emulates a few (CLI/STI with IOPL, MOV CR3, WRMSR of
# the segment bases) and bounces the rest back to the guest.
# ---------------------------------------------------------------------------
intr_clear:
        cli
        ret
intr_restore:
        sti
        ret
i86_halt:
        hlt
        ret
getcr0: movq %cr0, %rax
        ret
getcr2: movq %cr2, %rax
        ret
getcr3: movq %cr3, %rax
        ret
getcr4: movq %cr4, %rax
        ret
setcr3: movq %rdi, %cr3
        ret
mmu_invlpg:
        invlpg (%rdi)
        ret
rdmsr_stub:                     # (msr) -> %rax
        movl %edi, %ecx
        rdmsr
        shlq $32, %rdx
        orq %rdx, %rax
        ret
wrmsr_stub:                     # (msr, value)
        movl %edi, %ecx
        movl %esi, %eax
        movq %rsi, %rdx
        shrq $32, %rdx
        wrmsr
        ret
wr_idtr:                        # (pointer to a 10-byte limit:base)
        lidt (%rdi)
        ret
wr_gdtr:
        lgdt (%rdi)
        ret
wr_tsr:                         # (TSS selector)
        ltr %di
        ret
kdelay:                         # (iterations): drv_usecwait's busy loop
        movq %rdi, %rcx
        testq %rcx, %rcx
        jz 2f
1:      nop                     # (PAUSE would be the hint; the CPU model lacks it)
        decq %rcx
        jnz 1b
2:      ret

# ---------------------------------------------------------------------------
# Hypercalls: %rax = number, arguments in %rdi %rsi %rdx %r10 %r8 (the
# x86-64 PV ABI).  Calls the hypercall page entry 32*nr.
# ---------------------------------------------------------------------------
hypercall:
        shlq $5, %rax
        leaq hypercall_page(%rip), %r11
        addq %r11, %rax
        call *%rax
        ret

# ---------------------------------------------------------------------------
# BIOS calls.  The boot code stores the PCI BIOS entry point it found in
# bios_pci_entry (0 when there is no BIOS: a PV domain has none).  The caller
# loads the PCI BIOS registers; CF comes back in RFLAGS.
# ---------------------------------------------------------------------------
bios_pci_call:
        movq bios_pci_entry(%rip), %r11
        call *%r11
        ret
bios32_call:                    # (entry in %r11) the BIOS32 service directory
        call *%r11
        ret

# ---------------------------------------------------------------------------
# PCI configuration space.  Callers go through the function pointers
# pci_get*_func / pci_put*_func that pci_cfgspace_init fills in (illumos
# pci_cfgspace.c); (bus, dev, func, reg) in %edi %esi %edx %ecx, value %r8d.
# ---------------------------------------------------------------------------
pci_getb:
        movq pci_getb_func(%rip), %rax
        jmp *%rax
pci_getw:
        movq pci_getw_func(%rip), %rax
        jmp *%rax
pci_getl:
        movq pci_getl_func(%rip), %rax
        jmp *%rax
pci_putb:
        movq pci_putb_func(%rip), %rax
        jmp *%rax
pci_putw:
        movq pci_putw_func(%rip), %rax
        jmp *%rax
pci_putl:
        movq pci_putl_func(%rip), %rax
        jmp *%rax

pci_probe_bus:                  # (bus, out): function 0's vendor/device of all 32 devices
        pushq %rbx
        pushq %r12
        pushq %r13
        movl %edi, %r12d
        movq %rsi, %r13
        xorl %ebx, %ebx
1:      movl %r12d, %edi
        movl %ebx, %esi
        xorl %edx, %edx
        xorl %ecx, %ecx
        call pci_getl
        movl %eax, (%r13,%rbx,4)
        incl %ebx
        cmpl $32, %ebx
        jne 1b
        popq %r13
        popq %r12
        popq %rbx
        ret

# Mechanism #1: CONFIG_ADDRESS 0xCF8 = enable | bus<<16 | dev<<11 | func<<8 | reg.
pci_mech1_addr:
        movl %edi, %eax
        shll $16, %eax
        shll $11, %esi
        orl %esi, %eax
        shll $8, %edx
        orl %edx, %eax
        movl %ecx, %esi
        andl $0xfc, %esi
        orl %esi, %eax
        orl $0x80000000, %eax
        movl $0xcf8, %edx
        outl %eax, %dx
        andl $3, %ecx
        movl $0xcfc, %edx
        addl %ecx, %edx
        ret
pci_mech1_getb:
        call pci_mech1_addr
        xorl %eax, %eax
        inb %dx, %al
        ret
pci_mech1_getw:
        call pci_mech1_addr
        xorl %eax, %eax
        inw %dx, %ax
        ret
pci_mech1_getl:
        call pci_mech1_addr
        inl %dx, %eax
        ret
pci_mech1_putb:
        call pci_mech1_addr
        movl %r8d, %eax
        outb %al, %dx
        ret
pci_mech1_putw:
        call pci_mech1_addr
        movl %r8d, %eax
        outw %ax, %dx
        ret
pci_mech1_putl:
        call pci_mech1_addr
        movl %r8d, %eax
        outl %eax, %dx
        ret

# Mechanism #2: 0xCF8 = 0xF0 | func<<1 (enable), 0xCFA = bus, then port
# 0xC000 | dev<<8 | reg; 0xCF8 = 0 afterwards.
pci_mech2_open:
        movl %edx, %eax
        shll $1, %eax
        orl $0xf0, %eax
        movl $0xcf8, %edx
        outb %al, %dx
        movl %edi, %eax
        movl $0xcfa, %edx
        outb %al, %dx
        shll $8, %esi
        orl $0xc000, %esi
        orl %ecx, %esi
        movl %esi, %edx
        ret
pci_mech2_close:
        movl %eax, %esi
        xorl %eax, %eax
        movl $0xcf8, %edx
        outb %al, %dx
        movl %esi, %eax
        ret
pci_mech2_getb:
        call pci_mech2_open
        xorl %eax, %eax
        inb %dx, %al
        jmp pci_mech2_close
pci_mech2_getw:
        call pci_mech2_open
        xorl %eax, %eax
        inw %dx, %ax
        jmp pci_mech2_close
pci_mech2_getl:
        call pci_mech2_open
        inl %dx, %eax
        jmp pci_mech2_close
pci_mech2_putb:
        call pci_mech2_open
        movl %r8d, %eax
        outb %al, %dx
        jmp pci_mech2_close
pci_mech2_putw:
        call pci_mech2_open
        movl %r8d, %eax
        outw %ax, %dx
        jmp pci_mech2_close
pci_mech2_putl:
        call pci_mech2_open
        movl %r8d, %eax
        outl %eax, %dx
        jmp pci_mech2_close

# ---------------------------------------------------------------------------
# Polled 16550 UART (the i86pc early serial console and kmdb's serial I/O).
# ---------------------------------------------------------------------------
uart_puts:                      # (base port, buf, len)
        movq %rdx, %rcx
        testq %rcx, %rcx
        jz 3f
1:      leal 5(%rdi), %edx      # LSR
2:      inb %dx, %al
        testb $0x20, %al        # THRE: the holding register is empty
        jz 2b
        movl %edi, %edx
        movb (%rsi), %al
        outb %al, %dx
        incq %rsi
        decq %rcx
        jnz 1b
3:      ret
uart_getc:                      # (base port) -> a character, or -1
        leal 5(%rdi), %edx
        inb %dx, %al
        testb $1, %al           # DR: data ready
        jz 1f
        movl %edi, %edx
        xorl %eax, %eax
        inb %dx, %al
        ret
1:      movq $-1, %rax
        ret

# ---------------------------------------------------------------------------
# Trap entries.  Xen bounces exceptions here through the trap table
# (set_trap_table); natively the IDT points here.  Python's trap handler runs
# at the breakpoint on each entry.
# ---------------------------------------------------------------------------
trap_0:  hlt
trap_1:  hlt
trap_2:  hlt
trap_3:  hlt
trap_4:  hlt
trap_5:  hlt
trap_6:  hlt
trap_7:  hlt
trap_8:  hlt
trap_9:  hlt
trap_10: hlt
trap_11: hlt
trap_12: hlt
trap_13: hlt
trap_14: hlt
trap_15: hlt
trap_16: hlt
trap_17: hlt
trap_18: hlt
trap_19: hlt
trap_20: hlt
trap_21: hlt
trap_22: hlt
trap_23: hlt
trap_24: hlt
trap_25: hlt
trap_26: hlt
trap_27: hlt
trap_28: hlt
trap_29: hlt
trap_30: hlt
trap_31: hlt
hypervisor_callback:            # Xen's event upcall
        hlt
failsafe_callback:              # Xen could not restore a segment on return
        hlt
syscall_entry:                  # a user process executed SYSCALL
        hlt
intr_entry:                     # native device interrupts (vector in the frame's slot)
        hlt

# Return from a trap frame.
xen_iret:                       # Xen bounce frame without error code
        popq %rcx
        popq %r11
        pushq $0                # iret_context.flags: not in a syscall
        jmp hypercall_page + 736        # entry 23 (HYPERVISOR_iret) = 32 * 23
xen_iret_err:
        popq %rcx
        popq %r11
        addq $8, %rsp
        pushq $0
        jmp hypercall_page + 736
native_iret_err:
        addq $8, %rsp
native_iret:
        iretq

# ---------------------------------------------------------------------------
# A user process of one page: the I/O privilege probe.  %edx = port.
# ---------------------------------------------------------------------------
        .align 4096
user_text:
user_io_probe:
        inb %dx, %al
        movq $1, %rbx           # the IN completed
        syscall
        jmp user_io_probe
        .align 4096
user_text_end:

# ---------------------------------------------------------------------------
# Data.
# ---------------------------------------------------------------------------
        .data
        .align 4096
boot_info:      .quad 0         # start_info (i86xen) or dboot's boot info (i86pc)
bios_pci_entry: .quad 0         # bootops: the PCI BIOS entry point, 0 if none
pci_getb_func:  .quad 0
pci_getw_func:  .quad 0
pci_getl_func:  .quad 0
pci_putb_func:  .quad 0
pci_putw_func:  .quad 0
pci_putl_func:  .quad 0
pci_bios_cfg_type: .quad -1     # PCI_MECHANISM_UNKNOWN
panicstr:       .quad 0
        .align 4096
hcall_args:     .space 4096     # argument blocks for hypercalls and BIOS calls
trap_table:     .space 4096     # Xen trap_info[], or the native IDT (256 x 16)
descr:          .space 4096     # native GDT and TSS
msgbuf:         .space 16384    # the kernel message buffer (cmn_err)
        .align 4096
kstack:         .space 16384
kstack_top:
        .align 4096
cpu_stacks:     .space 49152    # vCPUs 1-3: 16 KiB each (vCPU n's top: cpu_stacks + 16384 n)
scratch:        .space 8192     # bigger argument blocks (vcpu_guest_context)
        .align 4096
user_stack:     .space 4096
user_stack_top:
        .align 4096
kernel_end:
