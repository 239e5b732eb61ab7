"""Data-parallel training on Dask: the data chunked across worker processes, the weights on the client.

Starts a LocalCluster of ``--workers`` processes here (or joins a running scheduler with ``--scheduler``),
generates ``--rows`` samples on the workers (the client never holds them), optionally writes them to
disk first and trains from there (``--on-disk``), then trains a small network with the ``dask`` backend
and prints samples per second; ``--compare`` also times NumPy in this one process on the same data.

Measuring (examples/README.md, "Dask"): ``--workers 1 2 --compare --rounds 5`` starts a cluster of each
size and times them and NumPy round by round, interleaved, printing medians, ranges and ratios to NumPy;
``--overhead`` also times steps on a tiny data set of 8 chunks, where the step's cost is the graph's own.
Pin BLAS to one thread when comparing (``OPENBLAS_NUM_THREADS=1``, inherited by the workers).

On a real cluster: start a scheduler on one machine (``dask scheduler``, it prints its address), a worker
on each machine (``dask worker tcp://SCHEDULER:8786 --nthreads 1``, or one process per core), then run
``python examples/dask_cluster.py --scheduler tcp://SCHEDULER:8786 --rows 50_000_000``. Every step sends
the weights (kilobytes) to the workers and gets gradient-sized sums back through Dask's tree reduction,
so the data never moves after it is made or read; ``--on-disk`` needs a folder all workers can read.

A progress bar (on stderr) counts the timed fits; each fit's samples per second, and the overhead's times per
step, go into ``--figures DIR`` (default ``figures/``) as ``dask_cluster.csv``.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator

import dask
import dask.array as da
import distributed
import numpy as np
from common import parser, write_csv
from tqdm import tqdm

import gdxp

TINY_CHUNKS, TINY_ROWS, TINY_STEPS = 8, 1_000, 20  # --overhead: compute is negligible, the graph is not


def make_data(rows: int, features: int, chunk_rows: int, seed: int) -> tuple[da.Array, da.Array]:
    """Inputs drawn on the workers, and targets from a fixed teacher network: both chunked along samples."""
    rng = da.random.default_rng(seed)
    x = rng.normal(size=(rows, features), chunks=(chunk_rows, features))
    teacher = np.random.default_rng(seed).normal(size=(features, 1)) / np.sqrt(features)
    y = 1 / (1 + da.exp(-(x @ teacher)))
    return x, y


def fit_seconds(x, y, args: argparse.Namespace, backend: str, client: distributed.Client | None,
                epochs: int) -> tuple[float, list[float]]:
    """Seconds of a fit of ``epochs`` full passes (Adam, in order) on ``backend``, and its losses."""
    net = gdxp.Network([x.shape[1], args.hidden, 1], seed=0, backend=backend)
    start = time.perf_counter()
    history = net.fit(x, y, epochs=epochs, learning_rate=args.learning_rate, batch_size=args.batch_size,
                      optimizer="adam", shuffle=False, verbose=0, client=client)
    return time.perf_counter() - start, history.loss


@contextlib.contextmanager
def clusters(args: argparse.Namespace) -> Iterator[dict[str, distributed.Client]]:
    """A client per cluster to time, by name: the scheduler at ``--scheduler``, or a LocalCluster per
    ``--workers`` count, of one-thread worker processes; all closed at the end."""
    with contextlib.ExitStack() as stack:
        if args.scheduler:
            client = stack.enter_context(distributed.Client(args.scheduler, set_as_default=False))
            yield {f"dask, {len(client.scheduler_info()['workers'])} workers at {args.scheduler}": client}
            return
        found = {}
        for workers in args.workers:
            cluster = stack.enter_context(distributed.LocalCluster(
                n_workers=workers, threads_per_worker=1, dashboard_address=":0", silence_logs=40))
            found[f"dask, {workers} worker{'s' * (workers > 1)}"] = stack.enter_context(
                distributed.Client(cluster, set_as_default=False))
        yield found


def report(name: str, rates: list[float], reference: list[float] | None) -> None:
    """One contender's samples/s: median and range over the rounds, and the median's ratio to NumPy's."""
    median = statistics.median(rates)
    ratio = "" if reference is None else f"  {median / statistics.median(reference):.2f}x NumPy"
    print(f"  {name:28s} {median:>12,.0f} samples/s  (range {min(rates):,.0f} .. {max(rates):,.0f}){ratio}")


def main() -> None:
    options = parser(__doc__.split("\n")[0], backend=False)
    options.add_argument("--scheduler", help="address of a running Dask scheduler (default: start a LocalCluster)")
    options.add_argument("--workers", type=int, nargs="+", default=[2],
                        help="LocalCluster worker processes; several counts start a cluster of each")
    options.add_argument("--rows", type=int, default=2_000_000, help="samples")
    options.add_argument("--features", type=int, default=16, help="inputs per sample")
    options.add_argument("--hidden", type=int, default=8, help="hidden sigmoid neurons")
    options.add_argument("--chunk-rows", type=int, default=250_000,
                        help="samples per chunk (250,000: 32 MB of float64 at 16 features)")
    options.add_argument("--epochs", type=int, default=5, help="full passes over the data per fit")
    options.add_argument("--batch-size", type=int, default=None, help="samples per step (None: full batch)")
    options.add_argument("--learning-rate", type=float, default=0.05, help="Adam's learning rate")
    options.add_argument("--on-disk", action="store_true", help="write the data to disk first, train from there")
    options.add_argument("--compare", action="store_true", help="also time NumPy in this process on the same data")
    options.add_argument("--rounds", type=int, default=1, help="timed fits per contender, interleaved")
    options.add_argument("--overhead", action="store_true", help="also time steps on a tiny data set of 8 chunks")
    args = options.parse_args()

    print(f"gdxp {gdxp.__version__}, dask {dask.__version__}, numpy {np.__version__}; {args.rows:,} rows x "
          f"{args.features} features in chunks of {args.chunk_rows:,}, {args.epochs} epochs of Adam, "
          f"{'full batch' if args.batch_size is None else f'batches of {args.batch_size}'}")
    with clusters(args) as clients, tempfile.TemporaryDirectory() as folder:
        data, lazy = {}, make_data(args.rows, args.features, args.chunk_rows, seed=0)
        for name, client in clients.items():
            if args.on_disk:  # written once by the first cluster, read by every one
                if not data:
                    with client.as_current():
                        da.to_npy_stack(f"{folder}/x", lazy[0])
                        da.to_npy_stack(f"{folder}/y", lazy[1])
                data[name] = da.from_npy_stack(f"{folder}/x"), da.from_npy_stack(f"{folder}/y")
            else:  # made once on the workers, kept there
                with client.as_current():
                    data[name] = dask.persist(*lazy)
                    distributed.wait(data[name], timeout=600)
        contenders = {name: ("dask", client, data[name]) for name, client in clients.items()}
        if args.compare:  # the same numbers, made here: arrays gathered from a cluster can be misaligned, and slow
            host = dask.compute(*(data[name] if args.on_disk else lazy), scheduler="threads")
            contenders = {"numpy, this process": ("numpy", None, host), **contenders}
        rates: dict[str, list[float]] = {name: [] for name in contenders}
        rows = []
        with tqdm(total=args.rounds * len(contenders), unit="fit", file=sys.stderr, dynamic_ncols=True) as bar:
            for round_number in range(1, args.rounds + 1):
                for name, (backend, client, (x, y)) in contenders.items():
                    bar.set_description(f"round {round_number} {name}")
                    seconds, losses = fit_seconds(x, y, args, backend, client, args.epochs)
                    rates[name].append(args.epochs * x.shape[0] / seconds)
                    rows.append({"measure": "fit", "round": round_number, "contender": name, "seconds": seconds,
                                 "samples_per_s": rates[name][-1], "ms_per_step": ""})
                    bar.write(f"  round {round_number} {name:28s} loss {losses[0]:.5f} -> {losses[-1]:.5f} in "
                              f"{seconds:6.2f} s", file=sys.stdout)
                    bar.update()
        print("samples per second (median over the rounds):")
        for name, found in rates.items():
            report(name, found, rates.get("numpy, this process"))
        if args.overhead:
            rows += print_overhead(args, clients)
    write_csv(rows, args.figures / "dask_cluster.csv")


def print_overhead(args: argparse.Namespace, clients: dict[str, distributed.Client]) -> list[dict]:
    """Per-step time on 8 chunks of 1,000 rows, where the work is tiny: what each step costs a cluster
    (scheduling its tasks, moving the weights and the reduced sums) beyond NumPy's own time for it; its
    rows for the CSV table."""
    x, y = make_data(TINY_CHUNKS * TINY_ROWS, args.features, TINY_ROWS, seed=1)
    host = dask.compute(x, y)
    runs = {"numpy, this process": ("numpy", None, host), "dask, local threads": ("dask", None, (x, y)),
            **{name: ("dask", client, (x, y)) for name, client in clients.items()}}
    per_step: dict[str, list[float]] = {name: [] for name in runs}
    rows = []
    for round_number in tqdm(range(1, args.rounds + 1), desc="overhead rounds", file=sys.stderr, dynamic_ncols=True):
        for name, (backend, client, (xs, ys)) in runs.items():
            per_step[name].append(fit_seconds(xs, ys, args, backend, client, TINY_STEPS)[0] / TINY_STEPS)
            rows.append({"measure": "overhead", "round": round_number, "contender": name,
                         "seconds": per_step[name][-1] * TINY_STEPS, "samples_per_s": "",
                         "ms_per_step": 1e3 * per_step[name][-1]})
    floor = statistics.median(per_step["numpy, this process"])
    print(f"per-step time on {TINY_CHUNKS} chunks of {TINY_ROWS:,} rows ({TINY_STEPS} full-batch steps, median "
          f"over {args.rounds} rounds; overhead = the median beyond NumPy's):")
    for name, found in per_step.items():
        median = statistics.median(found)
        print(f"  {name:28s} {1e3 * median:8.2f} ms/step  (range {1e3 * min(found):.2f} .. {1e3 * max(found):.2f})"
              f"  overhead {1e3 * (median - floor):8.2f} ms")
    return rows


if __name__ == "__main__":
    main()
