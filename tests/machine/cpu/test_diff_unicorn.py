"""Differential tests: generated programs on xenlab's CPU and on unicorn, same
code, same page tables; registers, the SDM-defined flags and memory must match."""

import random

import pytest
from hypothesis import given, settings, strategies as st

from .harness import HAVE_AS, Pair, assemble, assemble_many
from .progs import initial_regs, program

pytestmark = pytest.mark.skipif(not HAVE_AS, reason="GNU as/objcopy not installed")


@pytest.fixture(scope="module")
def pair():
    return Pair()


def _data(r):
    return bytes(r.randrange(256) for _ in range(0x100)) * 16 + bytes(0x1000)


def check(pair, r, n, memory=True):
    text, defined = program(r, n, memory)
    code = assemble(text)
    pair.compare(code, initial_regs(r), _data(r), defined, text)


@given(st.randoms(use_true_random=False))
@settings(max_examples=300)
def test_straight_line_registers_only(pair, r):
    check(pair, r, 10, memory=False)


@given(st.randoms(use_true_random=False))
@settings(max_examples=300)
def test_straight_line_with_memory_and_loops(pair, r):
    check(pair, r, 14)


def test_seeded_batch(pair):
    """2000 programs assembled in one go (the bulk of the default run)."""
    r = random.Random(20240501)
    progs = [program(r, 16) for _ in range(2000)]
    codes = assemble_many([p[0] for p in progs])
    for (text, defined), code in zip(progs, codes):
        pair.compare(code, initial_regs(r), _data(r), defined, text)


@pytest.mark.slow
@given(st.randoms(use_true_random=False))
@settings(max_examples=20000)
def test_many_programs_slow(pair, r):
    check(pair, r, 30)
