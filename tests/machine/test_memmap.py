"""Resizing a profile's E820 map for another amount of DRAM."""

import pytest

from xenlab.machine.e820 import E820_ACPI, E820_NVS, E820_RAM, E820_RESERVED
from xenlab.machine.firmware.memmap import dram_bytes, resize, top_of_low_dram
from xenlab.machine.platform import _e820
from xenlab.machine.profile import list_profiles, load_profile

GIB = 1 << 30


def check_map(entries):
    for a, b in zip(entries, entries[1:]):
        assert a.end <= b.base, f"{a} overlaps {b}"


@pytest.mark.parametrize("name", list_profiles())
@pytest.mark.parametrize("size", [64 * GIB, 8 * GIB, 1 * GIB, 256 << 20])
def test_resize_is_sane(name, size):
    orig = _e820(load_profile(name))
    new = resize(orig, size)
    check_map(new)
    assert abs(dram_bytes(new) - size) <= (4 << 20)      # 1 MiB rounding, reserved slack
    # fixed regions at or above the top of low DRAM never move
    top = top_of_low_dram(orig)
    fixed = [e for e in orig if e.type == E820_RESERVED and e.base >= top]
    for e in fixed:
        assert e in new
    # ACPI tables and NVS survive (maybe moved) with their sizes
    for t in (E820_ACPI, E820_NVS):
        assert sorted(e.length for e in orig if t == e.type and e.base < 1 << 32) == \
            sorted(e.length for e in new if t == e.type and e.base < 1 << 32)
    # the first megabyte is untouched
    assert [e for e in new if e.base < 1 << 20] == [e for e in orig if e.base < 1 << 20]
    if size >= top:
        assert [e for e in new if e.base < top] == [e for e in orig if e.base < top]
    else:
        assert max(e.end for e in new if e.type == E820_RAM) <= size


def test_resize_skips_device_windows_above_4g():
    orig = _e820(load_profile("qemu-i440fx"))
    new = resize(orig, 8 * GIB, avoid=[(0x1_8000_0000, 0x1_9000_0000)])
    ram_hi = [e for e in new if e.type == E820_RAM and e.base >= 1 << 32]
    assert len(ram_hi) == 2 and ram_hi[0].end == 0x1_8000_0000 and ram_hi[1].base == 0x1_9000_0000


def test_shrinking_moves_acpi_under_the_new_top():
    orig = _e820(load_profile("sun-x2200m2"))
    new = resize(orig, 1 * GIB)
    acpi = [e for e in new if e.type == E820_ACPI]
    ram_top = max(e.end for e in new if e.type == E820_RAM)
    assert ram_top <= acpi[0].base < ram_top + 0x1000    # stacked right above RAM
    assert acpi[0].end <= 1 * GIB
    assert not any(e.type == E820_RAM and e.base >= 1 << 32 for e in new)


def test_too_small_and_too_big_are_named():
    orig = _e820(load_profile("qemu-i440fx"))
    with pytest.raises(ValueError, match="at least 32 MiB"):
        resize(orig, 1 << 20)
    with pytest.raises(ValueError, match="does not fit below the 40-bit"):
        resize(orig, 2 << 40)
