"""``xenlab bench cpu``: the interpreter beside unicorn, same code, same page tables.

Three loops of real machine code run on xenlab's vCPU and on unicorn (QEMU's
TCG) in the same process, both in 64-bit mode with the same 4-level page
tables (unicorn gets CR0/CR3/CR4/EFER by reg_write): an ALU loop, a
load/store loop over 1024 pages, and a port-I/O loop.  Reported as MIPS (or
port accesses per second) and as the ratio to unicorn.
"""

from __future__ import annotations

import time

from . import Row, best_of_pair

# The loops, as bytes (GNU as output), so the bench needs no assembler.
# ALU: movl $N,%ecx; 1: addq %rax,%rbx; xorq %rbx,%rdx; subq $3,%rdx; incq %rsi;
#      cmpq %rsi,%rdi; decl %ecx; jnz 1b; hlt                (7 per iteration)
ALU = "b9{n}4801c34831da4883ea0348ffc64839f7ffc975ecf4"
# Load/store: movq $0x400000,%rbx; xorl %esi,%esi; movl $N,%ecx;
#   1: movq (%rbx,%rsi),%rax; addq %rax,8(%rbx,%rsi); movq %rax,16(%rbx,%rsi);
#      addq $0x1040,%rsi; andq $0x3fffc0,%rsi; decl %ecx; jnz 1b; hlt   (7 per iteration)
LOADSTORE = ("48c7c30000400031f6b9{n}488b04334801443308488944331048"
             "81c6401000004881e6c0ff3f00ffc975e0f4")
# Port I/O: movl $N,%ecx; 1: outb %al,$0x80; inb $0x80,%al; decl %ecx; jnz 1b; hlt
PORTIO = "b9{n}e680e480ffc975f8f4"
PER_ITER = {"alu": 7, "loadstore": 7, "portio": 4}


def _code(template: str, n: int) -> bytes:
    return bytes.fromhex(template.replace("{n}", n.to_bytes(4, "little").hex()))


def _ours(code: bytes):
    from ..machine.snippet import snippet_vcpu
    v = snippet_vcpu(code)
    v.intercept = set()
    return v


def _unicorn(vcpu, code: bytes):
    import unicorn
    import unicorn.x86_const as X
    from ..machine import regs as R
    from ..machine.snippet import CODE, STACK
    uc = unicorn.Uc(unicorn.UC_ARCH_X86, unicorn.UC_MODE_64)
    uc.mem_map(0, 64 << 20)
    uc.mem_write(0x3FC0000, vcpu.memory.read_bytes(0x3FC0000, 0x40000))
    uc.mem_write(CODE, code)
    uc.reg_write(X.UC_X86_REG_CR3, vcpu.get("cr3"))
    uc.reg_write(X.UC_X86_REG_CR4, R.CR4_PAE)
    uc.reg_write(X.UC_X86_REG_MSR, (0xC0000080, R.EFER_LME | R.EFER_LMA | R.EFER_NXE))
    uc.reg_write(X.UC_X86_REG_CR0, R.CR0_PE | R.CR0_PG | R.CR0_WP | R.CR0_ET)
    uc.reg_write(X.UC_X86_REG_RSP, STACK)
    return uc


def _run_pair(name: str, n: int, claimed: bool = False):
    """(our seconds, unicorn seconds) for one loop of ``n`` iterations."""
    import unicorn.x86_const as X
    from ..machine.snippet import CODE
    tmpl = {"alu": ALU, "loadstore": LOADSTORE, "portio": PORTIO}[name]
    code = _code(tmpl, n)
    v = _ours(code)
    if claimed:
        class Port80:
            v = 0
            def io_read(self, port, size): return self.v
            def io_write(self, port, size, value): self.v = value
        v.ports.claim(0x80, 1, Port80(), "post")

    def ours():
        v.set("rip", CODE)
        ex = v.run_native(10**12)
        assert ex.reason == "hlt", ex

    uc = _unicorn(v, code)
    end = CODE + len(code) - 1
    if name == "portio":
        import unicorn
        uc.hook_add(unicorn.UC_HOOK_INSN, lambda u, port, size, ud: 0xFF, None, 1, 0,
                    X.UC_X86_INS_IN)
        uc.hook_add(unicorn.UC_HOOK_INSN, lambda u, port, size, value, ud: None, None, 1, 0,
                    X.UC_X86_INS_OUT)

    def theirs():
        uc.emu_start(CODE, end)

    ours()
    theirs()
    return best_of_pair(ours, theirs)


def bench_cpu(quick: bool) -> list[Row]:
    rows = []
    n = 200_000 if quick else 3_000_000
    for name, label, target, goal in (
            ("alu", "ALU loop (add/xor/sub/inc/cmp/dec/jnz)", ">= 0.15x unicorn", 0.15),
            ("loadstore", "load/store loop, 4-level paging, 1024 pages", ">= 1.5x unicorn", 1.5)):
        t_ours, t_uc = _run_pair(name, n)
        instr = n * PER_ITER[name] + 3
        row = Row("cpu", label, instr / t_ours / 1e6, "MIPS", target=target)
        row.with_peer("unicorn", instr / t_uc / 1e6)
        row.met = row.ratio >= goal
        rows.append(row)
    m = 50_000 if quick else 500_000
    t_ours, t_uc = _run_pair("portio", m)
    row = Row("cpu", "port I/O loop, unclaimed port 0x80 (answered in the loop)",
              2 * m / t_ours, "accesses/s", target=">= 1M/s")
    row.with_peer("unicorn (IN/OUT hooks)", 2 * m / t_uc)
    row.met = row.value >= 1e6
    rows.append(row)
    k = 20_000 if quick else 100_000
    t_ours, _ = _run_pair("portio", k, claimed=True)
    row = Row("cpu", "port I/O exits to a Python device (run_native round trip)",
              2 * k / t_ours, "exits/s", target=">= 1M/s")
    row.with_peer("unicorn (IN/OUT hooks)", 2 * m / t_uc)
    row.met = row.value >= 1e6
    rows.append(row)
    # a stub round trip as the Python kernel does it
    from ..machine.snippet import snippet_vcpu
    v = snippet_vcpu(b"\x90")
    v.memory.write_bytes(0x300000, b"\xec\x90")          # in %dx,%al; nop
    reps = 2000 if quick else 20000
    v.call(0x300000, {"rdx": 0x80}, stop_at=0x300001)
    t0 = time.perf_counter()
    for _ in range(reps):
        v.call(0x300000, {"rdx": 0x80}, stop_at=0x300001)
    dt = (time.perf_counter() - t0) / reps
    rows.append(Row("cpu", "stub round trip: vcpu.call of `in %dx,%al`", dt * 1e6, "us",
                    target="microseconds"))
    return rows
