# dboot.s -- i86pc: from the boot loader's 32-bit protected mode to 64-bit _start.
#
# A multiboot loader enters here in flat 32-bit protected mode with paging
# off.  dboot (xenlab/kernel/i86pc/dboot.py) has already built the 4-level
# page tables and filled in the parameter block below through the vCPU; this
# code does the architectural switch (Intel SDM Vol. 3 §9.8.5, "Initializing
# IA-32e Mode"): load a GDT with a 64-bit code segment, set CR4.PAE, load CR3,
# set EFER.LME, set CR0.PG, and far-jump into the 64-bit segment.
#
# xenlab's assembler emits 64-bit code, so the 32-bit part uses only forms that
# mean the same in both modes: no REX prefix, absolute addresses through a SIB
# byte with no base and no index (mod 00, r/m 100, SIB 0x25: disp32 in both),
# MOV to CRn (0F 22) and RDMSR/WRMSR.  The listing shows the bytes.

        .text
dboot_entry:
        lgdt dboot_gdtr
        movl $0x20, %eax                # CR4.PAE
        movq %rax, %cr4
        movl dboot_cr3, %eax
        movq %rax, %cr3
        movl $0xc0000080, %ecx          # IA32_EFER
        rdmsr
        orl $0x100, %eax                # EFER.LME
        wrmsr
        movq %cr0, %rax
        orl $0x80000001, %eax           # CR0.PG | CR0.PE
        movq %rax, %cr0
        movl dboot_bootinfo, %esi
        ljmp *dboot_farptr              # m16:32 -> the 64-bit code segment
dboot_long:                             # 64-bit code from here on
        movq dboot_entry64, %rax
        jmp *%rax

        .data
        .align 16
dboot_gdtr:     .word 0x37              # 7 descriptors
                .quad dboot_gdt
        .align 8
dboot_cr3:      .quad 0
dboot_bootinfo: .quad 0
dboot_entry64:  .quad 0
dboot_farptr:   .long dboot_long
                .word 0x08              # KCS_SEL: descriptor 1
        .align 16
# Flat descriptors (SDM Vol. 3 §3.4.5): 0x08 kernel code (64-bit), 0x10 kernel
# data, 0x18 user code (32-bit), 0x20 user data, 0x28 user code (64-bit), 0x30
# the 16-byte TSS descriptor (the kernel fills it in).  The user selectors are
# laid out for SYSRET: STAR[63:48] = 0x18 gives SS 0x20 and CS 0x28 (|3).
dboot_gdt:      .quad 0
                .quad 0x00AF9A000000FFFF
                .quad 0x00CF92000000FFFF
                .quad 0x00CFFA000000FFFF
                .quad 0x00CFF2000000FFFF
                .quad 0x00AFFA000000FFFF
                .quad 0, 0
dboot_end:
