"""Part 4 of the tutorials: one hidden layer of any number of sigmoid neurons (5, then 8).

The tutorial's per-neuron loop becomes one matrix product per layer; the network is the same:
3 inputs, one example with target 0.2, squared error, 80,000 per-sample steps at learning rate
0.001. Prints the prediction before and after, saves the prediction and error per iteration.
Run: ``python examples/part4_any_hidden.py [--hidden 5 8 12] [--backend cupy] [--steps N]``.
"""

import numpy as np
from common import parser, save_plot

import gdxp

X = np.array([0.1, 0.4, 4.1])
TARGET = np.array([0.2])


def main() -> None:
    options = parser(__doc__.splitlines()[0])
    options.add_argument("--hidden", type=int, nargs="+", default=[5, 8], help="hidden layer widths to train")
    options.add_argument("--steps", type=int, default=80_000, help="per-sample steps (the tutorials took 80,000)")
    args = options.parse_args()
    for hidden in args.hidden:
        net = gdxp.Network([3, hidden, 1], activation="sigmoid", bias=False, init="uniform", seed=0,
                           backend=args.backend)
        history = net.fit(X, TARGET, epochs=args.steps, learning_rate=0.001, batch_size=1,
                          record_predictions=True, verbose=0)
        first, last = history.predictions[0].item(), net.backend.to_numpy(net.predict(X)).item()
        print(f"3 -> {hidden} hidden -> 1: prediction {first:.6f} -> {last:.6f} (target 0.2), "
              f"error {history.loss[-1]:.3e}")
        save_plot(history, args.figures, f"part4_{hidden}_hidden")


if __name__ == "__main__":
    main()
