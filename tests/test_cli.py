"""python -m gdxp info and demo, run as a user would."""

import subprocess
import sys

import pytest


def _run(*args):
    result = subprocess.run([sys.executable, "-m", "gdxp", *args], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.slow  # imports every installed array library (torch, JAX) to report it: seconds
def test_info_lists_every_backend():
    out = _run("info")
    assert out.startswith("gdxp 0.1.0 on Python")
    for name in ("numpy", "cupy", "torch", "jax", "array_api_strict"):
        assert f"\n  {name}" in out
    assert "numpy" in out and "devices cpu; default dtype float64" in out


def test_demo_trains_the_tutorial_network():
    out = _run("demo", "--epochs", "4000")
    assert "backend numpy on cpu, float64" in out
    assert "prediction before training: 0.840882" in out
    final = [line for line in out.splitlines() if "prediction after 4,000 steps" in line]
    assert len(final) == 1
    prediction = float(final[0].split(":")[1].split()[0])
    assert 0.2 < prediction < 0.7  # on its way from 0.84 down to the target 0.2


def test_demo_on_another_backend():
    out = _run("demo", "--backend", "array_api_strict", "--epochs", "10", "--hidden", "8")
    assert "8 hidden sigmoid neurons" in out and "backend array_api_strict on CPU_DEVICE" in out


def test_bad_arguments_exit_with_a_message():
    result = subprocess.run([sys.executable, "-m", "gdxp", "demo", "--backend", "mlx"], capture_output=True,
                            text=True)
    assert result.returncode == 2 and "invalid choice: 'mlx'" in result.stderr
