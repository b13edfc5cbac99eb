# head.s -- Xen's boot stub: the first instructions of the hypervisor.
#
# Written, like the Xen sources, for the GNU assembler as Linux builds it,
# where `/` divides.  The boot loader enters `start` with %ebx pointing at the
# multiboot information (and, in this model, already in 64-bit mode with the
# low memory identity-mapped).  The stub records the multiboot pointer, clears
# Xen's BSS so the C code finds its globals zeroed, and jumps to __start_xen.
#
# The boot loader puts the multiboot modules (dom0's kernel, its boot archive)
# right after the end of Xen's image, that is after the BSS.

        .text
        .globl start
start:
        movl %ebx, multiboot_ptr(%rip)
        movl $__bss_start, %edi
        movq $BSS_QWORDS, %rcx
        xorl %eax, %eax
        rep stosq
__start_xen:                    # the C code (xenlab.xen) takes over here
        hlt
        jmp __start_xen

        .data
multiboot_ptr:  .quad 0
        .align 4096
_end:

        .set __bss_start, _end
        .set __bss_end, __bss_start + XEN_BSS_SIZE
        .set BSS_QWORDS, (__bss_end - __bss_start) / 8        # rep stosq stores 8 bytes
