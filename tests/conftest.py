import os
import sys

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile("default", deadline=None, max_examples=200,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("slow", deadline=None, max_examples=5000,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("XENLAB_HYPOTHESIS", "default"))


@pytest.fixture
def rng():
    import numpy as np
    return np.random.Generator(np.random.PCG64(12345))
