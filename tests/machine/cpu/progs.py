"""Random x86-64 programs (AT&T text) for differential tests against unicorn.

Each template says which flags it reads and which it leaves defined or
undefined (SDM Vol. 2 "Flags Affected"), so a program never reads a flag the
manual leaves undefined, and the final comparison masks the undefined ones.
%r15 points at the data area and %rsp at the stack; neither is written by
generated code except through push/pop pairs.
"""

from __future__ import annotations

import re

from xenlab.machine import regs as R

CF, PF, AF, ZF, SF, OF = (R.FLAG_CF, R.FLAG_PF, R.FLAG_AF, R.FLAG_ZF, R.FLAG_SF, R.FLAG_OF)
ALL = CF | PF | AF | ZF | SF | OF

REGS = {
    "q": ["rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "r8", "r9", "r10", "r11", "r12",
          "r13", "r14"],
    "l": ["eax", "ebx", "ecx", "edx", "esi", "edi", "ebp", "r8d", "r9d", "r10d", "r11d",
          "r12d", "r13d", "r14d"],
    "w": ["ax", "bx", "cx", "dx", "si", "di", "bp", "r8w", "r9w", "r10w", "r11w", "r12w",
          "r13w", "r14w"],
    "b": ["al", "bl", "cl", "dl", "sil", "dil", "bpl", "r8b", "r9b", "r10b", "r11b", "r12b",
          "r13b", "r14b"],
}
HIGH8 = ["ah", "bh", "ch", "dh"]
LEGACY8 = ["al", "bl", "cl", "dl"]
BITS = {"b": 8, "w": 16, "l": 32, "q": 64}
CC = ["o", "no", "b", "ae", "e", "ne", "be", "a", "s", "ns", "p", "np", "l", "ge", "le", "g"]
CC_READS = {"o": OF, "no": OF, "b": CF, "ae": CF, "e": ZF, "ne": ZF, "be": CF | ZF, "a": CF | ZF,
            "s": SF, "ns": SF, "p": PF, "np": PF, "l": SF | OF, "ge": SF | OF,
            "le": ZF | SF | OF, "g": ZF | SF | OF}


class Gen:
    """Builds one program from a random source ``r`` (random.Random-like)."""

    def __init__(self, r, memory=True):
        self.r = r
        self.lines: list[str] = []
        self.defined = ALL           # flags the SDM defines at this point
        self.memory = memory
        self.label = 0

    def reg(self, sfx, allow_high=True):
        if sfx == "b" and allow_high and self.r.random() < 0.2:
            return "%" + self.r.choice(HIGH8)
        return "%" + self.r.choice(REGS[sfx])

    def mem(self, sfx):
        n = BITS[sfx] // 8
        align = self.r.random() < 0.8
        off = self.r.randrange(0, 0x1000 - 8)
        if align:
            off &= ~(n - 1)
        if self.r.random() < 0.15:
            return f"{off}(%r15,%r15,0)".replace(",%r15,0", "")  # plain disp(base)
        return f"{off}(%r15)"

    def imm(self, sfx, small=False):
        b = BITS[sfx]
        if small or self.r.random() < 0.3:
            v = self.r.choice([0, 1, -1, 2, 0x7F, -0x80, 0x80, 0xFF])
        else:
            v = self.r.randrange(-(1 << min(b, 32) - 1), 1 << min(b, 32) - 1)
        return f"${v}"

    def rm(self, sfx):
        if self.memory and self.r.random() < 0.35:
            return self.mem(sfx)
        return self.reg(sfx)

    def emit(self, text, reads=0, defined=0, undefined=0, keep=False):
        """Add ``text``; ``defined``/``undefined``: flags it writes (the rest kept)."""
        if reads & ~self.defined:
            return False
        if re.search(r"%[abcd]h\b", text) and re.search(r"%r\d|%sil|%dil|%bpl|%spl", text):
            text = re.sub(r"%([abcd])h\b", r"%\1l", text)   # AH..DH cannot take a REX prefix
        self.lines.append(text)
        self.defined = (self.defined & ~undefined) | defined
        return True

    def one(self):
        r = self.r
        sfx = r.choice("bwlq")
        k = r.randrange(24)
        if k < 5:                    # ALU
            op = r.choice(["add", "adc", "sub", "sbb", "and", "or", "xor", "cmp", "test"])
            reads = CF if op in ("adc", "sbb") else 0
            d = ALL if op in ("add", "adc", "sub", "sbb", "cmp") else ALL & ~AF
            u = 0 if d == ALL else AF
            form = r.randrange(3)
            if form == 0:
                src, dst = self.reg(sfx), self.rm(sfx)
            elif form == 1 and op != "test":
                src, dst = self.rm(sfx), self.reg(sfx)
            else:
                if sfx == "q" or r.random() < 0.5:
                    src = self.imm("l" if sfx == "q" else sfx)
                else:
                    src = self.imm(sfx)
                dst = self.rm(sfx)
            if "(" in src and "(" in dst:
                dst = self.reg(sfx)
            if "%" in src and "%" in dst and (src[1] == "a" and src[2] == "h" or src in
                                               ("%ah", "%bh", "%ch", "%dh")) and \
                    not any(x in dst for x in LEGACY8 + HIGH8):
                src = "%" + r.choice(LEGACY8)
            if "%" in dst and dst in ("%ah", "%bh", "%ch", "%dh") and "%" in src and \
                    src[1:] not in LEGACY8 + HIGH8:
                dst = "%" + r.choice(LEGACY8)
            return self.emit(f"{op}{sfx} {src}, {dst}", reads, d, u)
        if k == 5:
            op = r.choice(["inc", "dec", "neg", "not"])
            dst = self.rm(sfx)
            if op in ("inc", "dec"):
                return self.emit(f"{op}{sfx} {dst}", 0, OF | SF | ZF | AF | PF)
            if op == "neg":
                return self.emit(f"{op}{sfx} {dst}", 0, ALL)
            return self.emit(f"{op}{sfx} {dst}")
        if k == 6:                   # shifts and rotates by an immediate
            op = r.choice(["shl", "shr", "sar", "rol", "ror", "rcl", "rcr"])
            b = BITS[sfx]
            c = r.choice([0, 1, 1, 2, 3, b - 1, r.randrange(32)])
            dst = self.rm(sfx)
            cnt = c & (63 if sfx == "q" else 31)
            if cnt == 0:
                return self.emit(f"{op}{sfx} ${c}, {dst}")
            if op in ("rcl", "rcr"):
                return self.emit(f"{op}{sfx} ${c}, {dst}", CF, CF | (OF if cnt == 1 else 0),
                                 OF)
            if op in ("rol", "ror"):
                return self.emit(f"{op}{sfx} ${c}, {dst}", 0, CF | (OF if cnt == 1 else 0), OF)
            d = SF | ZF | PF | (CF if cnt <= b else 0) | (OF if cnt == 1 else 0)
            return self.emit(f"{op}{sfx} ${c}, {dst}", 0, d, ALL)
        if k == 7:                   # shifts by %cl: count unknown here
            op = r.choice(["shl", "shr", "sar", "rol", "ror"])
            return self.emit(f"{op}{sfx} %cl, {self.rm(sfx)}", 0, 0, ALL)
        if k == 8:                   # mov, all forms
            form = r.randrange(4)
            if form == 0:
                return self.emit(f"mov{sfx} {self.reg(sfx)}, {self.rm(sfx)}".replace(
                    "%ah, %r", "%al, %r").replace("%bh, %r", "%bl, %r"))
            if form == 1:
                return self.emit(f"mov{sfx} {self.rm(sfx)}, {self.reg(sfx, False)}")
            if form == 2 and sfx == "q" and r.random() < 0.5:
                v = r.randrange(-(1 << 63), 1 << 63)
                return self.emit(f"movabsq ${v}, {self.reg('q')}")
            return self.emit(f"mov{sfx} {self.imm('l' if sfx == 'q' else sfx)}, {self.rm(sfx)}")
        if k == 9:                   # movzx / movsx / movsxd
            src = r.choice("bw")
            dst = r.choice([s for s in "wlq" if BITS[s] > BITS[src]])
            op = r.choice(["movz", "movs"])
            s = self.rm(src) if src != "b" else (self.mem("b") if self.memory and r.random() < 0.3
                                                 else "%" + r.choice(REGS["b"]))
            if r.random() < 0.2:
                return self.emit(f"movslq {self.rm('l')}, {self.reg('q')}")
            return self.emit(f"{op}{src}{dst} {s}, {self.reg(dst, False)}")
        if k == 10:
            base = r.choice(["%rax", "%rbx", "%rcx", "%r9", "%r15"])
            idx = r.choice(["", ",%rdx,1", ",%rsi,2", ",%r10,4", ",%rdi,8"])
            disp = r.randrange(-5000, 5000)
            dst = self.reg(r.choice("lq"), False)
            sfx2 = "l" if dst[1] == "e" or dst.endswith("d") else "q"
            return self.emit(f"lea{sfx2} {disp}({base}{idx}), {dst}")
        if k == 11:
            op = r.choice(["xchg", "xadd", "cmpxchg"])
            a, b = self.reg(sfx, False), self.rm(sfx)
            if op == "xchg":
                return self.emit(f"xchg{sfx} {a}, {b}")
            if op == "xadd":
                return self.emit(f"xadd{sfx} {a}, {b}", 0, ALL)
            # unicorn (QEMU) also writes EAX when the compare succeeds; the SDM writes
            # the accumulator only on failure: zero-extend RAX so both agree
            tail = "\nmovl %eax, %eax" if sfx == "l" else ""
            return self.emit(f"cmpxchg{sfx} {a}, {b}{tail}", 0, ALL)
        if k == 12:
            cc = r.choice(CC)
            if r.random() < 0.5:
                return self.emit(f"set{cc} {self.rm('b')}", CC_READS[cc])
            s = r.choice("wlq")
            return self.emit(f"cmov{cc}{s} {self.rm(s)}, {self.reg(s)}", CC_READS[cc])
        if k == 13:                  # multiply
            form = r.randrange(3)
            if form == 0:
                op = r.choice(["mul", "imul"])
                return self.emit(f"{op}{sfx} {self.rm(sfx)}", 0, CF | OF, ALL)
            s = r.choice("wlq")
            if form == 1:
                return self.emit(f"imul{s} {self.rm(s)}, {self.reg(s)}", 0, CF | OF, ALL)
            return self.emit(f"imul{s} {self.imm('l' if s == 'q' else s)}, {self.rm(s)}, "
                             f"{self.reg(s)}", 0, CF | OF, ALL)
        if k == 14:                  # divide (may #DE: both must agree)
            op = r.choice(["div", "idiv"])
            d = self.reg(sfx, False)
            if d in ("%al", "%ax", "%eax", "%rax", "%dl", "%dx", "%edx", "%rdx"):
                d = {"b": "%bl", "w": "%bx", "l": "%ebx", "q": "%rbx"}[sfx]
            self.lines.append(f"or{sfx} $1, {d}")
            if r.random() < 0.7:     # make the quotient fit most of the time
                if sfx == "b":
                    self.lines.append("movzbw %al, %ax")
                else:
                    a = {"w": "%dx", "l": "%edx", "q": "%rdx"}[sfx]
                    self.lines.append(f"xor{sfx} {a}, {a}")
            return self.emit(f"{op}{sfx} {d}", 0, 0, ALL)
        if k == 15:
            op = r.choice(["bt", "bts", "btr", "btc"])
            s = r.choice("wlq")
            if r.random() < 0.5:
                return self.emit(f"{op}{s} ${r.randrange(BITS[s])}, {self.rm(s)}", 0, CF,
                                 ALL)
            return self.emit(f"{op}{s} {self.reg(s, False)}, {self.reg(s)}", 0, CF, ALL)
        if k == 16:
            s = r.choice("wlq")
            src = self.reg(s, False)
            self.lines.append(f"or{s} $0x10, {src}")      # nonzero source: defined result
            return self.emit(f"{r.choice(['bsf', 'bsr'])}{s} {src}, {self.reg(s, False)}", 0,
                             ZF, ALL)
        if k == 17:
            return self.emit(r.choice(["cbtw", "cwtl", "cltq", "cwtd", "cltd", "cqto"]))
        if k == 18:
            op = r.choice(["clc", "stc", "cmc", "lahf", "sahf"])
            if op == "cmc":
                return self.emit(op, CF, CF)
            if op == "lahf":
                return self.emit(op, CF | PF | AF | ZF | SF)
            if op == "sahf":
                return self.emit(op, 0, CF | PF | AF | ZF | SF)
            return self.emit(op, 0, CF)
        if k == 19:                  # push/pop pairs
            a = self.reg("q")
            b = self.reg("q")
            if r.random() < 0.3:
                return self.emit(f"push {self.imm('l')}\npop {b}")
            if r.random() < 0.3 and self.memory:
                m = self.mem("q")
                return self.emit(f"pushq {m}\npopq {self.mem('q')}")
            return self.emit(f"push {a}\npop {b}")
        if k == 20:
            s = r.choice("lq")
            return self.emit(f"bswap {self.reg(s, False)}")
        if k == 21 and self.memory:  # string instructions with small counts
            op = r.choice(["movs", "stos", "lods", "cmps", "scas"])
            s = r.choice("bwlq")
            n = r.randrange(0, 6)
            rep = r.choice(["", "rep ", "repe " if op in ("cmps", "scas") else "rep ",
                            "repne " if op in ("cmps", "scas") else ""])
            self.lines.append(f"leaq {r.randrange(0, 0x700)}(%r15), %rsi")
            self.lines.append(f"leaq {r.randrange(0x800, 0xF00)}(%r15), %rdi")
            self.lines.append(f"movl ${n}, %ecx")
            if r.random() < 0.3:
                self.lines.append("std")
                self.lines.append("addq $0x40, %rsi")
                self.lines.append("addq $0x40, %rdi")
            d = ALL if op in ("cmps", "scas") else 0
            ok = self.emit(f"{rep}{op}{s}", 0, d if rep == "" else 0, d if rep != "" else 0)
            self.lines.append("cld")
            return ok
        if k == 22:                  # shld/shrd
            op = r.choice(["shld", "shrd"])
            s = r.choice("wlq")
            c = r.randrange(1, 16 if s == "w" else 32)
            return self.emit(f"{op}{s} ${c}, {self.reg(s, False)}, {self.rm(s)}", 0,
                             SF | ZF | PF | CF | (OF if c == 1 else 0), ALL)
        # a short loop
        n = r.randrange(1, 8)
        self.label += 1
        body = []
        g = Gen(self.r, self.memory)
        g.defined = self.defined
        for _ in range(r.randrange(1, 4)):
            g.one()
        body = "\n".join(x for x in g.lines if "%ecx" not in x and "%rcx" not in x and
                         "%cx" not in x and "%cl" not in x and "%ch" not in x and "lods" not in x
                         and "rep" not in x and "movs" not in x and "stos" not in x
                         and "cmps" not in x and "scas" not in x)
        self.lines.append(f"movl ${n}, %ecx\n{self.label}:\n{body}\ndecl %ecx\njnz {self.label}b")
        self.defined = (self.defined & CF) | (OF | SF | ZF | AF | PF)
        self.defined &= ~CF if body else ALL
        return True


def program(r, n=12, memory=True) -> tuple[str, int]:
    """(program text, flags defined at its end)."""
    g = Gen(r, memory)
    while len(g.lines) < n:
        g.one()
    return "\n".join(g.lines), g.defined


def initial_regs(r) -> dict:
    regs = {n: r.choice([0, 1, -1, r.randrange(1 << 64), r.randrange(1 << 32),
                         r.randrange(256), 1 << 63]) & (2**64 - 1) for n in R.GPR_NAMES}
    regs["rsp"] = 0x3F00000
    regs["r15"] = 0x200000
    regs["rflags"] = 0x2 | r.choice([0, 0x1, 0x40, 0x80, 0x800, 0x8D5, 0x4, 0x10])
    return regs
