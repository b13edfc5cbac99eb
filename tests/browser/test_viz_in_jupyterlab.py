"""The views in a real JupyterLab: run a lab, drive the explorer and the decoder.

Marked ``browser`` (by conftest); runs in ``make test`` when Chromium is there.
"""

import os

import pytest

expect = pytest.importorskip(
    "playwright.sync_api", reason="the browser test needs the 'playwright' Python package "
    "(pip install -e '.[test]'); never run `playwright install`").expect

from .conftest import ARTIFACTS
from .jlab import error_outputs, open_notebook, run_all

KVA2 = 0xFFFF_8000_0010_1000           # the fixture's second page, frame 0x1234


def test_explorer_and_decoder_through_the_kernel(lab_page, jupyter_server):
    page = lab_page
    open_notebook(page, jupyter_server, os.environ.get("XENLAB_BROWSER_OPEN", "viz_lab.ipynb"))
    run_all(page)
    assert error_outputs(page) == []
    assert page.locator(".jp-OutputArea-output:has-text('Error displaying widget')").count() == 0

    ex = page.locator(".xenlab-ptexplorer").first
    result = ex.locator(".xenlab-ptexplorer-result")
    expect(result).to_contain_text("machine address")          # the fixed boot
    walk = ex.locator(".xenlab-ptexplorer-walk")
    expect(walk).to_contain_text("PML4E")

    # type another VA: the kernel walks it and the page shows the new result
    va = ex.locator(".xenlab-ptexplorer-va input")
    va.fill(f"{KVA2:#x}")
    va.press("Enter")
    expect(result).to_contain_text("0x1234000")
    expect(walk).to_contain_text("mfn 0x1234")

    # flip the present bit of that PTE in the decoder: the walk now faults
    dec = ex.locator(".xenlab-ptedecoder")
    expect(dec.locator(".xenlab-ptedecoder-entry")).to_contain_text("PTE")
    p_bit = dec.locator(".xenlab-ptedecoder-bit-0")
    p_bit.click()
    expect(dec.locator(".xenlab-ptedecoder-verdict")).to_contain_text("accepted")
    expect(result).to_contain_text("#PF")
    expect(dec.locator(".xenlab-ptedecoder-outcome")).to_contain_text("error code 0x2")
    p_bit.click()                                              # and back
    expect(result).to_contain_text("0x1234000")

    # the slider moves over mapped pages: one step right is the next page
    handle = ex.locator(".xenlab-ptexplorer-va-slider .noUi-handle[role='slider']")
    handle.focus()
    handle.press("ArrowLeft")
    expect(va).to_have_value(f"{KVA2 - 0x1000:#018x}")

    # the memory map drew a picture
    img = page.locator(".xenlab-memmap-figure").first
    expect(img).to_be_visible()
    assert img.evaluate("i => i.naturalWidth") > 300

    assert error_outputs(page) == []
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    ex.screenshot(path=str(ARTIFACTS / "ptexplorer.png"))
    page.screenshot(path=str(ARTIFACTS / "viz_lab.png"))
