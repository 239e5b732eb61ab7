"""The delta-rule notebook, both cells, printing the numbers it printed.

Cell 1: one sigmoid neuron, x = [1, 2, 3, 4], weights [0.5, -0.5, 0.3, 0.1], target 0.5: its output,
its error and the change the delta rule makes to each weight at learning rate 0.5.
Cell 2: one step through a 3-2-1 sigmoid network from the notebook's weights.
The notebook's error term is (target - output) f'(h): the gradient of half the squared error, so
the networks here use ``loss="half_squared_error"`` and one ``step`` gives the delta rule's change.
Run: ``python examples/delta_rule.py [--backend array_api_strict]``.
"""

import numpy as np
from common import parser

import gdxp


def one_neuron(backend: str | None) -> None:
    net = gdxp.Network([4, 1], activation="sigmoid", loss="half_squared_error", bias=False, backend=backend)
    weights = np.array([[0.5], [-0.5], [0.3], [0.1]])
    net.set_weights([weights])
    x, target = np.array([1.0, 2.0, 3.0, 4.0]), 0.5
    output = net.backend.to_numpy(net.predict(x)).item()
    net.step(x, target, learning_rate=0.5)
    print("Neural Network output:")
    print(f"{output:.12f}")
    print("Amount of Error:")
    print(f"{target - output:.12f}")
    print("Change in Weights:")
    print(net.get_weights()[0][:, 0] - weights[:, 0])


def three_two_one(backend: str | None) -> None:
    net = gdxp.Network([3, 2, 1], activation="sigmoid", loss="half_squared_error", bias=False, backend=backend)
    input_hidden = np.array([[0.5, -0.6], [0.1, -0.2], [0.1, 0.7]])
    hidden_output = np.array([[0.1], [-0.3]])
    net.set_weights([input_hidden, hidden_output])
    net.step(np.array([0.5, 0.1, -0.2]), np.array([0.6]), learning_rate=0.5)
    new_input_hidden, new_hidden_output = net.get_weights()
    print("Change in weights for hidden layer to output layer:")
    print(new_hidden_output[:, 0] - hidden_output[:, 0])
    print("Change in weights for input layer to hidden layer:")
    print(new_input_hidden - input_hidden)


def main() -> None:
    args = parser(__doc__.splitlines()[0]).parse_args()
    one_neuron(args.backend)
    print()
    three_two_one(args.backend)


if __name__ == "__main__":
    main()
