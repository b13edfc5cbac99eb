"""The instruction table (xenlab.asm.isa) drives the CPU's tests: every form is
assembled by xenlab.asm and by GNU as (same bytes), decoded by the CPU to the
length capstone finds, executed without #UD, and compared with unicorn where
unicorn is a reliable oracle.  The decoder accepts exactly the table's opcodes
(plus the few 32-bit-only ones that enter long mode), and docs/cpu.md shows
the table as generated."""

import pathlib
import random

import capstone
import pytest

from xenlab.asm import assemble as xasm
from xenlab.asm import isa
from xenlab.machine.cpu import decoder as D
from xenlab.machine.cpu.decoder import decode_bytes
from xenlab.machine.snippet import CODE, snippet_vcpu

from .harness import DATA, HAVE_AS, Pair, assemble, assemble_many
from .isa_cases import instance, oracle
from .progs import initial_regs, program

CS = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
FORMS = [f for f in isa.FORMS if f.group != "prefix"]
ROOT = pathlib.Path(__file__).parents[3]


def _cases(seed):
    r = random.Random(seed)
    return [(f, *instance(f, r)) for f in FORMS]


def _bytes(before, line, after):
    """(whole program, offset of the instruction) as xenlab.asm makes them."""
    prog = xasm("\n".join(x for x in (before, "insn:", line, after) if x), base=CODE)
    return prog.text, prog.symbols["insn"] - CODE


@pytest.fixture(scope="module")
def cases():
    return [(f, b, l, a, *_bytes(b, l, a)) for f, b, l, a in _cases(20250101)]


def test_docs_table_is_the_instruction_table():
    doc = (ROOT / "docs" / "cpu.md").read_text()
    assert isa.check_docs(doc), "regenerate: python -m xenlab.asm --update-table docs/cpu.md"


@pytest.mark.skipif(not HAVE_AS, reason="GNU as not installed")
def test_every_form_assembles_to_the_bytes_gnu_as_makes(cases):
    gas = assemble_many(["\n".join(x for x in (b, l, a) if x) for _, b, l, a, *_ in cases])
    for (f, b, l, a, whole, _), theirs in zip(cases, gas):
        assert whole == theirs, (f.att, l, whole.hex(), theirs.hex())


def test_every_form_decodes_to_its_length(cases):
    for f, b, l, a, whole, off in cases:
        insn = next(CS.disasm(whole[off:], 0), None)
        d = decode_bytes(whole[off:off + 15])
        assert d["op"] is not None, (f.att, l, whole[off:].hex())
        assert insn is not None and d["length"] == insn.size, (f.att, l, d, insn)


def test_every_form_executes_without_ud(cases):
    for f, b, l, a, whole, off in cases:
        regs = {"rbx": 0x18, "rcx": 5, "rsi": DATA + 0x200, "rdi": DATA + 0x400,
                "rbp": 0x3EFFF00, "r15": DATA, "rdx": 0x80}
        v = snippet_vcpu(whole, regs=regs, data={DATA: bytes(range(256)) * 8})
        v.breakpoints.add(CODE + len(whole))
        ex = v.run_native(1000)
        if f.mnemonic != "ud2":
            assert not (ex.reason == "exception" and ex.vector == 6 and ex.rip == CODE + off), \
                (f.att, l)


@pytest.fixture(scope="module")
def pair():
    return Pair()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_forms_agree_with_unicorn(pair, seed):
    """Each form unicorn can judge, with random registers and data: registers,
    memory and the flags the SDM defines for it must match."""
    r = random.Random(seed)
    done = 0
    for f, b, l, a in _cases(seed):
        mask = oracle(f)
        if mask is None:
            continue
        code = xasm("\n".join(x for x in (b, l, a) if x)).text
        regs = initial_regs(r)
        regs.update(rbx=0x18, rcx=r.choice([0, 1, 5, 0x41]), rsi=DATA + 0x200, rdi=DATA + 0x400,
                    rbp=0x3EFFF00, r15=DATA)
        data = bytes(r.randrange(256) for _ in range(0x800)) + bytes(0x800)
        pair.compare(code, regs, data, mask, f"{f.att}: {l}")
        done += 1
    assert done > 350


def test_decoder_accepts_exactly_the_table():
    """Every opcode (and /digit) the decoder knows in 64-bit mode is a form of the
    table; the only extras are marked invalid in 64-bit mode (32-bit boot code)."""
    table = isa.opcode_map()
    keys = {(op, ext) for op, ext in table}
    extra = []
    for two, t in ((False, D.T1), (True, D.T2)):
        for b in range(256):
            e = int(t[b])
            if not e & D.T_VALID or e & D.T_NO64:
                continue
            op = (b"\x0f" if two else b"") + bytes([b])
            g = (e >> D.T_GROUP_SHIFT) & 31
            if g:
                for digit in range(8):
                    if int(D.G[g * 8 + digit]) & D.T_VALID and (op, digit) not in keys:
                        extra.append((op.hex(), digit))
            elif (op, None) not in keys and not any(k[0].startswith(op) for k in keys):
                extra.append((op.hex(), None))
    assert not extra, f"decoder opcodes missing from xenlab/asm/isa.py: {extra}"
    # 0F 01 with a register ModRM: SWAPGS only
    assert decode_bytes(bytes.fromhex("0f01f8"))["op"] == "SWAPGS"
    assert decode_bytes(bytes.fromhex("0f01f9"))["op"] is None


def test_legacy_only_opcodes_are_ud_in_64_bit_mode():
    for hexcode in ("06", "07", "1e", "1f", "40", "4f", "ce", "ea0000000000"):
        d = D.decode_bytes(bytes.fromhex(hexcode))
        assert d["op"] is None or hexcode.startswith("4"), hexcode   # 40-4F are REX in 64-bit mode
        assert D.decode_bytes(bytes.fromhex(hexcode + "90" * 6), mode64=False)["op"] is not None


@pytest.mark.skipif(not HAVE_AS, reason="GNU as not installed")
def test_decoder_lengths_match_capstone_on_generated_programs():
    r = random.Random(7)
    texts = [program(r, 20)[0] for _ in range(100)]
    for code in assemble_many(texts):
        for insn in CS.disasm(code, 0):
            d = decode_bytes(code[insn.address:insn.address + 15])
            assert d["length"] == insn.size, (insn.mnemonic, insn.op_str, d)


def test_unsupported_encodings_are_ud():
    # ud2, push %fs, fld, movups, vzeroupper, prefetchnta, cmpxchg8b, test /1 alias, sal /6 alias
    for hexcode in ("0f0b", "0fa0", "d9c0", "0f10c1", "c5f877", "0f1800", "0fc70f", "f6c801",
                    "d0f0"):
        v = snippet_vcpu(bytes.fromhex(hexcode) + b"\xf4")
        ex = v.run()
        assert (ex.reason, ex.vector) == ("exception", 6), hexcode


def test_gas_assembles_the_same_examples():
    if not HAVE_AS:
        pytest.skip("GNU as not installed")
    assert assemble("cqto\nenter $16, $1") == xasm("cqto\nenter $16, $1").text
