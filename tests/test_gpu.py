"""What only a GPU can show, and what keeps a GPU run honest on any machine.

The ``gpu`` tests (skipped here with the reason where no GPU library runs; failures where GDXP_REQUIRE_BACKENDS
names them, as ``tests/gpu_check.sh`` does) cover what the backend fixture cannot: arrays crossing from one GPU
library to another, the estimators on GPU arrays, a file saved on one GPU library and loaded on another, float64
training on every GPU library against NumPy, and a step that never waits for the device. The others check, on a
CPU, the machinery of a GPU run: required backends fail instead of skipping, JAX does not preallocate the GPU's
memory, and ``tests/gpu_check.sh`` is a script that runs and fails loudly.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from helpers import make_backend, running_on

import gdxp

ROOT = Path(__file__).resolve().parent.parent
GPU_CHECK = ROOT / "tests" / "gpu_check.sh"
GPUS = {"cupy": ("cupy", None), "torch-cuda": ("torch", "cuda"), "jax-gpu": ("jax", "gpu:0")}
VALUES = np.array([[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]])


def gpu(where: str, dtype: str) -> gdxp.Backend:
    """The GPU backend ``where`` (a key of GPUS), or a skip (a failure where required) saying why not."""
    return make_backend(*GPUS[where], dtype)


def classifier_data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 4))
    return x, (x[:, 0] + x[:, 1] > 0).astype(np.int64) + (x[:, 2] > 1)


# -- on a GPU ------------------------------------------------------------------------------------------

@pytest.mark.gpu
@pytest.mark.parametrize(("source", "target"), [(a, b) for a in GPUS for b in GPUS if a != b])
def test_arrays_of_one_gpu_library_feed_a_network_of_another_without_the_host(source, target, monkeypatch):
    """The DLPack branch of ``Backend.asarray`` (device memory of another library), which no CPU runs."""
    with running_on(GPUS[source][0], "float32"), running_on(GPUS[target][0], "float32"):
        data = gpu(source, "float32").asarray(VALUES)
        backend = gpu(target, "float32")
        net = gdxp.Network([3, 2], seed=0, backend=backend)
        reference = gdxp.Network([3, 2], seed=0, dtype="float32").predict(VALUES.astype(np.float32))
        through_host = []
        copy_to_host = np.from_dlpack
        monkeypatch.setattr(np, "from_dlpack", lambda *a, **k: through_host.append(a) or copy_to_host(*a, **k))
        prediction = net.predict(data)
        assert backend.holds(prediction) and not through_host
        np.testing.assert_allclose(backend.to_numpy(prediction), reference, rtol=2e-6)


@pytest.mark.gpu
@pytest.mark.parametrize("where", ["cupy", "torch-cuda"])
def test_the_estimators_on_gpu_arrays_give_numpys_numbers_on_that_gpu(where, monkeypatch):
    sklearn = pytest.importorskip("sklearn")
    from sklearn.exceptions import ConvergenceWarning

    from gdxp.estimators import MLPClassifier

    backend = gpu(where, "float64")
    monkeypatch.setenv("SCIPY_ARRAY_API", "1")  # scikit-learn's condition for array-API dispatch
    x, y = classifier_data()
    settings = {"hidden_layer_sizes": (8,), "learning_rate_init": 0.01, "max_iter": 20, "random_state": 0}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        on_numpy = MLPClassifier(**settings).fit(x, y)
        with sklearn.config_context(array_api_dispatch=True):
            inputs, labels = backend.asarray(x), backend.asarray(y, dtype=backend.index_dtype)
            there = MLPClassifier(**settings).fit(inputs, labels)
            proba, predicted = there.predict_proba(inputs), there.predict(inputs)
    assert there.net_.backend.name == backend.name and backend.holds(proba)
    np.testing.assert_allclose(backend.to_numpy(proba), on_numpy.predict_proba(x), rtol=0, atol=1e-12)
    np.testing.assert_array_equal(backend.to_numpy(predicted), on_numpy.predict(x))
    assert there.loss_curve_ == pytest.approx(on_numpy.loss_curve_, rel=1e-12)


@pytest.mark.gpu
def test_a_file_saved_on_cupy_loads_on_torch_cuda_and_trains_on_alike(tmp_path):
    x, y = np.random.default_rng(0).normal(size=(16, 3)), np.random.default_rng(1).random((16, 2))
    saved = gdxp.Network([3, 8, 2], seed=0, backend=gpu("cupy", "float64"))
    saved.fit(x, y, epochs=3, learning_rate=0.05, batch_size=4, optimizer="adam", verbose=0)
    saved.save(tmp_path / "net.npz", include_optimizer=True)
    gpu("torch-cuda", "float64")  # a skip, or a failure where required, if torch has no CUDA here
    loaded = gdxp.load(tmp_path / "net.npz", backend="torch", device="cuda")
    assert loaded.backend.device_name.startswith("cuda") and loaded.backend.dtype_name == "float64"
    for mine, theirs in zip(loaded.get_weights(), saved.get_weights(), strict=True):
        np.testing.assert_array_equal(mine, theirs)
    for net in (saved, loaded):
        net.fit(x, y, epochs=3, learning_rate=0.05, batch_size=4, optimizer="adam", verbose=0)
    for mine, theirs in zip(loaded.get_weights(), saved.get_weights(), strict=True):
        np.testing.assert_allclose(mine, theirs, rtol=1e-12, atol=1e-14)


@pytest.mark.gpu
@pytest.mark.parametrize("where", list(GPUS))
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_float64_training_on_each_gpu_library_equals_numpy_to_1e_12(where, optimizer):
    """The promise every backend keeps, on each GPU library (JAX: compiled, in its 64-bit mode)."""
    x, y = np.random.default_rng(0).normal(size=(40, 5)), np.random.default_rng(1).random((40, 3))
    settings = {"epochs": 6, "learning_rate": 0.05, "batch_size": 8, "optimizer": optimizer, "verbose": 0}
    reference = gdxp.Network([5, 16, 3], seed=0)
    expected = reference.fit(x, y, **settings).loss
    with running_on(GPUS[where][0], "float64"):
        net = gdxp.Network([5, 16, 3], seed=0, backend=gpu(where, "float64"))
        np.testing.assert_allclose(net.fit(x, y, **settings).loss, expected, rtol=1e-12)
        for mine, theirs in zip(net.get_weights(), reference.get_weights(), strict=True):
            np.testing.assert_allclose(mine, theirs, rtol=1e-12, atol=1e-14)


@pytest.mark.gpu
@pytest.mark.parametrize("return_loss", [False, True])
def test_a_step_on_torch_cuda_never_waits_for_the_device(return_loss):
    torch = pytest.importorskip("torch")
    backend = gpu("torch-cuda", "float32")
    net = gdxp.Network([3, 16, 2], seed=0, backend=backend)
    inputs, targets = backend.asarray(VALUES), backend.asarray(np.full((2, 2), 0.5))
    net.step(inputs, targets, learning_rate=0.1)  # the first call may set up what later ones reuse
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")  # any call that waits for the GPU raises
    try:
        for _ in range(3):
            net.step(inputs, targets, learning_rate=0.1, return_loss=return_loss)
        net.predict(inputs)
    finally:
        torch.cuda.set_sync_debug_mode("default")


# -- the machinery of a GPU run, on any machine ---------------------------------------------------------

def test_a_required_backend_that_cannot_run_fails_instead_of_skipping(monkeypatch):
    import helpers

    monkeypatch.setitem(sys.modules, "cupy", None)  # as if CuPy failed to import
    helpers._status.cache_clear()
    monkeypatch.setattr(helpers, "REQUIRED_BACKENDS", {"numpy"})
    try:
        with pytest.raises(pytest.skip.Exception, match="cupy unavailable: CuPy is not installed"):
            make_backend("cupy", None, "float32")
        monkeypatch.setattr(helpers, "REQUIRED_BACKENDS", {"cupy"})
        with pytest.raises(pytest.fail.Exception, match="cupy is required here .* but unavailable: CuPy is not"):
            make_backend("cupy", None, "float32")
    finally:
        helpers._status.cache_clear()


def test_a_required_gpu_device_fails_where_its_library_runs_only_on_the_cpu(monkeypatch):
    import helpers

    pytest.importorskip("torch")
    if gdxp.backend_status("torch").devices != ("cpu",):
        pytest.skip("torch has a GPU here")
    monkeypatch.setattr(helpers, "REQUIRED_BACKENDS", {"torch"})  # the library, not its GPU
    with pytest.raises(pytest.skip.Exception, match="torch has no device 'cuda' here"):
        make_backend("torch", "cuda", "float32")
    monkeypatch.setattr(helpers, "REQUIRED_BACKENDS", {"torch:cuda"})
    with pytest.raises(pytest.fail.Exception, match="torch on 'cuda' is required here"):
        make_backend("torch", "cuda", "float32")
    assert make_backend("torch", "cpu", "float32").device_name == "cpu"  # torch:cuda requires only the GPU


def test_jax_allocates_what_it_uses_in_the_tests_and_the_examples():
    """JAX would take 75% of a GPU's memory at its first device query, leaving CuPy and torch none."""
    assert os.environ.get("XLA_PYTHON_CLIENT_PREALLOCATE")  # the tests' own (conftest), or the caller's
    code = "import os, common; print(os.environ['XLA_PYTHON_CLIENT_PREALLOCATE'])"
    env = {k: v for k, v in os.environ.items() if k != "XLA_PYTHON_CLIENT_PREALLOCATE"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "examples"), str(ROOT)])
    for given, expected in ((None, "false"), ("true", "true")):
        chosen = env if given is None else {**env, "XLA_PYTHON_CLIENT_PREALLOCATE": given}
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=chosen, timeout=120)
        assert result.stdout.strip() == expected, result.stderr


def test_the_gpu_check_is_an_executable_tracked_script_bash_can_read():
    assert GPU_CHECK.stat().st_mode & stat.S_IXUSR
    tracked = subprocess.run(["git", "ls-files", "-s", str(GPU_CHECK)], capture_output=True, text=True, cwd=ROOT)
    if tracked.returncode == 0 and tracked.stdout:  # in a git checkout: committed as executable
        assert tracked.stdout.startswith("100755 "), tracked.stdout
    subprocess.run(["bash", "-n", str(GPU_CHECK)], check=True)


FAKE_PYTHON = r"""#!/usr/bin/env bash
# stands in for python3: records what it was asked to run, writes what that would write, fails where told
args="$*"; echo "$GDXP_REQUIRE_BACKENDS $XLA_PYTHON_CLIENT_PREALLOCATE | ${args//$'\n'/ }" >> "$FAKE_LOG"
case "$*" in
  *" -c "*|-c*) [ "$FAKE_FAIL" = preflight ] && { echo "no GPU library runs here"; exit 1; }; echo "cupy usable";;
  *"-m pytest"*)
    for arg in "$@"; do case "$arg" in --junitxml=*) echo "<testsuites/>" > "${arg#--junitxml=}";; esac; done
    echo "3 passed in 1.00s"; [ "$FAKE_FAIL" = pytest ] && { echo "FAILED tests/test_x.py::test_y"; exit 1; };;
  *compare_devices.py*)
    dir=${@: -1}; echo "speed,agreement" > "$dir/compare_devices.csv"; echo png > "$dir/compare_devices.png";;
  *benchmark.py*) echo "the benchmark table";;
esac
exit 0
"""


@pytest.mark.parametrize("failing", [None, "pytest", "preflight"])
def test_the_gpu_check_runs_every_stage_into_at_most_seven_files_and_fails_loudly(tmp_path, failing):
    """With a stand-in for Python: the stages, what each is asked to run, the files, the exit status."""
    fake = tmp_path / "python3"
    fake.write_text(FAKE_PYTHON)
    fake.chmod(0o755)
    out, log = tmp_path / "out", tmp_path / "calls.log"
    env = {"PATH": os.environ["PATH"], "PYTHON": str(fake), "FAKE_LOG": str(log), "FAKE_FAIL": failing or ""}
    result = subprocess.run(["bash", str(GPU_CHECK), str(out)], capture_output=True, text=True, env=env, cwd=ROOT,
                            timeout=120)
    calls = log.read_text().splitlines()
    if failing == "preflight":
        assert result.returncode != 0 and "no GPU library runs here" in result.stdout
        assert len(calls) == 1 and not out.exists()
        return
    assert all(call.startswith("cupy,torch:cuda,jax:gpu false | ") for call in calls), calls
    assert sum("-m pytest" in call and "-m gpu" in call for call in calls) == 2
    assert any("compare_devices.py --figures" in call for call in calls)
    assert any("benchmark.py --backend cupy" in call for call in calls)
    written = {p.name for p in out.iterdir()}
    assert written == {"pytest.log", "junit.xml", "pytest-jax.log", "compare.log", "compare_devices.csv",
                       "compare_devices.png", "bench.log"}  # with check.sh's env.txt, eight
    assert (result.returncode == 0) == (failing is None), result.stdout
    if failing:
        assert "FAILED tests/test_x.py::test_y" in result.stdout


def test_the_gpu_check_on_a_machine_without_a_gpu_fails_and_says_why(tmp_path):
    env = {**os.environ, "PYTHON": sys.executable, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(["bash", str(GPU_CHECK), str(tmp_path)], capture_output=True, text=True, env=env,
                            cwd=ROOT, timeout=300)
    if result.returncode == 0 and "no GPU library" not in result.stdout:
        pytest.skip("a GPU library runs here: the check ran for real")
    assert result.returncode != 0 and "no GPU library runs here" in result.stdout
    assert "cupy: unavailable" in result.stdout
