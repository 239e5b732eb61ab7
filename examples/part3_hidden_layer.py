"""Part 3 of the tutorials: one hidden layer of 2 sigmoid neurons, first with 3 inputs, then with 10.

Each network learns one example (target 0.2) by 80,000 steps of per-sample gradient descent on the
squared error, learning rate 0.001, from weights drawn like ``numpy.random.rand``. The script prints
the prediction before and after and saves the tutorial's two figures, the predicted output and the
error per iteration. Run: ``python examples/part3_hidden_layer.py [--backend cupy] [--steps N]``.
"""

import numpy as np
from common import parser, save_plot

import gdxp

INPUTS = {
    "3_inputs": np.array([0.1, 0.4, 4.1]),
    "10_inputs": np.array([0.1, 0.4, 4.1, 4.3, 1.8, 2.0, 0.01, 0.9, 3.8, 1.6]),
}
TARGET = np.array([0.2])


def main() -> None:
    options = parser(__doc__.splitlines()[0])
    options.add_argument("--steps", type=int, default=80_000, help="per-sample steps (the tutorials took 80,000)")
    args = options.parse_args()
    for name, x in INPUTS.items():
        net = gdxp.Network([x.shape[0], 2, 1], activation="sigmoid", bias=False, init="uniform", seed=0,
                           backend=args.backend)
        print(f"{net.sizes[0]} inputs -> 2 hidden -> 1 output on {net.backend.name}")
        history = net.fit(x, TARGET, epochs=args.steps, learning_rate=0.001, batch_size=1,
                          record_predictions=True, verbose=0)
        first, last = history.predictions[0].item(), net.backend.to_numpy(net.predict(x)).item()
        print(f"  prediction {first:.6f} -> {last:.6f} (target 0.2), error {history.loss[-1]:.3e}")
        save_plot(history, args.figures, f"part3_{name}")


if __name__ == "__main__":
    main()
