import pytest

from xenlab.kernel.build import build, load_catalog


@pytest.fixture(scope="module")
def cat():
    return load_catalog()


def test_2007_starting_point_leaves_i86xen_without_drivers(cat):
    kb = build({}, cat)                       # everything still under i86pc
    assert not kb.errors
    assert kb.modules["i86xen"] == []
    assert "rootnex" in kb.missing("i86xen", cat, essential_only=True)
    assert kb.has("i86pc", "asy")


def test_moving_a_platform_specific_driver_to_intel_fails_to_link(cat):
    kb = build({"xsvc": "intel", "asy": "intel"}, cat)
    assert len(kb.errors) == 1
    assert "No output written to intel/xsvc" in kb.errors[0]
    assert "psm_map_phys_new" in kb.errors[0]
    assert kb.has("i86xen", "asy") and not kb.has("i86xen", "xsvc")


def test_sorting_by_platform_interfaces_builds_both_kernels(cat):
    placement = {n: ("both" if d.platform_specific else "intel") for n, d in cat.drivers.items()}
    kb = build(placement, cat)
    assert kb.errors == []
    assert kb.missing("i86xen", cat) == [] and kb.missing("i86pc", cat) == []
    neutral = sum(not d.platform_specific for d in cat.drivers.values())
    assert neutral >= 40                                  # "around 40" moved to intel
    xen_rootnex = [m for m in kb.modules["i86xen"] if m.name == "rootnex"][0]
    assert "pfn_to_mfn" in xen_rootnex.references         # the port uses the P2M


def test_unknown_place_is_named(cat):
    with pytest.raises(ValueError, match="driver asy: place 'sun4v'"):
        build({"asy": "sun4v"}, cat)
