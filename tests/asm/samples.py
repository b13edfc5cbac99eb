"""Sample operands for every operand kind of the instruction table, and instances of each form.

Several choices per kind: low and high registers (r8-r15 need REX), SIB with index
and scale, %rsp/%r12 bases (need a SIB), %rbp/%r13 bases (need a displacement),
RIP-relative with a number and with a label, negative displacements, the disp8 /
disp32 and imm8 / imm32 boundaries, absolute addresses and segment overrides.
"""

from __future__ import annotations

from xenlab.asm.isa import FORMS, SUFFIX, Form

MEMORY = ["(%rax)", "-8(%rbp)", "0x80(%rsp)", "(%r12)", "0x7f(%r13)", "-0x80(%rcx,%rdx,4)",
          "0x1234(,%r9,8)", "0x10(%rip)", "table(%rip)", "0x100(%r8,%r15,2)", "0x2000",
          "%fs:0x28", "(%rsp,%rbp,1)", "-0x81(%rdi)", "%gs:8(%rbx)", "table+8(,%rax,8)",
          "(%r13,%r14,8)", "-0x12345678(%r11)", "0(%rbx)", "(%rbp)"]

REGS = {
    8: ["%cl", "%dl", "%sil", "%r9b", "%bh", "%al", "%r15b", "%spl"],
    16: ["%cx", "%si", "%r10w", "%ax", "%sp", "%r15w"],
    32: ["%ecx", "%edi", "%r11d", "%eax", "%esp", "%r8d"],
    64: ["%rcx", "%rsp", "%r12", "%rax", "%r15", "%rbp", "%rdi", "%r8"],
}

IMM = {
    "imm8": ["$0", "$0x60", "$0xff", "$7", "$-1"],
    "simm8": ["$-128", "$127", "$0", "$-1", "$5"],
    "imm16": ["$0x1234", "$-1", "$0xffff", "$300", "$-0x8000"],
    "imm32": ["$0x12345678", "$-0x80000000", "$0xffffffff", "$1000", "$table"],
    "simm32": ["$0x7fffffff", "$-0x80000000", "$-129", "$0x80", "$table"],
    "imm64": ["$0x123456789abcdef0", "$0x80000000", "$-0x80000001", "$0xffffffffffffffff",
              "$0x7fffffff00000000"],
}
# imm8/imm16 forms of 8- and 16-bit operations take values of their width
IMM_BY_SIZE = {8: ["$0x7f", "$-128", "$0xff", "$1", "$200"],
               16: ["$0x1234", "$-1", "$0xffff", "$300", "$-0x8000"],
               32: IMM["imm32"], 64: IMM["simm32"]}

MOFFS = ["0x1000", "0x123456789a", "%gs:0x10", "-8"]
CRS = ["%cr0", "%cr2", "%cr3", "%cr4"]
SREG_STORE = ["%ds", "%es", "%fs", "%gs", "%ss", "%cs"]
SREG_LOAD = ["%ds", "%es", "%fs", "%gs", "%ss"]

N_INSTANCES = 5


def _regs(size: int, i: int, rex_needed: bool) -> str:
    pool = REGS[size]
    r = pool[i % len(pool)]
    if r in ("%bh", "%ah", "%ch", "%dh") and rex_needed:
        r = "%dl"
    return r


def operand(form: Form, pos: int, i: int) -> str:
    kind = form.operands[pos]
    rex = form.rex_w or any(k in ("r64", "rm64") for k in form.operands)
    if kind in ("al", "ax", "eax", "rax", "cl", "dx"):
        return "%" + kind
    if kind == "1":
        return "$1"
    if kind[0] == "r" and kind[1:].isdigit():
        return _regs(int(kind[1:]), i + 3 * pos, rex)
    if kind.startswith("rm"):
        size = int(kind[2:])
        if i % 2 == 0:
            return _regs(size, i // 2 + 3 * pos + 1, rex)
        return MEMORY[(i // 2 + 7 * form.index) % len(MEMORY)]
    if kind == "*rm64":
        return "*" + (["%rax", "(%rax)", "%r11", "0x18(%rsp,%rcx,8)", "table(%rip)"][i % 5])
    if kind in ("m", "m16"):
        return MEMORY[(i + 5 * form.index) % len(MEMORY)]
    if kind == "m16:32":
        return "*" + MEMORY[(i + 3) % len(MEMORY)]
    if kind == "cr":
        return CRS[i % 4]
    if kind == "sreg":
        load = form.roles[pos] == "reg" and pos == len(form.operands) - 1
        pool = SREG_LOAD if load else SREG_STORE
        return pool[i % len(pool)]
    if kind.startswith("moffs"):
        return MOFFS[i % len(MOFFS)]
    if kind in ("imm8",) and form.size == 8 and form.group == "arithmetic":
        return IMM_BY_SIZE[8][i % 5]
    if kind == "imm16" and form.mnemonic != "ret":
        return IMM_BY_SIZE[16][i % 5]
    if kind in IMM:
        pool = IMM[kind]
        if form.group == "port I/O" or form.mnemonic == "int":
            pool = ["$0x60", "$0x80", "$0", "$0xff", "$0x3f8" if False else "$0x21"]
        if form.group == "shift and rotate":
            pool = ["$2", "$31", "$63", "$0", "$7"]
        if form.mnemonic == "int":
            pool = ["$0x80", "$0x0e", "$255", "$0", "$0x20"]
        return pool[i % len(pool)]
    raise AssertionError(f"no sample for operand kind {kind!r}")


def _rex_reg(op: str) -> bool:
    import re
    return bool(re.search(r"%(r(8|9|1[0-5])[bwd]?|sil|dil|spl|bpl|r[a-z]{2})\b", op))


def mnemonic(form: Form, i: int) -> str:
    names = list(form.spellings)
    return names[i % len(names)]


def instances(form: Form) -> list[str]:
    """AT&T lines that should assemble to ``form`` (branch forms get labels of the harness)."""
    if form.group == "prefix":
        return []
    if form.rel:
        targets = ([".", ".+2", ".-20", ".+100", ".+0x7f"] if form.rel == 1
                   else ["far0", "far1", "far0+4", ".+1000", "far1-8"])
        return [f"{mnemonic(form, i)} {targets[i % len(targets)]}" for i in range(N_INSTANCES)]
    out = []
    for i in range(N_INSTANCES):
        ops = [operand(form, p, i) for p in range(len(form.operands))]
        if any(o in ("%bh", "%ah", "%ch", "%dh") for o in ops) and (
                form.rex_w or any(_rex_reg(o) for o in ops)):
            ops = ["%dl" if o in ("%bh", "%ah", "%ch", "%dh") else o for o in ops]
        m = mnemonic(form, i)
        sizing = [o for k, o in zip(form.operands, ops)
                  if (k[0] == "r" and k[1:].isdigit()) or k.startswith("rm") or k in ("al", "ax", "eax",
                                                                                      "rax")]
        if form.size in SUFFIX and not any(o.startswith("%") and ":" not in o for o in sizing):
            m = form.spellings[0]          # no register says the size: spell the suffix
        line = f"{m} {', '.join(ops)}".strip()
        out.append(line)
    return out


def all_lines() -> list[tuple[Form, str]]:
    return [(f, ln) for f in FORMS for ln in instances(f)]


# hand-picked cases where GNU as has a choice or a quirk, or where encodings are tricky
EDGE_CASES = [
    # register-register: gas takes the store form (89), not the load form (8B)
    "mov %rax, %rbx", "movl %r8d, %r9d", "add %r15, %rax", "cmp %al, %sil", "xor %eax, %eax",
    # accumulator short forms vs 83 / 81
    "add $1, %al", "add $1, %eax", "add $0x1000, %eax", "add $0x1000, %ebx", "addq $-129, %rax",
    "addw $0xffff, %bx", "addl $0xffffffff, %ebx", "cmpb $0xff, %al", "orw $0x80, %ax",
    "and $-128, %rcx", "and $128, %rcx", "test $1, %al", "test $1, %eax", "test $1, %rbx",
    "test %rax, (%rbx)", "test (%rbx), %rax", "test %r8b, %r9b",
    # mov immediate choices
    "movl $1, %eax", "movq $1, %rax", "mov $-1, %rax", "movq $0x80000000, %rax",
    "movq $0xffffffffffffffff, %rax", "movq $0x7fffffff, %r9", "movabsq $5, %rax",
    "movb $0xff, %r12b", "movw $-2, (%rax)", "movq $-5, 8(%rsp)", "movq $table, %rdx",
    "movl $table, %esi", "movabsq $table, %rdi",
    # xchg special cases
    "xchg %eax, %eax", "xchg %rax, %rax", "xchg %ax, %ax", "xchg %rbx, %rax", "xchg %rax, %r8",
    "xchg %al, %bl", "xchg (%rbx), %rax", "xchg %ecx, %eax",
    # addressing
    "lea (%rbp), %rax", "lea (%r13), %rax", "lea 0(%rax), %rbx", "lea (%rsp), %rbx",
    "lea (%r12), %rbx", "lea (,%rax,8), %rbx", "lea 0x10(,%rax,8), %rbx", "lea (%rax,%rbx), %rcx",
    "lea -128(%rax), %rcx", "lea -129(%rax), %rcx", "lea 127(%rax), %rcx", "lea 128(%rax), %rcx",
    "lea 0x1234(%rip), %rax", "lea table(%rip), %rax", "lea table+0x10(%rip), %r10",
    "lea (%r12,%r13,8), %r14", "lea 4(%rsp,%rsp,1), %rax" if False else "lea 4(%rsp,%rbp,1), %rax",
    "mov %fs:0x10, %rax", "mov %gs:(%rax), %rbx", "movw %fs:0, %ax", "mov 0x1000, %eax",
    "movabs 0x1000, %eax", "movabs %al, 0x1000", "movq table, %rax", "movq %rax, table",
    "movq table(,%rcx,8), %rax", "mov -0x80000000(%rax), %eax", "mov 0x7fffffff(%r8), %eax",
    "lea (1 << 4)(%rax), %rbx", "lea -(4*4)(%rbp), %rsi",
    # byte registers and REX
    "mov %al, %sil", "mov %ah, %bl", "movzbl %ah, %eax", "movzbl %dil, %eax", "movsbq %spl, %rax",
    "setne %r12b", "sete %bpl",
    # shifts
    "shl $1, %rax", "rol $1, %eax", "sal %rax", "shlq %cl, (%rax)", "sarb $3, %ah",
    "shrw %cl, %dx", "rorl (%rdi)",
    # imul forms
    "imul $5, %rax", "imul $500, %rax", "imul $-128, %rbx, %rcx", "imulw $127, (%rax), %dx",
    "imul %r9, %r10", "imulb (%rcx)",
    # segments, system
    "mov %ds, %ax", "mov %ds, %eax", "mov %ds, %rax", "mov %ax, %ds", "mov %eax, %ds",
    "mov %rax, %ss", "mov (%rax), %ds", "mov %ds, (%rax)", "movw %fs, 2(%rbx)",
    "mov %cr0, %rax", "mov %r8, %cr3", "movq %cr4, %r15", "invlpg (%rax)", "invlpg 0x1000(%rip)",
    "lgdt (%rax)", "lgdtq gdtr(%rip)", "lidt idtr", "ltr %ax", "ltr (%rax)", "ljmp *(%rax)",
    "ljmpl *far_ptr(%rip)", "int $3", "int $0x80", "int3", "iretq", "lretq", "sysretq",
    # port I/O
    "inb $0x60", "inb %dx", "outb $0x80", "outb %dx", "in (%dx), %al", "inw %dx, %ax",
    "outl %eax, (%dx)", "in $0x71, %eax", "out %ax, $0x70",
    # prefixes
    "rep movsb", "rep movsw", "rep movsq", "rep stosq", "repe cmpsb", "repz scasw", "repne scasb",
    "repnz cmpsq", "rep insb", "rep insw", "rep outsl", "rep lodsb",
    "lock cmpxchg %rbx, (%rdi)", "lock cmpxchgw %bx, (%rax)", "lock incl %fs:(%rax)",
    "lock addq $1, (%rax)", "lock xchg %rax, (%rbx)", "lock notb 4(%rsi)", "lock orl %eax, (%r9)",
    "lock sbbw $-1, (%rcx)", "lock negq table(%rip)",
    "rep", "lock", "repne", "rep; stosb",
    # push/pop
    "push $1", "pushq $-128", "pushq $0x1000", "push (%rax)", "pushq 8(%rsp)", "pop %r9",
    "popq (%rbx)", "push %r12", "pushf", "popfq", "push $table",
    # control transfer with registers and memory
    "jmp *%rax", "jmpq *(%rax)", "call *%r11", "callq *8(%rax,%rbx,8)", "ret", "ret $8", "retq $0x10",
    # movzx/movsx
    "movzbw %al, %ax", "movzwq (%rax), %r8", "movswl %ax, %ecx", "movslq (%rdi), %rsi",
    "movslq %eax, %rax", "movsbw %r8b, %r9w",
    # cmov/set aliases
    "cmovz %rax, %rbx", "cmovnbel (%rax), %ecx", "cmovpew %ax, %bx", "setnae %al", "setpo (%rax)",
    "cmovl %eax, %ecx", "cmovll %eax, %ecx",
    # expressions in operands
    "movq $(4096/8), %rax", "addq $(1 << 12) - 1, %rax", "movl $0b1010, %eax", "movl $010, %eax",
    "movl $'A', %eax", "movb $~0x0f & 0xff, %al", "subq $(3 * (2 + 1)), %rsp",
]


# what the sample lines refer to: far branch targets in .text, data labels in .data
HEAD = ".text\nfar1: .skip 200\n"
TAIL = """.skip 300
far0: nop
.data
table: .quad 1, 2, 3
gdtr: .word 0x27
.quad 0x1000
idtr: .word 0xfff
.quad 0x2000
far_ptr: .long 0x1234
.word 0x8
"""
