"""What pytest itself reads: the parametrized ``backend`` fixture, the hypothesis profile, the examples path.

The helpers the tests import live in ``helpers.py``; the configurations the fixture runs on are
``helpers.backend_combinations()``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from helpers import backend_combinations, make_backend
from hypothesis import settings

import gdxp

# the examples folder holds the tutorials' own loops, which the tests use as references
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples"))

settings.register_profile("gdxp", derandomize=True, deadline=None, max_examples=10)
settings.load_profile("gdxp")


@pytest.fixture(params=list(backend_combinations()))
def backend(request) -> gdxp.Backend:
    """Each math test once per array library, device and dtype; a skip with the reason where one cannot run."""
    return make_backend(*request.param)
