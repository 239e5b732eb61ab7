"""The dask backend: data chunked along samples, one graph per step, equal to NumPy; on a cluster too.

The quick tests run on Dask's local threaded scheduler; the ``slow`` ones start a ``LocalCluster`` of
two worker processes with one thread each, and stop it at the end of the module.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import tracemalloc

import numpy as np
import pytest
from helpers import no_numpy_warnings

import gdxp
from gdxp.backend.dask import chunkwise_order

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")

N_CHUNKS, CHUNK_ROWS = 8, 50
SIZES = [3, 5, 2]


@contextlib.contextmanager
def deadline(seconds: int):
    """Fail instead of hanging: a TimeoutError in the main thread after ``seconds``."""
    def expire(signum, frame):
        raise TimeoutError(f"the test ran past its {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def problem(n_samples=N_CHUNKS * CHUNK_ROWS, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n_samples, 3))
    y = 1 / (1 + np.exp(-(x @ np.array([[0.5, -1.0], [1.5, 0.2], [-0.7, 0.9]]))))
    return x, y


def chunked(*arrays, rows=CHUNK_ROWS):
    return tuple(da.from_array(a, chunks=(rows, a.shape[1])) for a in arrays)


def fit_both(x, y, **fit):
    """The same fit on NumPy and on Dask (data given as 8-chunk Dask arrays): both networks and histories."""
    reference, lazy = gdxp.Network(SIZES, seed=1), gdxp.Network(SIZES, seed=1, backend="dask")
    fit = {"learning_rate": 0.5, "verbose": 0, "shuffle": False, **fit}
    expected = reference.fit(x, y, **fit)
    got = lazy.fit(*chunked(x, y), **fit)
    return reference, lazy, expected, got


def assert_close_weights(a, b):
    for wa, wb in zip(a.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_allclose(wb, wa, rtol=1e-12, atol=1e-14)


def graph_sizes(backend):
    """Wrap ``backend.settled`` to record how many tasks each step's graph holds."""
    sizes, settled = [], backend.settled

    def counting(means):
        sizes.append(len(dask.base.collections_to_expr(means).__dask_graph__()))
        return settled(means)

    backend.settled = counting
    return sizes


# -- the local threaded scheduler --------------------------------------------------------------------

@pytest.mark.parametrize(("optimizer", "steps"), [
    ("sgd", 5), pytest.param("sgd", 30, marks=pytest.mark.slow), pytest.param("adam", 30, marks=pytest.mark.slow)])
def test_full_batch_equals_numpy(optimizer, steps):
    x, y = problem()
    reference, lazy, expected, got = fit_both(x, y, epochs=steps, optimizer=optimizer)
    assert_close_weights(reference, lazy)
    np.testing.assert_allclose(got.loss, expected.loss, rtol=1e-12)
    assert all(type(w) is np.ndarray for w in lazy.get_weights())


def test_unshuffled_mini_batches_equal_numpy():
    x, y = problem()
    reference, lazy, expected, got = fit_both(x, y, epochs=2, batch_size=CHUNK_ROWS * 2, optimizer="momentum")
    assert_close_weights(reference, lazy)
    np.testing.assert_allclose(got.loss, expected.loss, rtol=1e-12)


def test_uneven_and_empty_chunks_train_as_numpy():
    x, y = problem()
    rows = ((150, 0, 7, 243), (3,)), ((150, 0, 7, 243), (2,))
    reference = gdxp.Network(SIZES, seed=1)
    expected = reference.fit(x, y, epochs=3, learning_rate=0.5, verbose=0, optimizer="adam")
    lazy = gdxp.Network(SIZES, seed=1, backend="dask")
    got = lazy.fit(da.from_array(x, chunks=rows[0]), da.from_array(y, chunks=rows[1]), epochs=3, learning_rate=0.5,
                   verbose=0, optimizer="adam")
    assert_close_weights(reference, lazy)
    np.testing.assert_allclose(got.loss, expected.loss, rtol=1e-12)


def test_chunkwise_order_permutes_chunks_then_rows_within_each():
    pieces = chunkwise_order(np.random.default_rng(0), (5, 5, 3))
    assert sorted(chunk for chunk, _ in pieces) == [0, 1, 2]
    assert all(sorted(rows) == list(range((5, 5, 3)[chunk])) for chunk, rows in pieces)
    expected = np.random.default_rng(0)
    assert [chunk for chunk, _ in pieces] == list(expected.permutation(3))
    # one chunk: the rows in the order every other backend draws
    (chunk, rows), = chunkwise_order(np.random.default_rng(0), (7,))
    assert chunk == 0 and list(rows) == list(np.random.default_rng(0).permutation(7))


def taking_chunkwise_order(chunk_rows):
    """A NumPy backend's ``shuffled`` that takes the dask backend's order for chunks of ``chunk_rows``."""
    starts = np.cumsum((0, *chunk_rows))

    def shuffled(rng, *arrays):
        order = np.concatenate([starts[chunk] + rows for chunk, rows in chunkwise_order(rng, chunk_rows)])
        return tuple(arr[order] for arr in arrays)

    return shuffled


def test_shuffled_mini_batches_equal_numpy_taking_the_same_order(monkeypatch):
    x, y = problem()
    reference = gdxp.Network(SIZES, seed=1)
    monkeypatch.setattr(reference.backend, "shuffled", taking_chunkwise_order((CHUNK_ROWS,) * N_CHUNKS))
    fit = {"epochs": 2, "learning_rate": 0.5, "verbose": 0, "batch_size": 30, "optimizer": "momentum"}
    expected = reference.fit(x, y, **fit)
    lazy = gdxp.Network(SIZES, seed=1, backend="dask")
    got = lazy.fit(*chunked(x, y), **fit)
    assert_close_weights(reference, lazy)
    np.testing.assert_allclose(got.loss, expected.loss, rtol=1e-12)
    assert lazy.shuffle_rng.bit_generator.state == reference.shuffle_rng.bit_generator.state


@pytest.mark.parametrize("batch_size", [None, 30], ids=["full-batch", "shuffled-mini-batches"])
def test_weighted_chunks_add_their_weighted_sums_and_weight_sums(monkeypatch, batch_size):
    """Sample weights chunked otherwise than the data are laid out in its chunks; each chunk gives its weighted
    sums and weight sum, added in the tree and divided once: NumPy's weighted means, a chunk of zero weights
    included (it adds nothing, where a chunk's own mean would be 0 / 0)."""
    x, y = problem()
    weights = np.random.default_rng(3).uniform(0.0, 2.0, size=x.shape[0])
    weights[CHUNK_ROWS:2 * CHUNK_ROWS] = 0.0
    reference = gdxp.Network(SIZES, seed=1)
    monkeypatch.setattr(reference.backend, "shuffled", taking_chunkwise_order((CHUNK_ROWS,) * N_CHUNKS))
    fit = {"epochs": 2, "learning_rate": 0.5, "verbose": 0, "batch_size": batch_size, "optimizer": "adam",
           "weight_decay": 0.1}
    expected = reference.fit(x, y, sample_weight=weights, **fit)
    lazy = gdxp.Network(SIZES, seed=1, backend="dask")
    got = lazy.fit(*chunked(x, y), sample_weight=da.from_array(weights, chunks=70), **fit)
    assert_close_weights(reference, lazy)
    np.testing.assert_allclose(got.loss, expected.loss, rtol=1e-12)
    inputs = chunked(x)[0]
    np.testing.assert_allclose(lazy.evaluate(inputs, y, sample_weight=weights)["loss"],
                               reference.evaluate(x, y, sample_weight=weights)["loss"], rtol=1e-12)


def test_a_shuffled_mini_batch_step_reads_at_most_two_chunks():
    x, y = problem()
    read = []

    def logged(block, block_info=None):
        read.append(block_info[0]["chunk-location"][0])
        return block

    inputs, targets = chunked(x, y)
    net = gdxp.Network(SIZES, seed=1, backend="dask")
    settled, per_step = net.backend.settled, []

    def counting(means):
        result = settled(means)
        per_step.append(len(set(read)))
        read.clear()
        return result

    net.backend.settled = counting
    net.fit(inputs.map_blocks(logged, dtype=inputs.dtype), targets, epochs=2, batch_size=30, learning_rate=0.5,
            verbose=0)
    # the steps only: the run's ending proves the last weights' loss finite from bounds, without a forward pass
    assert len(per_step) == 2 * -(-N_CHUNKS * CHUNK_ROWS // 30)
    # the first step's count holds fit's scan of the data for NaN, which reads every chunk once, where it is
    assert per_step[0] == N_CHUNKS and max(per_step[1:]) == 2


def test_data_is_laid_out_in_whole_rows_the_targets_in_the_inputs_chunks():
    x, y = problem()
    net = gdxp.Network(SIZES, seed=1, backend="dask")
    inputs, targets = net.as_batch(da.from_array(x, chunks=(CHUNK_ROWS, 2)), da.from_array(y, chunks=(120, 1)))
    assert inputs.chunks == ((CHUNK_ROWS,) * N_CHUNKS, (3,)) and targets.chunks == ((CHUNK_ROWS,) * N_CHUNKS, (2,))
    np.testing.assert_array_equal(np.asarray(inputs), x)
    np.testing.assert_array_equal(np.asarray(targets), y)
    reference = gdxp.Network(SIZES, seed=1)
    reference.fit(x, y, epochs=3, learning_rate=0.5, verbose=0)
    net.fit(inputs, targets, epochs=3, learning_rate=0.5, verbose=0)
    assert_close_weights(reference, net)


@pytest.mark.slow
def test_each_step_is_one_graph_of_the_same_size():
    x, y = problem()
    net = gdxp.Network(SIZES, seed=1, backend="dask")
    sizes = graph_sizes(net.backend)
    net.fit(*chunked(x, y), epochs=30, learning_rate=0.5, optimizer="adam", verbose=0)
    assert len(sizes) == 30  # the steps; the run's ending proves the last weights' loss finite from bounds
    # the chunks of x and y, a task per chunk, a tree of additions: growing with the chunks, never with the steps
    assert sizes[1] == sizes[29] <= 5 * N_CHUNKS


def test_validation_is_a_task_per_chunk_and_equals_numpy():
    x, y = problem()
    labels = (y[:, 0] > y[:, 1]).astype(int)
    targets = np.eye(2)[labels]
    fit = {"epochs": 4, "learning_rate": 0.5, "verbose": 0, "optimizer": "adam", "patience": 3}
    reference = gdxp.Network(SIZES, output_activation="softmax", loss="cross_entropy", seed=1)
    expected = reference.fit(x[:300], targets[:300], validation_data=(x[300:], targets[300:]), **fit)
    lazy = gdxp.Network(SIZES, output_activation="softmax", loss="cross_entropy", seed=1, backend="dask")
    sizes = graph_sizes(lazy.backend)
    inputs, outputs = chunked(x, targets)
    got = lazy.fit(inputs[:300], outputs[:300], validation_data=(inputs[300:], outputs[300:]), **fit)
    assert_close_weights(reference, lazy)
    np.testing.assert_allclose(got.val_loss, expected.val_loss, rtol=1e-12)
    np.testing.assert_allclose(got.val_accuracy, expected.val_accuracy, rtol=1e-12)
    # each epoch: a step over the 6 training chunks, then the validation over 2 chunks, each one graph (the
    # run's ending proves the last weights' loss finite from bounds, without a graph of its own)
    assert len(sizes) == 2 * 4 and max(sizes) <= 5 * N_CHUNKS and max(sizes[1::2]) <= 8 * 2


def test_numpy_data_is_chunked_along_samples(monkeypatch):
    backend = gdxp.get_backend("dask")
    monkeypatch.setattr("gdxp.backend.dask.CHUNK_BYTES", 3 * 8 * 100)  # 100 rows of 3 float64 per chunk
    x, y = problem()
    arr = backend.asarray(x)
    assert isinstance(arr, da.Array) and arr.chunks == ((100,) * 4, (3,))
    np.testing.assert_array_equal(backend.to_numpy(arr), x)
    reference = gdxp.Network(SIZES, seed=1)
    reference.fit(x, y, epochs=3, learning_rate=0.5, verbose=0)
    lazy = gdxp.Network(SIZES, seed=1, backend="dask")
    lazy.fit(x, y, epochs=3, learning_rate=0.5, verbose=0)
    assert_close_weights(reference, lazy)


def test_predict_stays_lazy_and_evaluate_reduces_in_the_graph():
    x, y = problem()
    reference, lazy, _, _ = fit_both(x, y, epochs=3)
    prediction = lazy.predict(chunked(x)[0])
    assert isinstance(prediction, da.Array) and prediction.numblocks == (N_CHUNKS, 1)
    np.testing.assert_allclose(np.asarray(prediction), reference.predict(x), rtol=1e-12)
    got, expected = lazy.evaluate(*chunked(x, y)), reference.evaluate(x, y)
    assert got.keys() == expected.keys()
    np.testing.assert_allclose(list(got.values()), list(expected.values()), rtol=1e-12)


def test_overflow_is_quiet_in_the_scheduler_threads():
    x, _ = problem()
    net = gdxp.Network([3, 1], seed=1, backend="dask")
    net.set_weights([np.full((3, 1), 1e5), np.zeros(1)])  # exp(-sop) overflows for half the samples
    with no_numpy_warnings():
        result = net.evaluate(*chunked(-x, np.zeros((x.shape[0], 1))))
        net.fit(*chunked(-x, np.zeros((x.shape[0], 1))), epochs=2, learning_rate=0.1, verbose=0)
    assert 0 < result["loss"] < 1


def test_checks_of_chunked_data_read_flags_and_one_row_not_the_data(monkeypatch):
    x, y = problem()
    y[333, 1] = 1.5  # outside binary cross-entropy's [0, 1], in the seventh chunk
    net = gdxp.Network(SIZES, loss="binary_cross_entropy", seed=1, backend="dask")
    read, to_numpy = [], net.backend.to_numpy
    monkeypatch.setattr(net.backend, "to_numpy", lambda arr: read.append(arr.size) or to_numpy(arr))
    with pytest.raises(ValueError, match=r"y must hold probabilities in \[0, 1\] .*got 1.5 at index \(333, 1\)"):
        net.evaluate(*chunked(x, y))
    x[17, 2] = np.nan
    with pytest.raises(ValueError, match=r"x must hold finite numbers, got 1 NaN .* the first at index \(17, 2\)"):
        net.evaluate(*chunked(x, y))
    assert read and max(read) <= 2  # flags, counts, and the one row a message shows


def test_ctrl_c_in_a_step_leaves_the_weights_of_the_last_completed_one():
    x, y = problem()
    net = gdxp.Network(SIZES, seed=1, backend="dask")
    settled, steps = net.backend.settled, []

    def interrupted(means):
        steps.append(1)
        if len(steps) == 6:  # while the sixth step's graph runs
            raise KeyboardInterrupt
        return settled(means)

    net.backend.settled = interrupted
    fit = {"learning_rate": 0.5, "verbose": 0, "optimizer": "adam", "batch_size": 100, "shuffle": False}
    with pytest.raises(KeyboardInterrupt):
        net.fit(*chunked(x, y), epochs=3, **fit)
    reference = gdxp.Network(SIZES, seed=1)
    reference.fit(x, y, epochs=1, **fit)
    reference.fit(x[:100], y[:100], epochs=1, **fit)  # the fifth step: the first batch of the second epoch
    assert_close_weights(reference, net)
    assert net.state.steps == 5


def test_a_client_that_is_not_one_is_refused_before_anything_changes():
    x, y = problem()
    net = gdxp.Network(SIZES, seed=1, backend="dask")
    before = net.get_weights()
    with pytest.raises(TypeError, match="client must be a dask.distributed Client, got str"):
        net.fit(*chunked(x, y), epochs=1, learning_rate=0.5, verbose=0, client="tcp://127.0.0.1:8786")
    for old, new in zip(before, net.get_weights(), strict=True):
        np.testing.assert_array_equal(new, old)
    assert net.optimizer is None


# -- a cluster of two worker processes ----------------------------------------------------------------

@pytest.fixture(scope="module")
def client():
    distributed = pytest.importorskip("distributed")
    with deadline(120):
        # any free port for the dashboard: pytest-xdist may start two clusters at once
        cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                           dashboard_address=":0", silence_logs=50)
        client = distributed.Client(cluster, set_as_default=False)  # each test says where it runs
    try:
        yield client
    finally:
        with deadline(60):
            client.close()
            cluster.close()


@pytest.mark.slow
def test_on_a_cluster_numpy_data_is_scattered_once_and_equals_numpy(client):
    x, y = problem()
    net = gdxp.Network(SIZES, seed=1, backend="dask")
    with client.as_current():
        arr = net.backend.chunked(x, rows=CHUNK_ROWS)
        pytest.importorskip("distributed").wait(arr)
    assert len(client.who_has(arr)) == N_CHUNKS and all(client.who_has(arr).values())  # held by the workers
    with deadline(120), client.as_current():
        reference, lazy, expected, got = fit_both(x, y, epochs=30, optimizer="adam")
    assert_close_weights(reference, lazy)
    np.testing.assert_allclose(got.loss, expected.loss, rtol=1e-12)


@pytest.mark.slow
def test_on_a_cluster_mini_batches_equal_numpy_in_order_or_shuffled_and_steps_stay_one_size(client, monkeypatch):
    x, y = problem()
    fit = {"epochs": 2, "batch_size": 30, "optimizer": "momentum"}
    with deadline(180), client.as_current():
        reference, lazy, expected, got = fit_both(x, y, **fit)
        assert_close_weights(reference, lazy)
        np.testing.assert_allclose(got.loss, expected.loss, rtol=1e-12)

        reference = gdxp.Network(SIZES, seed=1)
        monkeypatch.setattr(reference.backend, "shuffled", taking_chunkwise_order((CHUNK_ROWS,) * N_CHUNKS))
        expected = reference.fit(x, y, learning_rate=0.5, verbose=0, **fit)
        shuffled = gdxp.Network(SIZES, seed=1, backend="dask")
        sizes = graph_sizes(shuffled.backend)
        got = shuffled.fit(*chunked(x, y), learning_rate=0.5, verbose=0, **fit)
    assert_close_weights(reference, shuffled)
    np.testing.assert_allclose(got.loss, expected.loss, rtol=1e-12)
    # the steps, a batch spanning 1 or 2 chunks (the run's ending proves the last loss finite from bounds)
    assert len(sizes) == 2 * -(-N_CHUNKS * CHUNK_ROWS // 30) and max(sizes) <= 40


@pytest.mark.slow
def test_fit_runs_on_the_client_given_else_on_local_threads(client):
    distributed = pytest.importorskip("distributed")
    x, y = problem()
    fit = {"epochs": 2, "learning_rate": 0.5, "verbose": 0}
    with deadline(120):
        with distributed.get_task_stream(client) as on_cluster:
            gdxp.Network(SIZES, seed=1, backend="dask").fit(*chunked(x, y), **fit, client=client)
        with distributed.get_task_stream(client) as elsewhere:
            gdxp.Network(SIZES, seed=1, backend="dask").fit(*chunked(x, y), **fit)
        closed = distributed.Client(client.cluster, set_as_default=False)
        closed.close()
    assert on_cluster.data and not elsewhere.data
    with pytest.raises(ValueError, match="client must be connected to a cluster, got one whose status is 'closed'"):
        gdxp.Network(SIZES, seed=1, backend="dask").fit(*chunked(x, y), **fit, client=closed)


@pytest.mark.slow
def test_a_worker_killed_mid_fit_costs_only_recomputation(client):
    x, y = problem()
    fit = {"epochs": 12, "learning_rate": 0.5, "verbose": 0, "optimizer": "adam"}
    fit["client"] = client
    backend = gdxp.get_backend("dask")
    with client.as_current():  # persisted on the workers
        data = (backend.chunked(x, rows=CHUNK_ROWS), backend.chunked(y, rows=CHUNK_ROWS))
    with deadline(180):
        undisturbed = gdxp.Network(SIZES, seed=1, backend="dask")
        undisturbed.fit(*data, **fit)

        disturbed = gdxp.Network(SIZES, seed=1, backend="dask")
        victim = next(iter(client.run(os.getpid).values()))
        settled, killed, steps = disturbed.backend.settled, threading.Event(), []

        def kill_in_the_fifth_step(means):
            steps.append(len(steps) + 1)
            if len(steps) == 5:  # while the step's graph is about to run
                killer = threading.Thread(target=lambda: (os.kill(victim, signal.SIGKILL), killed.set()))
                killer.start()
                killer.join()
            return settled(means)

        disturbed.backend.settled = kill_in_the_fifth_step
        disturbed.fit(*data, **fit)
    assert killed.is_set() and victim not in client.run(os.getpid).values()
    # bit for bit in 3 runs of 3 since a step is a task per chunk (through Dask's array namespace, 1.8e-15
    # apart); allowed to differ by rounding, as a recomputed chunk sits at another address and NumPy's SIMD
    # sums can round differently with the alignment
    assert_close_weights(undisturbed, disturbed)


@pytest.mark.slow
def test_data_on_disk_trains_with_the_client_holding_under_two_chunks(client, tmp_path):
    # chunks of 8 MiB, 64 MiB on disk; the client process of a LocalCluster also runs its scheduler,
    # whose few MiB of bookkeeping count too
    rows, n_in = 262_144, 4
    chunk_bytes = rows * n_in * 8
    rng = da.random.default_rng(0)
    x = rng.normal(size=(N_CHUNKS * rows, n_in), chunks=(rows, n_in))
    y = 1 / (1 + da.exp(-x[:, :1] + 0.5 * x[:, 1:2]))
    with deadline(180):
        da.to_npy_stack(tmp_path / "x", x)
        da.to_npy_stack(tmp_path / "y", y)
        x_disk, y_disk = da.from_npy_stack(tmp_path / "x"), da.from_npy_stack(tmp_path / "y")
        net = gdxp.Network([n_in, 3, 1], seed=1, backend="dask")
        tracemalloc.start()
        try:
            history = net.fit(x_disk, y_disk, epochs=3, learning_rate=0.5, verbose=0, client=client)
            prediction = net.predict(x_disk)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert history.loss[-1] < history.loss[0]
    assert isinstance(prediction, da.Array) and prediction.numblocks == (N_CHUNKS, 1)
    assert peak < 2 * chunk_bytes, f"the client held {peak / 2**20:.1f} MiB at its peak"
