"""Booted stages for the debugger's tests.

Read-only tests share one boot per platform (module scope is not enough: a
Xen boot costs most of a second); tests that run the boot on (``:c``, ``:s``,
breakpoints) boot their own.  Every expected value is computed from the model
by other means than kmdb's: ``xenlab.machine.mmu.walk``, Xen's own P2M/M2P and
channel table, the vCPU state vectors, the kernel object, capstone.
"""

import pytest

REFERENCE_UP_TO_IOPL = ["toolchain", "platforms", "boot_kmdb", "pci_config"]


def booted(name="boot_kmdb", *, native=False, fix="all", seed=0):
    from xenlab.lab import Stage
    st = Stage(name, native=native, seed=seed)
    st.fix(fix)
    res = st.boot()
    return st, res


@pytest.fixture(scope="session")
def xen_stage():
    st, res = booted()
    assert res.ok, res.summary()
    return st


@pytest.fixture(scope="session")
def native_stage():
    st, res = booted(native=True)
    assert res.ok, res.summary()
    return st


@pytest.fixture(scope="session")
def gp_stage():
    """The 2007 iopl stage: the first OUTL to 0xCF8 takes #GP in dom0."""
    st, res = booted("iopl", fix=REFERENCE_UP_TO_IOPL)
    assert res.failed == "iopl" and res.kind == "panic", res.summary()
    return st


@pytest.fixture(params=["xen", "native"])
def any_stage(request, xen_stage, native_stage):
    return xen_stage if request.param == "xen" else native_stage


@pytest.fixture
def kx(xen_stage):
    from xenlab.kmdb import Kmdb
    return Kmdb(xen_stage)


@pytest.fixture
def kn(native_stage):
    from xenlab.kmdb import Kmdb
    return Kmdb(native_stage)


@pytest.fixture
def k_any(any_stage):
    from xenlab.kmdb import Kmdb
    return Kmdb(any_stage)


@pytest.fixture
def kmdb_of():
    """Make sessions that are closed after the test (a paused boot's thread ends)."""
    from xenlab.kmdb import Kmdb
    made = []

    def make(target):
        k = Kmdb(target)
        made.append(k)
        return k
    yield make
    for k in made:
        k.close()
