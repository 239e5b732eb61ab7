"""How fast is a gdxp training step next to hand-written array code, the tutorials' own loop and PyTorch?

Each workload is timed in one process with its contenders interleaved (a rotating order), several
times each; the script prints the median and the best time per step and their ratios to the floor,
which stay meaningful on a shared, noisy machine.

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
- torch: PyTorch autograd with ``torch.optim.SGD`` on the CPU (and on CUDA when there is one), when
  PyTorch is installed; for workload 3 on a GPU, on CUDA only.

Networks and tensors of workloads 2 and 3 are set up off the clock, and each run goes on training them:
a step costs the same whatever the weights, while drawing a 4096-wide network costs more than the steps.

Run: ``python examples/benchmark.py [--steps 20000] [--batches 100] [--repeats 7] [--backend numpy]
[--wide 0] [--wide-steps 20]`` (unset OPENBLAS_CORETYPE first where it is set, so NumPy picks its
fastest kernels). On a GPU: ``python examples/benchmark.py --backend cupy --wide 4096``.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from tutorial_loops import part4_loop

import gdxp

X = np.array([0.1, 0.4, 4.1])
TARGET = np.array([0.2])
SMALL_RATE = 0.001
LARGE_SIZES = (784, 256, 256, 10)
LARGE_BATCH = 256
LARGE_RATE = 0.01
OUTPUTS = 10

Run = Callable[[], object]
Array = Any


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


def small_workload(backend: str, steps: int) -> dict[str, Run]:
    def network(on: str = backend) -> gdxp.Network:
        return gdxp.Network([3, 5, 1], activation="sigmoid", bias=False, init="uniform", seed=0, backend=on,
                            dtype="float64")

    def fit(on: str = backend) -> gdxp.History:
        return network(on).fit(X, TARGET, epochs=steps, learning_rate=SMALL_RATE, batch_size=1, verbose=0)

    w_hidden, w_output = network().get_weights()
    runs = {
        "floor": lambda: small_floor(w_hidden, w_output, steps),
        "gdxp fit": fit,
        "gdxp step": lambda: step_loop(network(), X[None, :], TARGET[None, :], SMALL_RATE, steps),
        "tutorial loop": lambda: part4_loop(X, TARGET, w_hidden.T, w_output.T, SMALL_RATE, steps),
    }
    if backend != "numpy":  # the same step on the CPU, the figure a GPU's is judged against
        runs["gdxp fit numpy"] = lambda: fit("numpy")
    runs.update(torch_runs([w_hidden, w_output], X[None, :], TARGET[None, :], SMALL_RATE, steps, "float64",
                           classify=False))
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


def relu_workload(backend: str, sizes: tuple[int, ...], batch: int, steps: int, *,
                  gpu_only_torch: bool = False) -> dict[str, Run]:
    def network() -> gdxp.Network:
        return gdxp.Network(sizes, activation="relu", output_activation="softmax", loss="cross_entropy",
                            init="he_normal", seed=0, backend=backend, dtype="float32")

    rng = np.random.default_rng(0)
    x = rng.normal(size=(batch, sizes[0])).astype(np.float32)
    y = np.eye(sizes[-1], dtype=np.float32)[rng.integers(0, sizes[-1], batch)]
    host_weights = network().get_weights()
    device = gdxp.get_backend(backend, dtype="float32")
    weights, inputs, targets = [device.asarray(w) for w in host_weights], device.asarray(x), device.asarray(y)
    fit_net, step_net = network(), network()  # built off the clock: a 4096-wide draw takes longer than steps
    runs = {
        "floor": lambda: relu_floor(device, weights, inputs, targets, steps),
        "gdxp fit": lambda: fit_net.fit(inputs, targets, epochs=steps, learning_rate=LARGE_RATE, verbose=0),
        "gdxp step": lambda: step_loop(step_net, inputs, targets, LARGE_RATE, steps),
    }
    runs.update(torch_runs(host_weights, x, y, LARGE_RATE, steps, "float32", classify=True, gpu_only=gpu_only_torch))
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
    """PyTorch (autograd + torch.optim.SGD) on the CPU (unless ``gpu_only``), and on CUDA if present;
    nothing without PyTorch."""
    if importlib.util.find_spec("torch") is None:
        return {}
    import torch

    devices = ([] if gpu_only else ["cpu"]) + (["cuda"] if torch.cuda.is_available() else [])
    return {f"torch {device}": _torch_run(torch, weights, x, y, rate, steps, getattr(torch, dtype), device, classify)
            for device in devices}


def _torch_run(torch, weights, x, y, rate, steps, dtype, device, classify) -> Run:
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


def report(title: str, seconds: dict[str, list[float]], steps: int, flops: int | None = None,
           peak: float | None = None) -> None:
    """Median and best time per step, and each as a ratio to the floor's: on a shared machine the
    best of several runs is the least disturbed estimate of what the code itself costs. With the
    step's ``flops`` and the measured matrix-product ``peak``, also the rate each best run reached."""
    median = {name: 1e6 * statistics.median(s) / steps for name, s in seconds.items()}
    best = {name: 1e6 * min(s) / steps for name, s in seconds.items()}
    rates = flops is not None and peak is not None
    print(f"\n{title}, {steps:,} steps")
    print(f"{'contender':<15}{'median us':>11}{'x floor':>9}{'best us':>10}{'x floor':>9}{'x gdxp fit':>12}"
          + (f"{'TFLOP/s':>9}{'x matmul':>10}" if rates else ""))
    for name in seconds:
        line = (f"{name:<15}{median[name]:>11.1f}{median[name] / median['floor']:>9.2f}{best[name]:>10.1f}"
                f"{best[name] / best['floor']:>9.2f}{median[name] / median['gdxp fit']:>12.2f}")
        if rates:
            rate = flops / (best[name] * 1e-6)
            line += f"{rate / 1e12:>9.2f}{rate / peak:>10.2f}"
        print(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=20_000, help="steps of workload 1 per run")
    parser.add_argument("--batches", type=int, default=100, help="steps of workload 2 per run")
    parser.add_argument("--wide", type=int, default=0,
                        help="width W of workload 3, W-W-W-10 at batch W (4096 on a GPU; 0 skips it)")
    parser.add_argument("--wide-steps", type=int, default=20, help="steps of workload 3 per run")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--backend", default="numpy", choices=gdxp.backend.BACKEND_NAMES)
    args = parser.parse_args()
    versions = f"numpy {np.__version__}, gdxp {gdxp.__version__}, backend {args.backend}"
    if importlib.util.find_spec("torch") is not None:
        import torch

        versions += f", torch {torch.__version__} ({torch.get_num_threads()} threads)"
    print(f"{args.repeats} runs each, interleaved; {versions}")
    report("3-5-1 sigmoid, one sample per step, float64 (floor: NumPy on the CPU)",
           measure(small_workload(args.backend, args.steps), args.repeats), args.steps)
    report(f"784-256-256-10 relu/softmax, batch {LARGE_BATCH}, float32 (floor: inline on {args.backend})",
           measure(relu_workload(args.backend, LARGE_SIZES, LARGE_BATCH, args.batches), args.repeats), args.batches)
    if args.wide:
        sizes = (args.wide, args.wide, args.wide, OUTPUTS)
        peak = matmul_rate(args.backend, args.wide, args.repeats)
        square = f"{args.wide}x{args.wide}"
        print(f"\n{square} @ {square} float32 on {args.backend}: {peak / 1e12:.2f} TFLOP/s "
              f"(median of {max(args.repeats, 3)}), the peak the rates below are compared with")
        network = "-".join(map(str, sizes))
        title = f"{network} relu/softmax, batch {args.wide}, float32 (floor: inline on {args.backend})"
        on_gpu = args.backend == "cupy"  # then PyTorch on the CPU would spend the GPU's time for nothing
        runs = relu_workload(args.backend, sizes, args.wide, args.wide_steps, gpu_only_torch=on_gpu)
        report(title, measure(runs, args.repeats), args.wide_steps, flops=training_flops(sizes, args.wide), peak=peak)


if __name__ == "__main__":
    main()
