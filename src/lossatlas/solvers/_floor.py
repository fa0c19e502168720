"""The float64 round-off floor of the gradient of a landscape at a point."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ..data import Dataset
from ..landscape import Landscape

_EPS = float(np.finfo(np.float64).eps)


def gradient_floor(ls: Landscape, theta, hessian_norm: float, *, repeats: int = 3) -> float:
    """An estimate of the smallest ``||∇L||_∞`` that float64 can resolve at ``θ``.

    Two measured parts, added:

    - *representation*: ``θ`` itself is only known to relative precision ``ε``; a change of
      ``ε|θ_i|`` in each coordinate moves the gradient by up to ``ε ||H||₂ ||θ||_∞``;
    - *evaluation*: the gradient is a sum over samples; summing the same terms in other
      orders (random permutations of the data, a different code path with the same exact
      value) changes the computed gradient by the summation round-off, measured directly as
      the largest ``||∇L_perm − ∇L||_∞`` over `repeats` permutations.

    For population losses only the representation part and ``ε``-scaled loss terms apply.
    """
    theta = jnp.asarray(theta)
    g = np.asarray(ls.grad(theta))
    rep = _EPS * hessian_norm * float(jnp.max(jnp.abs(theta))) if theta.size else 0.0
    evals = 4.0 * _EPS * float(np.max(np.abs(g))) if g.size else 0.0
    if ls.data is not None and ls.data.n_samples > 1:
        key = jax.random.PRNGKey(1234)
        for _ in range(repeats):
            key, sub = jax.random.split(key)
            perm = jax.random.permutation(sub, ls.data.n_samples)
            other = ls.with_data(Dataset(ls.data.X[perm], ls.data.Y[perm]))
            evals = max(evals, float(np.max(np.abs(np.asarray(other.grad(theta)) - g))))
    return float(rep + evals)
