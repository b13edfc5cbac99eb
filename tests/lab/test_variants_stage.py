"""A stage that needs particular machines draws its labs' variants (and the hidden
checks' other variant) from its own profiles; other stages are unchanged."""

from xenlab.checks import _model
from xenlab.lab import LAB_PROFILES, Stage, lab_profile, other_profile
from xenlab.lab.variants import STAGE_PROFILES, profiles_for


def test_lowmem_variants_are_machines_where_it_fails():
    assert set(profiles_for("lowmem")) < set(LAB_PROFILES)
    assert profiles_for("iopl") == LAB_PROFILES == profiles_for(None)
    seen = {lab_profile(s, "lowmem") for s in range(64)}
    assert seen == set(STAGE_PROFILES["lowmem"])
    for s in range(64):
        o = other_profile(s, "lowmem")
        assert o in STAGE_PROFILES["lowmem"] and o != lab_profile(s, "lowmem")
        assert lab_profile(s) == lab_profile(s, "iopl")      # unchanged for other stages


def test_other_variant_of_lowmem_is_a_machine_where_it_fails():
    _model.clear_cache()
    s = Stage("lowmem", profile=lab_profile(7, "lowmem"), seed=7)
    o = _model.other_variant(s)
    assert o.profile == other_profile(7, "lowmem") != s.profile
    assert not o.result.ok and o.result.failed == "lowmem"
    _model.clear_cache()
