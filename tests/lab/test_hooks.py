import pytest

from xenlab.lab import hooks as H
from xenlab.lab.hooks import HookError, Hooks, hook


@pytest.fixture(autouse=True)
def spec():
    saved = dict(H.SPECS)

    def fixed(bus, dev):
        return 1

    def validate(v):
        return None if v in (1, 2) else "expected PCI_MECHANISM_1 (1) or PCI_MECHANISM_2 (2)"

    @hook("demo_mechanism", stage="pci_config", reference=fixed, validate=validate)
    def bios_probe(bus, dev):
        """Which PCI configuration mechanism to use."""
        return 0

    yield
    H.SPECS.clear()
    H.SPECS.update(saved)


def test_default_reference_and_student_hooks():
    h = Hooks()
    with pytest.raises(HookError, match="returned 0: expected PCI_MECHANISM_1"):
        h.call("demo_mechanism", 0, 0)
    h.use_reference("pci_config")
    assert h.call("demo_mechanism", 0, 0) == 1
    h.demo_mechanism = lambda bus, dev: 2
    assert h.which()["demo_mechanism"] == "student"
    assert h.call("demo_mechanism", 0, 0) == 2
    h.reset()
    assert h.is_default("demo_mechanism")


def test_student_mistakes_name_the_hook():
    h = Hooks()
    with pytest.raises(HookError, match="must take \\(bus, dev\\)"):
        h.demo_mechanism = lambda: 1
    with pytest.raises(HookError, match="must be a function, got int"):
        h.demo_mechanism = 1
    h.demo_mechanism = lambda bus, dev: 1 / 0
    with pytest.raises(HookError, match="'demo_mechanism': raised ZeroDivisionError"):
        h.call("demo_mechanism", 0, 0)
    with pytest.raises(AttributeError, match="no hook named 'nope'"):
        h.nope = print
