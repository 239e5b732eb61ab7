"""How fast is a gdxp training step next to hand-written NumPy and the tutorials' own loop?

The tutorials' 3-5-1 sigmoid network, trained one sample per step (their setting). In one process,
the contenders run interleaved, several times each; the script prints the median time per step and
ratios, which stay meaningful on a shared, noisy machine:

- NumPy floor: the leanest inline vectorized code for the same math (forward, loss, backward, update).
- gdxp fit: ``net.fit(x, y, epochs=steps, batch_size=1)``, recording the loss of every step.
- gdxp step: ``net.step`` in a Python loop on arrays already on the device, no loss.
- tutorial loop: part 4's per-neuron loop (``tutorial_loops.py``).

Run: ``python examples/benchmark.py [--steps 20000] [--repeats 5] [--backend numpy]``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np
from tutorial_loops import part4_loop

import gdxp

X = np.array([0.1, 0.4, 4.1])
TARGET = np.array([0.2])
LEARNING_RATE = 0.001


def numpy_floor(w_hidden: np.ndarray, w_output: np.ndarray, steps: int) -> list[float]:
    """The same per-sample descent, written inline with nothing to spare."""
    x, target = X[None, :], TARGET[None, :]
    losses = []
    for _ in range(steps):
        activ = 1.0 / (1.0 + np.exp(-(x @ w_hidden)))
        prediction = 1.0 / (1.0 + np.exp(-(activ @ w_output)))
        diff = prediction - target
        losses.append(float((diff * diff).sum()))
        delta_out = 2.0 * diff * prediction * (1.0 - prediction)
        delta_hidden = (delta_out @ w_output.T) * activ * (1.0 - activ)
        w_output = w_output - LEARNING_RATE * (activ.T @ delta_out)
        w_hidden = w_hidden - LEARNING_RATE * (x.T @ delta_hidden)
    return losses


def contenders(backend: str, steps: int) -> dict[str, Callable[[], object]]:
    """Each contender as a function running ``steps`` training steps from the same initial weights."""
    def network() -> gdxp.Network:
        return gdxp.Network([3, 5, 1], activation="sigmoid", bias=False, init="uniform", seed=0, backend=backend)

    w_hidden, w_output = network().get_weights()

    def gdxp_fit() -> object:
        return network().fit(X, TARGET, epochs=steps, learning_rate=LEARNING_RATE, batch_size=1, verbose=0)

    def gdxp_step() -> object:
        net = network()
        x, y = net.backend.asarray(X[None, :]), net.backend.asarray(TARGET[None, :])
        for _ in range(steps):
            net.step(x, y, learning_rate=LEARNING_RATE, check_finite=False)
        net.backend.synchronize()
        return net

    return {
        "numpy floor": lambda: numpy_floor(w_hidden, w_output, steps),
        "gdxp fit": gdxp_fit,
        "gdxp step": gdxp_step,
        "tutorial loop": lambda: part4_loop(X, TARGET, w_hidden.T, w_output.T, LEARNING_RATE, steps),
    }


def measure(runs: dict[str, Callable[[], object]], repeats: int) -> dict[str, list[float]]:
    """Seconds per run of each contender, interleaved (a rotating order) so drift hits all alike."""
    names = list(runs)
    seconds: dict[str, list[float]] = {name: [] for name in names}
    for repeat in range(repeats):
        for name in names[repeat % len(names):] + names[:repeat % len(names)]:
            start = time.perf_counter()
            runs[name]()
            seconds[name].append(time.perf_counter() - start)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--backend", default="numpy", choices=gdxp.backend.BACKEND_NAMES)
    args = parser.parse_args()
    runs = contenders(args.backend, args.steps)
    for run in runs.values():  # warm-up: imports, caches, first allocations
        run()
    seconds = measure(runs, args.repeats)
    per_step = {name: 1e6 * statistics.median(times) / args.steps for name, times in seconds.items()}
    floor, tutorial = per_step["numpy floor"], per_step["tutorial loop"]
    print(f"3-5-1 sigmoid network, one sample per step, {args.steps:,} steps, median of {args.repeats} "
          f"(backend {args.backend}, numpy {np.__version__})")
    print(f"{'contender':<15}{'us/step':>9}{'x floor':>9}{'tutorial / it':>15}")
    for name, micros in per_step.items():
        print(f"{name:<15}{micros:>9.1f}{micros / floor:>9.2f}{tutorial / micros:>15.2f}")


if __name__ == "__main__":
    main()
