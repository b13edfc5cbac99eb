"""What all views share."""

import pytest

from xenlab.viz.base import fmt_size, hexint


@pytest.mark.parametrize("text,value", [("0x1f", 31), ("1f", 31), ("ffff_8000_0000_0000",
                                        0xFFFF800000000000), ("0t4096", 4096), (12, 12),
                                        (" 0X10 ", 16), ("1000", 0x1000)])
def test_hexint(text, value):
    assert hexint(text) == value


@pytest.mark.parametrize("bad", ["", "0xZZ", "hello", "0t12a"])
def test_hexint_names_bad_text(bad):
    with pytest.raises(ValueError, match="address"):
        hexint(bad)


def test_fmt_size():
    assert [fmt_size(x) for x in (512, 4096, 2 << 20, 3 << 29, 64 << 30)] == \
        ["512", "4K", "2M", "1.5G", "64G"]
