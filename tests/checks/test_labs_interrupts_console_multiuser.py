"""Labs 10 and 11: their question checks read the model's truth (and it differs
between machines), and their new checks fail on the 2007 hooks (or a fix that
forgets i86pc) and pass on the reference fix."""

import pytest

from xenlab import checks
from xenlab.kernel.intel.hat import PFN_IS_FOREIGN_MFN
from xenlab.lab import Stage
from xenlab.lab.stages.interrupts import psm_clkinit_fixed, psm_route_intr_fixed
from xenlab.xen.abi import VIRQ_TIMER

from .cardlib import card


def test_interrupt_questions_read_the_model_and_differ_between_machines():
    sun = Stage("interrupts", profile="sun-x4200", seed=1)
    dell = Stage("interrupts", profile="dell-optiplex755", seed=1)
    truths = {}
    for s in (sun, dell):
        truths[s.profile] = (checks.interrupts.q_interrupts_vector(s),
                             checks.interrupts.q_interrupts_gsi(s),
                             checks.interrupts.q_interrupts_ioapic(s))
    assert truths["sun-x4200"] != truths["dell-optiplex755"]
    # the 2007 kernel's vector for the disk is the one its console printed
    b = checks.shipped_boot(sun)
    vec = truths["sun-x4200"][0]
    assert f"-> vector {vec:#x}" in b.state.kernel.messages
    for s in (sun, dell):
        v, g, io = truths[s.profile]
        assert card("q_interrupts_vector", s, v, "interrupts_vector").passed
        assert not card("q_interrupts_vector", s, v + 1, "interrupts_vector").passed
        assert card("q_interrupts_gsi", s, hex(g), "interrupts_gsi").passed
        assert not card("q_interrupts_gsi", s, g + 1, "interrupts_gsi").passed
        assert card("q_interrupts_ioapic", s, io, "interrupts_ioapic").passed
        assert card("q_interrupts_ioapic", s, None, "interrupts_ioapic").status == "fail"


def _xen_only_route(intr, psm):
    """A fix that forgets i86pc: Xen's route whatever the platform."""
    gsi, pol, trig = intr.resolve(psm.acpi)
    return ("evtchn", psm.bind_pirq(gsi))


def _xen_only_clock(hz, psm):
    port = psm.bind_virq(VIRQ_TIMER)
    psm.set_periodic_timer(1_000_000_000 // hz)
    return ("evtchn", port)


def test_interrupts_native_fails_unfixed_and_for_a_xen_only_fix_and_passes_fixed():
    s = Stage("interrupts", profile="qemu-i440fx", seed=3)
    s.boot()
    assert checks.evaluate("interrupts_native", s).status in ("fail", "not run")
    s.hooks.psm_route_intr = psm_route_intr_fixed
    s.hooks.psm_clkinit = _xen_only_clock
    s.boot()
    assert s.result.ok                                      # dom0 boots ...
    assert checks.evaluate("interrupts_native", s).status == "fail"   # ... the PC does not
    s.hooks.psm_clkinit = psm_clkinit_fixed
    s.boot()
    assert checks.evaluate("interrupts_native", s).passed


def test_interrupts_rte_fails_when_the_entry_ignores_acpi_trigger():
    """Binding the PIRQ without programming the I/O APIC entry fails the RTE check."""
    s = Stage("interrupts", profile="dell-optiplex755", seed=2)

    def no_rte(intr, psm):
        if psm.platform != "i86xen":
            return psm_route_intr_fixed(intr, psm)
        gsi = intr.resolve(psm.acpi)[0]
        psm.alloc_irq_vector(gsi)
        return ("evtchn", psm.bind_pirq(gsi))
    s.hooks.psm_route_intr = no_rte
    s.hooks.psm_clkinit = psm_clkinit_fixed
    s.boot()
    assert not checks.evaluate("interrupts_rte", s).passed
    s.hooks.psm_route_intr = psm_route_intr_fixed
    s.boot()
    assert checks.evaluate("interrupts_rte", s).passed


def test_console_and_multiuser_questions_read_the_model_and_differ_between_machines():
    from xenlab.kmdb import Kmdb
    from xenlab.lab.stages.console import consconfig
    truths = {}
    for profile in ("sun-x4200", "dell-optiplex755"):
        s = Stage("multiuser", profile=profile, seed=1)
        t = (checks.console.q_console_text_mfn(s), checks.multiuser.q_multiuser_absent_port(s),
             checks.multiuser.q_multiuser_bios_mfn(s))
        truths[profile] = t
        # what a student reads with kmdb on the 2007 boot is the truth
        k = Stage("multiuser", profile=profile, seed=1)
        k.hooks.consconfig = consconfig
        k.boot()
        assert not k.result.ok and k.result.failed == "console"
        assert Kmdb(k).cmd("0xb8::pfntomfn").data["mfn"] == t[0]
        assert Kmdb(k).cmd("0xe0::pfntomfn").data["mfn"] == t[2]
        assert card("q_console_text_mfn", s, hex(t[0]), "console_text_mfn").passed
        assert not card("q_console_text_mfn", s, t[0] + 1, "console_text_mfn").passed
        assert card("q_multiuser_absent_port", s, t[1], "multiuser_absent_port").passed
        assert not card("q_multiuser_absent_port", s, 0x2F8, "multiuser_absent_port").passed
        assert card("q_multiuser_bios_mfn", s, t[2], "multiuser_bios_mfn").passed
        assert card("q_multiuser_bios_mfn", s, None, "multiuser_bios_mfn").status == "fail"
    assert truths["sun-x4200"][1] == 0x3F8 and truths["dell-optiplex755"][1] == 0x60
    assert truths["sun-x4200"][0] != truths["dell-optiplex755"][0]


def _map_xen_only(platform, paddr):
    """A fix that forgets i86pc: nothing returned there."""
    if platform == "i86xen":
        return (paddr >> 12) | PFN_IS_FOREIGN_MFN


@pytest.mark.parametrize("stage, hook, wrong, check", [
    ("console", "consconfig", lambda p, b, x: "xencons", "console_native"),
    ("multiuser", "psm_map_phys_pfn", _map_xen_only, "multiuser_native"),
])
def test_native_checks_of_lab_11(stage, hook, wrong, check):
    s = Stage(stage, profile="qemu-i440fx", seed=3)
    s.boot()
    assert checks.evaluate(check, s).status in ("fail", "not run")
    s.apply_reference_fix()
    setattr(s.hooks, hook, wrong)
    s.boot()
    assert s.result.ok                                         # dom0 boots ...
    assert checks.evaluate(check, s).status == "fail"          # ... the PC kernel does not
    s.apply_reference_fix()
    s.boot()
    assert checks.evaluate(check, s).passed
