import pytest

from .guestlib import boot


@pytest.fixture
def dom0():
    """(xen, guest) with invariants checked after every hypercall."""
    return boot("512M")


@pytest.fixture
def dom0_debug():
    return boot("512M", debug=True)
