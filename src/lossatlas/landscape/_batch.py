"""The loss at many points at once (one compiled, vmapped evaluation)."""

from __future__ import annotations

import equinox as eqx
import jax


@eqx.filter_jit
def _batch_loss(ls, thetas):
    return jax.vmap(ls.objective)(thetas)


def batch_loss(ls, thetas) -> jax.Array:
    """``L(θ_i)`` for each row ``θ_i`` of ``thetas`` (shape ``(n, p)``), vmapped and compiled
    once per shape; the rows are not checked (callers pass points they built from a checked
    flat vector, e.g. slices, paths)."""
    return _batch_loss(ls, thetas)
