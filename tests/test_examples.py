"""Every example runs as written (with shorter settings) and prints what the README says it prints."""

import csv
import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run_example(name: str, *args: str, figures: Path | None = None) -> str:
    extra = ["--figures", str(figures)] if figures is not None else []
    result = subprocess.run([sys.executable, str(EXAMPLES / name), *args, *extra], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    return result.stdout


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


def test_part3_trains_both_networks_and_saves_the_figures(tmp_path):
    out = run_example("part3_hidden_layer.py", "--steps", "3000", figures=tmp_path)
    assert "3 inputs -> 2 hidden -> 1 output on numpy" in out and "10 inputs -> 2 hidden" in out
    starts = [float(m) for m in re.findall(r"prediction (\d\.\d+) ->", out)]
    ends = [float(m) for m in re.findall(r"-> (\d\.\d+) \(target 0.2\)", out)]
    assert len(starts) == len(ends) == 2 and all(0.2 < end < start for start, end in zip(starts, ends))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["part3_10_inputs.png", "part3_3_inputs.png"]


def test_part4_takes_any_hidden_width(tmp_path):
    out = run_example("part4_any_hidden.py", "--hidden", "5", "3", "--steps", "2000", figures=tmp_path)
    assert "3 -> 5 hidden -> 1: prediction 0.840882 ->" in out and "3 -> 3 hidden -> 1" in out
    assert (tmp_path / "part4_5_hidden.png").exists() and (tmp_path / "part4_3_hidden.png").exists()


def test_backprop_walkthrough_prints_the_trace_then_learns(tmp_path):
    out = run_example("backprop_walkthrough.py", "--steps", "200", figures=tmp_path)
    assert out.startswith("One forward and backward pass of Network([4, 3, 2, 1]")
    for name in ("sop3", "error->prediction", "activ2->sop2", "grad_W1"):
        assert f"    {name} " in out
    before, after = map(float, re.search(r"prediction (-?\d\.\d+) -> (-?\d\.\d+) \(target 0.4\)", out).groups())
    assert abs(after - 0.4) < abs(before - 0.4)
    final = float(re.search(r"200 more steps of learning rate 0.1: prediction (-?\d\.\d+)", out).group(1))
    assert abs(final - 0.4) < 1e-3


def test_digits_reaches_95_percent_on_held_out_images(tmp_path):
    pytest.importorskip("sklearn")
    out = run_example("digits.py", "--verbose", "0", figures=tmp_path)
    accuracy = float(re.search(r"test accuracy (\d\.\d+)", out).group(1))
    assert accuracy >= 0.95
    assert (tmp_path / "digits.png").exists()


def test_benchmark_runs_both_workloads_and_prints_ratios():
    out = run_example("benchmark.py", "--steps", "50", "--batches", "2", "--repeats", "1")
    sections = out.split("\n\n")[1:]
    assert [s.splitlines()[0] for s in sections] == [
        "3-5-1 sigmoid, one sample per step, float64, 50 steps",
        "784-256-256-10 relu/softmax, batch 256, float32, 2 steps"]
    for section, expected in zip(sections, ({"numpy floor", "gdxp fit", "gdxp step", "tutorial loop"},
                                            {"numpy floor", "gdxp fit", "gdxp step"})):
        rows = {line[:15].strip(): line.split()[-2:] for line in section.splitlines()[2:]}
        assert expected <= set(rows) and set(rows) - expected <= {"torch cpu", "torch cuda"}
        assert rows["numpy floor"][0] == "1.00" and rows["gdxp fit"][1] == "1.00"


def test_compare_devices_quick_lists_backends_and_agrees(tmp_path):
    out = run_example("compare_devices.py", "--quick", "--csv", str(tmp_path / "table.csv"), figures=tmp_path)
    assert "cupy" in out.splitlines()[1]  # usable, or the reason it is not
    with (tmp_path / "table.csv").open() as file:
        rows = list(csv.DictReader(file))
    assert {(r["network"], r["backend"], r["dtype"]) for r in rows} >= {
        ("3-5-1 b1", "numpy", "float32"), ("64-128-10 b32", "array_api_strict", "float64")}
    for row in rows:
        assert float(row["ms_per_step"]) > 0 and float(row["max_abs_diff_vs_numpy_f64"]) < 1e-12
        if row["backend"] == "numpy":
            assert float(row["speedup_vs_numpy"]) == 1.0
    assert (tmp_path / "compare_devices.png").exists()
