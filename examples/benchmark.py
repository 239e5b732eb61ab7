"""How fast is a gdxp training step next to hand-written array code, the tutorials' own loop, PyTorch and JAX?

Each workload is timed in one process with its contenders interleaved (a rotating order), several
times each; the script prints each contender's steps per run, the median and the best time per step
and their ratios to the floor, which stay meaningful on a shared, noisy machine.

1. The tutorials' 3-5-1 sigmoid network, one sample per step, float64 (their run is 80,000 steps;
   a quarter of it per run, repeated, says the same per step with more runs to take the best of).
2. A 784-256-256-10 ReLU network with softmax and cross-entropy, batches of 256, float32.
3. With ``--wide W``: a W-W-W-10 ReLU network at batch W, float32 (``--wide 4096`` on a GPU), with
   the rate each contender reaches against the backend's own measured W x W matrix-product rate.
4. ``--widths`` (default 256 512 1024 2048): 784-W-W-10 ReLU/softmax networks, float32, an epoch of
   ``--width-batches`` batches of 256 (in order), trained with SGD and with Adam: gdxp ``fit`` beside
   PyTorch eager (autograd, ``torch.optim.SGD`` / ``Adam`` with its defaults), their times per step and
   gdxp's over PyTorch's. ``--widths`` with no value skips it.

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

Where a contender compiles (gdxp ``fit`` on JAX runs whole chunks of epochs as one XLA program), a
``compile s`` column gives the seconds its first run spent compiling (``History.compile_seconds``); the
timed runs come after that first one and reuse the program (0.00: an earlier row compiled the same one).

With JAX usable, workload 1 also gets a table of its own, "compiled on JAX", timed in the same interleaved
rounds as its first table: the NumPy floor and gdxp fit on NumPy beside
- compiled fit: gdxp ``fit`` on JAX's CPU (compiled) at ``--steps`` steps per run, and "long" at
  ``--long-steps`` (default 80,000, the tutorials' run); one network, built off the clock, trained on;
- jit+scan: the same math by hand as one ``jax.jit`` of ``lax.scan`` over the steps (the compiled limit,
  as the floor is NumPy's), at both lengths, its compile time taken ahead of time (``lower().compile()``,
  as gdxp's own);
- keras jax: Keras 3 on its JAX backend (``jit_compile=True``, ``steps_per_execution`` = the steps), only
  where ``keras`` is importable (else one line says so; it was not installed where this was written, so
  that row has never run).
Its columns are each contender's speedup over the floor (floor time / its time) and its time per step
over jit+scan's at the same length; its last line restates the goals compiling was built to: a compiled fit
at least 20x the floor's speed, and within 1.5x of jit+scan.

Compare on one core: ``OPENBLAS_NUM_THREADS=1 taskset -c 1 python examples/benchmark.py`` (XLA ignores its
thread flags on the CPU; ``taskset`` holds it, and NumPy and PyTorch too).

A step of the tiny network costs from a few hundred microseconds to a millisecond on torch, JAX or
array_api_strict (each of its dozens of small operations pays the library's dispatch), so on workload 1
the contenders on another library than NumPy run ``--other-steps`` steps per run (default: a twentieth
of ``--steps``); the figures are per step, so they compare all the same.

Networks and tensors of workloads 2 and 3 are set up off the clock, and each run goes on training them:
a step costs the same whatever the weights, while drawing a 4096-wide network costs more than the steps.

Run: ``python examples/benchmark.py [--steps 20000] [--long-steps 80000] [--other-steps 1000] [--batches 100]
[--repeats 7] [--backend numpy] [--wide 0] [--wide-steps 20]`` (unset OPENBLAS_CORETYPE first where it is set, so
NumPy picks its fastest kernels). On a GPU: ``python examples/benchmark.py --backend cupy --wide 4096``.
Every table also goes into ``--figures DIR`` (default ``figures/``) as ``benchmark.csv``, one row per contender
and table, times in microseconds per step.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from common import Contender, contenders, enable_jax_float64, parser, write_csv
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


@dataclass
class Run:
    """One contender's run: ``steps`` training steps, timed as a whole. A contender that ``compiles`` keeps
    the seconds its first run spent compiling (a gdxp fit's ``History.compile_seconds``), or those given
    where it compiled ahead of time."""

    run: Callable[[], object]
    steps: int
    compiles: bool = False
    compile_seconds: float | None = None

    def __call__(self) -> object:
        result = self.run()
        if self.compiles and self.compile_seconds is None and isinstance(result, gdxp.History):
            self.compile_seconds = result.compile_seconds
        return result


@dataclass(frozen=True)
class Others:
    """The contenders on other libraries than the chosen backend's: ``gdxp fit`` on each of ``fit_on``,
    PyTorch's own training if ``torch``, and on the tiny network ``tiny_steps`` steps per run for them
    (None: as many as the others); with ``compiled_on`` (JAX's CPU), workload 1's compiled contenders,
    the long ones at ``long_steps``, and Keras's if ``keras``."""

    fit_on: tuple[Contender, ...] = ()
    torch: bool = False
    tiny_steps: int | None = None
    compiled_on: Contender | None = None  # JAX's CPU, for workload 1's compiled table
    long_steps: int | None = None  # that table's long runs
    keras: bool = False


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
                                                   batch_size=1, verbose=0), steps, compiles(on, device))

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
    if others.compiled_on is not None:
        runs.update(compiled_runs(others.compiled_on, w_hidden, w_output, steps, others.long_steps or steps,
                                  others.keras))
    return runs


def small_scan(jax: Any, steps: int) -> Callable[[Array, Array, Array, Array], tuple[tuple[Array, Array], Array]]:
    """``small_floor``'s math as one program for ``jax.jit``: ``lax.scan`` over ``steps`` steps, the loss
    of each kept; ``run(w_hidden, w_output, x, target) -> ((w_hidden, w_output), losses)``."""
    jnp = jax.numpy

    def step(weights: tuple[Array, Array], x: Array, target: Array) -> tuple[tuple[Array, Array], Array]:
        w_hidden, w_output = weights
        activ = 1.0 / (1.0 + jnp.exp(-(x @ w_hidden)))
        prediction = 1.0 / (1.0 + jnp.exp(-(activ @ w_output)))
        diff = prediction - target
        delta_out = 2.0 * diff * prediction * (1.0 - prediction)
        delta_hidden = (delta_out @ w_output.T) * activ * (1.0 - activ)
        weights = (w_hidden - SMALL_RATE * (x.T @ delta_hidden), w_output - SMALL_RATE * (activ.T @ delta_out))
        return weights, jnp.sum(diff * diff)

    def run(w_hidden: Array, w_output: Array, x: Array, target: Array) -> tuple[tuple[Array, Array], Array]:
        return jax.lax.scan(lambda weights, _: step(weights, x, target), (w_hidden, w_output), length=steps)

    return run


def scan_run(device: str, w_hidden: np.ndarray, w_output: np.ndarray, steps: int) -> Run:
    """:func:`small_scan` compiled ahead of time on JAX's ``device`` (timed), run from the same weights
    each time; a run returns the losses on the host, as a fit reads them."""
    import jax

    where = gdxp.get_backend("jax", device=device, dtype="float64").device
    args = [jax.device_put(a, where) for a in (w_hidden, w_output, X[None, :], TARGET[None, :])]
    start = time.perf_counter()
    program = jax.jit(small_scan(jax, steps)).lower(*args).compile()
    seconds = time.perf_counter() - start
    return Run(lambda: np.asarray(program(*args)[1]), steps, compiles=True, compile_seconds=seconds)


def compiled_runs(on: Contender, w_hidden: np.ndarray, w_output: np.ndarray, steps: int, long_steps: int,
                  keras: bool) -> dict[str, Run]:
    """Workload 1's compiled contenders on JAX's CPU device ``on``: gdxp fit (one network built off the
    clock, trained on) and jit+scan, at ``steps`` and ``long_steps``; Keras 3 on JAX if ``keras``."""
    def compiled_fit(steps: int) -> Run:
        net = gdxp.Network([3, 5, 1], activation="sigmoid", bias=False, init="uniform", seed=0, backend=on.backend,
                           device=on.device, dtype="float64")
        inputs, targets = net.backend.asarray(X[None, :]), net.backend.asarray(TARGET[None, :])
        return Run(lambda: net.fit(inputs, targets, epochs=steps, learning_rate=SMALL_RATE, batch_size=1,
                                   verbose=0), steps, compiles=True)

    runs = {"compiled fit": compiled_fit(steps), "compiled fit long": compiled_fit(long_steps),
            "jit+scan": scan_run(on.device, w_hidden, w_output, steps),
            "jit+scan long": scan_run(on.device, w_hidden, w_output, long_steps)}
    if keras:
        try:
            runs["keras jax"] = keras_run(w_hidden, w_output, steps)
        except Exception as err:  # never run where this was written: say what failed rather than stop
            print(f"Keras 3 rows left out: setting up its model failed ({type(err).__name__}: {err})")
    return runs


def keras_run(w_hidden: np.ndarray, w_output: np.ndarray, steps: int) -> Run:
    """Keras 3 on its JAX backend, as a user would pick it: the 3-5-1 network without biases, squared error
    (its mean over the one output), SGD, ``steps`` one-sample batches per ``fit`` compiled as one execution
    (``steps_per_execution``). Keras keeps the epoch's mean loss, not each step's."""
    keras = importlib.import_module("keras")  # after main() chose its JAX backend
    keras.config.set_floatx("float64")
    layers = keras.layers
    model = keras.Sequential([keras.Input((3,)), layers.Dense(5, activation="sigmoid", use_bias=False),
                              layers.Dense(1, activation="sigmoid", use_bias=False)])
    model.set_weights([w_hidden, w_output])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=SMALL_RATE), loss="mean_squared_error",
                  jit_compile=True, steps_per_execution=steps)
    x, y = np.repeat(X[None, :], steps, axis=0), np.repeat(TARGET[None, :], steps, axis=0)
    return Run(lambda: model.fit(x, y, batch_size=1, epochs=1, shuffle=False, verbose=0), steps)


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
        return Run(lambda: net.fit(inputs, targets, epochs=steps, learning_rate=LARGE_RATE, verbose=0), steps,
                   net.backend.compiler is not None)

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
    device.synchronize(a @ b)
    times = []
    for _ in range(max(repeats, 3)):
        start = time.perf_counter()
        device.synchronize(a @ b)  # JAX waits for the arrays it is given
        times.append(time.perf_counter() - start)
    return 2 * size**3 / statistics.median(times)


# -- workload 4: widths, SGD and Adam, against PyTorch eager ---------------------------------------

def width_runs(width: int, batches: int, epochs: int, optimizer: str) -> dict[str, Run]:
    """gdxp ``fit`` and PyTorch eager training a 784-W-W-10 ReLU/softmax network with ``optimizer`` for
    ``epochs`` epochs of ``batches`` batches of 256 in order, float32, from the same weights, each network
    set up off the clock and trained on from run to run."""
    import torch

    sizes = (784, width, width, OUTPUTS)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(batches * LARGE_BATCH, sizes[0])).astype(np.float32)
    y = np.eye(OUTPUTS, dtype=np.float32)[rng.integers(0, OUTPUTS, batches * LARGE_BATCH)]
    net = gdxp.Network(sizes, activation="relu", output_activation="softmax", loss="cross_entropy",
                       init="he_normal", seed=0, dtype="float32")
    params = [torch.tensor(w, requires_grad=True) for w in net.get_weights()]
    chosen = torch.optim.SGD(params, lr=LARGE_RATE) if optimizer == "sgd" else torch.optim.Adam(params, lr=1e-3)
    rate = LARGE_RATE if optimizer == "sgd" else 1e-3
    inputs, targets = torch.tensor(x), torch.tensor(y)

    def torch_epochs() -> None:
        for _ in range(epochs):
            for start in range(0, inputs.shape[0], LARGE_BATCH):
                chosen.zero_grad()
                loss = _torch_loss(torch, params, inputs[start:start + LARGE_BATCH],
                                   targets[start:start + LARGE_BATCH], True)
                loss.backward()
                chosen.step()
                loss.item()  # as gdxp reads each epoch's loss

    steps = epochs * batches
    return {"gdxp fit": Run(lambda: net.fit(x, y, epochs=epochs, learning_rate=rate, batch_size=LARGE_BATCH,
                                            optimizer=optimizer, shuffle=False, verbose=0), steps),
            "torch cpu": Run(torch_epochs, steps)}


def report_widths(widths: list[int], batches: int, epochs: int, repeats: int) -> list[dict]:
    """Workload 4's table: per width and optimizer, each contender's median and range of ms per step, and
    gdxp's median over PyTorch's (below 1: gdxp ahead); its rows for the CSV table."""
    rows = []
    print(f"\n784-W-W-10 relu/softmax, float32, epochs of {batches} batches of {LARGE_BATCH}, {epochs} epochs a "
          f"run: gdxp fit against PyTorch eager, ms per step (median, range)")
    print(f"{'W':>6}{'optimizer':>11}{'gdxp fit':>22}{'torch cpu':>22}{'gdxp/torch':>12}")
    for width in widths:
        for optimizer in ("sgd", "adam"):
            runs = width_runs(width, batches, epochs, optimizer)
            seconds = measure(runs, repeats)
            ms = {name: [1e3 * t / runs[name].steps for t in s] for name, s in seconds.items()}
            cells = "".join(f"{statistics.median(v):>9.2f} ({min(v):.2f}-{max(v):.2f})".rjust(22)
                            for v in ms.values())
            ratio = statistics.median(ms["gdxp fit"]) / statistics.median(ms["torch cpu"])
            print(f"{width:>6}{optimizer:>11}{cells}{ratio:>12.2f}")
            rows += timing_rows(f"784-{width}-{width}-10 {optimizer}", runs, seconds)
    return rows


def timing_rows(table: str, runs: dict[str, Run], seconds: dict[str, list[float]]) -> list[dict]:
    """One CSV row per contender of a table: its steps per run, median, best and worst microseconds per step,
    and the seconds its first run spent compiling (empty where it does not compile)."""
    rows = []
    for name, found in seconds.items():
        per_step = [1e6 * t / runs[name].steps for t in found]
        compile_seconds = runs[name].compile_seconds if runs[name].compiles else None
        rows.append({"table": table, "contender": name, "steps": runs[name].steps,
                     "median_us": statistics.median(per_step), "best_us": min(per_step), "worst_us": max(per_step),
                     "compile_s": "" if compile_seconds is None else compile_seconds})
    return rows


# -- shared pieces -----------------------------------------------------------------------------------

def compiles(backend: str, device: str | None) -> bool:
    """Whether gdxp ``fit`` on that backend and device runs compiled (JAX does)."""
    return gdxp.get_backend(backend, device=device).compiler is not None


def step_loop(net: gdxp.Network, x: Array, y: Array, rate: float, steps: int) -> gdxp.Network:
    inputs, targets = net.backend.asarray(x), net.backend.asarray(y)
    for _ in range(steps):
        net.step(inputs, targets, learning_rate=rate, check_finite=False)
    net.backend.synchronize(*net.state.weights)
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
    compiled = any(runs[name].compiles for name in seconds)
    width = max(15, 2 + max(map(len, seconds)))
    print(f"\n{title}, {runs['floor'].steps:,} steps")
    print(f"{'contender':<{width}}{'steps':>7}{'median us':>11}{'x floor':>9}{'best us':>10}{'x floor':>9}"
          f"{'x gdxp fit':>12}" + (f"{'TFLOP/s':>9}{'x matmul':>10}" if rates else "")
          + (f"{'compile s':>11}" if compiled else ""))
    for name in seconds:
        line = (f"{name:<{width}}{runs[name].steps:>7}{median[name]:>11.1f}{median[name] / median['floor']:>9.2f}"
                f"{best[name]:>10.1f}{best[name] / best['floor']:>9.2f}{median[name] / median['gdxp fit']:>12.2f}")
        if rates:
            rate = flops / (best[name] * 1e-6)
            line += f"{rate / 1e12:>9.2f}{rate / peak:>10.2f}"
        if compiled:
            line += f"{compile_figure(runs[name]):>11}"
        print(line)


def compile_figure(run: Run) -> str:
    return f"{run.compile_seconds:.2f}" if run.compiles and run.compile_seconds is not None else "-"


COMPILED_ROWS = ("compiled fit", "compiled fit long", "jit+scan", "jit+scan long", "keras jax")


def report_compiled(title: str, runs: dict[str, Run], seconds: dict[str, list[float]], reference: str) -> None:
    """Workload 1's compiled table: the floor, gdxp fit on NumPy (``reference``'s run) and the compiled
    contenders, each with its compile seconds, its time per step (median and best), its speedup over the
    floor (floor's time / its time) and its time over jit+scan's at the same length ("long" rows against
    jit+scan long), and the goals compiling was built to."""
    names = {"floor": "floor", "gdxp fit numpy": reference, **{name: name for name in COMPILED_ROWS if name in runs}}
    median = {name: 1e6 * statistics.median(seconds[key]) / runs[key].steps for name, key in names.items()}
    best = {name: 1e6 * min(seconds[key]) / runs[key].steps for name, key in names.items()}
    width = max(15, 2 + max(map(len, names)))
    print(f"\n{title}")
    print(f"{'contender':<{width}}{'steps':>7}{'compile s':>11}{'median us':>11}{'speedup':>9}{'x scan':>8}"
          f"{'best us':>10}{'speedup':>9}{'x scan':>8}")
    for name, key in names.items():
        scan = "jit+scan long" if name.endswith(" long") else "jit+scan"
        print(f"{name:<{width}}{runs[key].steps:>7}{compile_figure(runs[key]):>11}"
              f"{median[name]:>11.2f}{median['floor'] / median[name]:>9.2f}{median[name] / median[scan]:>8.2f}"
              f"{best[name]:>10.2f}{best['floor'] / best[name]:>9.2f}{best[name] / best[scan]:>8.2f}")
    print("goals for compiling: speedup at least 20 (x the floor's speed), and x scan at most 1.5 (within 1.5x of the "
          "hand-written jit+scan loop)")


def others_here(statuses: dict[str, gdxp.BackendStatus], backend: str, tiny_steps: int, long_steps: int) -> Others:
    """gdxp fit on every usable backend's CPU device but numpy's (timed by the floor and ``gdxp fit``) and
    the chosen backend's own; PyTorch's rows where it can run; the compiled rows on JAX's CPU where JAX
    can run, Keras's where it is installed."""
    chosen = gdxp.get_backend(backend)
    on_host = [c for c in contenders(statuses) if c.on_host]
    fit_on = tuple(c for c in on_host if c.backend != "numpy"
                   and (c.backend, c.device) != (chosen.name, chosen.device_name))
    compiled_on = next((c for c in on_host if c.backend == "jax"), None)
    keras = compiled_on is not None and importlib.util.find_spec("keras") is not None
    return Others(fit_on=fit_on, torch=statuses["torch"].usable, tiny_steps=tiny_steps, compiled_on=compiled_on,
                  long_steps=long_steps, keras=keras)


def print_setup(statuses: dict[str, gdxp.BackendStatus], backend: str, repeats: int, steps: int, others: Others,
                x64: str | None) -> None:
    """The lines before the tables: versions, JAX's 64-bit mode, the contenders on other libraries and
    their steps, the compiled contenders (or why not), and each backend left out with the reason."""
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
              f"(--other-steps), each on a network built in the run: most are slower per step, so fewer "
              f"steps; the figures are per step")
    if others.compiled_on is None:
        print(f"compiled rows left out (gdxp fit on JAX compiled, jit+scan): {statuses['jax'].reason}")
    else:
        print(f"workload 1 compiled on JAX's {others.compiled_on.device}: gdxp fit and jit+scan at {steps:,} and "
              f"{others.long_steps:,} steps per run (--steps, --long-steps)")
    if not others.keras:
        print("Keras 3 rows left out: keras is not installed; they would time Keras 3 on its JAX backend on the "
              "same network beside gdxp's compiled fit (pip install keras to add them)"
              if others.compiled_on is not None else "Keras 3 rows left out: they run on JAX, which cannot run here")
    else:
        print("Keras 3 on its JAX backend beside them (KERAS_BACKEND=jax set by this script)")
    for status in statuses.values():
        if status.name == "torch" and not status.usable:
            print(f"PyTorch rows left out (autograd + SGD, gdxp fit on torch): {status.reason}")
        elif not status.usable:
            print(f"{status.name} not timed: {status.reason}")


def main() -> None:
    options = parser(__doc__.split("\n\n")[0], backend=False)
    options.add_argument("--steps", type=int, default=20_000, help="steps of workload 1 per run")
    options.add_argument("--long-steps", type=int, default=80_000,
                         help="steps per run of workload 1's long compiled runs (the tutorials' run)")
    options.add_argument("--other-steps", type=int, default=None,
                         help="steps of workload 1 per run on torch, JAX and array_api_strict "
                              "(None: a twentieth of --steps)")
    options.add_argument("--batches", type=int, default=100, help="steps of workload 2 per run")
    options.add_argument("--wide", type=int, default=0,
                         help="width W of workload 3, W-W-W-10 at batch W (4096 on a GPU; 0 skips it)")
    options.add_argument("--wide-steps", type=int, default=20, help="steps of workload 3 per run")
    options.add_argument("--widths", type=int, nargs="*", default=[256, 512, 1024, 2048],
                         help="widths W of workload 4, 784-W-W-10 with SGD and Adam against PyTorch (none: skip it)")
    options.add_argument("--width-batches", type=int, default=8, help="batches of 256 in an epoch of workload 4")
    options.add_argument("--width-epochs", type=int, default=2, help="epochs of workload 4 per run")
    options.add_argument("--repeats", type=int, default=7,
                         help="timed runs of each contender, interleaved in a rotating order after one warm-up "
                              "run each; the tables give the median and the best of them")
    options.add_argument("--backend", default="numpy", choices=gdxp.backend.BACKEND_NAMES,
                         help="the library gdxp fit, gdxp step and the floor of workloads 2 and 3 run on")
    args = options.parse_args()
    x64 = enable_jax_float64()  # first, before any JAX array exists: the script's choice, not gdxp's
    statuses = gdxp.available_backends()
    others = others_here(statuses, args.backend, args.other_steps or max(1, args.steps // 20), args.long_steps)
    if others.keras:
        os.environ["KERAS_BACKEND"] = "jax"  # read when keras is first imported
    print_setup(statuses, args.backend, args.repeats, args.steps, others, x64)
    small = small_workload(args.backend, args.steps, others)
    seconds = measure(small, args.repeats)  # both tables' contenders in the same interleaved rounds
    first = {name: s for name, s in seconds.items() if name not in COMPILED_ROWS}
    report("3-5-1 sigmoid, one sample per step, float64 (floor: NumPy on the CPU)", small, first)
    rows = timing_rows("3-5-1 sigmoid float64", small, seconds)
    if others.compiled_on is not None:
        report_compiled(f"3-5-1 sigmoid, one sample per step, float64, compiled on JAX's {others.compiled_on.device} "
                        f"(floor: NumPy on the CPU), {args.steps:,} and {args.long_steps:,} steps", small, seconds,
                        "gdxp fit" if args.backend == "numpy" else "gdxp fit numpy")
    large = relu_workload(args.backend, LARGE_SIZES, LARGE_BATCH, args.batches, others)
    seconds = measure(large, args.repeats)
    report(f"784-256-256-10 relu/softmax, batch {LARGE_BATCH}, float32 (floor: inline on {args.backend})", large,
           seconds)
    rows += timing_rows(f"784-256-256-10 batch {LARGE_BATCH} float32", large, seconds)
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
        seconds = measure(runs, args.repeats)
        report(title, runs, seconds, flops=training_flops(sizes, args.wide), peak=peak)
        rows += timing_rows(f"{network} batch {args.wide} float32", runs, seconds)
    if args.widths and others.torch:
        rows += report_widths(args.widths, args.width_batches, args.width_epochs, args.repeats)
    elif args.widths:
        print("\nworkload 4 left out: it compares against PyTorch, which cannot run here")
    print()
    write_csv(rows, args.figures / "benchmark.csv")


if __name__ == "__main__":
    main()
