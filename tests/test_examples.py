"""Every example runs as written (with shorter settings) and prints what the README says it prints."""

import csv
import importlib.util
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
# the checkout's gdxp for scripts run from another folder, whether or not it is installed
PYTHONPATH = os.pathsep.join(filter(None, [str(EXAMPLES.parent), os.environ.get("PYTHONPATH")]))


def run_example(name: str, *args: str, figures: Path | None = None) -> str:
    """The script's output, run from an empty folder of its own, which it must leave empty: it writes only into
    ``--figures`` (``figures``, else a temporary folder; its default folder is checked by a test of its own)."""
    return run_example_process(name, *args, figures=figures).stdout


def run_example_process(name: str, *args: str, figures: Path | None = None) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory() as cwd, tempfile.TemporaryDirectory() as scratch:
        extra = ["--figures", str(figures or scratch)]
        result = subprocess.run([sys.executable, str(EXAMPLES / name), *args, *extra], capture_output=True,
                                text=True, timeout=300, cwd=cwd, env={**os.environ, "PYTHONPATH": PYTHONPATH})
        assert result.returncode == 0, result.stderr
        assert not list(Path(cwd).iterdir()), f"{name} wrote outside --figures: {list(Path(cwd).iterdir())}"
    return result


def test_a_script_writes_into_figures_by_default_and_nowhere_else(tmp_path):
    pytest.importorskip("matplotlib")  # the figure is what it writes
    result = subprocess.run([sys.executable, str(EXAMPLES / "part4_any_hidden.py"), "--hidden", "2", "--steps", "3"],
                            capture_output=True, text=True, timeout=300, cwd=tmp_path,
                            env={**os.environ, "PYTHONPATH": PYTHONPATH})
    assert result.returncode == 0, result.stderr
    assert [p.relative_to(tmp_path).as_posix() for p in sorted(tmp_path.rglob("*"))] == [
        "figures", "figures/part4_2_hidden.png"]
    assert "figures saved to figures/part4_2_hidden.png" in result.stdout


def test_gitignore_covers_the_default_figures_folder():
    ignored = (EXAMPLES.parent / ".gitignore").read_text().splitlines()
    assert "figures/" in ignored


@pytest.mark.parametrize("script", ["benchmark.py", "compare_devices.py", pytest.param("dask_cluster.py",
                                    marks=pytest.mark.slow), "part3_hidden_layer.py"])  # importing Dask takes seconds
def test_help_shows_every_default_and_the_figures_folder(script):
    if script == "dask_cluster.py":
        pytest.importorskip("distributed")
    result = subprocess.run([sys.executable, str(EXAMPLES / script), "--help"], capture_output=True, text=True,
                            timeout=60, env={**os.environ, "PYTHONPATH": PYTHONPATH, "COLUMNS": "200"})
    assert result.returncode == 0, result.stderr
    blocks = re.split(r"\n  (?=-)", result.stdout.split("options:\n")[1])
    assert any(block.startswith("--figures FIGURES") for block in blocks)
    for block in blocks:
        words = block.split()
        if words[1][0] in "{[" or words[1].isupper():  # an option that takes a value says its default
            assert "(default: " in block, block
    if script == "benchmark.py":
        assert re.search(r"--repeats REPEATS\s+timed runs of each contender.*\(default: 7\)", result.stdout)


def test_delta_rule_prints_the_notebooks_numbers():
    assert run_example("delta_rule.py").splitlines() == [
        "Neural Network output:",
        "0.689974481128",
        "Amount of Error:",
        "-0.189974481128",
        "Change in Weights:",
        "[-0.02031869 -0.04063738 -0.06095608 -0.08127477]",
        "",
        "Change in weights for hidden layer to output layer:",
        "[0.00804047 0.00555918]",
        "Change in weights for input layer to hidden layer:",
        "[[ 1.77005547e-04 -5.11178506e-04]",
        " [ 3.54011093e-05 -1.02235701e-04]",
        " [-7.08022187e-05  2.04471402e-04]]",
    ]


@pytest.mark.slow
def test_part3_trains_both_networks_and_saves_the_figures(tmp_path):
    out = run_example("part3_hidden_layer.py", "--steps", "3000", figures=tmp_path)
    assert "3 inputs -> 2 hidden -> 1 output on numpy" in out and "10 inputs -> 2 hidden" in out
    starts = [float(m) for m in re.findall(r"prediction (\d\.\d+) ->", out)]
    ends = [float(m) for m in re.findall(r"-> (\d\.\d+) \(target 0.2\)", out)]
    assert len(starts) == len(ends) == 2 and all(0.2 < end < start for start, end in zip(starts, ends))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["part3_10_inputs.png", "part3_3_inputs.png"]


@pytest.mark.slow
def test_part4_takes_any_hidden_width(tmp_path):
    out = run_example("part4_any_hidden.py", "--hidden", "5", "3", "--steps", "2000", figures=tmp_path)
    assert "3 -> 5 hidden -> 1: prediction 0.840882 ->" in out and "3 -> 3 hidden -> 1" in out
    assert (tmp_path / "part4_5_hidden.png").exists() and (tmp_path / "part4_3_hidden.png").exists()


@pytest.mark.slow
def test_backprop_walkthrough_prints_the_trace_then_learns(tmp_path):
    out = run_example("backprop_walkthrough.py", "--steps", "200", figures=tmp_path)
    assert out.startswith("One forward and backward pass of Network([4, 3, 2, 1]")
    for name in ("sop3", "error->prediction", "activ2->sop2", "grad_W1"):
        assert f"    {name} " in out
    before, after = map(float, re.search(r"prediction (-?\d\.\d+) -> (-?\d\.\d+) \(target 0.4\)", out).groups())
    assert abs(after - 0.4) < abs(before - 0.4)
    final = float(re.search(r"200 more steps of learning rate 0.1: prediction (-?\d\.\d+)", out).group(1))
    assert abs(final - 0.4) < 1e-3


@pytest.mark.slow
def test_digits_reaches_95_percent_on_held_out_images(tmp_path):
    pytest.importorskip("sklearn")
    out = run_example("digits.py", "--verbose", "0", figures=tmp_path)
    accuracy = float(re.search(r"test accuracy (\d\.\d+)", out).group(1))
    assert accuracy >= 0.95
    assert (tmp_path / "digits.png").exists()
    estimator = re.search(r"estimator: (\d+) epochs, test accuracy (\d\.\d+)", out)
    assert int(estimator.group(1)) <= 60 and float(estimator.group(2)) >= 0.95


def table(section: str) -> dict[str, list[str]]:
    """A benchmark table's rows: each contender's name, then its figures (steps, median us, x floor, ...)."""
    rows = {}
    for line in section.splitlines()[2:]:
        words = line.split()
        first = next(i for i, word in enumerate(words) if word[0].isdigit())
        rows[" ".join(words[:first])] = words[first:]
    return rows


CPU_FITS = {"gdxp fit torch", "gdxp fit jax", "gdxp fit array_api_strict"}
COMPILED_TITLE = "3-5-1 sigmoid, one sample per step, float64, compiled on JAX's cpu:0 (floor: NumPy on the CPU), "


def benchmark_sections(out: str) -> tuple[list[str], str | None]:
    """The benchmark's header and tables, and apart from them workload 1's compiled table: there exactly
    when JAX can run here, else None. The last line, where the tables went as CSV, is checked and left out."""
    *sections, written = out.split("\n\n")
    assert re.fullmatch(r"table written to \S+benchmark\.csv\n", written)
    compiled = [section for section in sections if section.startswith(COMPILED_TITLE)]
    assert len(compiled) == usable("jax")
    return [section for section in sections if section not in compiled], (compiled or [None])[0]


@pytest.mark.slow
def test_benchmark_runs_every_workload_and_prints_ratios():
    out = run_example("benchmark.py", "--widths",
                      "--steps", "50", "--long-steps", "200", "--batches", "2", "--repeats", "1",
                      "--wide", "32", "--wide-steps", "2")
    sections = benchmark_sections(out)[0][1:]
    assert [s.splitlines()[0] for s in sections] == [
        "3-5-1 sigmoid, one sample per step, float64 (floor: NumPy on the CPU), 50 steps",
        "784-256-256-10 relu/softmax, batch 256, float32 (floor: inline on numpy), 2 steps",
        "32x32 @ 32x32 float32 on numpy: " + sections[2].split(": ")[1],
        "32-32-32-10 relu/softmax, batch 32, float32 (floor: inline on numpy), 2 steps"]
    assert re.search(r"\d+\.\d\d TFLOP/s \(median of 3\)", sections[2])
    for section, expected, extra in zip(sections[:2] + sections[3:],
                                        ({"floor", "gdxp fit", "gdxp step", "tutorial loop"},
                                         {"floor", "gdxp fit", "gdxp step"},
                                         {"floor", "gdxp fit", "gdxp step"}),
                                        (CPU_FITS, CPU_FITS, set())):
        rows = table(section)
        assert expected <= set(rows) and set(rows) - expected <= {"torch cpu", "torch cuda"} | extra
        # steps, median, x floor, best, x floor, x gdxp fit (then TFLOP/s and x matmul for the wide network)
        assert rows["floor"][2] == rows["floor"][4] == "1.00" and rows["gdxp fit"][5] == "1.00"
    assert sections[3].splitlines()[1].endswith("TFLOP/s  x matmul")
    assert all(len(figures) == 8 for figures in table(sections[3]).values())


@pytest.mark.slow
def test_benchmark_times_gdxp_fit_on_every_cpu_library_per_step():
    libraries = [name for name in ("torch", "jax", "array_api_strict") if usable(name)]
    out = run_example("benchmark.py", "--widths",
                      "--steps", "40", "--long-steps", "160", "--other-steps", "3", "--batches", "2",
                      "--repeats", "1")
    tiny, wide = (table(section) for section in benchmark_sections(out)[0][1:])
    fits = {f"gdxp fit {name}" for name in libraries}
    assert set(tiny) & CPU_FITS == set(wide) & CPU_FITS == fits
    for name in ("floor", "gdxp fit", "gdxp step", "tutorial loop"):
        assert tiny[name][0] == "40"
    for name in fits | ({"torch cpu"} if "torch" in libraries else set()):
        assert tiny[name][0] == "3" and wide[name][0] == "2"  # fewer steps on the tiny network only
        assert float(tiny[name][1]) > 0 and float(wide[name][1]) > 0  # microseconds per step
    if "jax" in libraries:
        assert "JAX's 64-bit mode is switched on by this script" in out  # the tiny network is float64
        # gdxp fit on JAX compiles: its first fit's seconds in a column of their own, the other rows none
        assert float(tiny["gdxp fit jax"][6]) > 0 and float(wide["gdxp fit jax"][6]) > 0
        assert tiny["floor"][6] == wide["floor"][6] == "-"
    assert "on workload 1, gdxp fit on those and PyTorch run 3 steps per run" in out


@pytest.mark.slow
def test_benchmark_times_compiled_fit_against_the_floor_and_a_bare_jit_scan_loop():
    if not usable("jax"):
        pytest.skip("JAX cannot run here")
    out = run_example("benchmark.py", "--widths",
                      "--steps", "40", "--long-steps", "160", "--other-steps", "3", "--batches",
                      "2", "--repeats", "2")
    compiled = benchmark_sections(out)[1]
    assert compiled.startswith(COMPILED_TITLE + "40 and 160 steps\n")
    *lines, targets = compiled.splitlines()
    assert targets == ("goals for compiling: speedup at least 20 (x the floor's speed), and x scan at most 1.5 "
                       "(within 1.5x of the hand-written jit+scan loop)")
    assert lines[1].split() == ["contender", "steps", "compile", "s", "median", "us", "speedup", "x", "scan", "best",
                                "us", "speedup", "x", "scan"]
    rows = table("\n".join(lines))
    keras = importlib.util.find_spec("keras") is not None
    assert list(rows) == ["floor", "gdxp fit numpy", "compiled fit", "compiled fit long", "jit+scan",
                          "jit+scan long"] + (["keras jax"] if keras else [])
    assert "Keras 3 on its JAX backend beside them" in out if keras else "Keras 3 rows left out: keras is not" in out
    # steps, compile s, median us, speedup, x scan, best us, speedup, x scan
    assert [rows[name][0] for name in rows] == ["40", "40", "40", "160", "40", "160"] + (["40"] if keras else [])
    assert rows["floor"][1] == rows["gdxp fit numpy"][1] == "-"
    for name in ("compiled fit", "compiled fit long", "jit+scan", "jit+scan long"):
        assert float(rows[name][1]) > 0  # each compiled its own program: distinct lengths
        assert float(rows[name][2]) > 0 and float(rows[name][5]) > 0
    assert rows["floor"][3] == rows["floor"][6] == "1.00"
    assert rows["jit+scan"][4] == rows["jit+scan"][7] == rows["jit+scan long"][4] == rows["jit+scan long"][7] == "1.00"
    for name, figures in rows.items():  # each ratio is the floor's time over this one, this one's over jit+scan's
        scan = rows["jit+scan long" if name.endswith(" long") else "jit+scan"]
        for at, speedup, over_scan in ((2, 3, 4), (5, 6, 7)):
            assert printed_ratio(figures[speedup], rows["floor"][at], figures[at])
            assert printed_ratio(figures[over_scan], figures[at], scan[at])


def printed_ratio(ratio: str, numerator: str, denominator: str) -> bool:
    """Whether ``ratio`` is ``numerator / denominator``, all three printed to two decimals."""
    low = (float(numerator) - 0.005) / (float(denominator) + 0.005)
    high = (float(numerator) + 0.005) / (float(denominator) - 0.005)
    return low - 0.005 <= float(ratio) <= high + 0.005


@pytest.mark.slow
def test_benchmark_says_why_the_pytorch_rows_are_left_out(tmp_path):
    # as if PyTorch were not installed: an import of torch fails as a missing module does, and no "torch"
    # entry is left in sys.modules (a None there, the shorter trick, trips array-api-compat's type checks)
    script = ("import runpy, sys\n"
              "class NoTorch:\n"
              "    def find_spec(self, name, path=None, target=None):\n"
              "        if name.partition('.')[0] == 'torch':\n"
              "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
              "sys.meta_path.insert(0, NoTorch()); sys.path.insert(0, sys.argv[1]); sys.argv = sys.argv[1:]\n"
              "runpy.run_path(sys.argv[0] + '/benchmark.py', run_name='__main__')")
    result = subprocess.run([sys.executable, "-c", script, str(EXAMPLES), "--steps", "5", "--batches", "1",
                             "--repeats", "1", "--widths", "8", "--figures", str(tmp_path)], capture_output=True,
                            text=True, timeout=300, cwd=tmp_path, env={**os.environ, "PYTHONPATH": PYTHONPATH})
    assert result.returncode == 0, result.stderr
    header, tiny, wide, widths = benchmark_sections(result.stdout)[0]
    assert "PyTorch rows left out (autograd + SGD, gdxp fit on torch): PyTorch is not installed" in header
    assert widths == "workload 4 left out: it compares against PyTorch, which cannot run here"
    assert not any("torch" in name for name in {**table(tiny), **table(wide)})


@pytest.mark.slow
def test_benchmark_times_sgd_and_adam_at_each_width_against_pytorch():
    pytest.importorskip("torch")
    out = run_example("benchmark.py", "--steps", "5", "--batches", "1", "--repeats", "2", "--widths", "8", "16",
                      "--width-batches", "2", "--width-epochs", "1")
    section = benchmark_sections(out)[0][-1]
    lines = section.splitlines()
    assert lines[0].startswith("784-W-W-10 relu/softmax, float32, epochs of 2 batches of 256, 1 epochs a run")
    rows = [line.split() for line in lines[2:]]
    assert [(row[0], row[1]) for row in rows] == [("8", "sgd"), ("8", "adam"), ("16", "sgd"), ("16", "adam")]
    for row in rows:  # W, optimizer, gdxp median (range), torch median (range), the ratio of the medians
        gdxp_ms, torch_ms, ratio = float(row[2]), float(row[4]), float(row[6])
        assert ratio == pytest.approx(gdxp_ms / torch_ms, rel=0.01, abs=0.01)


@pytest.mark.slow
def test_benchmark_on_another_backend_also_times_the_numpy_step():
    out = run_example("benchmark.py", "--widths",
                      "--steps", "5", "--batches", "1", "--repeats", "1",
                      "--backend", "array_api_strict")
    tiny, wide = benchmark_sections(out)[0][1:]
    assert "backend array_api_strict" in out.splitlines()[0]
    assert "gdxp fit numpy" in tiny and "(floor: inline on array_api_strict)" in wide
    assert "gdxp fit array_api_strict" not in tiny + wide  # that is "gdxp fit" itself here


@pytest.mark.slow
def test_benchmark_floors_compute_what_gdxp_computes():
    import benchmark

    import gdxp

    net = gdxp.Network([3, 5, 1], activation="sigmoid", bias=False, init="uniform", seed=0)
    w_hidden, w_output = net.get_weights()
    history = net.fit(benchmark.X, benchmark.TARGET, epochs=20, learning_rate=benchmark.SMALL_RATE, batch_size=1,
                      verbose=0)
    np.testing.assert_allclose(benchmark.small_floor(w_hidden, w_output, 20), history.loss, rtol=1e-12)

    sizes, batch = (6, 5, 4, 3), 7
    runs = benchmark.relu_workload("numpy", sizes, batch, 4)
    net = gdxp.Network(sizes, activation="relu", output_activation="softmax", loss="cross_entropy",
                       init="he_normal", seed=0, dtype="float32")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(batch, sizes[0])).astype(np.float32)
    y = np.eye(sizes[-1], dtype=np.float32)[rng.integers(0, sizes[-1], batch)]
    history = net.fit(x, y, epochs=4, learning_rate=benchmark.LARGE_RATE, verbose=0)
    np.testing.assert_allclose(runs["floor"](), history.loss, rtol=1e-5)


@pytest.mark.slow
def test_benchmark_bare_jit_scan_loop_computes_what_gdxp_computes():
    if not usable("jax"):
        pytest.skip("JAX cannot run here")
    import benchmark
    import jax

    import gdxp

    def network(**where: str) -> gdxp.Network:
        return gdxp.Network([3, 5, 1], activation="sigmoid", bias=False, init="uniform", seed=0, dtype="float64",
                            **where)

    def fit(net: gdxp.Network) -> gdxp.History:
        return net.fit(benchmark.X, benchmark.TARGET, epochs=20, learning_rate=benchmark.SMALL_RATE, batch_size=1,
                       verbose=0)

    eager = network()
    w_hidden, w_output = eager.get_weights()
    history = fit(eager)
    with jax.enable_x64(True):
        bare = benchmark.scan_run("cpu:0", w_hidden, w_output, 20)
        losses = bare()
        weights, _ = jax.jit(benchmark.small_scan(jax, 20))(w_hidden, w_output, benchmark.X[None, :],
                                                            benchmark.TARGET[None, :])
        compiled = network(backend="jax", device="cpu:0")
        compiled_history = fit(compiled)
    assert bare.compiles and bare.compile_seconds > 0
    np.testing.assert_allclose(losses, history.loss, rtol=1e-12)
    np.testing.assert_allclose(compiled_history.loss, history.loss, rtol=1e-12)
    for mine, theirs in zip(weights, eager.get_weights()):
        np.testing.assert_allclose(np.asarray(mine), theirs, rtol=1e-12)


def test_training_flops_counts_every_matrix_product():
    import benchmark

    # forward 3x4 and 4x2 products, their two weight gradients, and the error sent back through W2
    assert benchmark.training_flops((3, 4, 2), 5) == 2 * 5 * (3 * 4 + 4 * 2 + 3 * 4 + 4 * 2 + 4 * 2)


def usable(name: str) -> bool:
    import gdxp

    return gdxp.backend_status(name).usable


@pytest.mark.slow
def test_compare_devices_times_the_backends_asked_for_beside_numpy_with_progress(tmp_path):
    asked = ["array_api_strict"] + (["dask"] if usable("dask") else [])
    result = run_example_process("compare_devices.py", "--quick", "--backend", *asked, "--csv",
                                 str(tmp_path / "table.csv"), figures=tmp_path / "figures")
    assert "cupy" in result.stdout.splitlines()[1]  # usable, or the reason it is not
    runs = 2 * (1 + len(asked)) * 3  # networks x contenders x (agreement, float32, float64)
    assert f"{runs}/{runs} [" in result.stderr  # the progress bar, counted to the end
    with (tmp_path / "table.csv").open() as file:
        rows = list(csv.DictReader(file))
    assert {r["backend"] for r in rows} == {"numpy", *asked}  # nothing else timed
    per_network = 2 * (1 + len(asked))  # in order of parameter count: weights, and biases where there are some
    assert [(r["network"], int(r["parameters"])) for r in rows[::per_network]] == [
        ("3-5-1 b1", 3 * 5 + 5 * 1), ("64-128-10 b32", 64 * 128 + 128 * 10 + 128 + 10)]
    for row in rows:
        assert float(row["ms_per_step"]) > 0 and float(row["max_abs_diff_vs_numpy_f64"]) < 1e-12
        if row["backend"] == "numpy":
            assert float(row["speedup_vs_numpy"]) == 1.0
    assert sorted(p.name for p in (tmp_path / "figures").iterdir()) == ["compare_devices.png"]  # --csv: elsewhere


@pytest.mark.slow  # asks every library whether it can run: seconds
def test_compare_devices_refuses_a_backend_that_cannot_run_here():
    unusable = next((name for name in ("cupy", "torch", "jax", "dask") if not usable(name)), None)
    if unusable is None:
        pytest.skip("every backend can run here")
    result = subprocess.run([sys.executable, str(EXAMPLES / "compare_devices.py"), "--backend", unusable],
                            capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": PYTHONPATH})
    assert result.returncode == 2 and f"--backend {unusable} cannot run here: " in result.stderr


@pytest.mark.slow
def test_compare_devices_runs_torch_and_jax_in_both_dtypes_into_the_figures_folder(tmp_path):
    libraries = [name for name in ("torch", "jax") if usable(name)]
    if not libraries:
        pytest.skip("neither PyTorch nor JAX can run here")
    out = run_example("compare_devices.py", "--quick", figures=tmp_path)
    if "jax" in libraries:  # float64 on JAX is the script's own choice, and it says so
        assert "JAX's 64-bit mode is switched on by this script" in out
    with (tmp_path / "compare_devices.csv").open() as file:  # the table goes beside the figure by default
        rows = list(csv.DictReader(file))
    assert (tmp_path / "compare_devices.png").exists()
    cpu_device = {"torch": "cpu", "jax": "cpu:0"}
    assert {(r["backend"], r["device"]) for r in rows} >= {(name, cpu_device[name]) for name in libraries}
    for name in libraries:
        mine = [r for r in rows if r["backend"] == name]
        assert {(r["network"], r["dtype"]) for r in mine} == {
            (network, dtype) for network in ("3-5-1 b1", "64-128-10 b32") for dtype in ("float32", "float64")}
        for row in mine:
            assert float(row["ms_per_step"]) > 0 and float(row["max_abs_diff_vs_numpy_f64"]) < 1e-12


@pytest.mark.slow
def test_dask_cluster_trains_on_clusters_of_one_and_two_workers_like_numpy(tmp_path):
    pytest.importorskip("distributed")
    result = run_example_process("dask_cluster.py", "--rows", "40000", "--chunk-rows", "5000", "--epochs", "2",
                                 "--workers", "1", "2", "--compare", "--on-disk", "--overhead", figures=tmp_path)
    out = result.stdout
    assert "3/3 [" in result.stderr  # the progress bar counts the timed fits
    with (tmp_path / "dask_cluster.csv").open() as file:
        rows = list(csv.DictReader(file))
    assert [(r["measure"], r["contender"]) for r in rows] == [
        ("fit", "numpy, this process"), ("fit", "dask, 1 worker"), ("fit", "dask, 2 workers"),
        ("overhead", "numpy, this process"), ("overhead", "dask, local threads"), ("overhead", "dask, 1 worker"),
        ("overhead", "dask, 2 workers")]
    contenders = {"numpy, this process", "dask, 1 worker", "dask, 2 workers"}
    rates = dict(re.findall(r"^  (.+?) +([\d,]+) samples/s", out, flags=re.MULTILINE))
    assert set(rates) == contenders and all(float(rate.replace(",", "")) > 0 for rate in rates.values())
    runs = re.findall(r"^  round 1 (.+?) +loss (\d\.\d+ -> \d\.\d+) in", out, flags=re.MULTILINE)
    assert {name for name, _ in runs} == contenders and len({losses for _, losses in runs}) == 1  # the same fit
    overheads = re.findall(r"^  (.+?) +[\d.]+ ms/step .* overhead +-?[\d.]+ ms$", out, flags=re.MULTILINE)
    assert set(overheads) == contenders | {"dask, local threads"}


@pytest.mark.slow
def test_the_notebook_runs_top_to_bottom_on_the_checkouts_gdxp(tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")  # gives the kernel named python3, on this very interpreter
    notebook = nbformat.read(EXAMPLES / "backprop_walkthrough.ipynb", as_version=4)
    notebook.cells.append(nbformat.v4.new_code_cell("print(gdxp.__file__)"))  # which gdxp the kernel imported
    monkeypatch.setenv("PYTHONPATH", PYTHONPATH)  # the kernel, a child process, imports this checkout's gdxp
    nbclient.NotebookClient(notebook, kernel_name="python3", timeout=120,
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    assert not list(tmp_path.iterdir())  # it writes no files

    def outputs(kind: str) -> list:
        return [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs
                if kind in output.get("data", {})]

    printed = [output.text for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs
               if output.output_type == "stream" and output.name == "stdout"]
    assert Path(printed[-1].strip()).parent == EXAMPLES.parent / "gdxp"
    tables = [output["data"]["text/html"] for output in outputs("text/html")]
    captions = [table.split("</caption>")[0].rsplit(">", 1)[1] for table in tables]  # summary, trace, history, trace
    assert [caption.split(" of ")[0].split("(")[0] for caption in captions] == [
        "Network", "One forward and backward pass", "History", "One forward and backward pass"]
    assert len(outputs("image/png")) == 2  # the two loss plots
    bars = "".join(output.text for cell in notebook.cells for output in cell.get("outputs", ())
                   if output.output_type == "stream" and output.name == "stderr")
    assert "80000/80000" in bars and "200/200" in bars  # the live progress bars, run to the end
    assert "3 -> 5 hidden -> 1: prediction 0.840882 -> 0.200000" in "".join(printed)
