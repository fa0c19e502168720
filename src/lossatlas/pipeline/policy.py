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

#: Step budget of that flow (the ODE solver's ``max_steps``) up to ``DENSE_LIMIT`` parameters.
FLOW_MAX_STEPS = 100_000

#: Above ``DENSE_LIMIT`` parameters the flow (and each continued flow) is cut to
#: ``flow_max_steps(p, n)`` = ``LARGE_FLOW_WORK / (p · n)`` steps (``n`` samples; at least
#: ``LARGE_FLOW_MIN_STEPS``), and the matrix-free Newton-MR, which has its own descent steps,
#: takes over from wherever the flow got to. The flow's cost is then bounded by its size alone
#: (reproducible, unlike a wall-clock cut): on 64→256→256→10 with 1797 samples (85 002
#: parameters) 196 Tsit5 steps, about 40 s on one core. Measured there without the cut: the flow
#: spent 529 s of a 900 s budget approaching ``HANDOFF_TOL`` and Newton-MR missed 1e-10 in the
#: rest; Newton-MR alone reaches 1e-10 from the same start in 506 s.
LARGE_FLOW_WORK = 3e10
LARGE_FLOW_MIN_STEPS = 64

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

#: Hessian-vector products of the Lanczos classification of an ``undetermined`` point above the
#: dense limit, after polishing to the round-off floor has not decided it (the first
#: classification uses 500): unconverged small Ritz values widen the zero tolerance. Measured at
#: 85 002 parameters (cross-entropy, weight decay 1e-3 on digits): 500 products left the zero
#: tolerance at 1.1e-5 next to λ_min = 1.1e-6 (``undetermined``); 1609 of 2000 converged the
#: bottom Ritz values to 6.7e-17 and gave ``minimum`` (tolerance 4.5e-10), in 268 s on two cores.
DECIDE_LANCZOS_MATVECS = 2000

#: --- The continuation of ``method="flow-newton"`` -------------------------------------------
#: When the first pass (flow, Newton, the fallbacks above) ends at no critical point, the flow
#: continues from where it stopped, in rounds: each round integrates it on to
#: ``CONTINUATION_TIME_FACTOR`` times the flow time reached, stopping at the steady-state
#: tolerance ``handoff_tol · CONTINUATION_TOL_FACTOR^round`` (never below
#: ``CONTINUATION_MIN_STEADY_TOL``), then hands off to Newton again (with its fallbacks). A
#: round whose flow point is saddle-like takes a negative-curvature step before the next round.
#: After the last round the trust-region minimiser starts from the last flow point.
CONTINUATION_ROUNDS = 3
CONTINUATION_TIME_FACTOR = 100.0
CONTINUATION_TOL_FACTOR = 1e-2
CONTINUATION_MIN_STEADY_TOL = 1e-11

#: Caps of the continuation of one end point, besides the polish's own `max_time`: total
#: gradient-flow time, and wall-clock seconds.
CONTINUATION_MAX_FLOW_TIME = 1e12
CONTINUATION_MAX_TIME = 300.0

#: The continued flow of a smooth network of at most this many parameters is integrated by
#: SciPy's implicit BDF with the exact Hessian as Jacobian (plateaus are stiff: an explicit
#: solver's step stays below ``2/λ_max`` while the flow needs times of 1e7 and more; measured on
#: an erf student of width 6, d = 4: Tsit5 spent its 100 000 steps reaching t = 1.6e5, BDF reached
#: t = 1e7 in 689 steps). BDF is stepped by the pipeline, so the steady state and the time budget
#: are checked after every step; at most ``CONTINUATION_FLOW_STEPS`` steps per round. Larger or
#: kinked networks continue with the explicit solver, chunked under the time budget.
CONTINUATION_IMPLICIT_LIMIT = 400
CONTINUATION_FLOW_STEPS = 20_000

#: A negative-curvature step is taken at a flow point whose Hessian has an eigenvalue below
#: ``−MINIMUM_LIKE_RTOL·||H||``: along its eigenvector ``v``, to ``θ ± α v`` with the lower loss,
#: for the longest ``α = c · max(1, ||θ||_∞)``, ``c`` in ``CURVATURE_STEPS``, whose loss decrease
#: is at least ``CURVATURE_DECREASE`` times the quadratic model's ``½|λ_min| α²`` (dense Hessians
#: only, up to ``DENSE_LIMIT`` parameters).
CURVATURE_STEPS = (1e-1, 3e-2, 1e-2, 3e-3, 1e-3)
CURVATURE_DECREASE = 0.5

#: Adam's defaults for ``method="adam"``.
ADAM_STEPS = 20_000
ADAM_LEARNING_RATE = 1e-3

METHODS = ("flow-newton", "newton", "saddle", "adam")


def flow_max_steps(n_params: int, n_samples: int | None) -> int:
    """The step budget of the gradient flow of ``method="flow-newton"`` for a landscape of
    `n_params` parameters and `n_samples` samples (``None``: a population loss, counted as one):
    ``FLOW_MAX_STEPS`` up to ``DENSE_LIMIT`` parameters, else ``LARGE_FLOW_WORK / (p · n)``
    (at least ``LARGE_FLOW_MIN_STEPS``, at most ``FLOW_MAX_STEPS``)."""
    if n_params <= DENSE_LIMIT:
        return FLOW_MAX_STEPS
    work = float(n_params) * float(max(n_samples or 1, 1))
    return int(min(FLOW_MAX_STEPS, max(LARGE_FLOW_MIN_STEPS, LARGE_FLOW_WORK // work)))


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
