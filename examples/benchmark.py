"""How fast is a gdxp training step next to hand-written array code, the tutorials' own loop and PyTorch?

Each workload is timed in one process with its contenders interleaved (a rotating order), several
times each; the script prints each contender's steps per run, the median and the best time per step
and their ratios to the floor, which stay meaningful on a shared, noisy machine.

1. The tutorials' 3-5-1 sigmoid network, one sample per step, float64 (their run is 80,000 steps;
   a quarter of it per run, repeated, says the same per step with more runs to take the best of).
2. A 784-256-256-10 ReLU network with softmax and cross-entropy, batches of 256, float32.
3. With ``--wide W``: a W-W-W-10 ReLU network at batch W, float32 (``--wide 4096`` on a GPU), with
   the rate each contender reaches against the backend's own measured W x W matrix-product rate.

Contenders:
- floor: the leanest inline vectorized code for the same math (forward, loss, backward, update): NumPy
  on the CPU for workload 1, the chosen backend's namespace for workloads 2 and 3.
- gdxp fit: ``net.fit`` (one batch per epoch), recording the loss of every step.
- gdxp step: ``net.step`` in a Python loop on arrays already on the device.
- tutorial loop: part 4's per-neuron loop (``tutorial_loops.py``), workload 1 only.
- gdxp fit <backend>, workloads 1 and 2: ``net.fit`` on every other usable backend's CPU device
  (torch, JAX, array_api_strict; numpy too when ``--backend`` is another). JAX's float64 needs its
  64-bit mode, which this script switches on for itself (gdxp never does).
- torch: PyTorch autograd with ``torch.optim.SGD`` on the CPU (and on CUDA when there is one), when
  PyTorch can run here (else one line says why its rows are left out); for workload 3 on a GPU, on
  CUDA only.

A step of the tiny network costs from a few hundred microseconds to a millisecond on torch, JAX or
array_api_strict (each of its dozens of small operations pays the library's dispatch), so on workload 1
the contenders on another library than NumPy run ``--other-steps`` steps per run (default: a twentieth
of ``--steps``); the figures are per step, so they compare all the same.

Networks and tensors of workloads 2 and 3 are set up off the clock, and each run goes on training them:
a step costs the same whatever the weights, while drawing a 4096-wide network costs more than the steps.

Run: ``python examples/benchmark.py [--steps 20000] [--other-steps 1000] [--batches 100] [--repeats 7]
[--backend numpy] [--wide 0] [--wide-steps 20]`` (unset OPENBLAS_CORETYPE first where it is set, so
NumPy picks its fastest kernels). On a GPU: ``python examples/benchmark.py --backend cupy --wide 4096``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from common import Contender, contenders, enable_jax_float64
from tutorial_loops import part4_loop

import gdxp

X = np.array([0.1, 0.4, 4.1])
TARGET = np.array([0.2])
SMALL_RATE = 0.001
LARGE_SIZES = (784, 256, 256, 10)
LARGE_BATCH = 256
LARGE_RATE = 0.01
OUTPUTS = 10

Array = Any


@dataclass(frozen=True)
class Run:
    """One contender's run: ``steps`` training steps, timed as a whole."""

    run: Callable[[], object]
    steps: int

    def __call__(self) -> object:
        return self.run()


@dataclass(frozen=True)
class Others:
    """The contenders on other libraries than the chosen backend's: ``gdxp fit`` on each of ``fit_on``,
    PyTorch's own training if ``torch``, and on the tiny network ``tiny_steps`` steps per run for them
    (None: as many as the others)."""

    fit_on: tuple[Contender, ...] = ()
    torch: bool = False
    tiny_steps: int | None = None


# -- workload 1: the tutorials' network, one sample per step ----------------------------------------

def small_floor(w_hidden: np.ndarray, w_output: np.ndarray, steps: int) -> list[float]:
    """Per-sample descent on the 3-5-1 sigmoid network, written inline with nothing to spare."""
    x, target = X[None, :], TARGET[None, :]
    losses = []
    for _ in range(steps):
        activ = 1.0 / (1.0 + np.exp(-(x @ w_hidden)))
        prediction = 1.0 / (1.0 + np.exp(-(activ @ w_output)))
        diff = prediction - target
        losses.append(float((diff * diff).sum()))
        delta_out = 2.0 * diff * prediction * (1.0 - prediction)
        delta_hidden = (delta_out @ w_output.T) * activ * (1.0 - activ)
        w_output = w_output - SMALL_RATE * (activ.T @ delta_out)
        w_hidden = w_hidden - SMALL_RATE * (x.T @ delta_hidden)
    return losses


def small_workload(backend: str, steps: int, others: Others = Others()) -> dict[str, Run]:
    def network(on: str = backend, device: str | None = None) -> gdxp.Network:
        return gdxp.Network([3, 5, 1], activation="sigmoid", bias=False, init="uniform", seed=0, backend=on,
                            device=device, dtype="float64")

    def fit(on: str = backend, device: str | None = None, steps: int = steps) -> Run:
        return Run(lambda: network(on, device).fit(X, TARGET, epochs=steps, learning_rate=SMALL_RATE,
                                                   batch_size=1, verbose=0), steps)

    w_hidden, w_output = network().get_weights()
    runs = {
        "floor": Run(lambda: small_floor(w_hidden, w_output, steps), steps),
        "gdxp fit": fit(),
        "gdxp step": Run(lambda: step_loop(network(), X[None, :], TARGET[None, :], SMALL_RATE, steps), steps),
        "tutorial loop": Run(lambda: part4_loop(X, TARGET, w_hidden.T, w_output.T, SMALL_RATE, steps), steps),
    }
    if backend != "numpy":  # the same step on the CPU, the figure a GPU's is judged against
        runs["gdxp fit numpy"] = fit("numpy")
    other_steps = others.tiny_steps or steps
    for on in others.fit_on:
        runs[f"gdxp fit {on.backend}"] = fit(on.backend, on.device, other_steps)
    if others.torch:
        runs.update(torch_runs([w_hidden, w_output], X[None, :], TARGET[None, :], SMALL_RATE, other_steps,
                               "float64", classify=False))
    return runs


# -- workloads 2 and 3: wide ReLU networks on batches ---------------------------------------------

def relu_floor(backend: gdxp.backend.Backend, weights: list[Array], x: Array, y: Array, steps: int) -> list[float]:
    """Full-batch descent on a ReLU/softmax network with fused cross-entropy, written inline against
    the backend's namespace (so on a GPU it is the same floor in CuPy)."""
    xp = backend.xp
    w1, b1, w2, b2, w3, b3 = weights
    n = x.shape[0]
    losses = []
    for _ in range(steps):
        a1 = xp.maximum(x @ w1 + b1, 0.0)
        a2 = xp.maximum(a1 @ w2 + b2, 0.0)
        sop = a2 @ w3 + b3
        shifted = sop - xp.max(sop, axis=1, keepdims=True)
        log_softmax = shifted - xp.log(xp.sum(xp.exp(shifted), axis=1, keepdims=True))
        losses.append(backend.to_float(-xp.sum(y * log_softmax) / n))
        d3 = (xp.exp(log_softmax) - y) / n
        d2 = (d3 @ w3.T) * xp.astype(a2 > 0, a2.dtype)
        d1 = (d2 @ w2.T) * xp.astype(a1 > 0, a1.dtype)
        w3, b3 = w3 - LARGE_RATE * (a2.T @ d3), b3 - LARGE_RATE * xp.sum(d3, axis=0)
        w2, b2 = w2 - LARGE_RATE * (a1.T @ d2), b2 - LARGE_RATE * xp.sum(d2, axis=0)
        w1, b1 = w1 - LARGE_RATE * (x.T @ d1), b1 - LARGE_RATE * xp.sum(d1, axis=0)
    return losses


def relu_workload(backend: str, sizes: tuple[int, ...], batch: int, steps: int, others: Others = Others(), *,
                  gpu_only_torch: bool = False) -> dict[str, Run]:
    def network(on: str = backend, device: str | None = None) -> gdxp.Network:
        return gdxp.Network(sizes, activation="relu", output_activation="softmax", loss="cross_entropy",
                            init="he_normal", seed=0, backend=on, device=device, dtype="float32")

    def fit(net: gdxp.Network) -> Run:  # the network and its data set up off the clock
        inputs, targets = net.backend.asarray(x), net.backend.asarray(y)
        return Run(lambda: net.fit(inputs, targets, epochs=steps, learning_rate=LARGE_RATE, verbose=0), steps)

    rng = np.random.default_rng(0)
    x = rng.normal(size=(batch, sizes[0])).astype(np.float32)
    y = np.eye(sizes[-1], dtype=np.float32)[rng.integers(0, sizes[-1], batch)]
    host_weights = network().get_weights()
    device = gdxp.get_backend(backend, dtype="float32")
    weights, inputs, targets = [device.asarray(w) for w in host_weights], device.asarray(x), device.asarray(y)
    step_net = network()  # built off the clock: a 4096-wide draw takes longer than the steps
    runs = {
        "floor": Run(lambda: relu_floor(device, weights, inputs, targets, steps), steps),
        "gdxp fit": fit(network()),
        "gdxp step": Run(lambda: step_loop(step_net, inputs, targets, LARGE_RATE, steps), steps),
    }
    for on in others.fit_on:
        runs[f"gdxp fit {on.backend}"] = fit(network(on.backend, on.device))
    if others.torch:
        runs.update(torch_runs(host_weights, x, y, LARGE_RATE, steps, "float32", classify=True,
                               gpu_only=gpu_only_torch))
    return runs


def training_flops(sizes: tuple[int, ...], batch: int) -> int:
    """Multiply-adds x 2 of one step's matrix products: the forward pass, each layer's weight gradient,
    and the error passed back to every layer but the first."""
    products = [n_in * n_out for n_in, n_out in zip(sizes[:-1], sizes[1:])]
    return 2 * batch * (2 * sum(products) + sum(products[1:]))


def matmul_rate(backend: str, size: int, repeats: int) -> float:
    """The backend's float32 matrix-product rate (FLOP/s) on two size x size matrices, median of runs."""
    device = gdxp.get_backend(backend, dtype="float32")
    rng = np.random.default_rng(1)
    a, b = (device.asarray(rng.normal(size=(size, size))) for _ in range(2))
    a @ b
    device.synchronize()
    times = []
    for _ in range(max(repeats, 3)):
        start = time.perf_counter()
        a @ b
        device.synchronize()
        times.append(time.perf_counter() - start)
    return 2 * size**3 / statistics.median(times)


# -- shared pieces -----------------------------------------------------------------------------------

def step_loop(net: gdxp.Network, x: Array, y: Array, rate: float, steps: int) -> gdxp.Network:
    inputs, targets = net.backend.asarray(x), net.backend.asarray(y)
    for _ in range(steps):
        net.step(inputs, targets, learning_rate=rate, check_finite=False)
    net.backend.synchronize()
    return net


def torch_runs(weights: list[np.ndarray], x: np.ndarray, y: np.ndarray, rate: float, steps: int, dtype: str, *,
               classify: bool, gpu_only: bool = False) -> dict[str, Run]:
    """PyTorch (autograd + torch.optim.SGD) on the CPU (unless ``gpu_only``), and on CUDA if present."""
    import torch

    devices = ([] if gpu_only else ["cpu"]) + (["cuda"] if torch.cuda.is_available() else [])
    return {f"torch {device}": Run(_torch_run(torch, weights, x, y, rate, steps, getattr(torch, dtype), device,
                                              classify), steps)
            for device in devices}


def _torch_run(torch, weights, x, y, rate, steps, dtype, device, classify) -> Callable[[], list[float]]:
    params = [torch.tensor(w, dtype=dtype, device=device, requires_grad=True) for w in weights]
    inputs, targets = (torch.tensor(a, dtype=dtype, device=device) for a in (x, y))
    optimizer = torch.optim.SGD(params, lr=rate)

    def run() -> list[float]:  # each run goes on training the same parameters, set up off the clock
        losses = []
        for _ in range(steps):
            optimizer.zero_grad()
            loss = _torch_loss(torch, params, inputs, targets, classify)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        return losses
    return run


def _torch_loss(torch, params, inputs, targets, classify):
    if classify:  # ReLU layers, softmax + cross-entropy averaged over the batch
        w1, b1, w2, b2, w3, b3 = params
        hidden = torch.relu(torch.relu(inputs @ w1 + b1) @ w2 + b2)
        return torch.nn.functional.cross_entropy(hidden @ w3 + b3, targets)
    w1, w2 = params  # the tutorials' sigmoid network and squared error
    prediction = torch.sigmoid(torch.sigmoid(inputs @ w1) @ w2)
    return ((prediction - targets) ** 2).sum()


def measure(runs: dict[str, Run], repeats: int) -> dict[str, list[float]]:
    """Seconds per run of each contender, ``repeats`` times, after one warm-up each, interleaved."""
    for run in runs.values():
        run()
    names = list(runs)
    seconds: dict[str, list[float]] = {name: [] for name in names}
    for repeat in range(repeats):
        for name in names[repeat % len(names):] + names[:repeat % len(names)]:
            start = time.perf_counter()
            runs[name]()
            seconds[name].append(time.perf_counter() - start)
    return seconds


def report(title: str, runs: dict[str, Run], seconds: dict[str, list[float]], flops: int | None = None,
           peak: float | None = None) -> None:
    """Each contender's steps per run, its median and best time per step, and each as a ratio to the
    floor's: on a shared machine the best of several runs is the least disturbed estimate of what the
    code itself costs. With the step's ``flops`` and the measured matrix-product ``peak``, also the
    rate each best run reached. The title gives the floor's steps per run."""
    median = {name: 1e6 * statistics.median(s) / runs[name].steps for name, s in seconds.items()}
    best = {name: 1e6 * min(s) / runs[name].steps for name, s in seconds.items()}
    rates = flops is not None and peak is not None
    width = max(15, 2 + max(map(len, seconds)))
    print(f"\n{title}, {runs['floor'].steps:,} steps")
    print(f"{'contender':<{width}}{'steps':>7}{'median us':>11}{'x floor':>9}{'best us':>10}{'x floor':>9}"
          f"{'x gdxp fit':>12}" + (f"{'TFLOP/s':>9}{'x matmul':>10}" if rates else ""))
    for name in seconds:
        line = (f"{name:<{width}}{runs[name].steps:>7}{median[name]:>11.1f}{median[name] / median['floor']:>9.2f}"
                f"{best[name]:>10.1f}{best[name] / best['floor']:>9.2f}{median[name] / median['gdxp fit']:>12.2f}")
        if rates:
            rate = flops / (best[name] * 1e-6)
            line += f"{rate / 1e12:>9.2f}{rate / peak:>10.2f}"
        print(line)


def others_here(statuses: dict[str, gdxp.BackendStatus], backend: str, tiny_steps: int) -> Others:
    """gdxp fit on every usable backend's CPU device but numpy's (timed by the floor and ``gdxp fit``) and
    the chosen backend's own; PyTorch's rows where it can run."""
    chosen = gdxp.get_backend(backend)
    fit_on = tuple(c for c in contenders(statuses) if c.on_host and c.backend != "numpy"
                   and (c.backend, c.device) != (chosen.name, chosen.device_name))
    return Others(fit_on=fit_on, torch=statuses["torch"].usable, tiny_steps=tiny_steps)


def print_setup(statuses: dict[str, gdxp.BackendStatus], backend: str, repeats: int, others: Others,
                x64: str | None) -> None:
    """The lines before the tables: versions, JAX's 64-bit mode, the contenders on other libraries and
    their steps, and each backend left out with the reason."""
    versions = f"numpy {np.__version__}, gdxp {gdxp.__version__}, backend {backend}"
    for status in statuses.values():
        if status.usable and status.name != "numpy":
            versions += f", {status.name} {status.version}"
            if status.name == "torch":
                import torch

                versions += f" ({torch.get_num_threads()} threads)"
    print(f"{repeats} runs each, interleaved; {versions}")
    if x64 and statuses["jax"].usable:
        print(x64)
    if others.fit_on:
        print(f"also gdxp fit on {', '.join(map(str, others.fit_on))}")
    if others.fit_on or others.torch:
        print(f"on workload 1, gdxp fit on those and PyTorch run {others.tiny_steps:,} steps per run "
              f"(--other-steps): slower per step, so fewer steps; the figures are per step")
    for status in statuses.values():
        if status.name == "torch" and not status.usable:
            print(f"PyTorch rows left out (autograd + SGD, gdxp fit on torch): {status.reason}")
        elif not status.usable:
            print(f"{status.name} not timed: {status.reason}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=20_000, help="steps of workload 1 per run")
    parser.add_argument("--other-steps", type=int, default=None,
                        help="steps of workload 1 per run on torch, JAX and array_api_strict (default: steps / 20)")
    parser.add_argument("--batches", type=int, default=100, help="steps of workload 2 per run")
    parser.add_argument("--wide", type=int, default=0,
                        help="width W of workload 3, W-W-W-10 at batch W (4096 on a GPU; 0 skips it)")
    parser.add_argument("--wide-steps", type=int, default=20, help="steps of workload 3 per run")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--backend", default="numpy", choices=gdxp.backend.BACKEND_NAMES)
    args = parser.parse_args()
    x64 = enable_jax_float64()  # first, before any JAX array exists: the script's choice, not gdxp's
    statuses = gdxp.available_backends()
    others = others_here(statuses, args.backend, args.other_steps or max(1, args.steps // 20))
    print_setup(statuses, args.backend, args.repeats, others, x64)
    small = small_workload(args.backend, args.steps, others)
    report("3-5-1 sigmoid, one sample per step, float64 (floor: NumPy on the CPU)", small, measure(small, args.repeats))
    large = relu_workload(args.backend, LARGE_SIZES, LARGE_BATCH, args.batches, others)
    report(f"784-256-256-10 relu/softmax, batch {LARGE_BATCH}, float32 (floor: inline on {args.backend})", large,
           measure(large, args.repeats))
    if args.wide:
        sizes = (args.wide, args.wide, args.wide, OUTPUTS)
        peak = matmul_rate(args.backend, args.wide, args.repeats)
        square = f"{args.wide}x{args.wide}"
        print(f"\n{square} @ {square} float32 on {args.backend}: {peak / 1e12:.2f} TFLOP/s "
              f"(median of {max(args.repeats, 3)}), the peak the rates below are compared with")
        network = "-".join(map(str, sizes))
        title = f"{network} relu/softmax, batch {args.wide}, float32 (floor: inline on {args.backend})"
        on_gpu = args.backend == "cupy"  # then PyTorch on the CPU would spend the GPU's time for nothing
        runs = relu_workload(args.backend, sizes, args.wide, args.wide_steps, Others(torch=others.torch),
                             gpu_only_torch=on_gpu)
        report(title, runs, measure(runs, args.repeats), flops=training_flops(sizes, args.wide), peak=peak)


if __name__ == "__main__":
    main()
