"""The same networks, from the same seed, on every backend that can run here: which device wins where?

For each network in a sweep (from the tutorials' 3-5-1 per-sample network up to wide, deep,
large-batch ones) and each usable backend on each kind of device, in float32 and float64, the script
measures: numpy on the CPU; torch on the CPU and on its first GPU; JAX on its first CPU and GPU device;
cupy on its first GPU; array_api_strict, the reference for pure standard code, on its CPU_DEVICE. The
two widest networks run on GPUs only. JAX computes in float64 only in its 64-bit mode, which this
script switches on for itself (gdxp never does).

- the median time of one training step (``net.step``) after warm-up, with the device synchronized
  before every clock read, and the samples per second that makes;
- the speed-up over numpy in the same dtype;
- agreement: the largest |w - w_numpy| after the same few steps in float64 from the same initial
  weights, which shows that every device computes the same thing.

It prints a table, writes it as CSV (by default ``compare_devices.csv`` in the figures folder), and
with matplotlib draws time per step against network size (multiply-adds per step) per backend and
device. Backends that cannot run here are listed with the reason.
Run: ``python examples/compare_devices.py [--quick] [--csv FILE] [--figures DIR]``.
"""

from __future__ import annotations

import csv
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from common import Contender, contenders, enable_jax_float64, parser

import gdxp

AGREEMENT_STEPS = 5
LEARNING_RATE = 0.01


@dataclass(frozen=True)
class Config:
    """One network of the sweep and the batch it trains on."""

    sizes: tuple[int, ...]
    batch: int
    gpu_only: bool = False  # too slow to time on a CPU in a demo: accelerators only

    @property
    def name(self) -> str:
        return f"{'-'.join(map(str, self.sizes))} b{self.batch}"

    @property
    def multiply_adds(self) -> int:
        """Multiply-adds of one step: forward, and the two products per layer of the backward pass."""
        return 3 * self.batch * sum(a * b for a, b in zip(self.sizes[:-1], self.sizes[1:]))

    def network(self, on: Contender, dtype: str) -> gdxp.Network:
        where = {"backend": on.backend, "device": on.device, "dtype": dtype}
        small = len(self.sizes) == 3 and self.sizes[-1] == 1
        if small:  # the tutorials' network
            return gdxp.Network(self.sizes, activation="sigmoid", bias=False, init="uniform", seed=0, **where)
        return gdxp.Network(self.sizes, activation="relu", output_activation="softmax", loss="cross_entropy",
                            init="he_normal", seed=0, **where)

    def data(self) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(1)
        x = rng.normal(size=(self.batch, self.sizes[0]))
        labels = rng.integers(0, self.sizes[-1], size=self.batch)
        y = np.full((self.batch, 1), 0.2) if self.sizes[-1] == 1 else np.eye(self.sizes[-1])[labels]
        return x, y


SWEEP = (
    Config((3, 5, 1), 1),
    Config((64, 128, 10), 32),
    Config((256, 512, 512, 10), 128),
    Config((784, 256, 256, 10), 256),
    Config((1024, 1024, 1024, 10), 512),
    Config((2048, 2048, 2048, 10), 1024, gpu_only=True),
    Config((4096, 4096, 4096, 10), 4096, gpu_only=True),
)
QUICK_SWEEP = (Config((3, 5, 1), 1), Config((64, 128, 10), 32))


def time_steps(net: gdxp.Network, x: np.ndarray, y: np.ndarray, warmup: int, repeats: int,
               budget: float = 2.0) -> float:
    """Median seconds of one step, the device synchronized before every clock read; at least three
    timed steps, and no more once ``budget`` seconds are spent."""
    backend = net.backend
    inputs, targets = backend.asarray(x), backend.asarray(y)
    for _ in range(warmup):
        net.step(inputs, targets, learning_rate=LEARNING_RATE, check_finite=False)
    times = []
    for _ in range(repeats):
        backend.synchronize(*net.state.weights)
        start = time.perf_counter()
        net.step(inputs, targets, learning_rate=LEARNING_RATE, check_finite=False)
        backend.synchronize(*net.state.weights)  # JAX waits for the arrays it is given
        times.append(time.perf_counter() - start)
        if len(times) >= 3 and sum(times) > budget:
            break
    return statistics.median(times)


def trained_weights(config: Config, on: Contender) -> list[np.ndarray]:
    """The weights after a few float64 steps from the seed, as host arrays."""
    x, y = config.data()
    net = config.network(on, "float64")
    net.fit(x, y, epochs=AGREEMENT_STEPS, learning_rate=LEARNING_RATE, verbose=0)
    return net.get_weights()


def agreement(reference: list[np.ndarray], weights: list[np.ndarray]) -> float:
    """Largest |w - w_numpy| between two sets of weights."""
    return max(float(np.max(np.abs(a - b))) for a, b in zip(reference, weights))


def sweep(configs: tuple[Config, ...], contenders: list[Contender], dtypes: tuple[str, ...],
          repeats: int) -> list[dict]:
    rows = []
    for config in configs:
        x, y = config.data()
        runs_here = [c for c in contenders if not (config.gpu_only and c.on_host)]
        reference = trained_weights(config, Contender("numpy", "cpu", on_host=True))
        agree = {c: agreement(reference, trained_weights(config, c)) for c in runs_here}
        for dtype in dtypes:
            baseline = None
            for contender in runs_here:
                seconds = time_steps(config.network(contender, dtype), x, y, warmup=3, repeats=repeats)
                baseline = seconds if contender.backend == "numpy" else baseline
                rows.append({
                    "network": config.name, "multiply_adds": config.multiply_adds, "backend": contender.backend,
                    "device": contender.device, "dtype": dtype, "ms_per_step": 1e3 * seconds,
                    "samples_per_s": config.batch / seconds,
                    "speedup_vs_numpy": baseline / seconds if baseline else float("nan"),
                    "max_abs_diff_vs_numpy_f64": agree[contender],
                })
    return rows


def print_table(rows: list[dict]) -> None:
    print(f"{'network':<24}{'backend':<18}{'device':<12}{'dtype':<9}{'ms/step':>10}{'samples/s':>12}"
          f"{'x numpy':>9}{'|w - w_numpy|':>15}")
    for row in rows:
        print(f"{row['network']:<24}{row['backend']:<18}{row['device']:<12}{row['dtype']:<9}"
              f"{row['ms_per_step']:>10.4f}{row['samples_per_s']:>12.4g}{row['speedup_vs_numpy']:>9.2f}"
              f"{row['max_abs_diff_vs_numpy_f64']:>15.2e}")


def plot(rows: list[dict], path: Path) -> None:
    try:
        from matplotlib.figure import Figure
    except ImportError:
        print("(no figure: matplotlib is not installed: pip install 'gdxp[plot]')")
        return
    figure = Figure(figsize=(7.5, 5), layout="constrained")
    axes = figure.subplots()
    def line(row: dict) -> tuple[str, str, str]:
        return row["backend"], row["device"], row["dtype"]

    for key in sorted({line(r) for r in rows}):
        points = sorted((r["multiply_adds"], r["ms_per_step"]) for r in rows if line(r) == key)
        axes.plot(*zip(*points), marker="o", label=" ".join(key))
    axes.set(xscale="log", yscale="log", xlabel="multiply-adds per training step", ylabel="ms per step",
             title="Time per training step by network size")
    axes.legend()
    figure.savefig(path)
    print(f"figure saved to {path}")


def main() -> None:
    options = parser(__doc__.splitlines()[0])
    options.add_argument("--quick", action="store_true", help="two small networks, few repeats (for tests)")
    options.add_argument("--csv", type=Path, default=None,
                         help="where to write the table (default: compare_devices.csv in the figures folder)")
    args = options.parse_args()
    x64 = enable_jax_float64()  # first, before any JAX array exists: the script's choice, not gdxp's
    statuses = gdxp.available_backends()
    for status in statuses.values():
        print(status)
    if x64 and statuses["jax"].usable:
        print(x64)
    runs_on = contenders(statuses)
    print(f"contenders: {', '.join(map(str, runs_on))}")
    configs = QUICK_SWEEP if args.quick else SWEEP
    rows = sweep(configs, runs_on, ("float32", "float64"), repeats=5 if args.quick else 50)
    print()
    print_table(rows)
    args.figures.mkdir(parents=True, exist_ok=True)
    csv_path = args.csv if args.csv is not None else args.figures / "compare_devices.csv"
    with csv_path.open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(f"table written to {csv_path}")
    plot(rows, args.figures / "compare_devices.png")


if __name__ == "__main__":
    main()
