"""The real labs in a real JupyterLab: run a student's copy of a lab in headless
Chromium, drive its widgets, and check what they show against the model.

Marked ``browser`` (by conftest); runs in ``make test`` when Chromium is there.
"""

import re

import nbformat
import pytest

expect = pytest.importorskip(
    "playwright.sync_api", reason="the browser test needs the 'playwright' Python package "
    "(pip install -e '.[test]'); never run `playwright install`").expect

from .conftest import ARTIFACTS, ROOT
from .jlab import error_outputs, open_notebook, run_all

KERNEL_ENTRY = 0xFFFF_FFFF_8000_1000        # dom0's entry point: kernel text, page 1


def lab_seed(name: str) -> int:
    nb = nbformat.read(ROOT / "labs" / name, as_version=4)
    setup = next(c for c in nb.cells if "setup" in c.metadata.get("tags", []))
    return int(re.search(r"(?m)^SEED = (\d+)", setup.source).group(1))


def model_walk(stage_name: str, name: str, va: int, fixed: bool):
    """The walk the notebook's boot must show, computed here on a model of our own."""
    from xenlab.lab import Stage, lab_profile
    seed = lab_seed(name)
    s = Stage(stage_name, profile=lab_profile(seed), seed=seed)
    if fixed:
        s.fix("all")
    s.boot()
    return s.kernel.cpus[0].vcpu.mmu.walk(va)


def test_tour_explorer_decoder_and_views(lab_page, jupyter_server):
    page = lab_page
    open_notebook(page, jupyter_server, "00_tour.ipynb")
    run_all(page)
    assert error_outputs(page) == []
    assert page.locator(".jp-OutputArea-output:has-text('Error displaying widget')").count() == 0

    # the student's copy: three questions unanswered, three red cards
    expect(page.locator(".xenlab-check")).to_have_count(3)
    expect(page.locator(".xenlab-check-fail")).to_have_count(3)
    # kmdb printed start_info
    expect(page.locator(".jp-OutputArea-output", has_text="nr_pages =").first).to_be_visible()

    ex = page.locator(".xenlab-ptexplorer").first
    result = ex.locator(".xenlab-ptexplorer-result")
    walk = ex.locator(".xenlab-ptexplorer-walk")
    expect(result).to_contain_text("machine address")          # start_info's page
    expect(walk).to_contain_text("PML4E")

    # move the VA to the kernel's entry point: the page shows the model's frame
    want = model_walk("iopl", "00_tour.ipynb", KERNEL_ENTRY, fixed=True)
    assert want.ok
    va = ex.locator(".xenlab-ptexplorer-va input")
    va.fill(f"{KERNEL_ENTRY:#x}")
    va.press("Enter")
    expect(result).to_contain_text(f"{want.maddr:#x}")
    expect(walk).to_contain_text(f"mfn {want.maddr >> 12:#x}")

    # flip bits of that PTE in the decoder: each goes to Xen as mmu_update
    dec = ex.locator(".xenlab-ptedecoder")
    verdict = dec.locator(".xenlab-ptedecoder-verdict")
    p_bit = dec.locator(".xenlab-ptedecoder-bit-0")
    p_bit.click()                                              # clear P: Xen accepts
    expect(verdict).to_contain_text("accepted")
    expect(result).to_contain_text("#PF")
    p_bit.click()                                              # and back
    expect(result).to_contain_text(f"{want.maddr:#x}")
    dec.locator(".xenlab-ptedecoder-bit-11").click()           # the debug Xen's own bit
    expect(verdict).to_contain_text("EINVAL")
    expect(result).to_contain_text(f"{want.maddr:#x}")         # refused: nothing changed

    # the memory map and the P2M drew pictures
    for css in (".xenlab-memmap-figure", ".xenlab-p2m-figure"):
        img = page.locator(css).first
        expect(img).to_be_visible()
        assert img.evaluate("i => i.naturalWidth") > 300

    assert error_outputs(page) == []
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    ex.screenshot(path=str(ARTIFACTS / "tour-ptexplorer.png"))
    page.screenshot(path=str(ARTIFACTS / "00_tour.png"), full_page=True)


def test_pci_lab_fault_and_kmdb(lab_page, jupyter_server):
    page = lab_page
    open_notebook(page, jupyter_server, "04_pci_config.ipynb")
    run_all(page)
    assert error_outputs(page) == []
    # the panic and kmdb's view of it
    expect(page.locator(".jp-OutputArea-output", has_text="BAD TRAP: type=e").first) \
        .to_be_visible()
    expect(page.locator(".jp-OutputArea-output", has_text="bios_pci_call+7").first) \
        .to_be_visible()
    # the explorer walks VA 0: not present at the first level, as the model says
    want = model_walk("pci_config", "04_pci_config.ipynb", 0, fixed=False)
    assert not want.ok
    ex = page.locator(".xenlab-ptexplorer").first
    expect(ex.locator(".xenlab-ptexplorer-result")).to_contain_text("#PF")
    expect(ex.locator(".xenlab-ptexplorer-result")).to_contain_text("PML4E")
    # the student's copy: every check card is red (the 2007 code), none errored
    cards = page.locator(".xenlab-check")
    assert cards.count() >= 7
    assert page.locator(".xenlab-check-pass").count() == 0
    assert page.locator(".xenlab-check-error").count() == 0
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "04_pci_config.png"), full_page=True)
