"""``solver="lbfgs"``: scikit-learn's way, :func:`scipy.optimize.minimize` with ``method="L-BFGS-B"`` over the
weights packed in one vector (every layer's matrix, then every bias vector), ``max_iter``, ``max_fun`` and ``tol``
as its ``maxiter``, ``maxfun`` and ``gtol``. The loss and its gradient come from the network on its own device;
each evaluation moves the packed weights there and the packed gradient back, once."""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.optimize
from sklearn.utils.fixes import _get_additional_lbfgs_options_dict
from sklearn.utils.optimize import _check_optimize_result

__all__ = ["LbfgsTraining"]


class LbfgsTraining:
    """The L-BFGS half of :class:`gdxp.mlp_base.BaseMLP`: it trains ``net_`` and sets ``n_iter_`` (L-BFGS's
    iterations) and ``loss_`` (the loss, L2 penalty included, at the weights it ends with)."""

    def _fit_lbfgs(self, prepared: Any) -> None:
        net = self.net_
        packing = _Packing(net.weight_shapes())
        inputs, targets = net.as_batch(prepared.X, prepared.targets)  # on the device once
        weights = prepared.sample_weight
        extra = {} if weights is None else {"sample_weight": weights}
        total = inputs.shape[0] if weights is None else float(np.sum(weights))
        penalty = self.alpha / total  # scikit-learn's L2 term: alpha / 2 * sum(W**2), per unit of sample weight
        xp, to_numpy = net.backend.xp, net.backend.to_numpy

        def loss_and_gradient(packed: np.ndarray) -> tuple[float, np.ndarray]:
            net.set_weights(packing.unpack(packed))
            grads = net.gradients(inputs, targets, **extra)
            loss = net.loss_value(inputs, targets, **extra)
            flat = to_numpy(xp.concat([xp.reshape(grads[i], (-1,)) for i in packing.order]))  # one transfer
            coefs = packed[:packing.n_coefs]
            flat = flat.astype(np.float64)
            flat[:packing.n_coefs] += penalty * coefs
            return loss + 0.5 * penalty * float(coefs @ coefs), flat

        result = scipy.optimize.minimize(
            loss_and_gradient, packing.pack(net.get_weights()), method="L-BFGS-B", jac=True,
            options={"maxfun": self.max_fun, "maxiter": self.max_iter, "gtol": self.tol,
                     **_get_additional_lbfgs_options_dict("iprint", 1 if self.verbose else -1)})
        self.n_iter_ = _check_optimize_result("lbfgs", result, self.max_iter)
        self.loss_ = float(result.fun)
        net.set_weights(packing.unpack(result.x))


class _Packing:
    """Weights in :meth:`gdxp.Network.get_weights` order (``[W1, b1, W2, b2, ...]``) to and from scikit-learn's
    one vector (``W1, W2, ..., b1, b2, ...``, each flattened row by row)."""

    def __init__(self, shapes: list[tuple[int, ...]]) -> None:
        self.shapes = shapes
        self.order = [*range(0, len(shapes), 2), *range(1, len(shapes), 2)]  # the matrices, then the biases
        sizes = [int(np.prod(shapes[i])) for i in self.order]
        self.bounds = np.cumsum([0, *sizes])
        self.n_coefs = int(self.bounds[(len(shapes) + 1) // 2])

    def pack(self, weights: list[np.ndarray]) -> np.ndarray:
        return np.concatenate([np.ravel(weights[i]) for i in self.order]).astype(np.float64)

    def unpack(self, packed: np.ndarray) -> list[np.ndarray]:
        weights: list[np.ndarray] = [np.empty(0)] * len(self.shapes)
        for place, i in enumerate(self.order):
            weights[i] = packed[self.bounds[place]:self.bounds[place + 1]].reshape(self.shapes[i])
        return weights
