"""The end-point policy: every constant :func:`lossatlas.polish` decides with, in one place.

`lossatlas find`, `lossatlas classify`, every atlas kind and the census go through
:func:`lossatlas.polish` / :func:`lossatlas.classify`, so one end point gets one label whoever
asks. Change a number here and every entry point changes with it.
"""

from __future__ import annotations

import numpy as np

#: Default target for ``||∇L||_∞`` at a polished point (machine precision on the papers' nets).
GTOL = 1e-12

#: The gradient flow hands over to Newton once ``||∇L||_∞ ≤ HANDOFF_TOL``.
HANDOFF_TOL = 1e-6

#: Final time of the gradient flow of ``method="flow-newton"``.
FLOW_T1 = 1e6

#: Share of a time budget (``max_time``) the gradient flow of ``method="flow-newton"`` may use;
#: Newton gets the rest (a flow that crawls, e.g. across the kinks of a relu net, would otherwise
#: take all of it).
FLOW_TIME_FRACTION = 0.5

#: Newton steps of the first polish, and of the trust-region minimiser fallback.
NEWTON_STEPS = 200
FALLBACK_STEPS = 1000

#: A flow end point counts as minimum-like (so the trust-region minimiser may take over when the
#: saddle-capable solver stalls) if its Hessian has no eigenvalue below ``-MINIMUM_LIKE_RTOL·||H||``.
MINIMUM_LIKE_RTOL = 1e-6

#: A point is *critical* (for classification) when ``||∇L||_∞ ≤ CRITICAL_MARGIN · max(gtol, floor)``,
#: with ``floor`` the measured float64 round-off floor of the gradient at the point: a polished
#: point meets ``max(gtol, floor)`` itself; the margin absorbs the floor's own estimation error
#: (it is measured from a few reorderings of the data sums, not bounded).
CRITICAL_MARGIN = 10.0

#: Merge tolerances tried, tightest first, by the symmetry-aware polish. A loose tolerance is only
#: a hypothesis: the projected point is kept only if its own gradient meets the target.
PROJECTION_TOLS = (1e-3, 1e-2, 5e-2)

#: Newton steps on the reduced (narrow) network of the symmetry-aware polish.
NARROW_NEWTON_STEPS = 100

#: Dense Hessians (eigendecompositions) are used up to this many parameters; beyond, the
#: minimum-like test is skipped and Newton is matrix-free.
DENSE_LIMIT = 3000

#: Adam's defaults for ``method="adam"``.
ADAM_STEPS = 20_000
ADAM_LEARNING_RATE = 1e-3

METHODS = ("flow-newton", "newton", "saddle", "adam")


def critical_tolerance(gtol: float, floor: float) -> float:
    """The classification threshold on ``||∇L||_∞`` for a point polished to target `gtol` whose
    measured gradient floor is `floor` (see :data:`CRITICAL_MARGIN`)."""
    return CRITICAL_MARGIN * max(float(gtol), float(floor))


def max_weight_growth(net0, net1) -> float:
    """Largest ratio, over all neurons of all layers, of the norm of a neuron's incoming weights
    (its row of ``W_l`` and its bias) at the end over the start. Neurons whose incoming weights
    start at exactly zero are skipped (no ratio exists); 1.0 if none is left."""
    best = 1.0
    for layer in range(net0.depth):
        a0, a1 = np.asarray(net0.weights[layer]), np.asarray(net1.weights[layer])
        if net0.has_bias:
            a0 = np.concatenate([a0, np.asarray(net0.biases[layer])[:, None]], axis=1)
            a1 = np.concatenate([a1, np.asarray(net1.biases[layer])[:, None]], axis=1)
        n0, n1 = np.linalg.norm(a0, axis=1), np.linalg.norm(a1, axis=1)
        ok = n0 > 0
        if ok.any():
            best = max(best, float(np.max(n1[ok] / n0[ok])))
    return best
