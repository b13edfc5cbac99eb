"""Shared test machinery: assemble with GNU as, run the same code on xenlab's
vCPU and on unicorn with the same page tables, compare."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import tempfile

import numpy as np

from xenlab.machine import regs as R
from xenlab.machine.cpu import Vcpu
from xenlab.machine.memory import Memory
from xenlab.machine.snippet import CODE, STACK, STAR, identity_map, setup_gdt

HAVE_AS = shutil.which("as") is not None and shutil.which("objcopy") is not None
DATA = 0x200000            # scratch data page(s) the generated programs use (r15)
DATA_LEN = 0x2000
ARITH = R.FLAG_CF | R.FLAG_PF | R.FLAG_AF | R.FLAG_ZF | R.FLAG_SF | R.FLAG_OF
GPRS = R.GPR_NAMES


@functools.lru_cache(maxsize=4096)
def assemble(text: str) -> bytes:
    """Assemble AT&T x86-64 ``text`` with GNU as; the bytes of .text."""
    with tempfile.TemporaryDirectory() as d:
        src, obj, out = (os.path.join(d, n) for n in ("a.s", "a.o", "a.bin"))
        with open(src, "w") as f:
            f.write(".text\n" + text + "\n")
        subprocess.run(["as", "--64", "-o", obj, src], check=True, capture_output=True)
        subprocess.run(["objcopy", "-O", "binary", "-j", ".text", obj, out], check=True)
        return open(out, "rb").read()


def assemble_many(texts: list[str]) -> list[bytes]:
    """Assemble many programs in one run of as (each between two labels)."""
    body = []
    for i, t in enumerate(texts):
        body.append(f"prog_{i}:\n{t}\n")
    body.append(f"prog_{len(texts)}:\n")
    with tempfile.TemporaryDirectory() as d:
        src, obj, out = (os.path.join(d, n) for n in ("a.s", "a.o", "a.bin"))
        with open(src, "w") as f:
            f.write(".text\n" + "".join(body))
        subprocess.run(["as", "--64", "-o", obj, src], check=True, capture_output=True)
        subprocess.run(["objcopy", "-O", "binary", "-j", ".text", obj, out], check=True)
        blob = open(out, "rb").read()
        syms = subprocess.run(["nm", obj], check=True, capture_output=True, text=True).stdout
    addr = {}
    for line in syms.splitlines():
        v, _, name = line.split()
        if name.startswith("prog_"):
            addr[int(name[5:])] = int(v, 16)
    return [blob[addr[i]:addr[i + 1]] for i in range(len(texts))]


class Ours:
    """A reusable long-mode vCPU on identity-mapped memory (the snippet layout)."""

    def __init__(self, cpl=0):
        self.mem = Memory()
        self.cr3 = identity_map(self.mem)
        self.v = Vcpu(self.mem)
        setup_gdt(self.v)
        self.v.set_long_mode(self.cr3, cpl=cpl)
        self.v.state[R.STAR] = STAR
        self.v.intercept = range(32)
        self.v.syscall_exits = True

    def run(self, code: bytes, regs: dict, data: bytes, max_instructions=100_000):
        self.mem.write_bytes(CODE, code + b"\x90\xf4")
        self.mem.write_bytes(DATA, data)
        for k, val in regs.items():
            self.v.set(k, val)
        self.v.set("rip", CODE)
        ex = self.v.run_native(max_instructions)
        return ex, {n: self.v.get(n) for n in GPRS + ("rip", "rflags")}, \
            self.mem.read_bytes(DATA, len(data))


class Unicorn:
    """unicorn set up with the same page tables, control registers and layout."""

    def __init__(self, ours: Ours):
        import unicorn
        import unicorn.x86_const as X
        self.X = X
        self.uc = uc = unicorn.Uc(unicorn.UC_ARCH_X86, unicorn.UC_MODE_64)
        uc.mem_map(0, 64 << 20)
        # copy the page tables (and GDT) that identity_map/setup_gdt wrote
        tables = ours.mem.read_bytes(0x3FC0000, 0x40000)
        uc.mem_write(0x3FC0000, tables)
        uc.reg_write(X.UC_X86_REG_CR3, ours.cr3)
        uc.reg_write(X.UC_X86_REG_CR4, R.CR4_PAE)
        uc.reg_write(X.UC_X86_REG_MSR, (0xC0000080, R.EFER_LME | R.EFER_LMA | R.EFER_NXE
                                         | R.EFER_SCE))
        uc.reg_write(X.UC_X86_REG_CR0, R.CR0_PE | R.CR0_PG | R.CR0_WP | R.CR0_ET)
        self.regmap = {n: getattr(X, f"UC_X86_REG_{n.upper()}") for n in GPRS}
        self.regmap["rip"] = X.UC_X86_REG_RIP
        self.regmap["rflags"] = X.UC_X86_REG_EFLAGS

    def run(self, code: bytes, regs: dict, data: bytes, max_instructions=100_000):
        import unicorn
        uc = self.uc
        # a trailing NOP: unicorn misses a fault in the last instruction before `until`
        uc.mem_write(CODE, code + b"\x90\xf4")
        uc.ctl_remove_cache(CODE, CODE + len(code) + 16)
        uc.mem_write(DATA, data)
        for k, v in regs.items():
            uc.reg_write(self.regmap[k], v & (2**64 - 1))
        err = None
        try:
            uc.emu_start(CODE, CODE + len(code) + 1, count=max_instructions)
        except unicorn.UcError as e:
            err = e
        out = {n: uc.reg_read(self.regmap[n]) for n in GPRS + ("rip", "rflags")}
        if err is None and out["rip"] != CODE + len(code) + 1:
            err = "stopped early"        # unicorn sometimes stops at a fault silently
        return err, out, bytes(uc.mem_read(DATA, len(data)))


class Pair:
    def __init__(self):
        self.ours = Ours()
        self.uc = Unicorn(self.ours)

    def compare(self, code: bytes, regs: dict, data: bytes, flag_mask: int, text=""):
        """Run on both; assert equal registers, data and the flags in ``flag_mask``."""
        ex, a, ma = self.ours.run(code, regs, data)
        err, b, mb = self.uc.run(code, regs, data)
        ctx = f"\n--- program ---\n{text}\n--- ours: {ex} ---\nregs={ {k: hex(v) for k, v in regs.items()} }"
        if err is not None:
            # unicorn stopped on an exception: we must have exited with one there
            assert ex.reason == "exception", f"unicorn raised {err}, we exited {ex}{ctx}"
            assert a["rip"] == b["rip"], f"fault RIP {a['rip']:#x} vs {b['rip']:#x}{ctx}"
            return ex
        assert ex.reason == "hlt", f"unicorn ran to the end, we exited {ex}{ctx}"
        for n in GPRS:
            assert a[n] == b[n], f"{n}: ours {a[n]:#x} unicorn {b[n]:#x}{ctx}"
        fm = flag_mask | R.FLAG_DF | R.FLAG_IF
        assert a["rflags"] & fm == b["rflags"] & fm, \
            f"rflags: ours {a['rflags']:#x} unicorn {b['rflags']:#x} mask {fm:#x}{ctx}"
        assert ma == mb, f"data differs at {next(i for i in range(len(ma)) if ma[i] != mb[i]):#x}{ctx}"
        return ex
