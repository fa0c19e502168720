"""Newton through the symmetry reduction, for end points on degenerate critical manifolds."""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp
import numpy as np

from .._errors import InputError
from .._progress import Budget
from ..solvers import AbstractCriticalPointSolver, NewtonMR, SaddleNewton, find_critical_point
from ..symmetry import expansion_subspace, reduce_network
from . import policy as _policy


@dataclasses.dataclass(frozen=True)
class Projection:
    """A point projected onto the expansion subspace of its polished minimal network.

    `theta`, `loss`, `grad_norm_inf` are evaluated at the projected point itself; `merge_tol`
    is the reduction tolerance that produced it, `narrow_width` the reduced network's hidden
    widths and `narrow_steps` the Newton steps spent on it.
    """

    theta: np.ndarray
    loss: float
    grad_norm_inf: float
    merge_tol: float
    narrow_widths: tuple[int, ...]
    narrow_steps: int


def polish_through_reduction(ls, theta, polisher: AbstractCriticalPointSolver | None = None,
                             target: float = 0.0, budget: Budget | None = None) -> Projection | None:
    """Reduce ``θ`` to its minimal network, polish that (non-degenerate) network with Newton, and
    project ``θ`` onto the affine subspace of the polished minimal network's expansion along the
    same label map.

    Used when Newton stalls on a degenerate critical manifold (e.g. a non-Morse-Bott branch of
    the zero-loss set, where the flow converges only algebraically, or split neurons). The merge
    tolerances of :data:`~lossatlas.pipeline.policy.PROJECTION_TOLS` are tried, tightest first,
    until a projection's own gradient meets `target`.

    Returns the best :class:`Projection` found (smallest ``||∇L||_∞``), or ``None`` if the point
    does not reduce (or has frozen arrays). The caller decides whether it is good enough.
    `budget`: a running time budget (no further tolerance is tried once it has run out).
    """
    if ls.freeze:
        return None
    polisher = SaddleNewton() if polisher is None else polisher
    best = None
    for tol in _policy.PROJECTION_TOLS:
        if budget is not None and budget.expired():
            break
        try:
            red = reduce_network(ls.unravel(jnp.asarray(theta)), tol=tol)
        except InputError:  # e.g. a layer whose every neuron is zero-type: no MLP to reduce to
            continue
        if red.is_minimal:
            continue
        out = _project_through(ls, theta, red, polisher, tol, budget)
        if out is not None and (best is None or out.grad_norm_inf < best.grad_norm_inf):
            best = out
        if best is not None and best.grad_norm_inf <= max(target, polisher.gtol):
            break
    return best


def saddle_solver(n_params: int, gtol: float) -> AbstractCriticalPointSolver:
    """The saddle-capable Newton for `n_params` parameters: Levenberg-Marquardt on the dense
    Hessian up to ``policy.DENSE_LIMIT``, the matrix-free Newton-MR beyond (as :func:`polish`)."""
    if n_params > _policy.DENSE_LIMIT:
        return NewtonMR(gtol=gtol, inertia_k=0)
    return SaddleNewton(gtol=gtol)


def _project_through(ls, theta, red, polisher, tol, budget) -> Projection | None:
    narrow_ls = ls.with_model(red.narrow)
    if isinstance(polisher, SaddleNewton):  # the narrow network may still be beyond the dense limit
        polisher = saddle_solver(narrow_ls.n_params, polisher.gtol)
    sol = find_critical_point(narrow_ls, narrow_ls.ravel(), polisher, max_steps=_policy.NARROW_NEWTON_STEPS,
                              throw=False, budget=budget)
    if not sol.success:
        return None
    sub = expansion_subspace(narrow_ls.unravel(jnp.asarray(sol.theta)), red.label_map)
    proj = np.asarray(sub.project(np.asarray(theta)))
    L, g = ls.value_and_grad(jnp.asarray(proj))
    return Projection(proj, float(L), float(np.max(np.abs(np.asarray(g)))), float(tol),
                      tuple(red.narrow.hidden_widths), int(sol.stats.num_steps))
