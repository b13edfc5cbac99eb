"""``Kmdb``: one debugger session over one target, and the command registry."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable

from .control import Control
from .errors import MdbError
from .expr import Command, Env, evaluate, parse_command, split_commands
from .target import Target

MASK = (1 << 64) - 1


@dataclass
class Result:
    """What one command did: its text (as mdb prints it), or the one-line error,
    and ``data``, the same facts as Python values (for tests and widgets)."""

    command: str
    text: str = ""
    error: str | None = None
    data: Any = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def __str__(self) -> str:
        return self.text if self.ok else self.error + "\n"

    def _repr_pretty_(self, p, cycle):
        p.text(str(self).rstrip("\n"))

    def __repr__(self) -> str:
        return f"<Result {self.command!r}: {'ok' if self.ok else self.error}>"


@dataclass
class Dcmd:
    name: str
    func: Callable
    usage: str
    summary: str
    help: str = ""
    aliases: tuple = ()


DCMDS: dict[str, Dcmd] = {}
DOLLAR = {"r": "regs", "c": "stack", "C": "stackregs", "b": "events", "q": "quit",
          "?": "status"}
COLON = {"c": "cont", "s": "step", "b": "bp", "d": "delete", "z": "delete_all"}


def dcmd(name: str, usage: str, summary: str, help: str = "", aliases: tuple = ()):
    """Register a command ``::name`` (the function takes the session and the Command)."""
    def deco(func):
        d = Dcmd(name, func, usage, summary, help.strip(), aliases)
        DCMDS[name] = d
        for a in aliases:
            DCMDS[a] = d
        return func
    return deco


@dataclass
class Opts:
    """Parsed ``-x`` options and positional words of a dcmd."""

    flags: set = field(default_factory=set)
    values: dict = field(default_factory=dict)
    words: list = field(default_factory=list)


def getopts(args: list[str], flags: str = "", valued: str = "") -> Opts:
    """mdb_getopts-like: single-letter flags and letters that take a value."""
    o = Opts()
    i = 0
    while i < len(args):
        a = args[i]
        if a.startswith("-") and len(a) > 1 and not re.fullmatch(r"-[0-9].*", a):
            for j, ch in enumerate(a[1:]):
                if ch in valued:
                    val = a[2 + j:] or (args[i + 1] if i + 1 < len(args) else None)
                    if val is None:
                        raise MdbError(f"option requires an argument -- '{ch}'")
                    if not a[2 + j:]:
                        i += 1
                    o.values[ch] = val
                    break
                if ch in flags:
                    o.flags.add(ch)
                else:
                    raise MdbError(f"illegal option -- '{ch}'")
        else:
            o.words.append(a)
        i += 1
    return o


class Kmdb(Env):
    """An mdb-style debugger over the live model.

    ``Kmdb(stage)`` (a booted :class:`xenlab.lab.Stage`), ``Kmdb(boot)``,
    ``Kmdb(kernel)`` or ``Kmdb(kcpu)``.  ``run("::vtop 0x...")`` returns the text
    mdb would print; ``cmd(...)`` returns a :class:`Result` with the same facts
    as data; ``execute(...)`` one Result per command of a ``;`` line.
    """

    def __init__(self, target, *, cpu: int = 0):
        from . import commands  # noqa: F401  (registers the dcmds)
        self.target = Target(target)
        self.cpu = int(cpu)
        self.dot = 0
        self.vars: dict[str, int] = {}
        self.control = Control(self.target)
        self.quit = False
        self._boot = None
        self.last_format: tuple | None = None       # for repeating a format with Enter
        self._sync()
        self._at_stop()

    # -- the live model --------------------------------------------------------------------
    def _sync(self):
        """Follow a Stage that was booted again (or restored): a new Boot, same breakpoints."""
        t = self.target
        if t.stage is None:
            return
        b = t.stage.state
        if b is self._boot:
            return
        old = self.control
        old.kill()
        if self._boot is not None:
            old.detach_runners()
        self.control = Control(t)
        self.control.bps = old.bps
        self.control.next_id = old.next_id
        self._boot = b
        if b is not None and self.cpu >= t.ncpus():
            self.cpu = 0

    def _at_stop(self):
        """Dot at the stopped PC; after a panic, the CPU that panicked (as kmdb
        enters on it)."""
        try:
            p = self.target.panic()
            if p is not None and self._panic_cpu(p) < self.target.ncpus():
                self.cpu = self._panic_cpu(p)
            self.dot = self.context()["rip"]
        except MdbError:
            pass

    @property
    def prompt(self) -> str:
        return f"[{self.cpu}]> "

    @property
    def symbols(self):
        return self.target.symbols

    def context(self, cpu: int | None = None) -> dict:
        """The registers a command should use: a trap's when the kernel panicked on
        one (as kmdb shows the trapped context), else the vCPU's."""
        cpu = self.cpu if cpu is None else cpu
        p = self.target.panic()
        trap = getattr(p, "trap", None) if p is not None else None
        if trap is not None and not self.control.stop.inside_stage and \
                self._panic_cpu(p) == cpu:
            regs = self.target.regs(cpu)
            regs.update({k: v for k, v in trap.regs.items()})
            regs.update(rip=trap.rip, rsp=trap.rsp, rflags=trap.rflags, cs=trap.cs, ss=trap.ss)
            regs["trapno"] = trap.vector
            regs["err"] = trap.err or 0
            regs["source"] = "trap"
            return regs
        regs = self.target.regs(cpu)
        regs["trapno"] = 0
        regs["err"] = 0
        regs["source"] = "vcpu"
        return regs

    @staticmethod
    def _panic_cpu(p) -> int:
        m = re.search(r"panic\[cpu(\d+)\]", getattr(p, "text", "") or "")
        return int(m.group(1)) if m else 0

    # -- Env (expressions) -------------------------------------------------------------------
    def has_symbol(self, name: str) -> bool:
        try:
            return self.symbols.has(name)
        except MdbError:
            return False

    def symbol(self, name: str) -> int:
        return self.symbols.addr(name)

    REG_ALIASES = {"pc": "rip", "sp": "rsp", "fp": "rbp"}
    SUBREGS = {**{f"e{r}": (f"r{r}", 32) for r in ("ax", "bx", "cx", "dx", "si", "di", "bp",
                                                   "sp", "ip")},
               **{f"r{n}d": (f"r{n}", 32) for n in range(8, 16)},
               **{r: (f"r{r}", 16) for r in ("ax", "bx", "cx", "dx", "si", "di", "bp", "sp")},
               **{f"{r}l": (f"r{r}x", 8) for r in "abcd"}, "eflags": ("rflags", 32)}

    def variable(self, name: str) -> int:
        if name in self.vars:
            return self.vars[name]
        regs = self.context()
        name = self.REG_ALIASES.get(name, name)
        if name in regs and name != "source":
            return regs[name]
        if name in self.SUBREGS:
            full, bits = self.SUBREGS[name]
            return regs[full] & ((1 << bits) - 1)
        raise MdbError(f"variable '{name}' is not defined")

    def deref(self, addr: int) -> int:
        return self.target.vread64(addr, self.cpu)

    def eval(self, text: str) -> int:
        """Evaluate an argument as an mdb expression (hex numbers, symbols, <reg ...)."""
        return evaluate(text, self)

    # -- running commands ---------------------------------------------------------------------
    def execute(self, line: str) -> list[Result]:
        """Run a line (commands separated by ``;``); stops at the first error."""
        out = []
        self._sync()
        cmds = split_commands(line)
        if not cmds and self.last_format is not None:
            cmds = [None]                   # Enter repeats the last format at the next address
        for text in cmds:
            res = self._one(text)
            out.append(res)
            if not res.ok or self.quit:
                break
        return out

    def run(self, line: str) -> str:
        """The text mdb prints for ``line`` (errors as ``mdb: ...`` lines)."""
        return "".join(str(r) for r in self.execute(line))

    def cmd(self, line: str) -> Result:
        """The Result of the last command of ``line`` (usually one command)."""
        res = self.execute(line)
        if not res:
            return Result(line)
        for r in res:
            if not r.ok:
                return r
        return res[-1]

    def _one(self, text: str | None) -> Result:
        try:
            if text is None:
                verb, nxt, count, fmt = self.last_format
                text = f"{nxt:#x},{count:#x}{verb}{fmt}"
            cmd = parse_command(text, self)
            got = self._dispatch(cmd)
            if isinstance(got, Result):
                return got
            body, data = got if isinstance(got, tuple) else (got, None)
            return Result(text, body or "", None, data)
        except MdbError as e:
            return Result(text or "", "", str(e))
        except KeyboardInterrupt:
            return Result(text or "", "", "mdb: interrupted")
        except Exception as e:                                       # noqa: BLE001
            return Result(text or "", "", f"mdb: internal error: {type(e).__name__}: {e}")

    def _dispatch(self, cmd: Command):
        self.last_format = None if cmd.kind != "format" else self.last_format
        if cmd.kind == "expr":
            if cmd.has_addr:
                self.dot = cmd.addr
            return "", self.dot
        if cmd.kind == "assign":
            self.vars[cmd.name] = cmd.addr if cmd.has_addr else self.dot
            return "", self.vars[cmd.name]
        if cmd.kind == "format":
            return self._format(cmd)
        if cmd.kind == "dollar":
            name = DOLLAR.get(cmd.name)
            if name is None:
                raise MdbError(f"'${cmd.name}' is not a dcmd this debugger knows (::help)")
            return DCMDS[name].func(self, cmd)
        if cmd.kind == "colon":
            name = COLON.get(cmd.name)
            if name is None:
                raise MdbError(f"':{cmd.name}' is not supported (:c, :s, :b, :d, :z)")
            return DCMDS[name].func(self, cmd)
        d = DCMDS.get(cmd.name)
        if d is None:
            raise MdbError(f"dcmd '{cmd.name}' not found; ::dcmds lists them")
        return d.func(self, cmd)

    def _format(self, cmd: Command):
        from . import formats
        addr = cmd.addr if cmd.has_addr else self.dot
        count = cmd.count if cmd.count is not None else 1
        if count > 4096:
            raise MdbError(f"count {count:#x} is too large (at most 0t4096)")
        if cmd.name == "=":
            text, values = formats.format_value(addr, cmd.fmt, self.symbols_or_none())
            return text, values
        self.dot = addr
        if cmd.name == "/":
            def read(a, n):
                return self.target.vread(a, n, self.cpu)
        else:
            def read(a, n):
                return self.target.fread(a, n)
        syms = self.symbols_or_none()

        def label(a):
            return syms.fmt(a, plain_hex=True) if syms else f"{a:x}"
        text, values, nxt = formats.read_formats(read, addr, count, cmd.fmt, syms, label)
        self.last_format = (cmd.name, nxt, count, cmd.fmt)
        return text, values

    def symbols_or_none(self):
        try:
            return self.symbols
        except MdbError:
            return None

    def close(self):
        """Let go of the boot (a paused stage is abandoned)."""
        self.control.kill()
        self.control.detach_runners()

    def __repr__(self):
        return f"<Kmdb {self.prompt.strip()} {self.target.platform}>"
