"""python -m gdxp info and demo, run as a user would."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

import gdxp

PACKAGE_ROOT = str(Path(gdxp.__file__).resolve().parent.parent)


def _run(*args):
    result = subprocess.run([sys.executable, "-m", "gdxp", *args], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout


def _run_failing(*args, env=None, printed=None):
    """The exit status and stderr of a run that is to fail (its stdout appended to ``printed`` if given)."""
    result = subprocess.run([sys.executable, "-m", "gdxp", *args], capture_output=True, text=True, timeout=120,
                            env=env)
    if printed is not None:
        printed.append(result.stdout)
    return result.returncode, result.stderr


def _into_a_closed_pipe(*args):
    """Run with stdout a pipe whose reader is already gone, as ``| head`` leaves it; the status and stderr."""
    read, write = os.pipe()
    os.close(read)
    try:
        result = subprocess.run([sys.executable, "-m", "gdxp", *args], stdout=write, stderr=subprocess.PIPE,
                                text=True, timeout=120)
    finally:
        os.close(write)
    return result.returncode, result.stderr


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


def test_a_backend_that_cannot_run_here_is_one_line_and_status_2(tmp_path):
    """Wherever CuPy is installed or not: a ``cupy`` package first on the path that fails to import."""
    (tmp_path / "cupy").mkdir()
    (tmp_path / "cupy" / "__init__.py").write_text("raise ModuleNotFoundError('No module named cupy', name='cupy')\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), PACKAGE_ROOT])}
    status, err = _run_failing("demo", "--backend", "cupy", "--epochs", "10", env=env)
    assert status == 2
    assert err.splitlines() == ["python -m gdxp demo: error: CuPy is not installed: pip install 'gdxp[cuda12]' "
                                "(or 'gdxp[cuda13]' for CUDA 13)"]


@pytest.mark.parametrize("value", ["0", "-3", "many"])
def test_a_bad_epochs_names_epochs_under_demos_usage(value):
    status, err = _run_failing("demo", "--epochs", value)
    assert status == 2
    assert err.splitlines()[0].startswith("usage: python -m gdxp demo ")
    assert err.splitlines()[-1].startswith("python -m gdxp demo: error: argument --epochs: must be ")
    assert value in err.splitlines()[-1]


def test_version():
    assert _run("--version") == f"gdxp {gdxp.__version__}\n"


@pytest.mark.parametrize("args", [["--help"], ["demo", "--help"], ["info", "--help"]])
def test_help_is_plain_text(args):
    out = _run(*args)
    assert "usage: python -m gdxp" in out
    assert "``" not in out and ":mod:" not in out  # no reStructuredText from the docstrings


def test_a_reader_gone_away_ends_the_demo_quietly():
    status, err = _into_a_closed_pipe("demo", "--epochs", "10")
    assert (status, err) == (1, "")


@pytest.mark.slow  # info imports every installed array library (torch, JAX) to report it: seconds
def test_a_reader_gone_away_ends_info_quietly():
    status, err = _into_a_closed_pipe("info")
    assert (status, err) == (1, "")


def test_the_demo_shows_progress_on_stderr_when_asked(capsys):
    from gdxp.cli import demo

    demo("numpy", 50, 5, progress=True)
    out, err = capsys.readouterr()
    assert "50/50 [" in err and "loss=" in err  # tqdm's bar, with the loss
    assert "prediction after 50 steps" in out and "50/50" not in out


@pytest.mark.slow  # Dask: seconds
def test_the_demo_says_dask_takes_minutes_before_it_starts():
    pytest.importorskip("dask")
    assert "dask takes minutes here: Dask schedules each" in " ".join(_run("demo", "--help").split())
    out = _run("demo", "--backend", "dask", "--epochs", "5")
    lines = out.splitlines()
    note = "  Dask schedules each one-sample step as a graph, 1-2 ms a step on a CPU: 5 steps take a while"
    assert note in lines and lines.index(note) < next(i for i, line in enumerate(lines) if "before training" in line)


# -- the contract holds for every way a run can fail (issue 19, item 8) -------------------------------------------


@pytest.mark.parametrize(("args", "env", "message"), [
    (["demo", "--epochs", "2199023255552"], {}, "epochs must be at most 1,099,511,627,776, got 2199023255552"),
    (["demo", "--hidden", "10000000000"], {}, "sizes [3, 10000000000, 1] make 40,000,000,000 weights, which need"),
    (["demo", "--epochs", "5"], {"GDXP_BACKEND": "bogus"}, "unknown backend 'bogus'; choose one of numpy"),
], ids=["epochs", "hidden", "GDXP_BACKEND"])
def test_a_bad_value_is_one_line_and_status_2(args, env, message):
    printed = []
    status, err = _run_failing(*args, env={**os.environ, **env}, printed=printed)
    assert status == 2 and len(err.splitlines()) == 1, err
    assert err.startswith(f"python -m gdxp demo: error: {message}")
    assert printed == [""]  # refused before the demo says anything


def test_output_that_cannot_be_written_is_one_line_and_status_2():
    with open("/dev/full", "w") as full:  # every write fails: no space left on the device
        result = subprocess.run([sys.executable, "-m", "gdxp", "demo", "--epochs", "5"], stdout=full,
                                stderr=subprocess.PIPE, text=True, timeout=120)
    assert (result.returncode, result.stderr) == (2, "python -m gdxp demo: error: cannot write its output: No space "
                                                     "left on device\n")
    closed = subprocess.run([sys.executable, "-c", "import os, sys; os.close(1); sys.argv[1:] = ['demo', '--epochs', "
                             "'5']; import runpy; runpy.run_module('gdxp', run_name='__main__')"],
                            stderr=subprocess.PIPE, text=True, timeout=120)
    assert (closed.returncode, closed.stderr) == (2, "python -m gdxp demo: error: cannot write its output: Bad file "
                                                     "descriptor\n")


def test_a_closed_standard_output_is_one_line_and_status_2():
    result = subprocess.run(["sh", "-c", f"'{sys.executable}' -m gdxp info >&-"], stderr=subprocess.PIPE, text=True,
                            timeout=120)  # closed before Python starts: sys.stdout is None
    assert (result.returncode, result.stderr) == (2, "python -m gdxp info: error: its standard output is closed\n")
