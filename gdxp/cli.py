"""Command line: ``python -m gdxp info`` (versions and backends) and ``python -m gdxp demo``.

:func:`main` returns the exit status: 0; 2 for a wrong argument (``$GDXP_BACKEND`` too), a backend that
cannot run here, or output that cannot be written (one line on stderr, no traceback); 1 when the reader of
its output went away (``| head``).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import platform
import sys
import time
from collections.abc import Sequence

import numpy as np

from . import __version__
from .availability import available_backends
from .backend import BACKEND_NAMES, BackendUnavailableError
from .network import Network
from .options import FitOptions

__all__ = ["main"]

PROG = "python -m gdxp"
DESCRIPTION = "gdxp: neural networks trained by backpropagation on any array library."

# The part-4 tutorial's example: one sample, 3 inputs, 5 hidden sigmoid neurons, one output.
DEMO_X = (0.1, 0.4, 4.1)
DEMO_TARGET = 0.2
DEMO_LEARNING_RATE = 0.001
DASK_NOTE = "Dask schedules each one-sample step as a graph, 1-2 ms a step on a CPU"


def info() -> None:
    """Print versions, each backend with its devices and default dtype, and why any is unavailable."""
    print(f"gdxp {__version__} on Python {platform.python_version()} ({platform.machine()})")
    for dist in ("numpy", "array-api-compat"):
        print(f"  {dist} {importlib.metadata.version(dist)}")
    print("backends:")
    for status in available_backends().values():
        print(f"  {status}")


def demo(backend: str | None, epochs: int, hidden: int, progress: bool = False) -> None:
    """Train the tutorial's network on its one example and show the loss falling (with a progress bar on
    stderr if ``progress``)."""
    settings = {"epochs": epochs, "learning_rate": DEMO_LEARNING_RATE, "batch_size": 1, "verbose": int(progress)}
    FitOptions(**settings)  # a bad --epochs is refused before anything is printed
    net = Network([len(DEMO_X), hidden, 1], activation="sigmoid", bias=False, init="uniform", seed=0,
                  backend=backend)
    x, y = np.asarray(DEMO_X), np.asarray([DEMO_TARGET])
    print(f"gdxp demo: {len(DEMO_X)} inputs -> {hidden} hidden sigmoid neurons -> 1 sigmoid output (part 4 "
          "of the tutorials)")
    print(f"  x = {list(DEMO_X)}, target = {DEMO_TARGET}, squared error, learning rate {DEMO_LEARNING_RATE}")
    print(f"  backend {net.backend.name} on {net.backend.device_name}, {net.backend.dtype_name}")
    if net.backend.name == "dask":
        print(f"  {DASK_NOTE}: {epochs:,} steps take {'minutes' if epochs >= 30_000 else 'a while'}")
    print(f"  prediction before training: {_scalar(net, x):.6f}")
    sys.stdout.flush()  # the lines above before the progress bar on stderr
    start = time.perf_counter()
    history = net.fit(x, y, **settings)
    net.backend.synchronize()
    seconds = time.perf_counter() - start
    for epoch in sorted({1, *range(max(1, epochs // 8), epochs + 1, max(1, epochs // 8)), epochs}):
        print(f"  step {epoch:>7,}  loss {history.loss[epoch - 1]:.3e}")
    print(f"  prediction after {epochs:,} steps: {_scalar(net, x):.6f} (target {DEMO_TARGET}); "
          f"{seconds:.2f} s, {1e6 * seconds / max(epochs, 1):.1f} us per step")


def _scalar(net: Network, x: np.ndarray) -> float:
    return float(net.backend.to_numpy(net.predict(x))[0])


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``); returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    if sys.stdout is None:  # started with its standard output closed (``>&-``): nowhere to write
        return _failed(args.command, "its standard output is closed")
    try:
        if args.command == "info":
            info()
        else:
            demo(args.backend, args.epochs, args.hidden, progress=sys.stderr is not None and sys.stderr.isatty())
        sys.stdout.flush()  # a reader gone away, or a full disk, shows here, inside the try, not at exit
    except BrokenPipeError:
        # ``| head`` stopped reading: say nothing more. Python's docs advise pointing stdout at devnull,
        # so that the interpreter's own flush at exit does not fail again, and exiting with status 1.
        _drop_output()
        return 1
    except OSError as err:  # ``> /dev/full``: the output cannot be written
        _drop_output()
        return _failed(args.command, f"cannot write its output: {err.strerror or err}")
    except (BackendUnavailableError, ValueError) as err:  # an argument, $GDXP_BACKEND, or this machine: no bug
        return _failed(args.command, str(err))
    return 0


def _failed(command: str, why: str) -> int:
    """Say why ``command`` failed on one line of stderr (where there is one); the status for that, 2."""
    if sys.stderr is not None:
        print(f"{PROG} {command}: error: {' '.join(why.split())}", file=sys.stderr)
    return 2


def _drop_output() -> None:
    """Point stdout at devnull, so that the interpreter's flush at exit does not fail on what is left."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"gdxp {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="{info,demo}")
    commands.add_parser("info", help="versions, backends, devices, and why a backend is unavailable",
                        description="Print versions, each backend with its devices and default dtype, and why any "
                                    "is unavailable.")
    demo_parser = commands.add_parser("demo", help="train the tutorials' part-4 network and print the loss",
                                      description="Train the tutorials' part-4 network (3 inputs, hidden sigmoid "
                                                  "neurons, 1 output) on its one example and print the loss; a "
                                                  "progress bar on stderr where it is a terminal.")
    demo_parser.add_argument("--backend", choices=BACKEND_NAMES, default=None,
                             help=f"array library (default: $GDXP_BACKEND, else numpy); dask takes minutes here: "
                                  f"{DASK_NOTE}")
    demo_parser.add_argument("--epochs", type=_at_least_one, default=80_000, help="per-sample steps (default 80,000)")
    demo_parser.add_argument("--hidden", type=_at_least_one, default=5, help="hidden neurons (default 5)")
    return parser


def _at_least_one(text: str) -> int:
    """A whole number >= 1, or an error that argparse prints with the option's name and its own usage."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value
