"""Notebook views: Trace, summary() and History show an HTML table in Jupyter (``_repr_html_``) and text elsewhere."""

import html
import pickle
import re

import numpy as np

import gdxp
from gdxp import display


def cells(markup: str) -> list[list[str]]:
    """The table's rows as lists of cell texts (header first), unescaped, <pre> dropped."""
    rows = re.findall(r"<tr>(.*?)</tr>", markup, flags=re.DOTALL)
    return [[html.unescape(re.sub(r"<[^>]+>", "", cell)) for cell in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row,
                                                                                   flags=re.DOTALL)] for row in rows]


def test_a_table_escapes_every_cell_and_keeps_arrays_laid_out():
    markup = display.table("a <b> & c", ("x<", "y"), [("<script>", "1\n2")], preformatted=(1,))
    assert "<script>" not in markup and "&lt;script&gt;" in markup and "a &lt;b&gt; &amp; c" in markup
    assert "<pre style='margin:0'>1\n2</pre>" in markup
    assert cells(markup) == [["x<", "y"], ["<script>", "1\n2"]]


def test_the_trace_is_a_table_of_its_steps_in_a_notebook():
    trace = gdxp.Network([3, 2, 1], bias=False, init="uniform", seed=0).trace([0.1, 0.4, 4.1], [0.2])
    rows = cells(trace._repr_html_())
    assert rows[0] == ["pass", "name", "shape", "meaning", "value"]
    assert [row[1] for row in rows[1:]] == trace.names()
    grad = next(row for row in rows if row[1] == "grad_W1")
    assert grad[0] == "backward" and grad[2] == "(3, 2)" and grad[4] == trace["grad_W1"].values()
    assert str(trace).startswith("One forward and backward pass of Network([3, 2, 1]")  # text elsewhere


def test_the_summary_is_its_text_printed_and_a_table_in_a_notebook():
    net = gdxp.Network([3, 5, 2], activation="relu", output_activation="softmax", loss="cross_entropy")
    summary = net.summary()
    assert isinstance(summary, str) and summary.splitlines()[-1].split() == ["total", "32"]
    assert cells(summary._repr_html_()) == [["layer", "shape", "activation", "parameters"],
                                            ["1", "3 -> 5", "relu", "20"], ["2", "5 -> 2", "softmax", "12"],
                                            ["total", "", "", "32"]]
    assert summary._repr_html_().startswith(f"<table><caption style='text-align:left'>{html.escape(repr(net))}")
    copy = pickle.loads(pickle.dumps(summary))
    assert copy == summary and copy._repr_html_() == summary._repr_html_()


def test_the_history_outlines_the_run_as_text_and_as_a_table():
    x = np.random.default_rng(0).normal(size=(20, 3))
    y = np.eye(2)[(x[:, 0] > 0).astype(int)]
    net = gdxp.Network([3, 4, 2], activation="tanh", output_activation="softmax", loss="cross_entropy", seed=0)
    history = net.fit(x, y, epochs=5, learning_rate=0.5, validation_data=(x, y), patience=3, verbose=0)
    least = int(np.argmin(history.loss))
    expected = [("epochs", "5"), ("loss", f"{history.loss[0]:.6g} -> {history.loss[-1]:.6g}"),
                ("least loss", f"{history.loss[least]:.6g} at epoch {least + 1} of this run"),
                ("validation loss", f"{history.val_loss[0]:.6g} -> {history.val_loss[-1]:.6g}"),
                ("validation accuracy", f"{history.val_accuracy[0]:.4g} -> {history.val_accuracy[-1]:.4g}"),
                ("best epoch", str(history.best_epoch))]
    assert history.outline() == expected
    assert cells(history._repr_html_())[1:] == [list(pair) for pair in expected]
    assert str(history).splitlines() == ["History"] + [f"  {what + ':':<21}{value}" for what, value in expected]
    assert str(gdxp.History()) == "History\n  epochs:              0"
    assert repr(history) == "History(" + ", ".join(f"{what}: {value}" for what, value in expected) + ")"


def test_a_long_runs_history_shows_in_a_console_as_one_short_line():
    history = gdxp.History(loss=list(np.linspace(1.0, 0.5, 80_000)))
    assert repr(history) == "History(epochs: 80,000, loss: 1 -> 0.5, least loss: 0.5 at epoch 80,000 of this run)"
