"""The end of a test run says which backends were skipped and how to enable them (conftest's terminal summary)."""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import skip_summary

TESTS = Path(__file__).resolve().parent


def test_skips_are_grouped_by_backend_with_the_reason_or_the_install_line():
    reasons = ["Skipped: cupy unavailable: CuPy is not installed: pip install 'gdxp[cuda12]'"] * 3 + [
        "Skipped: torch has no device 'cuda' here: torch cannot use device 'cuda' here",
        "Skipped: could not import 'sklearn': No module named 'sklearn'",
        "Skipped: JAX cannot run here", "Skipped: pandas is not installed: not checking pandas objects.",
        "Skipped: cupy is not installed: not checking array_api input"]  # cupy again, as scikit-learn says it
    assert [" ".join(line.split()) for line in skip_summary(reasons)] == [  # most skipped first
        "8 tests skipped, needing:",
        "cupy 4 tests CuPy is not installed: pip install 'gdxp[cuda12]'",
        "other reasons (pytest -rs lists them) 1 tests",
        "pandas 1 tests not installed (not checking pandas objects.)",
        "tests needing sklearn 1 tests not installed: pip install -e '.[test]'",
        "torch on cuda 1 tests no such device here: on a GPU, with torch's GPU build, python -m pytest -m gpu"]
    assert skip_summary([]) == []


@pytest.mark.slow  # a pytest run of its own: seconds
def test_a_run_ends_saying_which_backends_were_skipped():
    if importlib.util.find_spec("cupy") is not None:
        pytest.skip("CuPy is installed here: this run needs a backend that is not")
    result = subprocess.run([sys.executable, "-m", "pytest", str(TESTS / "test_activations.py"), "-q", "-p",
                             "no:cacheprovider", "-k", "cupy and relu"], capture_output=True, text=True, timeout=120,
                            cwd=TESTS.parent, env={**os.environ, "GDXP_REQUIRE_BACKENDS": ""})
    lines = result.stdout.splitlines()
    assert result.returncode == 0, result.stdout
    at = next(i for i, line in enumerate(lines) if "skipped backends, and how to enable them" in line)
    assert lines[at + 1].endswith("tests skipped, needing:")
    assert lines[at + 2].split()[0] == "cupy"
    assert lines[at + 2].endswith("CuPy is not installed: pip install 'gdxp[cuda12]' (or 'gdxp[cuda13]' for CUDA 13)")
