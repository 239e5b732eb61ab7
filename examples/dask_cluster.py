"""Data-parallel training on Dask: the data chunked across worker processes, the weights on the client.

Starts a LocalCluster of ``--workers`` processes here (or joins a running scheduler with ``--scheduler``),
generates ``--rows`` samples on the workers (the client never holds them), optionally writes them to
disk first and trains from there (``--on-disk``), then trains a small network with the ``dask`` backend
and prints samples per second; ``--compare`` also times NumPy in this one process on the same data.

On a real cluster: start a scheduler on one machine (``dask scheduler``, it prints its address), a worker
on each machine (``dask worker tcp://SCHEDULER:8786 --nthreads 1``, or one process per core), then run
``python examples/dask_cluster.py --scheduler tcp://SCHEDULER:8786 --rows 50_000_000``. Every step sends
the weights (kilobytes) to the workers and gets gradient-sized sums back through Dask's tree reduction,
so the data never moves after it is made or read; ``--on-disk`` needs a folder all workers can read.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import dask
import dask.array as da
import distributed
import numpy as np

import gdxp


def make_data(rows: int, features: int, chunk_rows: int, seed: int) -> tuple[da.Array, da.Array]:
    """Inputs drawn on the workers, and targets from a fixed teacher network: both chunked along samples."""
    rng = da.random.default_rng(seed)
    x = rng.normal(size=(rows, features), chunks=(chunk_rows, features))
    teacher = np.random.default_rng(seed).normal(size=(features, 1)) / np.sqrt(features)
    y = 1 / (1 + da.exp(-(x @ teacher)))
    return x, y


def train(x, y, args: argparse.Namespace, backend: str) -> float:
    """Samples per second of a fit of ``args.epochs`` epochs on ``backend``."""
    net = gdxp.Network([x.shape[1], args.hidden, 1], seed=0, backend=backend)
    start = time.perf_counter()
    history = net.fit(x, y, epochs=args.epochs, learning_rate=args.learning_rate, batch_size=args.batch_size,
                      optimizer="adam", shuffle=False, verbose=0)
    seconds = time.perf_counter() - start
    print(f"  {backend:5s}: loss {history.loss[0]:.5f} -> {history.loss[-1]:.5f} in {seconds:.2f} s, "
          f"{args.epochs * x.shape[0] / seconds:,.0f} samples/s")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scheduler", help="address of a running Dask scheduler (default: start a LocalCluster)")
    parser.add_argument("--workers", type=int, default=2, help="LocalCluster worker processes (default 2)")
    parser.add_argument("--rows", type=int, default=2_000_000, help="samples (default 2,000,000)")
    parser.add_argument("--features", type=int, default=16)
    parser.add_argument("--hidden", type=int, default=8)
    parser.add_argument("--chunk-rows", type=int, default=250_000,
                        help="samples per chunk (default 250,000: 32 MB of float64 at 16 features)")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=None, help="default: full batch")
    parser.add_argument("--learning-rate", type=float, default=0.05)
    parser.add_argument("--on-disk", action="store_true", help="write the data to disk first, train from there")
    parser.add_argument("--compare", action="store_true", help="also time NumPy in this process on the same data")
    args = parser.parse_args()

    cluster = None
    if args.scheduler:
        client = distributed.Client(args.scheduler)
    else:
        cluster = distributed.LocalCluster(n_workers=args.workers, threads_per_worker=1, dashboard_address=None)
        client = distributed.Client(cluster)
    try:
        workers = len(client.scheduler_info()["workers"])
        print(f"dask {dask.__version__} on {workers} worker(s) at {client.scheduler.address}; "
              f"{args.rows:,} rows x {args.features} features in chunks of {args.chunk_rows:,}")
        x, y = make_data(args.rows, args.features, args.chunk_rows, seed=0)
        with tempfile.TemporaryDirectory() as folder:
            if args.on_disk:
                da.to_npy_stack(f"{folder}/x", x)
                da.to_npy_stack(f"{folder}/y", y)
                x, y = da.from_npy_stack(f"{folder}/x"), da.from_npy_stack(f"{folder}/y")
            else:
                x, y = client.persist([x, y])  # made once on the workers, kept there
                distributed.wait([x, y])
            train(x, y, args, "dask")
            if args.compare:
                train(*dask.compute(x, y), args, "numpy")
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


if __name__ == "__main__":
    main()
