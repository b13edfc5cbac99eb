"""The questions and native checks of labs 08 (dma) and 09 (lowmem): answers
read from the 2007 boot of the variant, differing between variants; the
native checks fail (not run) on the 2007 code and pass on the fix."""

import pytest

from xenlab import checks
from xenlab.kmdb import Kmdb
from xenlab.lab import Stage

from .cardlib import card


def _vtop(stage, va):
    return Kmdb(stage).cmd(f"{va:#x}::vtop").data


@pytest.mark.parametrize("profile,seed", [("qemu-i440fx", 1), ("dell-optiplex755", 2)])
def test_dma_questions_read_the_2007_boot(profile, seed):
    s = Stage("dma", profile=profile, seed=seed)
    s.boot()
    assert not s.result.ok
    w = _vtop(s, s.kernel.bufcache)
    assert card("q_dma_buf_mfn", s, w["mfn"], "dma_buf_mfn").passed
    assert not card("q_dma_buf_mfn", s, w["pfn"], "dma_buf_mfn").passed
    assert card("q_dma_cookie_addr", s, w["pfn"] << 12, "dma_cookie_addr").passed
    assert not card("q_dma_cookie_addr", s, w["mfn"] << 12, "dma_cookie_addr").passed
    skew = s.state.variant.bio_skew          # the tunable that places the buffer
    assert card("q_dma_run_pages", s, skew, "dma_run_pages").passed
    assert not card("q_dma_run_pages", s, skew + 1, "dma_run_pages").passed


def test_dma_questions_differ_between_seeds():
    truths = {seed: (checks.dma.q_dma_run_pages(Stage("dma", profile="qemu-i440fx", seed=seed)),
                     checks.dma.q_dma_buf_mfn(Stage("dma", profile="qemu-i440fx", seed=seed)))
              for seed in range(4)}
    assert len(set(truths.values())) > 1


def test_dma_native_fails_unfixed_and_passes_fixed():
    s = Stage("dma", profile="qemu-i440fx", seed=1)
    s.boot()
    assert checks.evaluate("dma_native", s).status == "not run"
    s.apply_reference_fix().boot()
    assert checks.evaluate("dma_native", s).passed


# -- 09_lowmem -------------------------------------------------------------------------

def test_lowmem_questions_read_the_2007_boot():
    s = Stage("lowmem", profile="sun-x4200", seed=1)
    s.boot()
    assert not s.result.ok
    dev = s.result.why.split(":")[0]
    assert card("q_lowmem_device", s, dev, "lowmem_device").passed
    assert not card("q_lowmem_device", s, "pci-ide0", "lowmem_device").passed
    p2m = s.dom0.p2m
    low = int(((p2m >= 0) & (p2m < (1 << 20))).sum())
    assert 0 < low < (1 << 20)
    assert card("q_lowmem_dom0_low", s, low, "lowmem_dom0_low").passed
    assert not card("q_lowmem_dom0_low", s, low - 1, "lowmem_dom0_low").passed
    # Xen's 2-4 GiB zone: the clipped block arithmetic against a frame-by-frame count
    truth = checks.lowmem.q_lowmem_xen_free_low(s)
    mfns, orders = s.xen.heap.free_blocks()
    naive = sum(1 for m, o in zip(mfns, orders) for f in range(m, m + (1 << o))
                if (1 << 19) <= f < (1 << 20))
    assert truth == naive
    assert card("q_lowmem_xen_free_low", s, naive, "lowmem_xen_free_low").passed


def test_lowmem_questions_differ_between_machines():
    devs = {p: checks.lowmem.q_lowmem_device(Stage("lowmem", profile=p, seed=1))
            for p in ("sun-x4200", "dell-optiplex755")}
    assert len(set(devs.values())) == 2
    lows = {p: checks.lowmem.q_lowmem_dom0_low(Stage("lowmem", profile=p, seed=1))
            for p in ("sun-x4200", "dell-optiplex755")}
    assert len(set(lows.values())) == 2


def test_lowmem_native_fails_unfixed_and_passes_fixed():
    s = Stage("lowmem", profile="sun-x4200", seed=1)
    s.boot()
    assert checks.evaluate("lowmem_native", s).status == "not run"
    s.apply_reference_fix().boot()
    assert checks.evaluate("lowmem_native", s).passed
