"""The same networks, from the same seed, on every backend that can run here: which device wins where?

For each network in a sweep (from the tutorials' 3-5-1 per-sample network up to wide, deep,
large-batch ones, in order of their parameter counts) and each usable backend on each kind of device,
in float32 and float64, the script measures: numpy on the CPU; torch on the CPU and on its first GPU;
JAX on its first CPU and GPU device; cupy on its first GPU; array_api_strict, the reference for pure
standard code, on its CPU_DEVICE; Dask on local threads (its step is one graph through the scheduler:
a fixed cost of milliseconds, which only large data on a cluster pays back, see dask_cluster.py). The
two widest networks run on GPUs only. ``--backend`` names the backends to time beside numpy, which is
always timed: the speed-up and the agreement are measured against it. JAX computes in float64 only in
its 64-bit mode, which this script switches on for itself (gdxp never does).

- the median time of one training step (``net.step``) after warm-up, with the device synchronized
  before every clock read, and the samples per second that makes;
- the speed-up over numpy in the same dtype;
- agreement: the largest |w - w_numpy| after the same few steps in float64 from the same initial
  weights, which shows that every device computes the same thing.

A progress bar (on stderr) counts the measurements. The script prints a table, writes it as CSV
(``compare_devices.csv`` in the ``--figures`` folder, default ``figures/``, or ``--csv FILE``) and, with
matplotlib, ``compare_devices.png``: time per step, speed-up over numpy and agreement against the
networks in order of size, one colour per backend and device, float32 solid and float64 dashed.
Backends that cannot run here are listed with the reason.
Run: ``python examples/compare_devices.py [--quick] [--backend torch jax] [--csv FILE] [--figures DIR]``.
"""

from __future__ import annotations

import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from common import Contender, contenders, enable_jax_float64, parser, write_csv
from tqdm import tqdm

import gdxp

AGREEMENT_STEPS = 5
LEARNING_RATE = 0.01
NUMPY = Contender("numpy", "cpu", on_host=True)
DTYPES = ("float32", "float64")


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
    def tutorial(self) -> bool:
        """The tutorials' network: one hidden layer, one sigmoid output, no bias."""
        return len(self.sizes) == 3 and self.sizes[-1] == 1

    @property
    def parameters(self) -> int:
        """Weights and biases: the network's size, the sweep's order and the figure's x axis."""
        bias = 0 if self.tutorial else sum(self.sizes[1:])
        return sum(a * b for a, b in zip(self.sizes[:-1], self.sizes[1:])) + bias

    def network(self, on: Contender, dtype: str) -> gdxp.Network:
        where = {"backend": on.backend, "device": on.device, "dtype": dtype}
        if self.tutorial:
            return gdxp.Network(self.sizes, activation="sigmoid", bias=False, init="uniform", seed=0, **where)
        return gdxp.Network(self.sizes, activation="relu", output_activation="softmax", loss="cross_entropy",
                            init="he_normal", seed=0, **where)

    def data(self) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(1)
        x = rng.normal(size=(self.batch, self.sizes[0]))
        labels = rng.integers(0, self.sizes[-1], size=self.batch)
        y = np.full((self.batch, 1), 0.2) if self.sizes[-1] == 1 else np.eye(self.sizes[-1])[labels]
        return x, y


SWEEP = tuple(sorted((
    Config((3, 5, 1), 1),
    Config((64, 128, 10), 32),
    Config((256, 512, 512, 10), 128),
    Config((784, 256, 256, 10), 256),
    Config((1024, 1024, 1024, 10), 512),
    Config((2048, 2048, 2048, 10), 1024, gpu_only=True),
    Config((4096, 4096, 4096, 10), 4096, gpu_only=True),
), key=lambda config: config.parameters))
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


def sweep(configs: tuple[Config, ...], runs_on: list[Contender], repeats: int) -> list[dict]:
    """A row per network, contender and dtype; numpy (``runs_on[0]``) first in each, as the others' baseline."""
    plan = [(config, [c for c in runs_on if not (config.gpu_only and c.on_host)]) for config in configs]
    rows = []
    with tqdm(total=sum(len(here) * (1 + len(DTYPES)) for _, here in plan), unit="run", file=sys.stderr,
              dynamic_ncols=True) as bar:
        for config, runs_here in plan:
            x, y = config.data()
            agree = {}
            for contender in runs_here:
                bar.set_description(f"{config.name} {contender} agreement")
                agree[contender] = trained_weights(config, contender)
                bar.update()
            for dtype in DTYPES:
                baseline = None
                for contender in runs_here:
                    bar.set_description(f"{config.name} {contender} {dtype}")
                    seconds = time_steps(config.network(contender, dtype), x, y, warmup=3, repeats=repeats)
                    baseline = seconds if contender == NUMPY else baseline
                    rows.append({
                        "network": config.name, "parameters": config.parameters, "backend": contender.backend,
                        "device": contender.device, "dtype": dtype, "ms_per_step": 1e3 * seconds,
                        "samples_per_s": config.batch / seconds,
                        "speedup_vs_numpy": baseline / seconds if baseline else float("nan"),
                        "max_abs_diff_vs_numpy_f64": agreement(agree[NUMPY], agree[contender]),
                    })
                    bar.update()
    return rows


def print_table(rows: list[dict]) -> None:
    print(f"{'network':<24}{'parameters':>11}  {'backend':<18}{'device':<12}{'dtype':<9}{'ms/step':>10}"
          f"{'samples/s':>12}{'x numpy':>9}{'|w - w_numpy|':>15}")
    for row in rows:
        print(f"{row['network']:<24}{row['parameters']:>11,}  {row['backend']:<18}{row['device']:<12}"
              f"{row['dtype']:<9}{row['ms_per_step']:>10.4f}{row['samples_per_s']:>12.4g}"
              f"{row['speedup_vs_numpy']:>9.2f}{row['max_abs_diff_vs_numpy_f64']:>15.2e}")


# the agreement panel is logarithmic: an exact match (0) is drawn at this floor, and the axis says so
EXACT = 1e-18


def plot(rows: list[dict], path: Path) -> None:
    """Three panels against the networks in order of parameter count: ms per step, speed-up over numpy, and
    the float64 agreement with numpy; a colour per backend and device, float32 solid, float64 dashed; the
    legend beside the panels, off the data."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        print("(no figure: matplotlib is not installed: pip install 'gdxp[plot]')")
        return
    networks = sorted({(r["parameters"], r["network"]) for r in rows})
    position = {name: i for i, (_, name) in enumerate(networks)}
    places = list(dict.fromkeys((r["backend"], r["device"]) for r in rows))
    colours = {place: f"C{i}" for i, place in enumerate(places)}
    figure = Figure(figsize=(8 + 0.8 * len(networks), 9), layout="constrained")
    time_axes, speed_axes, agree_axes = figure.subplots(3, 1, sharex=True)
    for place in places:
        for dtype, style in zip(DTYPES, ("-", "--")):
            mine = sorted((position[r["network"]], r) for r in rows if (r["backend"], r["device"]) == place
                          and r["dtype"] == dtype)
            xs = [i for i, _ in mine]
            label = f"{place[0]} {place[1]} {dtype}"
            time_axes.plot(xs, [r["ms_per_step"] for _, r in mine], style, marker="o", color=colours[place],
                           label=label)
            speed_axes.plot(xs, [r["speedup_vs_numpy"] for _, r in mine], style, marker="o", color=colours[place])
            if dtype == "float64" and place != (NUMPY.backend, NUMPY.device):
                agree_axes.plot(xs, [max(r["max_abs_diff_vs_numpy_f64"], EXACT) for _, r in mine], style,
                                marker="o", color=colours[place])
    time_axes.set(yscale="log", ylabel="ms per step", title="Time per training step, networks in order of size")
    speed_axes.axhline(1.0, color="grey", linewidth=0.8)
    speed_axes.set(yscale="log", ylabel="speed-up over numpy\n(numpy's time / its time)")
    agree_axes.set(yscale="log", ylabel=f"max |w - w_numpy| after {AGREEMENT_STEPS}\nfloat64 steps ({EXACT:g}: exact)")
    agree_axes.set_xticks(range(len(networks)), [f"{name}\n{count:,} params" for count, name in networks],
                          fontsize="small")
    figure.legend(loc="outside right upper", fontsize="small")
    figure.savefig(path)
    print(f"figure saved to {path}")


def main() -> None:
    options = parser(__doc__.splitlines()[0], backend=False)
    options.add_argument("--backend", nargs="+", choices=gdxp.backend.BACKEND_NAMES, default=None,
                         help="the backends to time beside numpy (None: every usable one)")
    options.add_argument("--quick", action="store_true", help="two small networks, few repeats (for tests)")
    options.add_argument("--csv", type=Path, default=None,
                         help="where to write the table (None: compare_devices.csv in the figures folder)")
    args = options.parse_args()
    x64 = enable_jax_float64()  # first, before any JAX array exists: the script's choice, not gdxp's
    statuses = gdxp.available_backends()
    for status in statuses.values():
        print(status)
    if x64 and statuses["jax"].usable:
        print(x64)
    for name in args.backend or ():
        if not statuses[name].usable:
            options.error(f"--backend {name} cannot run here: {statuses[name].reason}")
    runs_on = [c for c in contenders(statuses, dask=True)
               if c == NUMPY or args.backend is None or c.backend in args.backend]
    configs = QUICK_SWEEP if args.quick else SWEEP
    print(f"contenders: {', '.join(map(str, runs_on))}; networks: {', '.join(c.name for c in configs)}")
    rows = sweep(configs, runs_on, repeats=5 if args.quick else 50)
    print()
    print_table(rows)
    write_csv(rows, args.csv if args.csv is not None else args.figures / "compare_devices.csv")
    args.figures.mkdir(parents=True, exist_ok=True)
    plot(rows, args.figures / "compare_devices.png")


if __name__ == "__main__":
    main()
