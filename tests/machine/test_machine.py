import pytest

from xenlab.machine import Machine, parse_size
from xenlab.machine.e820 import E820_RAM, pc_layout, ram_frames


@pytest.mark.parametrize("text,value", [("8G", 8 << 30), ("512M", 512 << 20), ("64 GiB", 64 << 30),
                                        ("1.5G", 3 << 29), (4096, 4096), ("2T", 2 << 40)])
def test_parse_size(text, value):
    assert parse_size(text) == value


def test_parse_size_names_the_bad_value():
    with pytest.raises(ValueError, match="memory='eight'"):
        parse_size("eight")


def test_pc_layout_puts_ram_around_the_pci_hole():
    e = pc_layout(8 << 30)
    ram = sum(x.length for x in e if x.type == E820_RAM)
    assert ram == (8 << 30) - (1 << 20) + 0x9FC00
    assert max(x.end for x in e if x.type == E820_RAM) == (1 << 32) + (5 << 30)
    runs = ram_frames(e)
    assert runs[0] == (0, 0x9F) and runs[1] == (0x100, (3 << 18) - 0x100)


def test_machine_is_cheap_and_seeded():
    a, b = Machine("64G", seed=3), Machine("64G", seed=3)
    assert a.memory.touched_frames == 0
    assert a.rng.integers(1 << 30) == b.rng.integers(1 << 30)
    assert a.e820_frame().type.tolist().count(E820_RAM) == 3
