"""One verb for an end point: flow and/or Newton, the symmetry-aware fallback, verification of the
gradient at the returned point, and classification — with the policy of :mod:`.policy`."""

from __future__ import annotations

import dataclasses
import time

import jax.numpy as jnp
import numpy as np

from .._errors import InputError
from .._progress import Budget, ProgressFn
from ..curvature import lanczos_extreme, raw_hessian
from ..dynamics import FlowSolution, FlowStatus, gradient_flow, optimise
from ..landscape import Landscape
from ..models import is_smooth
from ..solvers import (
    RESULTS,
    Classification,
    Label,
    NewtonMR,
    NewtonTrustRegion,
    PatternNewton,
    SaddleNewton,
    classify as _classify,
    find_critical_point,
    gradient_floor,
)
from . import policy as _policy
from ._endpoint import Attempt, Continuation, ContinuationStep, Ending, EndPoint, Producer, Stage, Timings
from ._reduction import polish_through_reduction, saddle_solver

#: Results after which no other solver is tried: the iterates left for infinity or broke down,
#: or the time budget is gone.
_FINAL = (RESULTS.diverging, RESULTS.diverged, RESULTS.nonfinite, RESULTS.time_limit_reached, RESULTS.kink)
#: Results no continuation can change: an escape to infinity, a breakdown, a kink (the time budget
#: is not among them: the continuation then only records that it had no time).
_BROKEN = (RESULTS.diverging, RESULTS.diverged, RESULTS.nonfinite, RESULTS.kink)


#: Seconds of `max_time` kept for the Lanczos classification above the dense limit (at most a
#: tenth of the budget): the search stops that much earlier, so the whole call keeps to `max_time`.
_CLASSIFY_RESERVE = 30.0
#: Hessian-vector products of the Lanczos estimate of ``(λ_min, ||H||₂)`` above the dense limit.
_SPECTRUM_MATVECS = 200


def _spectrum_ends(ls: Landscape, theta) -> tuple[float, float]:
    """``(λ_min, ||H||₂)`` of the Hessian: dense up to the policy's limit, else Lanczos."""
    if ls.n_params <= _policy.DENSE_LIMIT:
        H = raw_hessian(ls, jnp.asarray(theta))
        lam = np.linalg.eigvalsh(0.5 * (H + H.T))
        return float(lam[0]), float(np.max(np.abs(lam)))
    # capped: near a degenerate point λ_min can need thousands of products; ||H||₂ (all the
    # round-off floor needs) converges within a few dozen
    spec = lanczos_extreme(ls, jnp.asarray(theta), k=1, which="both", residual_target=1e-6,
                           max_matvecs=_SPECTRUM_MATVECS)
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
    continuation: bool = True,
) -> EndPoint:
    """Polish ``theta0`` to a critical point of ``ls``, verify it, and classify it.

    **Methods** (`method`):

    - ``"flow-newton"`` (default): gradient flow until ``||∇L||_∞ ≤ handoff_tol`` (or `t1`), then
      :class:`~lossatlas.solvers.SaddleNewton` (Levenberg-Marquardt on ``∇L = 0``), which converges
      to the critical point the flow was approaching — minimum or saddle; above
      ``policy.DENSE_LIMIT`` parameters the matrix-free :class:`~lossatlas.solvers.NewtonMR`
      (Hessian-vector products only) takes its place, after a flow cut to
      ``policy.flow_max_steps(p, n)`` steps (a size-bounded share: at 10⁵ parameters the flow
      would otherwise take most of the time; Newton-MR's own descent steps do the rest), and
      for kinked activations (relu, leaky_relu, abs) :class:`~lossatlas.solvers.PatternNewton`
      **without the flow** (which crawls across the kinks; the solver's own descent takes its
      place); ``RESULTS.kink`` with the Clarke
      stationarity measure when the limit lies on kinks;
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
    3. ``method="flow-newton"`` only: if still no critical point (and no escape), the
       **continuation**: the flow goes on from where it stopped, in rounds, each to
       ``CONTINUATION_TIME_FACTOR`` times the flow time and a tighter steady-state tolerance
       (implicit BDF for small smooth networks: plateaus are stiff), followed by Newton with
       fallbacks 1 and 2 again; a saddle-like flow point then takes a step along its most
       negative Hessian eigenvector; after ``CONTINUATION_ROUNDS`` rounds the trust-region
       minimiser starts from the last flow point. It stops at the first critical point, at a
       certified escape to infinity (``RESULTS.diverging``), or at a budget (`max_time`,
       ``CONTINUATION_MAX_TIME``, the rounds, ``CONTINUATION_MAX_FLOW_TIME``); ``end.continuation``
       says which way it ended and through which stages;
    4. the returned point's loss and gradient are evaluated at the point itself, and it is
       classified with the criticality threshold ``CRITICAL_MARGIN · max(gtol, floor)``;
    5. a critical point classified ``undetermined`` is polished to the round-off floor (and,
       failing that, through the reduction) and classified again there: the eigenvalue
       tolerance shrinks with the gradient (recorded in ``end.continuation`` too).

    Runs whose first pass converges to a determined label never enter stages 3 and 5.

    **Budgets:** `max_steps` bounds each Newton run (default 200; the minimiser fallback gets
    1000); `max_time` (seconds) bounds the whole call: every stage checks the deadline between
    steps (the flow between chunks of 512 steps, and within ``FLOW_TIME_FRACTION`` of the budget,
    so that Newton always gets the rest), and a run that runs out ends with
    ``RESULTS.time_limit_reached``; above the dense limit the search ends ``_CLASSIFY_RESERVE``
    seconds (at most a tenth of `max_time`) early and the Lanczos classification gets the rest
    (Newton-MR checks the deadline at every MINRES iteration). The continuation also stops at its own
    ``CONTINUATION_MAX_TIME``, and its BDF flow checks the deadline after every step. Adam runs
    its `adam_steps` in one compiled loop and checks the deadline only after it. `progress` is
    called with a :class:`lossatlas.Progress` about twice a second.

    `flow`: a gradient flow from ``theta0`` already integrated (e.g. ``vmap``-batched with others
    by a sweep); ``method="flow-newton"`` then continues from its end instead of integrating again.
    `continuation`: ``False`` stops after the first pass (no stages 3 and 5).

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
    fallback_steps = _policy.FALLBACK_STEPS if max_steps is None else steps
    tm = {"flow": 0.0, "adam": 0.0, "newton": 0.0, "symmetry": 0.0, "classify": 0.0, "continuation": 0.0}
    attempts: list[Attempt] = []
    start = theta0
    if flow is not None and (method != "flow-newton" or not np.array_equal(np.asarray(flow.thetas[0]), theta0)):
        raise InputError("`flow` must be a gradient flow from `theta0`, with method='flow-newton'.")
    # kinked activations: PatternNewton's own descent takes the flow's place (a flow crawls across kinks)
    pattern = not ls.is_population and not is_smooth(ls.model.activation) and ls.n_params <= _policy.DENSE_LIMIT
    if method == "flow-newton" and (flow is not None or not pattern):
        t = time.perf_counter()
        if flow is None:  # the flow gets part of a time budget: Newton always gets its turn
            flow = gradient_flow(ls, theta0, t1=t1, solver=flow_solver, steady_tol=handoff_tol,
                                 max_steps=_policy.flow_max_steps(ls.n_params, ls.n_samples),
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
        primary, producer = NewtonMR(gtol=gtol, inertia_k=0), Producer.newton_mr  # classify bounds the inertia
    elif not ls.is_population and not is_smooth(ls.model.activation):  # Newton per activation pattern
        primary, producer = PatternNewton(gtol=gtol), Producer.pattern_newton
    else:
        primary, producer = SaddleNewton(gtol=gtol), Producer.saddle_newton

    def run_solver(solver, prod, theta, n, within):
        t = time.perf_counter()
        sol = find_critical_point(ls, theta, solver, max_steps=n, throw=False, budget=within)
        tm["newton"] += time.perf_counter() - t
        attempts.append(Attempt(prod, sol.result, sol.grad_norm_inf, sol.loss, sol.stats.num_steps,
                                sol.stats.wall_time))
        return sol

    def hand_off(theta, n, within, minimiser_first=False) -> _Pass:  # Newton with the fallbacks 1 and 2
        return _hand_off(ls, theta, primary, producer, gtol=gtol, steps=n, fallback_steps=fallback_steps,
                         budget=within, run_solver=run_solver, tm=tm, minimiser_first=minimiser_first)

    # above the dense limit the classification is Lanczos (up to hundreds of HVPs, ~20 s at 10⁵
    # parameters): the search ends early enough to leave it its share of `max_time`
    search = budget
    if classify_point and ls.n_params > _policy.DENSE_LIMIT and budget.max_time is not None:
        search = budget.part(1.0 - min(_CLASSIFY_RESERVE, 0.1 * budget.max_time) / budget.max_time)
    out_of_time = search.expired()
    done = hand_off(start, 0 if out_of_time else steps, search)  # 0 steps: evaluate the point only
    cont = None
    # 3. the continuation: longer flow, Newton again, negative-curvature steps, the minimiser
    if (continuation and method == "flow-newton" and flow is not None and not done.result.is_successful()
            and done.result not in _BROKEN):
        t = time.perf_counter()
        done, cont = _continue(
            ls, flow, done, hand_off=hand_off, run_solver=run_solver, gtol=gtol, handoff_tol=handoff_tol,
            steps=steps, fallback_steps=fallback_steps, budget=search, flow_solver=flow_solver,
            primary_kind=producer)
        tm["continuation"] = time.perf_counter() - t
    sol, producer = done.sol, done.producer
    theta, loss, gn, result, floor = done.theta, done.loss, done.grad_norm_inf, done.result, done.floor
    if not result.is_successful() and result not in _FINAL and (out_of_time or search.expired()):
        result = RESULTS.time_limit_reached  # the budget, not the method, ended the search
    # 4. classification with the policy's threshold at the returned point
    cls = None
    if classify_point:
        t = time.perf_counter()
        if floor <= 0.0:  # not measured by the solver (the gradient never got small)
            floor = measured_floor(ls, theta)
        cls = _classify(ls, jnp.asarray(theta), global_min_value=global_min_value,
                        grad_tol=_policy.critical_tolerance(gtol, floor), max_time=budget.remaining())
        tm["classify"] = time.perf_counter() - t
        # 5. an undetermined critical point: polished to the round-off floor, then through the
        # reduction, and classified again (the eigenvalue tolerance shrinks with the gradient)
        if continuation and cls.label is Label.undetermined and result.is_successful():
            t = time.perf_counter()
            here = _Pass(sol, producer, theta, loss, gn, result, floor)
            here, cls, decided, taken = _decide(ls, here, cls, gtol=gtol, steps=steps, budget=budget,
                                                run_solver=run_solver, global_min_value=global_min_value)
            sol, producer = here.sol, here.producer
            theta, loss, gn, result, floor = here.theta, here.loss, here.grad_norm_inf, here.result, here.floor
            cont = _with_decision(cont, taken, decided, cls, time.perf_counter() - t, flow)
            tm["continuation"] += time.perf_counter() - t
    dist = float(np.linalg.norm(theta - theta0))
    growth = _policy.max_weight_growth(ls.unravel(jnp.asarray(theta0)), ls.unravel(jnp.asarray(theta)))
    tm["total"] = time.perf_counter() - t_start
    escaping = result is RESULTS.diverging
    pre = None if ls.is_population or is_smooth(ls.model.activation) else preactivation_record(ls, theta)
    return EndPoint(
        theta=theta, loss=loss, grad_norm_inf=gn, result=result, requested=method, method=producer,
        gtol=float(gtol), gradient_floor=floor, target=max(float(gtol), floor), distance=dist,
        relative_distance=dist / max(float(np.linalg.norm(theta0)), 1.0), max_weight_growth=growth,
        classification=cls, flow=flow, attempts=tuple(attempts), solver_stats=sol.stats,
        timings=Timings(**tm), escape=sol.stats.escape if escaping else None,
        limit=sol.stats.limit if escaping else None, continuation=cont, preactivation=pre,
    )


def preactivation_record(ls: Landscape, theta) -> dict:
    """Where ``θ`` lies among the activation-pattern regions of a kinked activation: the smallest
    and largest ``|z|`` over the hidden pre-activations of all samples, whether one is on a kink,
    and what that means for the gradient and the Hessian (JSON-ready)."""
    zs, _ = ls.unravel(jnp.asarray(theta)).layer_outputs(ls.data.X)
    hidden = np.concatenate([np.abs(np.asarray(z)).ravel() for z in zs[:-1]] + [np.zeros(0)])
    if not hidden.size:
        return {"min_abs_preactivation": None, "preactivation_scale": None, "on_kink": False,
                "preactivation_note": "the network has no hidden pre-activations"}
    zmin, zmax = float(hidden.min()), float(hidden.max())
    kink_tol = PatternNewton().kink_tol  # the solver's own criterion
    on_kink = zmin <= kink_tol * max(1.0, zmax)
    note = (f"a hidden pre-activation is 0 (within {kink_tol:g} · max(1, max|z|)): the loss is not differentiable "
            "here; the autodiff gradient and Hessian are one-sided (PatternNewton's record gives the Clarke "
            "stationarity measure)" if on_kink else
            "no hidden pre-activation is 0: the point lies inside one activation-pattern region, where the "
            "loss is smooth; the gradient and the Hessian of the classification are that region's")
    return {"min_abs_preactivation": zmin, "preactivation_scale": zmax, "on_kink": bool(on_kink),
            "preactivation_note": note}


# ----------------------------------------------------------------------------- Newton with fallbacks
@dataclasses.dataclass(frozen=True)
class _Pass:
    """One hand-off to Newton with the policy's fallbacks: the solver run that produced `theta`
    (`sol`, `producer`) and the point's loss, ``||∇L||_∞``, status and measured floor.
    `reduction`: ``None`` if Newton through the symmetry reduction was not tried, else whether
    its projection was kept."""

    sol: object
    producer: Producer
    theta: np.ndarray
    loss: float
    grad_norm_inf: float
    result: RESULTS
    floor: float
    reduction: bool | None = None


def _hand_off(ls, start, primary, producer, *, gtol, steps, fallback_steps, budget, run_solver, tm,
              minimiser_first: bool = False) -> _Pass:
    """Newton from `start` (`primary`), then the policy's fallbacks: 1. the trust-region minimiser
    from a minimum-like start where Levenberg-Marquardt stalled; 2. Newton through the symmetry
    reduction, kept if the projection's own gradient meets ``max(gtol, CRITICAL_MARGIN · floor)``.
    `minimiser_first` (the continuation): from a minimum-like start the trust-region minimiser
    goes first, and Levenberg-Marquardt only if it fails (a flow that has gone on past a plateau
    and is minimum-like approaches a minimum, often a degenerate one, where Levenberg-Marquardt
    only crawls: measured 200 steps without convergence where the minimiser needed 30)."""
    dense_lm = producer is Producer.saddle_newton and ls.n_params <= _policy.DENSE_LIMIT

    def is_minimum_like() -> bool:
        lmin, hnorm = _spectrum_ends(ls, start)
        return lmin >= -_policy.MINIMUM_LIKE_RTOL * max(hnorm, 1e-300)

    if minimiser_first and dense_lm and not budget.expired() and is_minimum_like():
        alt = run_solver(NewtonTrustRegion(gtol=gtol), Producer.trust_region_newton, start, fallback_steps, budget)
        if alt.success or alt.result is RESULTS.diverging:
            return _Pass(alt, Producer.trust_region_newton, np.asarray(alt.theta), float(alt.loss),
                         float(alt.grad_norm_inf), alt.result, float(alt.stats.gradient_floor))
    sol = run_solver(primary, producer, start, steps, budget)
    if (not sol.success and sol.result not in _FINAL and dense_lm and not budget.expired()
            and not minimiser_first):
        if is_minimum_like():
            alt = run_solver(NewtonTrustRegion(gtol=gtol), Producer.trust_region_newton, start, fallback_steps,
                             budget)
            if alt.success or alt.result is RESULTS.diverging:
                sol, producer = alt, Producer.trust_region_newton
    out = _Pass(sol, producer, np.asarray(sol.theta), float(sol.loss), float(sol.grad_norm_inf), sol.result,
                float(sol.stats.gradient_floor))
    if not sol.success and sol.result not in _FINAL and not ls.freeze and not budget.expired():
        t = time.perf_counter()
        proj = polish_through_reduction(ls, out.theta, SaddleNewton(gtol=gtol), target=gtol, budget=budget)
        kept = False
        if proj is not None:
            pfloor = measured_floor(ls, proj.theta)
            if proj.grad_norm_inf <= max(gtol, _policy.CRITICAL_MARGIN * pfloor):
                gn = float(proj.grad_norm_inf)
                out = _Pass(sol, Producer.symmetry_projection, np.asarray(proj.theta), float(proj.loss), gn,
                            RESULTS.successful if gn <= gtol else RESULTS.roundoff_floor, pfloor)
                kept = True
        out = dataclasses.replace(out, reduction=kept)
        tm["symmetry"] += time.perf_counter() - t
    return out


# ----------------------------------------------------------------------------- the continuation
def _continue(ls, flow: FlowSolution, first: _Pass, *, hand_off, run_solver, gtol, handoff_tol, steps,
              fallback_steps, budget: Budget, flow_solver: str, primary_kind: Producer
              ) -> tuple[_Pass, Continuation]:
    """Continue a flow-Newton polish whose first pass `first` reached no critical point.

    Rounds (at most ``CONTINUATION_ROUNDS``): the flow goes on from where it stopped to
    ``CONTINUATION_TIME_FACTOR`` times its time, to a tighter steady-state tolerance, and hands
    off to Newton again (with its fallbacks); a saddle-like flow point then takes a
    negative-curvature step. After the rounds, the trust-region minimiser from the last flow
    point (not for kinked activations, whose Newton works per activation pattern). Ends at the
    first verified critical point (``critical``), at a certified escape to infinity
    (``diverging``), at a budget (``budget``: the polish's `max_time`, the continuation's
    ``CONTINUATION_MAX_TIME``, its rounds or its flow-time cap), or when the flow or a solver
    breaks down (``failed``). Returns the pass
    whose point is returned (the converged one, else the one with the smallest ``||∇L||_∞``)
    and the record.
    """
    t_start = time.perf_counter()
    trigger = first.result.name
    taken: list[ContinuationStep] = []
    flows: list[FlowSolution] = []
    best = first
    theta_f = np.asarray(flow.theta)
    t_clock = float(flow.t_final)
    rounds = 0

    def finish(ended: Ending, limit: str | None, reason: str, chosen: _Pass):
        rec = Continuation(trigger=trigger, steps=tuple(taken), ended=ended, limit=limit, rounds=rounds,
                           flow_time=t_clock, wall_time=time.perf_counter() - t_start, reason=reason,
                           flows=tuple(flows))
        return chosen, rec

    def note(stage, status, gn, loss, t0, t=None, **details):
        taken.append(ContinuationStep(stage, status, float(gn), float(loss), time.perf_counter() - t0,
                                      None if t is None else float(t), details))

    remaining = budget.remaining()
    if budget.expired() or (remaining is not None and remaining <= 0.0):
        return finish(Ending.budget, "max_time", "the polish's time budget (max_time) ran out before the "
                      "first pass reached a critical point; nothing was continued.", first)
    own = _policy.CONTINUATION_MAX_TIME
    limit_name = "continuation_time" if remaining is None or remaining > own else "max_time"
    cb = Budget(own if remaining is None else min(own, remaining), budget.progress)
    implicit = ls.n_params <= _policy.CONTINUATION_IMPLICIT_LIMIT and is_smooth(ls.model.activation)
    out_of_time = ("the continuation's time ran out (" + ("max_time" if limit_name == "max_time" else
                   f"policy.CONTINUATION_MAX_TIME = {own:g} s") + ") before a critical point was reached.")

    def outcome(p: _Pass, t0, stage=Stage.newton):
        nonlocal best
        note(stage, p.result.name, p.grad_norm_inf, p.loss, t0, producer=p.producer.value)
        if p.reduction is not None:
            note(Stage.reduction_newton, "kept" if p.reduction else "not_kept", p.grad_norm_inf, p.loss, t0)
        if p.result.is_successful():
            return finish(Ending.critical, None, f"{stage.value} converged to a critical point "
                          f"(||∇L||_∞ = {p.grad_norm_inf:.3e}).", p)
        if p.result is RESULTS.diverging:
            note(Stage.infinity, p.result.name, p.grad_norm_inf, p.loss, t0)
            return finish(Ending.diverging, None, "the iterates escape to infinity along a channel "
                          "(evidence in the solver's stats.escape).", p)
        if p.grad_norm_inf < best.grad_norm_inf:
            best = p
        if p.result in _BROKEN:  # diverged, nonfinite, kink
            return finish(Ending.failed, p.result.name, f"{stage.value} stopped: {p.result.value}", p)
        return None

    while rounds < _policy.CONTINUATION_ROUNDS:
        if cb.expired():
            return finish(Ending.budget, limit_name, out_of_time, best)
        if t_clock >= _policy.CONTINUATION_MAX_FLOW_TIME:
            return finish(Ending.budget, "flow_time", f"the flow reached the continuation's flow-time cap "
                          f"{_policy.CONTINUATION_MAX_FLOW_TIME:g} without a critical point.", best)
        rounds += 1
        # longer flow, to a tighter steady state
        t0 = time.perf_counter()
        tol = max(handoff_tol * _policy.CONTINUATION_TOL_FACTOR ** rounds, _policy.CONTINUATION_MIN_STEADY_TOL)
        target = min(max(t_clock, 1.0) * _policy.CONTINUATION_TIME_FACTOR, _policy.CONTINUATION_MAX_FLOW_TIME)
        theta_f, t_clock, status, segs = _continued_flow(ls, theta_f, t_clock, target, tol, implicit, cb,
                                                         flow_solver)
        flows.extend(segs)
        L, g = ls.value_and_grad(jnp.asarray(theta_f))
        note(Stage.longer_flow, status.name, float(np.max(np.abs(np.asarray(g)))), float(L), t0, t=t_clock,
             steady_tol=tol, solver="bdf" if implicit else flow_solver)
        if status is FlowStatus.failed:
            return finish(Ending.failed, "breakdown", "the continued flow failed (non-finite values or step "
                          "size underflow).", best)
        if cb.expired():
            return finish(Ending.budget, limit_name, out_of_time, best)
        # Newton again, with its fallbacks
        t0 = time.perf_counter()
        ended = outcome(hand_off(theta_f, steps, cb, minimiser_first=True), t0)
        if ended is not None:
            return ended
        # off a saddle's plateau: a step along negative curvature, then the flow again
        if ls.n_params <= _policy.DENSE_LIMIT and not cb.expired():
            t0 = time.perf_counter()
            stepped = _curvature_step(ls, theta_f)
            if stepped is not None:
                theta_f, details = stepped
                L, g = ls.value_and_grad(jnp.asarray(theta_f))
                note(Stage.negative_curvature_step, "taken", float(np.max(np.abs(np.asarray(g)))), float(L), t0,
                     **details)
    if cb.expired():
        return finish(Ending.budget, limit_name, out_of_time, best)
    if primary_kind is Producer.pattern_newton:  # kinked activations: no smooth minimiser
        return finish(Ending.budget, "rounds", f"{rounds} rounds of longer flow and Newton per activation "
                      "pattern reached no critical point (policy.CONTINUATION_ROUNDS).", best)
    # the minimiser from the last flow point (its exact subproblem steps along negative curvature)
    t0 = time.perf_counter()
    sol = run_solver(NewtonTrustRegion(gtol=gtol), Producer.trust_region_newton, theta_f, fallback_steps, cb)
    p = _Pass(sol, Producer.trust_region_newton, np.asarray(sol.theta), float(sol.loss), float(sol.grad_norm_inf),
              sol.result, float(sol.stats.gradient_floor))
    ended = outcome(p, t0, Stage.trust_region)
    if ended is not None:
        return ended
    if cb.expired():
        return finish(Ending.budget, limit_name, out_of_time, best)
    return finish(Ending.budget, "rounds", f"{rounds} rounds of longer flow and Newton, and the trust-region "
                  "minimiser, reached no critical point (policy.CONTINUATION_ROUNDS).", best)


def _continued_flow(ls, theta, t_from, t_to, steady_tol, implicit, budget, flow_solver):
    """The gradient flow from ``θ`` (flow time `t_from`) on to `t_to`, stopping at `steady_tol`:
    implicit BDF stepped here (:func:`_implicit_flow`), or the explicit solver chunked under the
    budget. Returns ``(θ, t reached, status, segments)``."""
    if implicit:
        fl = _implicit_flow(ls, theta, t_to - t_from, steady_tol, budget)
    else:
        fl = gradient_flow(ls, theta, t1=t_to - t_from, solver=flow_solver, steady_tol=steady_tol,
                           max_steps=_policy.flow_max_steps(ls.n_params, ls.n_samples), budget=budget)
    return np.asarray(fl.theta), t_from + float(fl.t_final), fl.status, [fl]


def _implicit_flow(ls, theta, duration, steady_tol, budget, n_save: int = 80) -> FlowSolution:
    """The gradient flow for `duration` by SciPy's BDF (variable order, exact Hessian as the
    Jacobian, ``rtol = 1e-8``, ``atol = 1e-10`` as :func:`lossatlas.dynamics.gradient_flow`),
    stepped one step at a time so that the steady state (``||∇L||_∞ ≤ steady_tol``) and the
    budget are checked after every step; at most ``CONTINUATION_FLOW_STEPS`` steps. Samples at
    log-spaced times (and the stop)."""
    from scipy.integrate import BDF

    t_start = time.perf_counter()

    def f(t, y):
        return -np.asarray(ls.grad(jnp.asarray(y)))

    def jac(t, y):
        H = np.asarray(raw_hessian(ls, jnp.asarray(y)))
        return -0.5 * (H + H.T)

    y = np.asarray(theta, dtype=np.float64)
    grid = np.geomspace(max(duration * 1e-8, 1e-4), duration, n_save - 1)
    ts, ys = [0.0], [y]
    status, steps, t = FlowStatus.reached_t1, 0, 0.0
    if float(np.max(np.abs(f(0.0, y)))) <= steady_tol:
        status = FlowStatus.steady_state
    else:
        solver = BDF(f, 0.0, y, duration, jac=jac, rtol=1e-8, atol=1e-10)
        k = 0
        while True:
            msg = solver.step()
            steps += 1
            t, y = float(solver.t), np.array(solver.y)
            if msg is not None or not np.all(np.isfinite(y)):
                status = FlowStatus.failed
                break
            while k < grid.size and grid[k] <= t:
                k += 1
                if ts[-1] < t:
                    ts.append(t)
                    ys.append(y)
            g = float(np.max(np.abs(f(t, y))))
            if budget.progress is not None:
                budget.report("flow", steps, float(ls.loss(jnp.asarray(y))), g, t)
            if g <= steady_tol:
                status = FlowStatus.steady_state
                break
            if solver.status == "finished":
                break
            if steps >= _policy.CONTINUATION_FLOW_STEPS:
                status = FlowStatus.max_steps_reached
                break
            if budget.expired():
                status = FlowStatus.time_limit
                break
    if ts[-1] < t:
        ts.append(t)
        ys.append(y)
    thetas = np.stack(ys)
    L, g = zip(*(ls.value_and_grad(jnp.asarray(th)) for th in thetas), strict=True)
    return FlowSolution(ts=np.asarray(ts), losses=np.asarray([float(v) for v in L]),
                        grad_norms=np.asarray([float(jnp.max(jnp.abs(v))) for v in g]), thetas=thetas,
                        theta=thetas[-1], t_final=float(t), status=status,
                        stats={"solver": "bdf", "num_steps": int(steps), "wall_time": time.perf_counter() - t_start})


def _curvature_step(ls, theta):
    """A step off a saddle along the Hessian's most negative eigenvector (see
    ``policy.CURVATURE_STEPS``): ``(θ_new, details)``, or ``None`` if the point is not saddle-like
    or no step length gives the required decrease."""
    H = raw_hessian(ls, jnp.asarray(theta))
    lam, V = np.linalg.eigh(0.5 * (H + H.T))
    hnorm = float(np.max(np.abs(lam))) if lam.size else 0.0
    if not lam.size or lam[0] >= -_policy.MINIMUM_LIKE_RTOL * max(hnorm, 1e-300):
        return None
    v = V[:, 0]
    L0 = float(ls.loss(jnp.asarray(theta)))
    scale = max(1.0, float(np.max(np.abs(theta))))
    for c in _policy.CURVATURE_STEPS:
        alpha = c * scale
        trials = [(float(ls.loss(jnp.asarray(theta + s * alpha * v))), s) for s in (1.0, -1.0)]
        Ln, sign = min(trials)
        if L0 - Ln >= _policy.CURVATURE_DECREASE * 0.5 * abs(lam[0]) * alpha * alpha:
            return theta + sign * alpha * v, {"eigenvalue": float(lam[0]), "step_length": float(alpha),
                                              "loss_before": L0}
    return None


# ----------------------------------------------------------------------------- undetermined labels
def _decide(ls, here: _Pass, cls, *, gtol, steps, budget, run_solver, global_min_value):
    """More effort on a critical point classified ``undetermined``.

    The eigenvalue tolerance of the classification is ``p ε ||H|| + δ_H + ||∇L||₂``: at a point
    polished to ``gtol`` the gradient term usually dominates, so eigenvalues within a factor 10
    of it (a slightly negative one, or a near-zero one) cannot be assigned a sign. Polishing the
    point to the float64 round-off floor (Levenberg-Marquardt with target 0; Newton-MR above the
    dense limit, where it also brings the loss of an interpolating point under its zero-loss
    tolerance; then, above the dense limit, Lanczos with ``policy.DECIDE_LANCZOS_MATVECS``
    products), and failing that through the symmetry reduction (the narrow network is
    non-degenerate, the projection lies exactly on the expansion subspace; dense sizes only),
    shrinks that term; the point is classified again there with the policy's threshold. The
    first determined label is kept, with its point. Not decidable this way: eigenvalues that
    stay within a factor 10 of the round-off part of the
    tolerance, a loss equal to the given global minimum value next to a clearly negative
    eigenvalue, kernels beyond the dense limit (Lanczos), and a kernel whose higher-order test and
    local search find no descent but cannot certify a minimum either.
    Returns ``(pass, classification, decided, steps)``.
    """
    taken: list[ContinuationStep] = []

    def reclassify(p: _Pass):
        floor = p.floor if p.floor > 0 else measured_floor(ls, p.theta)
        c = _classify(ls, jnp.asarray(p.theta), global_min_value=global_min_value,
                      grad_tol=_policy.critical_tolerance(gtol, floor))
        return dataclasses.replace(p, floor=floor), c

    large = ls.n_params > _policy.DENSE_LIMIT
    best = here
    if not budget.expired():
        t0 = time.perf_counter()
        solver = saddle_solver(ls.n_params, 0.0)
        prod = Producer.newton_mr if isinstance(solver, NewtonMR) else Producer.saddle_newton
        sol = run_solver(solver, prod, here.theta, steps, budget)
        if sol.success and sol.grad_norm_inf <= here.grad_norm_inf:
            p = _Pass(sol, prod, np.asarray(sol.theta), float(sol.loss),
                      float(sol.grad_norm_inf), sol.result, float(sol.stats.gradient_floor))
            p, c = reclassify(p)
            taken.append(ContinuationStep(Stage.newton, sol.result.name, p.grad_norm_inf, p.loss,
                                          time.perf_counter() - t0, None, {"label": c.label.value}))
            if c.label is not Label.undetermined:
                return p, c, True, taken
            best = p
        else:
            taken.append(ContinuationStep(Stage.newton, sol.result.name, float(sol.grad_norm_inf), float(sol.loss),
                                          time.perf_counter() - t0, None, {"label": None}))
    # above the dense limit: Lanczos again, with more products (its unconverged small Ritz values
    # are what widened the zero tolerance), within the time left
    if large and not budget.expired():
        t0 = time.perf_counter()
        c = _classify(ls, jnp.asarray(best.theta), global_min_value=global_min_value,
                      grad_tol=_policy.critical_tolerance(gtol, best.floor),
                      max_matvecs=_policy.DECIDE_LANCZOS_MATVECS, max_time=budget.remaining())
        taken.append(ContinuationStep(Stage.deeper_lanczos, "classified", best.grad_norm_inf, best.loss,
                                      time.perf_counter() - t0, None,
                                      {"label": c.label.value, "max_matvecs": _policy.DECIDE_LANCZOS_MATVECS}))
        if c.label is not Label.undetermined:
            return best, c, True, taken
    # through the reduction: dense sizes only (above the dense limit the label comes from Lanczos,
    # whose kernel this cannot resolve: measured 368 s for nothing at 85 002 parameters)
    if not budget.expired() and not ls.freeze and ls.n_params <= _policy.DENSE_LIMIT:
        t0 = time.perf_counter()
        proj = polish_through_reduction(ls, here.theta, SaddleNewton(gtol=0.0), target=0.0, budget=budget)
        if proj is not None:
            floor = measured_floor(ls, proj.theta)
            gn = float(proj.grad_norm_inf)
            if gn <= max(gtol, _policy.CRITICAL_MARGIN * floor):
                p = _Pass(here.sol, Producer.symmetry_projection, np.asarray(proj.theta), float(proj.loss), gn,
                          RESULTS.successful if gn <= gtol else RESULTS.roundoff_floor, floor)
                p, c = reclassify(p)
                taken.append(ContinuationStep(Stage.reduction_newton, "kept", gn, p.loss, time.perf_counter() - t0,
                                              None, {"label": c.label.value}))
                if c.label is not Label.undetermined:
                    return p, c, True, taken
        else:
            taken.append(ContinuationStep(Stage.reduction_newton, "not_reducible", here.grad_norm_inf, here.loss,
                                          time.perf_counter() - t0, None, {"label": None}))
    return here, cls, False, taken


def _with_decision(cont: Continuation | None, taken, decided: bool, cls, seconds: float, flow) -> Continuation:
    """The continuation record with the effort spent on an undetermined label appended."""
    reason = ("classified again after polishing to the round-off floor / through the reduction: "
              f"{cls.label.value}." if decided else
              f"the label stays undetermined after polishing to the round-off floor and through the "
              f"reduction: {cls.reason}")
    ended, limit = (Ending.critical, None) if decided else (Ending.failed, "undecidable")
    if cont is None:
        return Continuation(trigger="undetermined", steps=tuple(taken), ended=ended, limit=limit, rounds=0,
                            flow_time=float(flow.t_final) if flow is not None else 0.0, wall_time=seconds,
                            reason=reason)
    return dataclasses.replace(cont, steps=cont.steps + tuple(taken), ended=ended, limit=limit,
                               wall_time=cont.wall_time + seconds, reason=cont.reason + " Then " + reason)
