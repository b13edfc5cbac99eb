"""Registers, stacks and code: ``$r``, ``::cpuregs``, ``$c``/``::stack``,
``::panicinfo``, ``::dis``."""

from __future__ import annotations

import sys

from ...machine import regs as R
from .. import dis as D
from ..errors import MdbError, ReadError
from ..session import dcmd, getopts

RFLAG_BITS = (("of", R.FLAG_OF), ("df", R.FLAG_DF), ("if", R.FLAG_IF), ("tf", R.FLAG_TF),
              ("sf", R.FLAG_SF), ("zf", R.FLAG_ZF), ("af", R.FLAG_AF), ("pf", R.FLAG_PF),
              ("cf", R.FLAG_CF))
PAIRS = (("rax", "r9"), ("rbx", "r10"), ("rcx", "r11"), ("rdx", "r12"), ("rsi", "r13"),
         ("rdi", "r14"), ("r8", "r15"))
SCAN_WORDS = 2048                   # how far up the stack a frameless walk looks (16 KiB)
CALL_LENGTHS = (5, 2, 3, 6, 7)      # E8 rel32; FF /2 with register, disp8, disp32, SIB forms


def _sym_of(syms, v: int) -> str:
    """mdb's %A: the symbol only when the value points into the kernel."""
    return syms.fmt(v) if syms is not None and syms.lookup(v) is not None else ""


def format_regs(regs: dict, syms) -> str:
    """The register dump in mdb's amd64 layout."""
    lines = []
    for a, b in PAIRS:
        left = f"%{a:<3} = 0x{regs[a]:016x} {_sym_of(syms, regs[a]):<15}"
        lines.append(f"{left} %{b:<3} = 0x{regs[b]:016x} {_sym_of(syms, regs[b])}".rstrip())
    lines.append("")
    lines.append(f"%rip = 0x{regs['rip']:016x} {_sym_of(syms, regs['rip'])}".rstrip())
    lines.append(f"%rbp = 0x{regs['rbp']:016x}")
    lines.append(f"%rsp = 0x{regs['rsp']:016x}")
    fl = regs["rflags"]
    lines.append(f"%rflags = 0x{fl:08x}")
    lines.append(f"  id={fl >> 21 & 1} vip={fl >> 20 & 1} vif={fl >> 19 & 1} ac={fl >> 18 & 1} "
                 f"vm={fl >> 17 & 1} rf={fl >> 16 & 1} nt={fl >> 14 & 1} iopl={fl >> 12 & 3:#x}")
    status = ",".join(n.upper() if fl & bit else n for n, bit in RFLAG_BITS)
    lines.append(f"  status=<{status}>")
    lines.append("")
    lines.append(" " * 24 + f"%cs = 0x{regs['cs']:04x}\t%ds = 0x{regs['ds']:04x}\t"
                 f"%es = 0x{regs['es']:04x}")
    lines.append(f"%trapno = {regs['trapno']:#x}\t\t%fs = 0x{regs['fs']:04x}\t"
                 f"%gs = 0x{regs['gs']:04x}")
    lines.append(f"   %err = {regs['err']:#x}")
    return "\n".join(lines) + "\n"


@dcmd("regs", "$r", "the registers of the current CPU (mdb's amd64 layout)",
      help="""
After a panic on a trap, the registers of the trapped context (the trap frame
the kernel saw), as kmdb shows them on entry; otherwise the vCPU's own.
::cpuregs always shows the vCPU.""")
def regs_(k, cmd):
    regs = k.context()
    return format_regs(regs, k.symbols_or_none()), regs


@dcmd("cpuregs", "::cpuregs [-c cpu]", "a CPU's live vCPU registers (never a trap frame)")
def cpuregs(k, cmd):
    o = getopts(cmd.args, valued="c")
    cpu = k.eval(o.values["c"]) if "c" in o.values else k.cpu
    regs = k.target.regs(cpu)
    regs.update(trapno=0, err=0, source="vcpu")
    text = format_regs(regs, k.symbols_or_none())
    text += (f"\n%cr0 = 0x{regs['cr0']:016x} %cr2 = 0x{regs['cr2']:016x}\n"
             f"%cr3 = 0x{regs['cr3']:016x} %cr4 = 0x{regs['cr4']:016x}\n"
             f"%efer = 0x{regs['efer']:x}  cpl = {regs['cpl']}\n")
    return text, regs


# ---------------------------------------------------------------------------
# stacks
# ---------------------------------------------------------------------------

def is_return_address(k, w: int) -> bool:
    """Does ``w`` follow a CALL instruction in the kernel's text?"""
    syms = k.symbols
    if not syms.is_text(w):
        return False
    for n in CALL_LENGTHS:
        try:
            raw = k.target.fread(w - n, n)
        except ReadError:
            continue
        ins = D.disasm(raw, w - n, 1)
        if ins and ins[0][2].startswith("call") and len(ins[0][1]) == n:
            return True
    return False


def backtrace(k, pc: int, sp: int, fp: int, cpu: int) -> list[dict]:
    """Frames from (pc, sp, fp): the RBP chain in guest memory, with the
    return addresses of frameless functions found between the frames."""
    syms = k.symbols
    t = k.target
    boundary = {syms.addr("kpy_return"), syms.addr("kpy_entry")}
    frames = [{"pc": pc, "fp": fp, "sp": sp, "how": "pc"}]
    if pc in boundary:
        return frames
    seen = set()
    while True:
        chain = fp if (fp and fp % 8 == 0 and sp <= fp < sp + 8 * SCAN_WORDS) else None
        limit = chain if chain is not None else sp + 8 * SCAN_WORDS
        a = sp
        while a < limit:
            try:
                w = t.vread64(a, cpu)
            except ReadError:
                return frames
            if w in boundary or is_return_address(k, w):
                frames.append({"pc": w, "fp": a, "sp": a + 8, "how": "stack"})
                if w in boundary:
                    return frames
            a += 8
        if chain is None or chain in seen:
            return frames
        seen.add(chain)
        try:
            savfp, savpc = t.vread64(chain, cpu), t.vread64(chain + 8, cpu)
        except ReadError:
            return frames
        frames.append({"pc": savpc, "fp": chain, "sp": chain + 16, "how": "rbp"})
        if savpc in boundary or not savpc:
            return frames
        sp, fp = chain + 16, savfp


def python_frames(k) -> list[dict]:
    """The Python kernel functions (xenlab.kernel) that called into the stub,
    innermost first: from the paused boot's thread, or from the failure's traceback."""
    ctl = k.control
    frame = None
    if ctl.paused and ctl.thread is not None:
        frame = sys._current_frames().get(ctl.thread.ident)
        chain = []
        while frame is not None:
            chain.append(frame)
            frame = frame.f_back
    else:
        cause = getattr(getattr(ctl.stop, "failure", None), "__cause__", None)
        tb = getattr(cause, "__traceback__", None)
        chain = []
        while tb is not None:
            chain.append(tb.tb_frame)
            tb = tb.tb_next
        chain.reverse()
    out, seen = [], set()
    for f in chain:
        mod = f.f_globals.get("__name__", "")
        if not mod.startswith("xenlab.kernel.") or mod.endswith((".kcpu", ".cmn_err", ".trap")):
            continue
        name = f.f_code.co_name
        if name.startswith("_") or name in seen:
            continue
        seen.add(name)
        owner = type(f.f_locals["self"]).__name__ + "." if "self" in f.f_locals else ""
        out.append({"function": owner + name, "module": mod, "line": f.f_lineno})
    return out


def _stack(k, cmd, verbose: bool):
    regs = k.context()
    pc, sp, fp = regs["rip"], regs["rsp"], regs["rbp"]
    if cmd.has_addr:                       # addr$c: start from a frame pointer
        fp = cmd.addr
        sp = cmd.addr
        pc = k.target.vread64(cmd.addr + 8, k.cpu)
    frames = backtrace(k, pc, sp, fp, k.cpu)
    syms = k.symbols
    lines = []
    for f in frames:
        name = syms.fmt(f["pc"])
        lines.append(f"{f['fp']:016x} {name}()" if verbose else f"{name}()")
    py = python_frames(k) if frames and frames[-1]["pc"] == syms.addr("kpy_return") else []
    if py:
        lines.append("  called from the Python kernel (innermost first):")
        lines += [f"    {p['function']}()  [{p['module']}:{p['line']}]" for p in py]
    return "\n".join(lines) + "\n", {"frames": frames, "python": py}


@dcmd("stack", "[fp]$c | ::stack", "stack backtrace of the current CPU",
      help="""
Walks the RBP chain in guest memory from the current registers (the trap
frame's after a panic).  The kernel's stubs keep no frame pointer, so between
frames the walk also takes every stack word that is a return address (it
follows a CALL in the kernel's text).  The walk ends at kpy_return, where the
Python kernel called the stub; when known, the Python functions that made
that call are listed after it.  $C adds each frame's stack address.  With an
address, the walk starts at that frame pointer.  (mdb's argument count is
accepted and ignored: the kernel's stubs save no arguments to show.)""")
def stack(k, cmd):
    return _stack(k, cmd, False)


@dcmd("stackregs", "$C", "stack backtrace with frame addresses")
def stack_v(k, cmd):
    return _stack(k, cmd, True)


@dcmd("panicinfo", "::panicinfo", "the kernel's panic: CPU, message, trap registers")
def panicinfo(k, cmd):
    p = k.target.panic()
    if p is None:
        raise MdbError("the kernel has not panicked")
    cpu = k._panic_cpu(p)
    text = f"             cpu {cpu:>16}\n         message {p.message}\n"
    data = {"cpu": cpu, "message": p.message}
    trap = getattr(p, "trap", None)
    if trap is not None:
        for n in ("rdi", "rsi", "rdx", "rcx", "r8", "r9", "rax", "rbx", "rbp", "r10", "r11",
                  "r12", "r13", "r14", "r15"):
            text += f"{n:>16} {trap.regs[n]:16x}\n"
        for n, v in (("trapno", trap.vector), ("err", trap.err or 0), ("rip", trap.rip),
                     ("cs", trap.cs), ("rflags", trap.rflags), ("rsp", trap.rsp),
                     ("ss", trap.ss)):
            text += f"{n:>16} {v:16x}\n"
        data.update(trapno=trap.vector, err=trap.err, rip=trap.rip, rsp=trap.rsp)
    return text, data


# ---------------------------------------------------------------------------
# disassembly
# ---------------------------------------------------------------------------

@dcmd("dis", "[addr]::dis [-n count] [-a]", "disassemble (capstone, AT&T, with symbols)",
      help="""
Disassembles the function containing addr (dot by default: where the target
stopped), or count instructions from addr with -n.  Branch targets and
RIP-relative operands are named after the kernel's symbols; -a prints plain
addresses instead of symbol+offset labels.""")
def dis(k, cmd):
    o = getopts(cmd.args, flags="a", valued="n")
    if cmd.has_addr:
        addr = cmd.addr
    elif o.words:
        addr = k.eval(" ".join(o.words))
    else:
        addr = k.dot
    syms = k.symbols_or_none()

    def read(a, n):
        return k.target.vread(a, n, k.cpu)
    if "n" in o.values or cmd.count:
        n = k.eval(o.values["n"]) if "n" in o.values else cmd.count
        insns = D.decode(read, addr, max(1, min(n, 4096)), syms)
    else:
        hit = syms.lookup(addr) if syms is not None else None
        if hit is not None and hit[1] < 0x400:
            start = addr - hit[1]
            end = start + syms.size(hit[0])
            insns = D.decode(read, start, 256, syms, stop=end)
            if len(insns) > 64:                    # a long function: a window at addr
                at = next((i for i, x in enumerate(insns) if x.addr >= addr), 0)
                insns = insns[max(0, at - 8):at + 24]
        else:
            insns = D.decode(read, addr, 16, syms)
    if not insns:
        raise MdbError(f"failed to read instruction at {addr:#x}")
    labels = [f"{x.addr:x}" if "a" in o.flags or syms is None else syms.fmt(x.addr,
              plain_hex=True) for x in insns]
    width = max(16, max(len(s) for s in labels) + 2)
    rip = k.context()["rip"]
    text = "".join(f"{(lab + ':'):<{width}}{x.text}\n" for lab, x in zip(labels, insns))
    data = [{"addr": x.addr, "bytes": x.raw, "mnemonic": x.mnemonic, "operands": x.operands,
             "target": x.target, "label": lab, "current": x.addr == rip}
            for lab, x in zip(labels, insns)]
    return text, data
