"""Execution: ``:c``, ``:s``, ``::bp``/``:b``, ``::delete``/``:d``, ``$b``."""

from __future__ import annotations

from .. import dis as D
from ..control import Stop
from ..errors import MdbError, ReadError
from ..session import dcmd, getopts


def _where(k, rip: int) -> str:
    syms = k.symbols
    try:
        insns = D.decode(lambda a, n: k.target.vread(a, n, k.cpu), rip, 1, syms)
    except ReadError:
        insns = []
    label = syms.label(syms.fmt(rip, plain_hex=True))
    return f"{label}{insns[0].text}\n" if insns else f"{label.rstrip()}\n"


def _next_stage(k) -> str:
    from ...lab.stages import STAGE_NAMES
    b = k.target.boot
    if b is None:
        raise MdbError("this target has no boot to continue: attach kmdb to a Stage")
    st = k.target.stage
    failed = k.control.stop.kind == "failed" or (
        st is not None and st.result is not None and not st.result.ok
        and st.result.failed not in b.passed)
    if failed:
        stop = k.control.stop
        name = stop.stage if stop.kind == "failed" else st.result.failed
        raise MdbError(f"kmdb: target has terminated: stage '{name}' failed; fix its hooks "
                       "and boot again")
    todo = [s for s in STAGE_NAMES if s not in b.passed]
    if not todo:
        raise MdbError(f"kmdb: the boot has passed every stage there is "
                       f"({', '.join(b.passed)})")
    return todo[0]


def report(k, stop: Stop) -> str:
    """What kmdb prints when the target stops."""
    syms = k.symbols
    if stop.inside_stage:
        k.cpu = stop.cpu
        k.dot = stop.rip
        if stop.kind == "breakpoint":
            return (f"kmdb: stop at {syms.fmt(stop.bp.addr)}\nkmdb: target stopped at:\n"
                    + _where(k, stop.rip))
        if stop.kind == "kmdb":
            tail = k.target.boot.visible_console().rstrip().splitlines()[-3:]
            return ("\n".join(tail) + "\nkmdb: the kernel is at its own kmdb prompt (booted "
                    "with -d); :c types ':c' there and the boot goes on\n")
        head = "kmdb: interrupted\n" if stop.kind == "interrupted" else ""
        return head + "kmdb: target stopped at:\n" + _where(k, stop.rip)
    k._at_stop()
    if stop.kind == "stage":
        from ...lab.stages import STAGE_NAMES, stage_info
        nxt = [s for s in STAGE_NAMES if s not in k.target.boot.passed]
        after = f"; :c runs '{nxt[0]}'" if nxt else "; that was the last stage"
        return f"kmdb: stage '{stop.stage}' passed ({stage_info(stop.stage).title}){after}\n"
    if stop.kind == "failed":
        text = ""
        if stop.panic:
            text += stop.panic.strip("\n") + "\n"
        where = f"stage '{stop.stage}'" if stop.stage else "the boot"
        return text + f"kmdb: {where} failed: {stop.why}\n"
    return f"kmdb: {stop.kind}\n"


def _stop_data(stop: Stop) -> dict:
    return {"kind": stop.kind, "cpu": stop.cpu, "rip": stop.rip, "stage": stop.stage,
            "why": stop.why, "bp": stop.bp.id if stop.bp else None}


def _go(k, step: bool):
    t = k.target
    if t.boot is None:
        return _go_bare(k, step)
    ctl = k.control
    nxt = None if ctl.paused else _next_stage(k)
    stop = ctl.resume(step, nxt)
    return report(k, stop), _stop_data(stop)


def _go_bare(k, step: bool):
    """A kernel without a boot: run the current vCPU through its host runner."""
    from ..control import DebugRunner
    kc = k.target.cpus[k.cpu]
    runner = kc.runner.inner if isinstance(kc.runner, DebugRunner) else kc.runner
    k.control._arm()
    try:
        ex = runner(1 if step else 10_000_000)
    finally:
        k.control._disarm_all()
    rip = int(kc.vcpu.get("rip"))
    k.dot = rip
    bp = k.control.by_addr.get(rip)
    if bp is not None and getattr(ex, "reason", "") == "breakpoint":
        bp.hits += 1
        stop = Stop("breakpoint", k.cpu, rip, bp)
    else:
        stop = Stop("step" if step else "stopped", k.cpu, rip)
    text = (f"kmdb: stop at {k.symbols.fmt(bp.addr)}\n" if stop.kind == "breakpoint" else "")
    return text + "kmdb: target stopped at:\n" + _where(k, rip), _stop_data(stop)


@dcmd("cont", ":c", "continue: to the next breakpoint, or through the next stage",
      help="""
Inside a stage (stopped at a breakpoint or after a step) the vCPU resumes
until the next breakpoint or the end of the stage.  At a stage boundary the
next stage of the bring-up runs (with the hooks the Stage was given); the
boot stops at the end of it, at a breakpoint, at the kernel's own kmdb prompt,
or where the stage fails (the panic is printed and the target stays as it was
for post-mortem commands).""")
def cont(k, cmd):
    return _go(k, False)


@dcmd("step", ":s", "execute one instruction",
      help="""
Executes the instruction at %rip and stops at the next one.  At a stage
boundary, runs the next stage up to the first instruction the kernel runs on
a vCPU.  The kernel's Python between two stubs does not count as
instructions: a step from a stub's ret lands on the first instruction of the
next stub the kernel calls.""")
def step(k, cmd):
    return _go(k, True)


@dcmd("bp", "::bp addr|symbol ...  (addr:b)", "set a breakpoint",
      help="""
A vCPU breakpoint: the CPU stops before executing the instruction there.  The
kernel's code runs in stubs its Python calls (inb, pci_mech1_getl,
hypercall ...), so a breakpoint there stops the boot in the middle of the
stage that calls them.""")
def bp(k, cmd):
    o = getopts(cmd.args)
    addrs = [cmd.addr] if cmd.has_addr else []
    addrs += [k.eval(w) for w in o.words]
    if not addrs:
        raise MdbError("::bp: an address or symbol is required")
    made = []
    syms = k.symbols
    notes = ""
    for a in addrs:
        if not syms.is_text(a):
            notes += f"mdb: warning: {a:#x} is not in the kernel's text: the CPU may never " \
                     "fetch there\n"
        b = k.control.add(a, syms.fmt(a))
        made.append({"id": b.id, "addr": b.addr, "desc": b.desc})
    return notes, made


@dcmd("events", "$b", "list the breakpoints")
def events(k, cmd):
    rows = sorted(k.control.bps.values(), key=lambda b: b.id)
    text = f"{'ID':>5} S {'HITS':>4} {'ADDRESS':<18} DESCRIPTION\n"
    text += "".join(f"[{b.id:>3}] {'+' if b.enabled else '-'} {b.hits:>4} {b.addr:#018x} "
                    f"stop at {b.desc}\n" for b in rows)
    return text, [{"id": b.id, "addr": b.addr, "desc": b.desc, "hits": b.hits,
                   "enabled": b.enabled} for b in rows]


@dcmd("delete", "::delete id|all  (:d id)", "delete breakpoints")
def delete(k, cmd):
    args = cmd.args
    if cmd.has_addr:
        ids = [cmd.addr]
    elif args and args[0] == "all":
        ids = [None]
    elif args:
        ids = [k.eval(a) for a in args]
    else:
        raise MdbError("::delete: an event id (see $b) or 'all' is required")
    gone = []
    for i in ids:
        gone += [b.id for b in k.control.delete(i)]
    return "", gone


@dcmd("delete_all", ":z", "delete every breakpoint")
def delete_all(k, cmd):
    return "", [b.id for b in k.control.delete(None)]
