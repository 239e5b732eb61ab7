"""One backprop pass through a 4-3-2-1 regression network, every array printed with its shape.

The network of the walkthrough notebook: two sigmoid hidden layers (3 and 2 neurons), a linear
output, no biases, weights drawn from N(0, 1/sqrt(fan_in)); one sample x = [0.5, -0.2, 0.1, 0.3] with
target 0.4, and half the squared error, whose gradient is prediction - target. The script prints
``net.trace``: the forward pass, then every chain-rule factor and gradient; then takes one step of
learning rate 1 and shows the new prediction, then trains for a while.
Run: ``python examples/backprop_walkthrough.py [--backend array_api_strict] [--steps N]``.
"""

import numpy as np
from common import parser, save_plot

import gdxp

X = np.array([0.5, -0.2, 0.1, 0.3])
TARGET = np.array([0.4])


def main() -> None:
    options = parser(__doc__.splitlines()[0])
    options.add_argument("--steps", type=int, default=200, help="steps of the short training run")
    args = options.parse_args()
    net = gdxp.Network([4, 3, 2, 1], activation="sigmoid", output_activation="identity",
                       loss="half_squared_error", bias=False, init="normal", seed=1, backend=args.backend)
    print(net.trace(X, TARGET))
    before = net.backend.to_numpy(net.predict(X)).item()
    net.step(X, TARGET, learning_rate=1.0)
    after = net.backend.to_numpy(net.predict(X)).item()
    print(f"\nOne step of learning rate 1: prediction {before:.6f} -> {after:.6f} (target 0.4)")
    history = net.fit(X, TARGET, epochs=args.steps, learning_rate=0.1, record_predictions=True, verbose=0)
    final = net.backend.to_numpy(net.predict(X)).item()
    print(f"{args.steps} more steps of learning rate 0.1: prediction {final:.6f}, error {history.loss[-1]:.3e}")
    save_plot(history, args.figures, "backprop_walkthrough")


if __name__ == "__main__":
    main()
