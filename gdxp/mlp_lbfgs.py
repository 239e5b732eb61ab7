"""``solver="lbfgs"``: scikit-learn's way, :func:`scipy.optimize.minimize` with ``method="L-BFGS-B"`` over the
weights packed in one vector (every layer's matrix, then every bias vector), ``max_iter``, ``max_fun`` and ``tol``
as its ``maxiter``, ``maxfun`` and ``gtol``. The loss and its gradient come from one forward and backward pass of
the engine (:func:`gdxp.backprop.gradients`, sample weights as :meth:`gdxp.Network.fit` takes them) on the
network's device; each evaluation moves the packed weights there and the packed gradient and loss back, once."""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.optimize
from sklearn.utils.fixes import _get_additional_lbfgs_options_dict
from sklearn.utils.optimize import _check_optimize_result

from . import backprop, validation

__all__ = ["LbfgsTraining"]


class LbfgsTraining:
    """The L-BFGS half of :class:`gdxp.mlp_base.BaseMLP`: it trains ``net_`` and sets ``n_iter_`` (L-BFGS's
    iterations) and ``loss_`` (the loss, L2 penalty included, at the weights it ends with)."""

    def _fit_lbfgs(self, prepared: Any) -> None:
        net = self.net_
        backend, packing = net.backend, _Packing(net.weight_shapes())
        xp, layers = backend.xp, net.architecture.layers
        sample_weight = prepared.sample_weight
        total = prepared.X.shape[0] if sample_weight is None else float(np.sum(sample_weight))
        penalty = self.alpha / total  # scikit-learn's L2 term: alpha / 2 * sum(W**2), per unit of sample weight
        with backend.activate():  # the data checked and on the device once
            inputs, targets = net.as_batch(prepared.X, prepared.targets)
            shares = validation.as_shares(backend, net.architecture, sample_weight, inputs, check_values=True)

        held = backend.parameters  # where the weights live (Dask: on the client)

        def loss_and_gradient(packed: np.ndarray) -> tuple[float, np.ndarray]:
            with backend.activate():  # the weights there in one transfer; the loss and gradients in one pass
                weights = packing.unpack(held.asarray(packed, copy=True), held.xp)
                grads, loss, _ = backprop.gradients(xp, layers, net.loss, weights, inputs, targets,
                                                    want_loss=True, shares=shares)
                flat = backend.to_numpy(xp.concat([*(xp.reshape(grads[i], (-1,)) for i in packing.order),
                                                   xp.reshape(loss, (1,))])).astype(np.float64)
            coefs = packed[:packing.n_coefs]
            gradient = flat[:-1]
            gradient[:packing.n_coefs] += penalty * coefs
            return float(flat[-1]) + 0.5 * penalty * float(coefs @ coefs), gradient

        result = scipy.optimize.minimize(
            loss_and_gradient, packing.pack(net.get_weights()), method="L-BFGS-B", jac=True,
            options={"maxfun": self.max_fun, "maxiter": self.max_iter, "gtol": self.tol,
                     **_get_additional_lbfgs_options_dict("iprint", 1 if self.verbose else -1)})
        self.n_iter_ = _check_optimize_result("lbfgs", result, self.max_iter)
        self.loss_ = float(result.fun)
        net.set_weights(packing.unpack(result.x, np))


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

    def unpack(self, packed: Any, xp: Any) -> list[Any]:
        """The arrays of ``packed`` (of the namespace ``xp``) in :meth:`gdxp.Network.get_weights` order."""
        weights: list[Any] = [None] * len(self.shapes)
        for place, i in enumerate(self.order):
            weights[i] = xp.reshape(packed[int(self.bounds[place]):int(self.bounds[place + 1])], self.shapes[i])
        return weights
