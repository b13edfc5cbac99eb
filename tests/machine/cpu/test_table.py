"""Every row of the supported-subset table assembles (GNU as), decodes to the
same length capstone finds, and executes without #UD; docs/cpu.md carries the
table as generated; the decoder agrees with capstone on lengths."""

import pathlib
import random

import capstone
import pytest

from xenlab.machine.cpu.decoder import decode_bytes
from xenlab.machine.cpu.table import SUBSET, markdown
from xenlab.machine.snippet import snippet_vcpu

from .harness import HAVE_AS, assemble, assemble_many
from .progs import program

pytestmark = pytest.mark.skipif(not HAVE_AS, reason="GNU as not installed")
CS = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)


def test_docs_table_is_generated_from_the_instruction_table():
    doc = (pathlib.Path(__file__).parents[3] / "docs" / "cpu.md").read_text()
    assert markdown() in doc


@pytest.mark.parametrize("row", SUBSET, ids=[r[0] for r in SUBSET])
def test_every_row_assembles_decodes_and_executes(row):
    example = row[2]
    code = assemble(example)
    d = decode_bytes(code)
    assert d["length"] == len(code), (example, d)
    insn = next(CS.disasm(code, 0x100000))
    assert insn.size == len(code)
    # run it at CPL 0 with registers pointing at mapped memory; what matters is
    # that it is not #UD (other faults, e.g. #GP from a bad MSR, are fine)
    regs = {r: 0x200000 for r in ("rax", "rbx", "rdi", "rsi", "rbp")}
    regs.update(rcx=0xC0000100, rdx=0x80)
    v = snippet_vcpu(code, regs=regs)
    v.memory.write_bytes(0x200000, bytes(range(16)) * 4)
    v.breakpoints.add(0x100000 + len(code))
    ex = v.run_native(1000)
    assert not (ex.reason == "exception" and ex.vector == 6), (example, ex)


def test_decoder_lengths_match_capstone_on_generated_programs():
    r = random.Random(7)
    texts = [program(r, 20)[0] for _ in range(100)]
    for code in assemble_many(texts):
        for insn in CS.disasm(code, 0):
            d = decode_bytes(code[insn.address:insn.address + 15])
            assert d["length"] == insn.size, (insn.mnemonic, insn.op_str, d)


def test_unsupported_encodings_are_ud():
    for hexcode in ("0f0b", "0fa0", "d9c0", "0f10c1", "c5f877"):   # ud2 push fs fld movups vzeroupper
        v = snippet_vcpu(bytes.fromhex(hexcode) + b"\xf4")
        ex = v.run()
        assert (ex.reason, ex.vector) == ("exception", 6), hexcode
