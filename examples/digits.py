"""Handwritten digits (the 8x8 set that ships with scikit-learn): softmax, cross-entropy and Adam.

1,797 images of 64 pixels, split 70/15/15 into training, validation and test sets. A 64-64-10
network (ReLU hidden layer, softmax output, fused cross-entropy) trains with Adam on mini-batches of
32, stops early when the validation loss stops improving, and reports accuracy on the held-out test
images (0.985 with the defaults). Saves the learning curves. Then the same network the scikit-learn way, beside it:
``gdxp.estimators.MLPClassifier`` takes the digits' labels as they are and stops by scikit-learn's rule
on the training loss (0.993 with the defaults). Needs the ``examples`` extra (scikit-learn).
Run: ``python examples/digits.py [--backend cupy] [--epochs N]``.
"""

import numpy as np
from common import parser, save_plot

import gdxp


def load_split(seed: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Pixels scaled to [0, 1], one-hot targets, shuffled once and split 70/15/15."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise SystemExit("digits.py needs scikit-learn: pip install 'gdxp[examples]'") from None
    digits = load_digits()
    x, y = digits.data / 16.0, np.eye(10)[digits.target]
    order = np.random.default_rng(seed).permutation(len(x))
    train, val = int(0.7 * len(x)), int(0.85 * len(x))
    parts = {"train": order[:train], "validation": order[train:val], "test": order[val:]}
    return {name: (x[rows], y[rows]) for name, rows in parts.items()}


def main() -> None:
    options = parser(__doc__.splitlines()[0])
    options.add_argument("--epochs", type=int, default=60, help="most epochs (early stopping may end sooner)")
    options.add_argument("--verbose", type=int, default=1, help="1: progress bar, 0: quiet")
    args = options.parse_args()
    data = load_split(seed=0)
    net = gdxp.Network([64, 64, 10], activation="relu", output_activation="softmax", loss="cross_entropy",
                       init="he_normal", seed=0, backend=args.backend)
    print(f"{net!r}\ntraining on {len(data['train'][0])} images, validating on {len(data['validation'][0])}")
    history = net.fit(*data["train"], epochs=args.epochs, learning_rate=0.002, batch_size=32,
                      optimizer="adam", validation_data=data["validation"], patience=8, verbose=args.verbose)
    stop = f"stopped early, best epoch {history.best_epoch}" if history.stopped_early else "ran every epoch"
    print(f"{history.epochs} epochs ({stop})")
    for name in ("train", "test"):
        scores = net.evaluate(*data[name])
        print(f"{name} accuracy {scores['accuracy']:.4f}, loss {scores['loss']:.4f}")
    save_plot(history, args.figures, "digits")
    estimator_route(data, args.backend, args.epochs)


def estimator_route(data: dict[str, tuple[np.ndarray, np.ndarray]], backend: str | None, epochs: int) -> None:
    """The same 64-64-10 network as a scikit-learn estimator, on the training and validation images: labels 0-9
    rather than one-hot rows, stopped when the training loss has not improved by ``tol`` for 10 epochs."""
    from gdxp.estimators import MLPClassifier  # imports scikit-learn, which load_split has found

    x = np.concatenate([data["train"][0], data["validation"][0]])
    labels = np.concatenate([data["train"][1], data["validation"][1]]).argmax(axis=1)
    clf = MLPClassifier(hidden_layer_sizes=(64,), learning_rate_init=0.002, batch_size=32, max_iter=epochs,
                        tol=3e-3, random_state=0, backend=backend)
    clf.fit(x, labels)
    x_test, y_test = data["test"]
    print(f"estimator: {clf.n_iter_} epochs, test accuracy {clf.score(x_test, y_test.argmax(axis=1)):.4f}")


if __name__ == "__main__":
    main()
