"""One verb for an end point: flow and/or Newton, the symmetry-aware fallback, verification of the
gradient at the returned point, and classification — with the policy of :mod:`.policy`."""

from __future__ import annotations

import time

import jax.numpy as jnp
import numpy as np

from .._errors import InputError
from .._progress import Budget, ProgressFn
from ..curvature import lanczos_extreme, raw_hessian
from ..dynamics import FlowSolution, gradient_flow, optimise
from ..landscape import Landscape
from ..models import is_smooth
from ..solvers import (
    RESULTS,
    Classification,
    NewtonMR,
    NewtonTrustRegion,
    PatternNewton,
    SaddleNewton,
    classify as _classify,
    find_critical_point,
    gradient_floor,
)
from . import policy as _policy
from ._endpoint import Attempt, EndPoint, Producer, Timings
from ._reduction import polish_through_reduction

#: Results after which no other solver is tried: the iterates left for infinity or broke down,
#: or the time budget is gone.
_FINAL = (RESULTS.diverging, RESULTS.diverged, RESULTS.nonfinite, RESULTS.time_limit_reached, RESULTS.kink)


def _spectrum_ends(ls: Landscape, theta) -> tuple[float, float]:
    """``(λ_min, ||H||₂)`` of the Hessian: dense up to the policy's limit, else Lanczos."""
    if ls.n_params <= _policy.DENSE_LIMIT:
        H = raw_hessian(ls, jnp.asarray(theta))
        lam = np.linalg.eigvalsh(0.5 * (H + H.T))
        return float(lam[0]), float(np.max(np.abs(lam)))
    spec = lanczos_extreme(ls, jnp.asarray(theta), k=1, which="both", residual_target=1e-6)
    return float(np.min(spec.eigenvalues)), float(spec.scale)


def measured_floor(ls: Landscape, theta) -> float:
    """The float64 round-off floor of ``||∇L||_∞`` at ``θ`` (see
    :func:`lossatlas.solvers.gradient_floor`), with the Hessian norm it needs."""
    return gradient_floor(ls, jnp.asarray(theta), _spectrum_ends(ls, theta)[1])


def classify(
    ls: Landscape,
    theta,
    *,
    global_min_value: float | None = None,
    grad_tol: float | None = None,
    gtol: float = _policy.GTOL,
    max_order: int = 6,
) -> Classification:
    """Classify ``θ`` with the end-point policy: the point counts as critical when
    ``||∇L||_∞ ≤ CRITICAL_MARGIN · max(gtol, floor)`` (``floor`` measured at ``θ``), unless
    `grad_tol` is given. This is the rule :func:`polish` classifies its end points by, so a
    stored end point classified again gets the label it was stored with.

    `global_min_value`: the landscape's global minimum value when known (enables the
    ``global_minimum`` label). See :func:`lossatlas.solvers.classify` for the labels and their
    evidence.
    """
    theta = ls.check_theta(theta)
    if grad_tol is None:
        grad_tol = _policy.critical_tolerance(gtol, measured_floor(ls, theta))
    return _classify(ls, theta, global_min_value=global_min_value, grad_tol=grad_tol, max_order=max_order)


def polish(
    ls: Landscape,
    theta0,
    *,
    method: str = "flow-newton",
    gtol: float = _policy.GTOL,
    max_steps: int | None = None,
    max_time: float | None = None,
    progress: ProgressFn | None = None,
    global_min_value: float | None = None,
    classify_point: bool = True,
    t1: float = _policy.FLOW_T1,
    handoff_tol: float = _policy.HANDOFF_TOL,
    flow_solver: str = "auto",
    adam_steps: int = _policy.ADAM_STEPS,
    learning_rate: float = _policy.ADAM_LEARNING_RATE,
    flow: FlowSolution | None = None,
) -> EndPoint:
    """Polish ``theta0`` to a critical point of ``ls``, verify it, and classify it.

    **Methods** (`method`):

    - ``"flow-newton"`` (default): gradient flow until ``||∇L||_∞ ≤ handoff_tol`` (or `t1`), then
      :class:`~lossatlas.solvers.SaddleNewton` (Levenberg-Marquardt on ``∇L = 0``), which converges
      to the critical point the flow was approaching — minimum or saddle; above
      ``policy.DENSE_LIMIT`` parameters the matrix-free :class:`~lossatlas.solvers.NewtonMR`
      (Hessian-vector products only) takes its place, and for kinked activations (relu,
      leaky_relu, abs) :class:`~lossatlas.solvers.PatternNewton` (Newton on the smooth loss of the
      current activation pattern; ``RESULTS.kink`` with the Clarke stationarity measure when the
      limit lies on a kink);
    - ``"newton"``: :class:`~lossatlas.solvers.NewtonTrustRegion` from ``theta0`` (descends to minima);
    - ``"saddle"``: :class:`~lossatlas.solvers.SaddleNewton` (above the dense limit
      :class:`~lossatlas.solvers.NewtonMR`) from ``theta0``;
    - ``"adam"``: `adam_steps` of Adam, then the trust region.

    **The policy** (constants in :mod:`lossatlas.pipeline.policy`), the same for every caller:

    1. if a Levenberg-Marquardt polish fails and its start is minimum-like (no Hessian eigenvalue
       below ``−1e-6 ||H||``), the trust-region minimiser tries from the same start (near a flat
       minimum ``||∇L||`` is not monotone along the way in); its result is kept if it converged
       or found an escape to infinity;
    2. if still not converged (and not escaping), Newton through the symmetry reduction: reduce
       the point to its minimal network, polish that, project back onto its expansion subspace;
       kept if the projection's own gradient meets ``max(gtol, CRITICAL_MARGIN · floor)``;
    3. the returned point's loss and gradient are evaluated at the point itself, and it is
       classified with the criticality threshold ``CRITICAL_MARGIN · max(gtol, floor)``.

    **Budgets:** `max_steps` bounds each Newton run (default 200; the minimiser fallback gets
    1000); `max_time` (seconds) bounds the whole call: every stage checks the deadline between
    steps (the flow between chunks of 512 steps, and within ``FLOW_TIME_FRACTION`` of the budget,
    so that Newton always gets the rest), and a run that runs out ends with
    ``RESULTS.time_limit_reached``. Adam runs its `adam_steps` in one compiled loop and checks
    the deadline only after it. `progress` is called with a :class:`lossatlas.Progress` about
    twice a second.

    `flow`: a gradient flow from ``theta0`` already integrated (e.g. ``vmap``-batched with others
    by a sweep); ``method="flow-newton"`` then continues from its end instead of integrating again.

    Returns an :class:`EndPoint`; never raises for non-convergence (read ``end.converged``).
    """
    t_start = time.perf_counter()
    if method not in _policy.METHODS:
        raise InputError(f"`method` must be one of {', '.join(_policy.METHODS)}, got {method!r}.")
    if not (gtol >= 0 and np.isfinite(gtol)):
        raise InputError(f"`gtol` must be a finite number >= 0, got {gtol}.")
    if max_steps is not None and int(max_steps) < 0:
        raise InputError(f"`max_steps` must be >= 0, got {max_steps}.")
    if not (t1 > 0 and np.isfinite(t1)) or not handoff_tol > 0:
        raise InputError(f"`t1` and `handoff_tol` must be positive, got {t1} and {handoff_tol}.")
    if method == "adam" and (int(adam_steps) < 1 or not learning_rate > 0):
        raise InputError("`adam_steps` >= 1 and `learning_rate` > 0 are required.")
    theta0 = np.asarray(ls.check_theta(theta0, "theta0"))
    budget = Budget(max_time, progress, start=t_start)
    steps = _policy.NEWTON_STEPS if max_steps is None else int(max_steps)
    tm = {"flow": 0.0, "adam": 0.0, "newton": 0.0, "symmetry": 0.0, "classify": 0.0}
    attempts: list[Attempt] = []
    flow = None
    start = theta0
    if flow is not None and (method != "flow-newton" or not np.array_equal(np.asarray(flow.thetas[0]), theta0)):
        raise InputError("`flow` must be a gradient flow from `theta0`, with method='flow-newton'.")
    if method == "flow-newton":
        t = time.perf_counter()
        if flow is None:  # the flow gets part of a time budget: Newton always gets its turn
            flow = gradient_flow(ls, theta0, t1=t1, solver=flow_solver, steady_tol=handoff_tol,
                                 budget=budget.part(_policy.FLOW_TIME_FRACTION))
        tm["flow"] = time.perf_counter() - t
        start = np.asarray(flow.theta)
    elif method == "adam":
        t = time.perf_counter()
        run = optimise(ls, theta0, method="adam", learning_rate=learning_rate, num_steps=int(adam_steps),
                       record_every=100, gtol=gtol)
        tm["adam"] = time.perf_counter() - t
        start = np.asarray(run.theta)
    if method in ("newton", "adam"):  # a minimiser: dense trust region, Steihaug-CG beyond the dense limit
        primary, producer = NewtonTrustRegion(gtol=gtol, dense_limit=_policy.DENSE_LIMIT), Producer.trust_region_newton
    elif ls.n_params > _policy.DENSE_LIMIT:  # critical points of any index, matrix-free
        primary, producer = NewtonMR(gtol=gtol), Producer.newton_mr
    elif not ls.is_population and not is_smooth(ls.model.activation):  # Newton per activation pattern
        primary, producer = PatternNewton(gtol=gtol), Producer.pattern_newton
    else:
        primary, producer = SaddleNewton(gtol=gtol), Producer.saddle_newton

    def run_solver(solver, prod, theta, n):
        t = time.perf_counter()
        sol = find_critical_point(ls, theta, solver, max_steps=n, throw=False, budget=budget)
        tm["newton"] += time.perf_counter() - t
        attempts.append(Attempt(prod, sol.result, sol.grad_norm_inf, sol.loss, sol.stats.num_steps,
                                sol.stats.wall_time))
        return sol

    out_of_time = budget.expired()
    sol = run_solver(primary, producer, start, 0 if out_of_time else steps)  # 0: evaluate the point only
    # 1. the trust-region minimiser from a minimum-like start where Levenberg-Marquardt stalled
    if (not sol.success and sol.result not in _FINAL and producer is Producer.saddle_newton
            and ls.n_params <= _policy.DENSE_LIMIT and not budget.expired()):
        lmin, hnorm = _spectrum_ends(ls, start)
        if lmin >= -_policy.MINIMUM_LIKE_RTOL * max(hnorm, 1e-300):
            alt = run_solver(NewtonTrustRegion(gtol=gtol), Producer.trust_region_newton, start,
                             _policy.FALLBACK_STEPS if max_steps is None else steps)
            if alt.success or alt.result is RESULTS.diverging:
                sol, producer = alt, Producer.trust_region_newton
    theta, loss, gn, result = np.asarray(sol.theta), float(sol.loss), float(sol.grad_norm_inf), sol.result
    floor = float(sol.stats.gradient_floor)
    # 2. Newton through the symmetry reduction
    if not sol.success and sol.result not in _FINAL and not ls.freeze and not budget.expired():
        t = time.perf_counter()
        proj = polish_through_reduction(ls, theta, SaddleNewton(gtol=gtol), target=gtol, budget=budget)
        if proj is not None:
            pfloor = measured_floor(ls, proj.theta)
            if proj.grad_norm_inf <= max(gtol, _policy.CRITICAL_MARGIN * pfloor):
                theta, loss, gn, floor = proj.theta, proj.loss, proj.grad_norm_inf, pfloor
                producer = Producer.symmetry_projection
                result = RESULTS.successful if gn <= gtol else RESULTS.roundoff_floor
        tm["symmetry"] = time.perf_counter() - t
    if not result.is_successful() and result not in _FINAL and (out_of_time or budget.expired()):
        result = RESULTS.time_limit_reached  # the budget, not the method, ended the search
    # 3. classification with the policy's threshold at the returned point
    cls = None
    if classify_point:
        t = time.perf_counter()
        if floor <= 0.0:  # not measured by the solver (the gradient never got small)
            floor = measured_floor(ls, theta)
        cls = _classify(ls, jnp.asarray(theta), global_min_value=global_min_value,
                        grad_tol=_policy.critical_tolerance(gtol, floor))
        tm["classify"] = time.perf_counter() - t
    dist = float(np.linalg.norm(theta - theta0))
    growth = _policy.max_weight_growth(ls.unravel(jnp.asarray(theta0)), ls.unravel(jnp.asarray(theta)))
    tm["total"] = time.perf_counter() - t_start
    escaping = result is RESULTS.diverging
    return EndPoint(
        theta=theta, loss=loss, grad_norm_inf=gn, result=result, requested=method, method=producer,
        gtol=float(gtol), gradient_floor=floor, target=max(float(gtol), floor), distance=dist,
        relative_distance=dist / max(float(np.linalg.norm(theta0)), 1.0), max_weight_growth=growth,
        classification=cls, flow=flow, attempts=tuple(attempts), solver_stats=sol.stats,
        timings=Timings(**tm), escape=sol.stats.escape if escaping else None,
        limit=sol.stats.limit if escaping else None,
    )
