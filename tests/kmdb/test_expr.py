"""mdb's command-line grammar and expressions, against Python arithmetic."""

import pytest
from hypothesis import given
from hypothesis import strategies as hs

from xenlab.kmdb.errors import MdbError
from xenlab.kmdb.expr import Env, evaluate, parse_command, split_args, split_commands

MASK = (1 << 64) - 1


class FakeEnv(Env):
    """Symbols, registers and memory made up for the parser (no model needed)."""

    def __init__(self):
        self.dot = 0x1000
        self.syms = {"pci_check": 0xFFFFFFFF80001000, "msgbuf": 0xFFFFFFFF80008000,
                     "abc": 0x42}
        self.regs = {"rip": 0xFFFFFFFF80001234, "rsp": 0xFFFFFFFF8000EFF0}
        self.mem = {0xFFFFFFFF80008000: 0xDEADBEEF, 0x42: 7}

    def has_symbol(self, name):
        return name.rpartition("`")[2] in self.syms

    def symbol(self, name):
        name = name.rpartition("`")[2]
        if name not in self.syms:
            raise MdbError(f"failed to dereference symbol: unknown symbol name '{name}'")
        return self.syms[name]

    def variable(self, name):
        if name not in self.regs:
            raise MdbError(f"variable '{name}' is not defined")
        return self.regs[name]

    def deref(self, addr):
        return self.mem[addr]


E = FakeEnv()


@pytest.mark.parametrize("text, value", [
    ("10", 0x10),                       # mdb's default radix is 16
    ("0t10", 10),
    ("0x10", 0x10),
    ("0o17", 0o17),
    ("0i101", 5),
    ("ff", 0xFF),                       # a hex word that is not a symbol
    ("abc", 0x42),                      # ... but a symbol wins
    ("pci_check+0x10", 0xFFFFFFFF80001010),
    ("unix`pci_check", 0xFFFFFFFF80001000),
    ("<rip", 0xFFFFFFFF80001234),
    ("<rip-<rsp", (0xFFFFFFFF80001234 - 0xFFFFFFFF8000EFF0) & MASK),
    (".", 0x1000),
    (".+8", 0x1008),
    ("*msgbuf", 0xDEADBEEF),
    ("**abc", None),                    # *abc = 7, *7 is not in memory -> KeyError below
    ("1+2*3", 7),
    ("(1+2)*3", 9),
    ("0t7%2", 3),                       # % is integer division in mdb
    ("0t7%%2", 1),
    ("0t13#8", 16),                     # round up to a multiple
    ("1<<0t12", 0x1000),
    ("0x1000>>4", 0x100),
    ("6&3|8", 10),
    ("6^3", 5),
    ("-1", MASK),
    ("~0", MASK),
    ("#0", 1),
    ("#5", 0),
    ("3==3", 1),
    ("3!=3", 0),
    ("1-2", MASK),
])
def test_expressions(text, value):
    if value is None:
        with pytest.raises(KeyError):
            evaluate(text, E)
        return
    assert evaluate(text, E) == value


@given(hs.lists(hs.tuples(hs.sampled_from(["+", "-", "*", "&", "|", "^"]),
                          hs.integers(0, MASK)), min_size=1, max_size=6),
       hs.integers(0, MASK))
def test_left_to_right_within_a_precedence_level_matches_python(ops, first):
    """Chains of + - (one level) and of & | ^ * evaluated like Python, mod 2**64,
    written in mdb's hex notation."""
    prec = {"+": 5, "-": 5, "*": 6, "&": 2, "|": 0, "^": 1}
    level = prec[ops[0][0]]
    ops = [(o, v) for o, v in ops if prec[o] == level]
    text = f"{first:x}" + "".join(f"{o}0x{v:x}" for o, v in ops)
    want = first
    for o, v in ops:
        want = {"+": want + v, "-": want - v, "*": want * v, "&": want & v, "|": want | v,
                "^": want ^ v}[o] & MASK
    assert evaluate(text, E) == want


@given(hs.integers(0, MASK), hs.integers(0, MASK), hs.integers(0, MASK))
def test_precedence_matches_c(a, b, c):
    assert evaluate(f"{a:#x}+{b:#x}*{c:#x}", E) == (a + b * c) & MASK
    assert evaluate(f"{a:#x}|{b:#x}&{c:#x}", E) == a | (b & c)
    assert evaluate(f"{a:#x}-{b:#x}<<4", E) == ((a - b) & MASK) << 4 & MASK


def test_commands_split_and_parse():
    assert split_commands("$r; ::vtop 0x10 ;; ::print 'a;b'") == \
        ["$r", "::vtop 0x10", "::print 'a;b'"]
    assert split_args("-n 4 'two words' x") == ["-n", "4", "two words", "x"]
    c = parse_command("pci_check+4,0t3/X", E)
    assert (c.kind, c.name, c.addr, c.count, c.fmt) == ("format", "/", 0xFFFFFFFF80001004, 3,
                                                        "X")
    c = parse_command("msgbuf::vtop -c 1", E)
    assert (c.kind, c.name, c.addr, c.args) == ("dcmd", "vtop", 0xFFFFFFFF80008000,
                                                ["-c", "1"])
    c = parse_command("$c 5", E)
    assert (c.kind, c.name, c.args) == ("dollar", "c", ["5"])
    c = parse_command("pci_check:b", E)
    assert (c.kind, c.name, c.addr) == ("colon", "b", 0xFFFFFFFF80001000)
    c = parse_command("<rip>saved", E)
    assert (c.kind, c.name, c.addr) == ("assign", "saved", 0xFFFFFFFF80001234)
    c = parse_command("10==10=D", E)              # '==' is an operator, '=' the verb
    assert (c.kind, c.name, c.addr, c.fmt) == ("format", "=", 1, "D")
    c = parse_command("msgbuf?s", E)
    assert (c.kind, c.name) == ("format", "?")
    c = parse_command("0x20", E)
    assert (c.kind, c.addr) == ("expr", 0x20)


@pytest.mark.parametrize("text, fragment", [
    ("(1+2", "missing ')'"),
    ("1+", "expected an expression"),
    ("nosuchsym", "unknown symbol name 'nosuchsym'"),
    ("<nosuchreg", "variable 'nosuchreg' is not defined"),
    ("1%0", "divide by zero"),
    ("::", "expected a dcmd name"),
    ("$", "expected a command letter"),
    ("1 | ::print", "pipelines"),
    ("!ls", "shell escapes"),
    ("12g", "bad number"),
])
def test_syntax_errors_are_one_line_mdb_messages(text, fragment):
    with pytest.raises(MdbError) as e:
        parse_command(text, E)
    msg = str(e.value)
    assert msg.startswith("mdb: ") and "\n" not in msg and fragment in msg
