"""The supported instruction subset, as one table: docs/cpu.md is generated
from it and tests assemble every example with GNU as, decode it and execute it.

Columns: mnemonic family, operand forms, an AT&T example, privilege rule,
flags.  (When ``xenlab.asm.isa`` lands, tests also check it against this.)
"""

# privilege rules
ANY, CPL0, IOPL, IOPERM = "any", "CPL 0", "CPL <= IOPL", "CPL <= IOPL or TSS I/O bitmap"

SUBSET = [
    # mnemonic, forms, example, privilege, flags
    ("MOV", "r/m,r  r,r/m  r/m,imm  r,imm64  AL..RAX,moffs  moffs,AL..RAX",
     "movq %rax, 8(%rbx,%rcx,4)", ANY, "-"),
    ("MOVABS", "r64,imm64", "movabsq $0x1122334455667788, %r9", ANY, "-"),
    ("MOVZX/MOVSX", "r16/32/64,r/m8  r32/64,r/m16", "movzbl (%rsi), %eax", ANY, "-"),
    ("MOVSXD", "r64,r/m32", "movslq %ecx, %rdx", ANY, "-"),
    ("LEA", "r,m (RIP-relative, SIB, 67h)", "leaq 16(%rip), %rax", ANY, "-"),
    ("XCHG", "r/m,r  rAX,r", "xchgq %rax, (%rdi)", ANY, "-"),
    ("CMPXCHG", "r/m,r (LOCK)", "lock cmpxchgq %rcx, (%rdi)", ANY, "all"),
    ("XADD", "r/m,r (LOCK)", "lock xaddl %eax, (%rdi)", ANY, "all"),
    ("PUSH/POP", "r  r/m  imm (push)", "pushq $-1", ANY, "-"),
    ("PUSHF/POPF", "", "popfq", ANY + " (IOPL kept unless CPL 0, IF unless CPL <= IOPL)",
     "all"),
    ("ADD ADC SUB SBB AND OR XOR CMP", "r/m,r  r,r/m  r/m,imm  acc,imm (LOCK)",
     "adcl $5, 12(%rbp)", ANY, "all (logic: CF=OF=0, AF undefined)"),
    ("TEST", "r/m,r  r/m,imm  acc,imm", "testb $1, %ah", ANY, "CF=OF=0, AF undefined"),
    ("INC DEC", "r/m", "incq (%rax)", ANY, "all but CF"),
    ("NEG NOT", "r/m", "negl %edx", ANY, "NEG: all; NOT: none"),
    ("SHL SHR SAR ROL ROR RCL RCR", "r/m,1  r/m,CL  r/m,imm8", "sarq %cl, %rbx", ANY,
     "SDM rules; count 0 changes nothing"),
    ("SHLD SHRD", "r/m,r,imm8  r/m,r,CL", "shldq $4, %rax, %rbx", ANY, "SDM rules"),
    ("MUL IMUL", "r/m (rDX:rAX)  r,r/m  r,r/m,imm", "imulq $10, %rcx, %rax", ANY,
     "CF OF; SF ZF PF undefined"),
    ("DIV IDIV", "r/m (#DE on 0 or overflow)", "divq %rcx", ANY, "undefined (unchanged)"),
    ("CBW/CWDE/CDQE CWD/CDQ/CQO", "", "cqto", ANY, "-"),
    ("BT BTS BTR BTC", "r/m,r  r/m,imm8", "btsq $3, (%rdi)", ANY, "CF"),
    ("BSF BSR", "r,r/m", "bsfq %rax, %rcx", ANY, "ZF (source 0: destination unchanged)"),
    ("BSWAP", "r32/64", "bswapq %rax", ANY, "-"),
    ("Jcc JMP CALL RET", "rel8/rel32  r/m  RET imm16", "jne .+10", ANY, "-"),
    ("LOOP LOOPE LOOPNE JRCXZ", "rel8", "loop .+2", ANY, "-"),
    ("SETcc CMOVcc", "r/m8  r,r/m", "cmovbq %rdx, %rax", ANY, "-"),
    ("LEAVE", "", "leave", ANY, "-"),
    ("MOVS CMPS STOS LODS SCAS", "B/W/D/Q with REP REPE REPNE", "rep movsb", ANY,
     "CMPS/SCAS: all"),
    ("IN OUT", "AL..EAX,imm8  AL..EAX,DX", "outb %al, $0x80", IOPERM, "-"),
    ("INS OUTS", "B/W/D with REP", "rep outsb", IOPERM, "-"),
    ("CLI STI", "", "cli", IOPL, "IF"),
    ("CLC STC CMC CLD STD LAHF SAHF", "", "cld", ANY, "CF / DF / SF ZF AF PF CF"),
    ("HLT", "", "hlt", CPL0, "-"),
    ("NOP PAUSE", "90  F3 90  0F 1F /0", "nopw 0(%rax,%rax,1)", ANY, "-"),
    ("MOV CRn", "CR0 CR2 CR3 CR4, r64 (both ways)", "movq %rax, %cr3", CPL0, "-"),
    ("INVLPG", "m", "invlpg (%rax)", CPL0, "-"),
    ("LGDT LIDT SGDT SIDT", "m", "lidt (%rax)", "LGDT/LIDT: CPL 0", "-"),
    ("LTR STR", "r/m16", "ltr %ax", "LTR: CPL 0", "-"),
    ("MOV Sreg", "Sreg,r/m16  r/m16,Sreg", "movw %ax, %ds", ANY, "-"),
    ("RDMSR WRMSR", "EFER STAR LSTAR CSTAR FMASK FS/GS_BASE KERNEL_GS_BASE TSC APIC_BASE",
     "wrmsr", CPL0, "-"),
    ("SWAPGS", "", "swapgs", CPL0, "-"),
    ("CPUID", "leaves 0, 1, 80000000h-80000001h, 80000008h", "cpuid", ANY, "-"),
    ("RDTSC", "", "rdtsc", "any (CPL 0 if CR4.TSD)", "-"),
    ("SYSCALL SYSRET", "SYSRETQ / SYSRETL", "syscall", "SYSRET: CPL 0", "per SFMASK / R11"),
    ("INT n INT3 IRET/IRETQ", "imm8", "int $0x80", "INT n: CPL <= gate DPL", "IF/TF per gate"),
    ("JMP far, RET far", "m16:32/m16:64 (FF /5), ptr16:32 (EA, 32-bit)", "ljmp *(%rax)",
     ANY, "-"),
    ("CLTS WBINVD INVD", "", "clts", CPL0, "-"),
    ("LFENCE MFENCE SFENCE UD2", "", "mfence", ANY, "UD2: #UD"),
]


def markdown() -> str:
    lines = ["| instruction | forms | example | privilege | flags |",
             "|---|---|---|---|---|"]
    for mn, forms, ex, priv, fl in SUBSET:
        lines.append(f"| {mn} | {forms} | `{ex}` | {priv} | {fl} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(markdown(), end="")
