"""The instruction table: consistency, query API, the subset the issue asks for, docs in sync."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from xenlab.asm import isa

ROOT = Path(__file__).resolve().parents[2]


def test_every_form_is_well_formed():
    for f in isa.FORMS:
        assert f.desc and f.intel and f.group, f
        assert all(k in isa.KIND_SIZE for k in f.operands), f
        roles = f.roles
        assert roles.count("reg") <= 1 and roles.count("rm") <= 1, f
        if f.modrm:
            assert "rm" in roles, f
            assert (f.ext is None) == ("reg" in roles), f
        else:
            assert "rm" not in roles and "reg" not in roles, f
        assert f.plus_r == ("opreg" in roles), f
        assert bool(f.imm) == ("imm" in roles), f
        assert bool(f.rel) == ("rel" in roles), f
        assert re.fullmatch(r"[OSZAPC]*( [DIT]+)?( IOPL)?|[DI]|all \(.*\)", f.flags), f
        assert set(f.undefined) <= set("OSZAPC") and set(f.reads) <= set("OSZAPCD"), f
        assert isa.FORMS[f.index] is f


def test_spellings_are_unambiguous():
    # one spelling never means two different operand sizes unless the operands decide
    for sp, forms in isa.SPELLINGS.items():
        fixed = {f.size for f in forms if sp not in (f.mnemonic,) + f.aliases}
        assert len(fixed) <= 1, (sp, fixed)
    assert {f.mnemonic for f in isa.forms("addq")} == {"add"}
    assert {f.size for f in isa.forms("addq")} == {64}
    assert {f.size for f in isa.forms("add")} == {8, 16, 32, 64}
    assert [f.cc for f in isa.forms("jz")] == [4, 4]
    assert isa.forms("jz") == isa.forms("je")
    assert isa.forms("nosuch") == ()
    assert "movabsq" in isa.mnemonics() and "int3" in isa.mnemonics()


REQUIRED = """mov movabs movzb movzw movsb movsw movsl lea xchg cmpxchg push pop add adc sub sbb and or
xor cmp test inc dec neg not shl shr sar rol ror mul imul div idiv jmp call ret je jne set cmov movs stos
lods cmps scas in out ins outs cli sti hlt nop pause pushf popf invlpg rdmsr wrmsr swapgs cpuid rdtsc
syscall sysret int int3 iret lgdt lidt ltr ljmp lock rep repe repne""".split()


def test_the_issue_subset_is_in_the_table():
    have = {f.mnemonic for f in isa.FORMS} | {f.family for f in isa.FORMS}
    have |= {f.mnemonic[:-1] for f in isa.FORMS if f.family == "setcc" and f.cc == 4}
    have |= {f.mnemonic[:-1] for f in isa.FORMS if f.family == "cmovcc" and f.cc == 4}
    have |= {f.mnemonic[:-1] for f in isa.FORMS if f.family == "jcc" and f.cc == 4}
    missing = [m for m in REQUIRED if m not in have and m + "e" not in have]
    assert not missing
    # MOV to and from CR0/CR2/CR3/CR4; IMUL with 1, 2 and 3 operands; shifts by 1, %cl, imm8
    assert {f.operands for f in isa.forms("mov") if f.intel == "MOV CR"} == {("cr", "r64"), ("r64", "cr")}
    assert {len(f.operands) for f in isa.forms("imulq")} == {1, 2, 3}
    assert {f.operands[0] for f in isa.forms("shlq")} == {"1", "cl", "imm8"}
    assert {f.operands for f in isa.forms("inb")} == {("imm8", "al"), ("dx", "al")}
    assert {f.operands for f in isa.forms("outl")} == {("eax", "imm8"), ("eax", "dx")}


def test_privilege_and_iopl_marks():
    priv = {f.intel for f in isa.FORMS if f.privileged}
    assert priv == {"HLT", "MOV CR", "INVLPG", "LGDT", "LIDT", "LTR", "RDMSR", "WRMSR", "SWAPGS",
                    "SYSRET", "CLTS", "INVD", "WBINVD"}
    iopl = {f.intel for f in isa.FORMS if f.iopl}
    assert iopl == {"IN", "OUT", "INS", "OUTS", "CLI", "STI"}
    assert all(not f.privileged for f in isa.FORMS if f.intel in ("CPUID", "RDTSC", "SYSCALL", "INT"))


def test_encoding_text_follows_the_sdm_notation():
    by = {(f.mnemonic, f.operands, f.size): f for f in isa.FORMS}
    assert by[("add", ("simm8", "rm64"), 64)].encoding == "REX.W 83 /0 ib"
    assert by[("mov", ("imm64", "r64"), 64)].encoding == "REX.W B8+r io"
    assert by[("add", ("imm16", "ax"), 16)].encoding == "66 05 iw"
    assert by[("imul", ("rm32", "r32"), 32)].encoding == "0F AF /r"
    assert by[("push", ("r64",), 64)].encoding == "50+r"
    assert isa.forms("jne")[1].encoding == "0F 80+cc cd"
    assert by[("movabs", ("moffs8", "al"), 8)].encoding == "A0 moffs64"


def test_opcode_map_reaches_every_form():
    m = isa.opcode_map()
    seen = {f.index for forms in m.values() for f in forms}
    assert seen == {f.index for f in isa.FORMS if f.group != "prefix"}
    assert {f.mnemonic for f in m[(b"\x0f\x01", 7)]} == {"invlpg"}
    assert {f.mnemonic for f in m[(b"\x50", None)]} == {"push"}
    assert {f.mnemonic for f in m[(b"\x57", None)]} == {"push"}
    assert {f.mnemonic for f in m[(b"\x83", 7)]} == {"cmp"}


def test_registers():
    r = isa.REGISTERS
    assert r["r13d"].num == 13 and r["r13d"].size == 32 and r["r13d"].needs_rex
    assert r["sil"].needs_rex and not r["al"].needs_rex and r["ah"].high_byte and r["ah"].num == 4
    assert r["cr3"].kind == "cr" and r["gs"].kind == "sreg" and r["gs"].num == 5


def test_rendered_table_lists_every_row():
    text = isa.render_table()
    assert text.startswith(isa.TABLE_BEGIN) and text.endswith(isa.TABLE_END)
    rows = isa.table_rows()
    assert len(rows) > 250
    for r in rows:
        assert f"`{r['att']}` | `{r['encoding']}`" in text
    assert "`jCC rel8` | `70+cc cb`" in text
    assert isa.check_docs("x\n" + text + "\ny") and not isa.check_docs("no table here")
    assert isa.check_docs(isa.update_docs("a\n" + isa.TABLE_BEGIN + "\nold\n" + isa.TABLE_END + "\nb"))


@pytest.mark.parametrize("doc", ["docs/asm.md", "docs/cpu.md"])
def test_docs_include_the_current_table(doc):
    path = ROOT / doc
    if doc != "docs/asm.md" and (not path.exists() or isa.TABLE_BEGIN not in path.read_text()):
        pytest.skip(f"{doc} does not include the instruction table (yet)")
    assert isa.check_docs(path.read_text()), (
        f"{doc} has an outdated instruction table; regenerate it with "
        f"python -m xenlab.asm --update-table {doc}")
