"""What pytest itself reads: the parametrized ``backend`` fixture, the hypothesis profile, the examples path.

The helpers the tests import live in ``helpers.py``; the configurations the fixture runs on are
``helpers.backend_combinations()``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

# two simulated CPU devices for JAX, so that the tests can put a network on the second one; read by
# XLA when JAX starts, so set before anything imports it
os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count=2".strip()
# JAX would take 75% of a GPU's memory at its first device query, leaving CuPy and torch (and other test
# workers) none; unless the caller chose otherwise, it allocates what it uses
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")

import pytest  # noqa: E402
from helpers import backend_combinations, make_backend, running_on, skip_summary  # noqa: E402
from hypothesis import settings  # noqa: E402

import gdxp  # noqa: E402

# the examples folder holds the tutorials' own loops, which the tests use as references
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples"))

settings.register_profile("gdxp", derandomize=True, deadline=None, max_examples=10)
settings.load_profile("gdxp")


@pytest.fixture(params=list(backend_combinations()))
def backend(request) -> gdxp.Backend:
    """Each math test once per array library, device and dtype; a skip with the reason where one cannot run."""
    name, device, dtype = request.param
    with running_on(name, dtype):
        yield make_backend(name, device, dtype)


def pytest_terminal_summary(terminalreporter) -> None:
    """At the end of a run, which backends the skipped tests needed and how to enable them."""
    reasons = [report.longrepr[2] for report in terminalreporter.stats.get("skipped", [])
               if isinstance(report.longrepr, tuple)]
    lines = skip_summary(reasons)
    if lines:
        terminalreporter.section("skipped backends, and how to enable them")
        for line in lines:
            terminalreporter.write_line(line)
