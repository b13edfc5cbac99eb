"""Help, symbols, status: ``::help``, ``::dcmds``, ``::formats``, ``::nm``,
``::sym``, ``$?``/``::status``, ``::stages``, ``::switch``, ``$q``."""

from __future__ import annotations

import fnmatch

from .. import formats
from ..errors import MdbError
from ..session import COLON, DCMDS, DOLLAR, dcmd, getopts


@dcmd("help", "::help [dcmd]", "list the commands, or describe one",
      aliases=("dcmds",))
def help_(k, cmd):
    if cmd.args:
        name = cmd.args[0].lstrip(":$")
        if cmd.args[0].startswith("$"):
            name = DOLLAR.get(cmd.args[0][1:], name)
        elif cmd.args[0].startswith(":") and not cmd.args[0].startswith("::"):
            name = COLON.get(cmd.args[0][1:], name)
        d = DCMDS.get(name)
        if d is None:
            raise MdbError(f"dcmd '{cmd.args[0]}' not found; ::dcmds lists them")
        lines = [f"NAME\n  {d.name} - {d.summary}", f"\nSYNOPSIS\n  {d.usage}"]
        if d.aliases:
            lines.append("\nALIASES\n  " + ", ".join(d.aliases))
        if d.help:
            lines.append("\nDESCRIPTION\n" + "\n".join("  " + ln if ln else ""
                                                       for ln in d.help.splitlines()))
        return "\n".join(lines) + "\n", {"name": d.name, "usage": d.usage}
    seen, rows = set(), []
    for name in sorted(DCMDS):
        d = DCMDS[name]
        if id(d) in seen or d.name in ("delete_all", "stackregs"):
            continue
        seen.add(id(d))
        rows.append((d.usage, d.summary))
    width = max(len(u) for u, _ in rows) + 2
    text = "Each command is [address][,count]verb; numbers are hex (0t for decimal).\n"
    text += "".join(f"  {u:<{width}}{s}\n" for u, s in rows)
    text += ("  addr/fmt  addr?fmt  value=fmt   read memory / the object file / format a value"
             " (::formats)\n  :c  :s  addr:b  :d id  $b  $r  $c  $q  $?  (mdb's short forms)\n")
    return text, [u for u, _ in rows]


@dcmd("formats", "::formats", "list the format letters of / ? =")
def formats_(k, cmd):
    return formats.help_text(), sorted(formats.FORMATS)


@dcmd("nm", "[addr]::nm [-t func|obj] [pattern]", "the kernel's symbol table",
      help="""
Value, size and type of every symbol in unix (text symbols are FUNC, data
symbols OBJECT).  A glob pattern selects names (::nm pci_mech1_*); with an
address, the symbol that contains it.""")
def nm(k, cmd):
    o = getopts(cmd.args, valued="t")
    syms = k.symbols
    kind = o.values.get("t")
    if kind not in (None, "func", "obj", "object"):
        raise MdbError(f"::nm -t {kind}: the types are func and obj")
    if cmd.has_addr:
        hit = syms.lookup(cmd.addr)
        if hit is None:
            raise MdbError(f"no symbol contains {cmd.addr:#x}")
        names = [hit[0]]
    else:
        names = sorted(syms.by_name, key=lambda n: (syms.by_name[n], n))
    pat = o.words[0] if o.words else None
    rows = []
    for n in names:
        if pat and not fnmatch.fnmatchcase(n, pat):
            continue
        a = syms.addr(n)
        t = "FUNC" if syms.is_text(a) else "OBJECT"
        if kind == "func" and t != "FUNC" or kind in ("obj", "object") and t != "OBJECT":
            continue
        rows.append({"name": n, "value": a, "size": syms.size(n), "type": t})
    text = f"{'Value':<18} {'Size':<10} {'Type':<6} Name\n"
    text += "".join(f"{r['value']:#018x} {r['size']:<#10x} {r['type']:<6} {r['name']}\n"
                    for r in rows)
    return text, rows


@dcmd("sym", "::sym name|addr", "a symbol's address, or the symbol at an address",
      help="""
::sym pci_check prints the symbol's value and size; addr::sym (or ::sym
<expression>) prints the address as symbol+offset.""")
def sym(k, cmd):
    syms = k.symbols
    if not cmd.has_addr and len(cmd.args) == 1 and syms.has(cmd.args[0]):
        name = cmd.args[0].rpartition("`")[2]
        a = syms.addr(name)
        return (f"{name} = {a:#x} (size {syms.size(name):#x}, "
                f"{'text' if syms.is_text(a) else 'data'})\n",
                {"name": name, "value": a, "size": syms.size(name)})
    if cmd.has_addr:
        a = cmd.addr
    elif cmd.args:
        a = k.eval(" ".join(cmd.args))
    else:
        raise MdbError("::sym needs a symbol name or an address")
    hit = syms.lookup(a)
    if hit is None:
        return f"{a:#x}: not in the kernel image\n", {"value": a, "name": None, "offset": None}
    return (f"{a:#x} = {syms.fmt(a)}\n", {"value": a, "name": hit[0], "offset": hit[1]})


@dcmd("status", "::status", "what the target is and where it stopped", aliases=())
def status(k, cmd):
    t = k.target
    lines, data = [], {}
    st = t.stage
    if st is not None:
        lines.append(f"debugging stage '{st.name}' of a {t.platform} boot "
                     f"(profile {st.profile}, seed {st.seed})")
        data.update(stage=st.name, profile=st.profile, seed=st.seed)
    else:
        lines.append(f"debugging a live {t.platform} kernel")
    b = t.boot
    if b is not None:
        passed = list(b.passed)
        data["passed"] = passed
        lines.append("stages passed: " + (", ".join(passed) if passed else "none"))
    stop = k.control.stop
    data["stop"] = stop.kind
    if stop.inside_stage:
        lines.append(f"stopped inside a stage: {stop.kind} on cpu{stop.cpu} at "
                     f"{k.symbols.fmt(stop.rip)}")
    elif stop.kind == "failed":
        lines.append(f"the boot stopped in stage '{stop.stage}': {stop.why}")
    elif st is not None and st.result is not None and not st.result.ok and \
            (b is None or st.result.failed not in b.passed):
        r = st.result
        lines.append(f"the boot stopped in stage '{r.failed}' ({r.kind}): {r.why}")
        data["failed"] = r.failed
    p = t.panic()
    if p is not None:
        lines.append(f"panic: {p.message}")
        data["panic"] = p.message
    regs = k.context()
    lines.append(f"cpu{k.cpu}: rip {regs['rip']:#x} ({k.symbols.fmt(regs['rip'])}), "
                 f"registers from the {'trap frame' if regs['source'] == 'trap' else 'vCPU'}")
    data.update(cpu=k.cpu, rip=regs["rip"], platform=t.platform)
    return "\n".join(lines) + "\n", data


DCMDS["status"].aliases = ("$?",)


@dcmd("stages", "::stages", "the bring-up's stages and how far this boot went")
def stages(k, cmd):
    from ...lab.stages import STAGES
    b = k.target.boot
    passed = set(b.passed) if b is not None else set()
    rows, text = [], ""
    for s in STAGES:
        mark = "passed" if s.name in passed else ("-" if s.implemented else "(later)")
        rows.append({"stage": s.name, "passed": s.name in passed, "title": s.title})
        text += f"{s.name:<12} {mark:<8} {s.title}\n"
    return text, rows


@dcmd("switch", "cpu::switch", "make another CPU the current one (the [N]> prompt)")
def switch(k, cmd):
    n = cmd.addr if cmd.has_addr else (k.eval(cmd.args[0]) if cmd.args else None)
    if n is None:
        raise MdbError("usage: cpu::switch")
    k.target.hw(n)                       # validates the id
    k.cpu = n
    k.dot = k.context()["rip"]
    return "", n


@dcmd("quit", "$q", "leave the debugger (the boot stays as it is)")
def quit_(k, cmd):
    k.quit = True
    return "", None
